//! OAuth2 access tokens: the shared single-flight cache, the token request, and the mail
//! logins' credentials (XOAUTH2 / OAUTHBEARER; docs/processes.md, "OAuth2 logins").

pub mod cache;
pub mod endpoint;
pub mod error;
pub mod login;
pub mod mail;
