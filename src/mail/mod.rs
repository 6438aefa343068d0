//! What the mail protocols share: server settings, authentication and TLS.

pub mod criteria;
pub mod inputs;
pub mod message;
pub mod server;
pub mod tls;
