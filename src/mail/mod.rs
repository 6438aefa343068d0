//! What the mail protocols share: server settings, authentication, connections, the host
//! policy and TLS.

pub mod auth;
pub mod budget;
pub mod criteria;
pub mod cut;
pub mod inputs;
pub mod message;
pub mod net;
pub mod normalize;
pub mod policy;
pub mod prune;
pub mod response;
pub mod sasl;
pub mod server;
pub mod session_key;
pub mod session_pool;
pub mod summary;
pub mod tls;
