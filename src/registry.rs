//! The registry that maps each job type to its operation.
//!
//! This is the one place that knows both worlds: an operation knows mail and nothing of Zeebe,
//! the worker knows Zeebe and nothing of mail. Each protocol module lists its operations
//! (`smtp::operations`, `imap::operations`, `pop3::operations`); the registry only gathers the
//! lists. To add an operation, write its file and add it to its protocol's list.

pub use crate::operation::{
    AfterCompletion, DEFAULT_MAX_ATTACHMENT_BYTES, DEFAULT_MAX_RESPONSE_BYTES, JobContext,
    Operation, OperationSettings, Outcome,
};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::BoxFuture;

use serde_json::Value;

use crate::error::Result;
use crate::imap::pool::ImapPool;
use crate::mail::inputs::{Connection, Smtp, decode};
use crate::mail::server::Protocol;
use crate::schema::InputSchema;
use crate::services::Services;
use crate::smtp::transport::SmtpTransports;
use crate::{imap, pop3, smtp};

/// Connects to the server an operation's variables name, step by step, for its protocol,
/// under `services` (the host policy, the OAuth2 token caches).
pub async fn check_connection(
    services: &Services,
    protocol: Protocol,
    variables: &Value,
) -> Result<Vec<String>> {
    match protocol {
        Protocol::Smtp => {
            let input: Connection<Smtp> = decode(variables.clone())?;
            smtp::transport::check(services, &input.server.endpoint(), &input.authentication).await
        }
        Protocol::Imap => imap::common::check(services, variables).await,
        Protocol::Pop3 => pop3::common::check(services, variables).await,
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

/// Work the process owes before it exits, such as a protocol's sessions still closing in the
/// background, given the registry's services. Run once, after the jobs and the watchers have
/// ended ([`Registry::shut_down`]).
pub type ShutdownHook = Box<dyn Fn(&Arc<Services>) -> BoxFuture<'static, ()> + Send + Sync>;

/// Job type → operation, for the operations this worker serves, and the process's services
/// they run with.
pub struct Registry {
    entries: Vec<Registered>,
    pools: Option<SessionPools>,
    services: Arc<Services>,
    shutdown_hooks: Vec<ShutdownHook>,
    shut_down: AtomicBool,
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
            imap: ImapPool::with_limits(
                settings.session_pooling,
                settings.max_response_bytes,
                settings.imap_sessions_per_login,
            ),
        }
    }
}

/// Every operation this build knows, in the order they are documented.
fn all_operations(settings: &OperationSettings, pools: &SessionPools) -> Vec<Arc<dyn Operation>> {
    let mut all = smtp::operations(&pools.smtp, &pools.imap);
    all.extend(imap::operations(settings, &pools.imap));
    all.extend(imap::answering_operations(&pools.imap, &pools.smtp));
    all.extend(pop3::operations(settings));
    all
}

/// What every protocol owes at shutdown, whichever operations are served: the watchers use
/// the protocols too.
fn standard_shutdown_hooks() -> Vec<ShutdownHook> {
    // A POP3 session that ended without its QUIT (a job handed back at shutdown, a watcher
    // stopped mid-read) rolls back in the background; the process must not exit under it.
    vec![Box::new(|services| {
        let farewells = services.farewells().clone();
        Box::pin(async move { farewells.settle(pop3::farewell::FAREWELL_TIME).await })
    })]
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
        registry.shutdown_hooks = standard_shutdown_hooks();
        Ok(registry)
    }

    /// No job types, but what the protocols owe at shutdown: for a worker that only runs
    /// inbound watchers.
    pub fn watchers_only(prefix: &str) -> std::result::Result<Registry, String> {
        let mut registry = Registry::from_operations(prefix, Vec::new())?;
        registry.shutdown_hooks = standard_shutdown_hooks();
        Ok(registry)
    }

    /// A registry of the given operations (tests use it with operations of their own).
    pub fn from_operations(
        prefix: &str,
        operations: Vec<Arc<dyn Operation>>,
    ) -> std::result::Result<Registry, String> {
        let mut entries = Vec::new();
        for operation in operations {
            // Compiled when its first job comes: a worker's idle memory holds no validator
            // of a job type it does not get.
            let schema = InputSchema::lazy(operation.schema());
            entries.push(Registered {
                job_type: job_type(prefix, operation.name()),
                operation,
                schema,
            });
        }
        Ok(Registry {
            entries,
            pools: None,
            services: Arc::default(),
            shutdown_hooks: Vec::new(),
            shut_down: AtomicBool::new(false),
        })
    }

    /// The same registry with `services` (built at start from the settings, or by a test) in
    /// place of the defaults every constructor starts with: its operations, its shutdown hooks
    /// and whoever asks [`Registry::services`] (the worker, the watchers) use them.
    pub fn with_services(mut self, services: Arc<Services>) -> Registry {
        self.services = services;
        self
    }

    /// The process's services this registry's operations run with.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Also serves `job_type` with Camunda's Email connector layout (docs/camunda-dropin.md),
    /// running its jobs with the operations this registry serves.
    pub fn serve_camunda_job_type(&mut self, job_type: &str) -> std::result::Result<(), String> {
        let job_type = job_type.trim();
        if job_type.is_empty() {
            return Err("the Camunda job type is empty".into());
        }
        if self.get(job_type).is_some() {
            return Err(format!("job type {job_type} is already served"));
        }
        let operations = self.entries.iter().map(|e| e.operation.clone()).collect();
        let operation: Arc<dyn Operation> = Arc::new(crate::dropin::CamundaEmail::new(operations)?);
        let schema = InputSchema::lazy(operation.schema());
        self.entries.push(Registered {
            job_type: job_type.to_string(),
            operation,
            schema,
        });
        Ok(())
    }

    /// Adds work to run at shutdown (tests and embedders with operations of their own).
    pub fn add_shutdown_hook(&mut self, hook: ShutdownHook) {
        self.shutdown_hooks.push(hook);
    }

    /// Runs the shutdown hooks, in the order they were added, once however often it is
    /// called: whoever ends the process calls it after the jobs and the watchers are done.
    pub async fn shut_down(&self) {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        for hook in &self.shutdown_hooks {
            hook(&self.services).await;
        }
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
    fn schemas_are_compiled_on_first_use_and_every_one_compiles() {
        let mut registry =
            Registry::standard("email", None, &OperationSettings::default()).unwrap();
        registry
            .serve_camunda_job_type(crate::dropin::CAMUNDA_JOB_TYPE)
            .unwrap();
        let send = registry.get("email:smtp:send:1").unwrap();
        assert!(registry.entries().iter().all(|e| !e.schema.is_compiled()));
        // The same violations as a schema compiled at once.
        let variables = serde_json::json!({ "server": { "port": 0 }, "to": 5 });
        let eager = InputSchema::compile(&send.operation.schema()).unwrap();
        assert_eq!(
            send.schema.validate(&variables).unwrap_err().message,
            eager.validate(&variables).unwrap_err().message
        );
        assert!(send.schema.is_compiled());
        for entry in registry.entries() {
            entry
                .schema
                .check()
                .unwrap_or_else(|e| panic!("{}: {e}", entry.job_type));
        }
    }

    #[tokio::test]
    async fn shutdown_hooks_run_once() {
        use std::sync::atomic::AtomicUsize;
        let runs = Arc::new(AtomicUsize::new(0));
        let mut registry = Registry::from_operations("email", Vec::new()).unwrap();
        let counted = runs.clone();
        registry.add_shutdown_hook(Box::new(move |_| {
            let counted = counted.clone();
            Box::pin(async move {
                counted.fetch_add(1, Ordering::SeqCst);
            })
        }));
        registry.shut_down().await;
        registry.shut_down().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let standard = Registry::standard("email", None, &OperationSettings::default()).unwrap();
        assert_eq!(standard.shutdown_hooks.len(), 1);
        let watchers = Registry::watchers_only("email").unwrap();
        assert_eq!(watchers.shutdown_hooks.len(), 1);
        assert_eq!(watchers.entries().len(), 0);
        assert!(watchers.session_counts().is_empty());
    }

    #[tokio::test]
    async fn shutdown_hooks_get_the_registrys_services() {
        let services = Arc::new(Services::default());
        let seen = Arc::new(std::sync::Mutex::new(None));
        let mut registry = Registry::watchers_only("email")
            .unwrap()
            .with_services(services.clone());
        let noted = seen.clone();
        registry.add_shutdown_hook(Box::new(move |services| {
            *noted.lock().unwrap() = Some(services.clone());
            Box::pin(async {})
        }));
        registry.shut_down().await;
        let seen = seen.lock().unwrap().take().unwrap();
        assert!(Arc::ptr_eq(&seen, &services));
        assert_eq!(services.farewells().pending(), 0);
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
