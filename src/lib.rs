//! An email connector for Camunda 8: a Zeebe job worker that sends mail over SMTP and reads,
//! searches, moves and deletes it over IMAP and POP3.
//!
//! How a job travels, in one direction:
//!
//! 1. [`worker`] receives it from the gateway (a job stream per job type, plus long polling to
//!    drain the backlog), holding one of `maxJobsActive` slots;
//! 2. [`job`] reads its task headers, [`secrets`] resolves `{{secrets.NAME}}` placeholders;
//! 3. the [`operations`] registry finds the operation for the job type and its compiled
//!    [`schema`] checks the variables;
//! 4. the operation ([`smtp`], [`imap`], [`pop3`]; one file each) runs against the mail server
//!    under its timeout, on a pooled session where the protocol allows;
//! 5. the worker completes the job, fails it (retries and backoff by [`error`] code) or throws
//!    a BPMN error, and then runs any after-completion step the operation left.
//!
//! [`gateway`] holds the gRPC client generated from `proto/gateway.proto`; [`mail`] what the
//! protocols share (server settings, authentication, TLS, MIME to response, search criteria);
//! [`http`] and [`metrics`] the health endpoints and Prometheus metrics; [`templates`] the
//! Camunda Modeler element templates, generated from the same input definitions the schemas
//! validate with.

pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod imap;
pub mod job;
pub mod mail;
pub mod metrics;
pub mod operation;
pub mod operations;
pub mod pop3;
pub mod schema;
pub mod secrets;
pub mod smtp;
pub mod templates;
pub mod worker;
