//! An email connector for Camunda 8: a Zeebe job worker that sends mail over SMTP and reads,
//! searches, moves and deletes it over IMAP and POP3.
//!
//! How a job travels, in one direction:
//!
//! 1. [`worker`]`::activation` receives it from the gateway (a job stream per job type, plus
//!    long polling to drain the backlog); `worker::slots` gives it one of `maxJobsActive`
//!    slots and a task of its own;
//! 2. `worker::pipeline` reads its task headers ([`job`]) and finds its operation in the
//!    [`registry`];
//! 3. `worker::execute` resolves `{{secrets.NAME}}` in the connection settings ([`secrets`]),
//!    validates the variables against the operation's compiled [`schema`] and runs it under
//!    its timeout;
//! 4. the operation ([`smtp`], [`imap`], [`pop3`]; one file each, implementing
//!    [`operation::MailOperation`]) reads the variables into its input type
//!    ([`mail::inputs`]) and runs against the mail server, on a pooled session where the
//!    protocol allows ([`mail::net`] connects, after the host policy of [`mail::policy`]);
//! 5. `worker::pipeline` completes the job, fails it (retries and backoff by [`error`] code;
//!    `RESPONSE_TOO_LARGE` when the gateway refuses the completion) or throws a BPMN error,
//!    and then runs any after-completion step the operation left.
//!
//! Mail can also start work: [`inbound`] watches mailboxes (IMAP IDLE or polling, POP3
//! polling), reads each new mail with the same code as `imap:read` / `pop3:read`, hands it to
//! Zeebe by PublishMessage or CreateProcessInstance, and only then marks, moves or deletes it.
//!
//! What the jobs and the watchers share (the document store, the host policy, the OAuth2
//! token caches, the POP3 farewells) is one value, [`services::Services`], built at start and
//! held by the registry: no operation reads a global.
//!
//! [`gateway`] holds the gRPC client generated from `proto/gateway.proto`; [`mail`] what the
//! protocols share (inputs, server settings, authentication, connections, TLS, MIME to a
//! budgeted response, search criteria); [`http`] and [`metrics`] the health endpoints and
//! Prometheus metrics; [`templates`] the Camunda Modeler element templates and [`docs`] the
//! operations reference, both generated from the same input types the schemas come from.

pub mod allocator;
pub mod config;
pub mod docs;
pub mod documents;
pub mod dropin;
pub mod error;
pub mod gateway;
pub mod http;
pub mod imap;
pub mod inbound;
pub mod job;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod operation;
pub mod outbound_http;
pub mod pop3;
pub mod registry;
pub mod schema;
pub mod secrets;
pub mod services;
pub mod smtp;
pub mod templates;
pub mod worker;
