//! The Zeebe gateway: generated gRPC code, a client with TLS, Basic auth and OAuth, the settings
//! that name them, and nothing else.

pub mod client;
pub mod credentials;
pub mod oauth;
pub mod settings;

/// Client code generated from `proto/gateway.proto` at build time (the server side is built
/// for the test gateway only; see `build.rs`).
pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("gateway_protocol");
}

pub use client::{GatewayClient, GatewayConfig};
pub use credentials::{BasicAuth, Credentials};
