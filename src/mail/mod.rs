//! What the mail protocols share: server settings, authentication, connections, the host
//! policy and TLS.

pub mod criteria;
pub mod inputs;
pub mod message;
pub mod net;
pub mod policy;
pub mod server;
pub mod session_key;
pub mod tls;
