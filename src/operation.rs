//! What an operation is, and nothing else: the [`Operation`] trait, what it may know of its
//! job, what it returns, and the settings that shape it. A leaf: every operation depends on
//! this module, and this module on no operation, so the registry in
//! [`crate::registry`] can gather them without a cycle.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Result;
use crate::mail::cut::Limits;
use crate::mail::inputs::{decode_input, input_schema};
use crate::mail::server;
/// The protocol an operation speaks, part of what it reports about itself.
pub use crate::mail::server::Protocol;
use crate::services::Services;

/// What an operation may know about the job that runs it, and the process's services it runs
/// with (the registry's; [`Services::default`] for a context made up by a test).
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    pub job_key: i64,
    pub process_instance_key: i64,
    /// Retries left, counting this attempt.
    pub retries: i32,
    pub services: Arc<Services>,
}

impl JobContext {
    /// A context for running an operation outside a job (`invoke`, tests), with `services`.
    pub fn with_services(services: Arc<Services>) -> JobContext {
        JobContext {
            services,
            ..JobContext::default()
        }
    }

    /// The document store, host policy, token caches and POP3 farewells of the process.
    pub fn services(&self) -> &Services {
        &self.services
    }
}

/// Work an operation leaves for after the job's completion: `commit` runs once the gateway has
/// accepted the completion, `rollback` runs when it did not (or the worker shuts down). POP3
/// uses it to delete a message only once the process has it.
pub trait AfterCompletion: Send {
    fn commit(self: Box<Self>) -> BoxFuture<'static, ()>;
    fn rollback(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// A successful run: the response (the documented JSON shape) and any after-completion work.
pub struct Outcome {
    pub response: Value,
    pub after_completion: Option<Box<dyn AfterCompletion>>,
}

impl Outcome {
    pub fn respond(response: Value) -> Outcome {
        Outcome {
            response,
            after_completion: None,
        }
    }
}

/// One mail operation, such as "send over SMTP" or "list over IMAP".
pub trait Operation: Send + Sync + 'static {
    /// `protocol:action`, such as `smtp:send`; the job type is `<prefix>:<name>:1`.
    fn name(&self) -> &'static str;

    fn protocol(&self) -> Protocol;

    /// The JSON Schema its variables must satisfy. Top-level variables it does not use are
    /// allowed (a job carries every variable in scope); nested blocks are strict.
    fn schema(&self) -> Value;

    /// How long one run may take, read from variables that passed the schema: the worker
    /// abandons the run after it (`TIMEOUT`). By default the `server` block's
    /// `timeoutSeconds` (30 s when absent), which also bounds connect and each command.
    fn timeout(&self, variables: &Value) -> Duration {
        server::operation_timeout(variables)
    }

    /// Where the run goes, for messages (`host:port`), from the variables as the job gave
    /// them: before secrets are resolved and whether or not they parse.
    fn target(&self, variables: &Value) -> String {
        server::describe_server(variables, self.protocol())
    }

    /// Where `{{secrets.NAME}}` placeholders are resolved in its variables, as JSON pointers
    /// of blocks: the connection settings, by default `authentication` and `server`.
    fn secret_scopes(&self) -> &'static [&'static str] {
        crate::secrets::SECRET_SCOPES
    }

    /// The wait before a retry when the job has no `retryBackoff` header.
    fn default_retry_backoff(&self) -> Duration {
        crate::job::DEFAULT_RETRY_BACKOFF
    }

    /// Runs the operation on variables that passed the schema, secrets already resolved.
    fn run<'a>(&'a self, variables: Value, job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>>;
}

/// A mail operation written against its input type: the name, protocol and schema an
/// [`Operation`] reports all follow from it, and [`MailOperation::apply`] receives the
/// variables already read into `Input` (they passed its schema first). Every operation of
/// this crate is one; [`Operation`] stays for operations that take raw variables (tests).
pub trait MailOperation: Send + Sync + 'static {
    type Input: DeserializeOwned + JsonSchema + Send;
    /// `protocol:action`, such as `smtp:send`.
    const NAME: &'static str;
    const PROTOCOL: Protocol;

    fn apply<'a>(
        &'a self,
        input: Self::Input,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>>;
}

impl<T: MailOperation> Operation for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn protocol(&self) -> Protocol {
        T::PROTOCOL
    }

    fn schema(&self) -> Value {
        input_schema::<T::Input>()
    }

    fn run<'a>(&'a self, variables: Value, job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        match decode_input::<T::Input>(variables, job.services().policy()) {
            Ok(input) => self.apply(input, job),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }
}

/// Settings that shape the operations themselves.
#[derive(Debug, Clone)]
pub struct OperationSettings {
    /// Keep mail sessions open between jobs.
    pub session_pooling: bool,
    /// Attachments larger than this (decoded) are listed without content.
    pub max_attachment_bytes: usize,
    /// The read response's budget, serialized JSON (`EMAIL_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// IMAP sessions one login may hold to one server at once (`EMAIL_IMAP_SESSIONS_PER_LOGIN`).
    pub imap_sessions_per_login: usize,
}

/// Zeebe's gateway accepts 4 MB messages by default; one attachment may take a quarter.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 1024 * 1024;

/// Servers refuse more than a few sessions per user: Dovecot 10 per user and address by
/// default, Gmail 15 per account; eight leave room for the user's own mail client.
pub const DEFAULT_IMAP_SESSIONS_PER_LOGIN: usize = 8;

/// 3 MiB of JSON leaves room under Zeebe's 4 MiB message limit for the job's other variables.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

impl OperationSettings {
    /// What a read response may hold.
    pub fn read_limits(&self) -> Limits {
        Limits {
            max_attachment_bytes: self.max_attachment_bytes,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

impl Default for OperationSettings {
    fn default() -> Self {
        OperationSettings {
            session_pooling: true,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            imap_sessions_per_login: DEFAULT_IMAP_SESSIONS_PER_LOGIN,
        }
    }
}
