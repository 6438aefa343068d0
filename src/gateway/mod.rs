//! The Zeebe gateway: generated gRPC code, a client with TLS and OAuth, and nothing else.

pub mod client;
pub mod oauth;

/// Client code generated from `proto/gateway.proto` at build time (the server side is built
/// for the test gateway only; see `build.rs`).
pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("gateway_protocol");
}

pub use client::{GatewayClient, GatewayConfig};
