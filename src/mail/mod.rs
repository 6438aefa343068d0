//! What the mail protocols share: server settings, authentication and TLS.

pub mod server;
pub mod tls;
