//! The worker against the test gateway as Camunda runs it, with no mail server: the worker core
//! with operations made for the purpose, Camunda 8.8+ settings (addresses, Basic auth, tenants,
//! TLS) and the gateway's OAuth token. Needs no root, apt or browser (`cargo test-unprivileged`);
//! `camunda` needs the `openssl` command.

#[path = "../support/mod.rs"]
mod support;

mod camunda;
mod gateway_oauth;
mod worker;
