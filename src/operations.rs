//! The Operation trait and the registry that maps each job type to its operation.
//!
//! This is the one place that knows both worlds: an operation knows mail and nothing of Zeebe,
//! the worker knows Zeebe and nothing of mail. To add an operation, write its file and add one
//! line to [`Registry::standard`].

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::error::Result;
use crate::imap::pool::ImapPool;
use crate::mail::inputs::{Connection, Smtp, decode};
use crate::mail::server::Protocol;
use crate::schema::InputSchema;
use crate::smtp::transport::SmtpTransports;
use crate::{imap, pop3, smtp};

/// What an operation may know about the job that runs it.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    pub job_key: i64,
    pub process_instance_key: i64,
    /// Retries left, counting this attempt.
    pub retries: i32,
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

    /// Runs the operation on variables that passed the schema, secrets already resolved.
    fn run<'a>(&'a self, variables: Value, job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>>;

    /// Tests the connection step by step (the `check` subcommand) and returns the steps as
    /// text lines: the protocol's own check, from the same `server` and `authentication`.
    fn check<'a>(&'a self, variables: Value) -> BoxFuture<'a, Result<Vec<String>>> {
        let protocol = self.protocol();
        Box::pin(async move { check_connection(protocol, &variables).await })
    }
}

/// Connects to the server an operation's variables name, step by step, for its protocol.
pub async fn check_connection(protocol: Protocol, variables: &Value) -> Result<Vec<String>> {
    match protocol {
        Protocol::Smtp => {
            let input: Connection<Smtp> = decode(variables.clone())?;
            smtp::transport::check(&input.server.endpoint(), &input.authentication).await
        }
        Protocol::Imap => imap::common::check(variables).await,
        Protocol::Pop3 => pop3::common::check(variables).await,
    }
}

/// The contract version every job type ends in.
pub const CONTRACT_VERSION: u32 = 1;

/// An operation under its job type, with its schema compiled.
pub struct Registered {
    pub job_type: String,
    pub operation: Arc<dyn Operation>,
    pub schema: InputSchema,
}

/// Job type → operation, for the operations this worker serves.
pub struct Registry {
    entries: Vec<Registered>,
    pools: Option<SessionPools>,
}

/// Settings that shape the operations themselves.
#[derive(Debug, Clone)]
pub struct OperationSettings {
    /// Keep mail sessions open between jobs.
    pub session_pooling: bool,
    /// Attachments larger than this (decoded) are listed without content.
    pub max_attachment_bytes: usize,
    /// The read response's budget, serialized JSON (SPEC §7.1).
    pub max_response_bytes: usize,
}

/// Zeebe's gateway accepts 4 MB messages by default; one attachment may take a quarter.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 1024 * 1024;

/// 3 MiB of JSON leaves room under Zeebe's 4 MiB message limit for the job's other variables.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;

impl Default for OperationSettings {
    fn default() -> Self {
        OperationSettings {
            session_pooling: true,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// The mail sessions kept between jobs, shared by the operations of a protocol.
#[derive(Clone)]
pub struct SessionPools {
    pub smtp: Arc<SmtpTransports>,
    pub imap: Arc<ImapPool>,
}

impl SessionPools {
    pub fn new(settings: &OperationSettings) -> SessionPools {
        SessionPools {
            smtp: Arc::new(SmtpTransports::new(settings.session_pooling)),
            imap: ImapPool::new(settings.session_pooling),
        }
    }
}

/// Every operation this build knows, in the order they are documented.
fn all_operations(settings: &OperationSettings, pools: &SessionPools) -> Vec<Arc<dyn Operation>> {
    let imap_pool = pools.imap.clone();
    vec![
        Arc::new(smtp::send::SendOperation::new(pools.smtp.clone())),
        Arc::new(imap::list::ListOperation {
            pool: imap_pool.clone(),
        }),
        Arc::new(imap::read::ReadOperation {
            pool: imap_pool.clone(),
            max_attachment_bytes: settings.max_attachment_bytes,
            max_response_bytes: settings.max_response_bytes,
        }),
        Arc::new(imap::delete::DeleteOperation {
            pool: imap_pool.clone(),
        }),
        Arc::new(imap::search::SearchOperation {
            pool: imap_pool.clone(),
        }),
        Arc::new(imap::move_::MoveOperation { pool: imap_pool }),
        Arc::new(pop3::list::ListOperation),
        Arc::new(pop3::read::ReadOperation {
            max_attachment_bytes: settings.max_attachment_bytes,
            max_response_bytes: settings.max_response_bytes,
        }),
        Arc::new(pop3::delete::DeleteOperation),
        Arc::new(pop3::search::SearchOperation),
    ]
}

impl Registry {
    /// The operations whose names are in `enabled` (all when `None`), under `prefix`.
    pub fn standard(
        prefix: &str,
        enabled: Option<&[String]>,
        settings: &OperationSettings,
    ) -> std::result::Result<Registry, String> {
        let pools = SessionPools::new(settings);
        let operations = all_operations(settings, &pools);
        if let Some(enabled) = enabled {
            let known: BTreeSet<&str> = operations.iter().map(|o| o.name()).collect();
            let unknown: Vec<&str> = enabled
                .iter()
                .map(String::as_str)
                .filter(|name| !known.contains(name))
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "unknown operation(s) {}; known: {}",
                    unknown.join(", "),
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let chosen = operations
            .into_iter()
            .filter(|o| enabled.is_none_or(|names| names.iter().any(|n| n == o.name())))
            .collect();
        let mut registry = Registry::from_operations(prefix, chosen)?;
        registry.pools = Some(pools);
        Ok(registry)
    }

    /// A registry of the given operations (tests use it with operations of their own).
    pub fn from_operations(
        prefix: &str,
        operations: Vec<Arc<dyn Operation>>,
    ) -> std::result::Result<Registry, String> {
        let mut entries = Vec::new();
        for operation in operations {
            let schema = InputSchema::compile(&operation.schema())
                .map_err(|e| format!("{}: {e}", operation.name()))?;
            entries.push(Registered {
                job_type: job_type(prefix, operation.name()),
                operation,
                schema,
            });
        }
        Ok(Registry {
            entries,
            pools: None,
        })
    }

    /// Sessions (IMAP) or server transports (SMTP) kept open for reuse, by protocol.
    pub fn session_counts(&self) -> Vec<(&'static str, usize)> {
        match &self.pools {
            Some(pools) => vec![
                ("smtp", pools.smtp.len()),
                ("imap", pools.imap.idle_count()),
            ],
            None => Vec::new(),
        }
    }

    pub fn get(&self, job_type: &str) -> Option<&Registered> {
        self.entries.iter().find(|e| e.job_type == job_type)
    }

    /// Finds an operation by job type or by bare name (`smtp:send`), for the CLI.
    pub fn find(&self, name_or_type: &str) -> Option<&Registered> {
        self.get(name_or_type).or_else(|| {
            self.entries
                .iter()
                .find(|e| e.operation.name() == name_or_type)
        })
    }

    pub fn job_types(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.job_type.as_str())
    }

    pub fn entries(&self) -> &[Registered] {
        &self.entries
    }
}

pub fn job_type(prefix: &str, name: &str) -> String {
    format!("{prefix}:{name}:{CONTRACT_VERSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_types_follow_the_contract() {
        let registry = Registry::standard("email", None, &OperationSettings::default()).unwrap();
        let types: Vec<&str> = registry.job_types().collect();
        assert!(types.contains(&"email:smtp:send:1"), "{types:?}");
        assert!(registry.find("smtp:send").is_some());
        let custom = Registry::standard("acme", None, &OperationSettings::default()).unwrap();
        assert!(custom.get("acme:smtp:send:1").is_some());
    }

    #[test]
    fn unknown_operations_are_refused_by_name() {
        let err = Registry::standard(
            "email",
            Some(&["smtp:sned".to_string()]),
            &OperationSettings::default(),
        )
        .err()
        .unwrap();
        assert!(err.contains("smtp:sned"), "{err}");
    }
}
