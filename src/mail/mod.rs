//! What the mail protocols share: server settings, authentication and TLS.

pub mod budget;
pub mod criteria;
pub mod cut;
pub mod inputs;
pub mod message;
pub mod normalize;
pub mod prune;
pub mod server;
pub mod tls;
