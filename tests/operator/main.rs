//! The worker process under an operator's settings, against the mail testbed and loopback
//! listeners: the host policy (partly in private network namespaces), the operator's own
//! endpoints, `/healthz`, `/readyz` and `/metrics`, secrets kept out of the log, and the result
//! and error expressions of the task headers.

#[path = "../support/mod.rs"]
mod support;

mod expressions;
mod host_policy;
mod http;
mod operator_endpoints;
mod secret_logs;
