//! What the process's jobs and watchers share, in one value built once at start from the
//! settings (README "Configuration") and handed to each of them: the document store and the
//! bytes a job may keep on disk, the operator's host policy, the OAuth2 mail logins' token
//! caches with their HTTP client, and the POP3 farewells still under way.
//!
//! None of it is a global: the registry holds the services ([`crate::registry::Registry`]),
//! every operation finds them in its [`crate::operation::JobContext`], every watcher in its
//! [`crate::inbound::Context`]. A test or an embedder builds its own, so two registries in one
//! process (the test binaries run many) never see each other's policy, store or tokens.

use std::sync::Arc;

use crate::documents::disk::{Allowance, DEFAULT_MAX_DOCUMENT_BYTES};
use crate::documents::{DocumentStore, Documents};
use crate::error::{EmailError, Result};
use crate::mail::policy::HostPolicy;
use crate::oauth::mail::MailTokens;
use crate::pop3::farewell::Farewells;

/// The process's shared state; see the module's comment.
pub struct Services {
    documents: Option<DocumentStore>,
    max_document_bytes: u64,
    policy: Arc<HostPolicy>,
    tokens: MailTokens,
    farewells: Arc<Farewells>,
}

impl Services {
    /// Services under `policy`, with no document store and the default per-job budget on disk.
    pub fn new(policy: HostPolicy) -> Services {
        let policy = Arc::new(policy);
        Services {
            documents: None,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            tokens: MailTokens::new(policy.clone()),
            policy,
            farewells: Arc::default(),
        }
    }

    /// The same services with `store` as the document store (`CAMUNDA_REST_ADDRESS`).
    pub fn with_document_store(mut self, store: DocumentStore) -> Services {
        self.documents = Some(store);
        self
    }

    /// The same services with `bytes` as what one job may keep on disk
    /// (`EMAIL_MAX_DOCUMENT_BYTES`).
    pub fn with_max_document_bytes(mut self, bytes: u64) -> Services {
        self.max_document_bytes = bytes;
        self
    }

    /// The document store with the job's budget on disk, or the error that says how to
    /// configure one (`pointer` names the input that asked for it).
    pub fn documents(&self, pointer: &str) -> Result<Documents<'_>> {
        match &self.documents {
            Some(store) => Ok(Documents {
                store,
                max_bytes: self.max_document_bytes,
            }),
            None => Err(EmailError::invalid_input(format!(
                "{pointer}: documents need Camunda's REST API; set CAMUNDA_REST_ADDRESS on the worker"
            ))),
        }
    }

    /// A fresh per-job budget on disk (`EMAIL_MAX_DOCUMENT_BYTES`).
    pub fn document_allowance(&self) -> Allowance {
        Allowance::with_limit(self.max_document_bytes)
    }

    /// The operator's host policy, applied to every connection a job or a watcher chooses.
    pub fn policy(&self) -> &HostPolicy {
        &self.policy
    }

    /// The same policy, shared (an HTTP client's resolver holds it).
    pub fn shared_policy(&self) -> Arc<HostPolicy> {
        self.policy.clone()
    }

    /// Whether a document store is configured (`CAMUNDA_REST_ADDRESS`).
    pub fn has_document_store(&self) -> bool {
        self.documents.is_some()
    }

    /// What one job may keep of documents (`EMAIL_MAX_DOCUMENT_BYTES`).
    pub fn max_document_bytes(&self) -> u64 {
        self.max_document_bytes
    }

    /// The OAuth2 mail logins' token caches, shared by jobs and watchers.
    pub fn tokens(&self) -> &MailTokens {
        &self.tokens
    }

    /// The POP3 farewells under way, which shutdown waits for.
    pub fn farewells(&self) -> &Arc<Farewells> {
        &self.farewells
    }
}

/// The defaults of every setting, no document store: library use and tests.
impl Default for Services {
    fn default() -> Services {
        Services::new(HostPolicy::default())
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field(
                "document_store",
                &self.documents.as_ref().map(|s| s.endpoint()),
            )
            .field("max_document_bytes", &self.max_document_bytes)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::policy::HostRules;

    #[test]
    fn two_services_share_nothing() {
        let narrow = HostPolicy::new(
            "mail.example.com".parse::<HostRules>().unwrap(),
            HostRules::default(),
            false,
        )
        .unwrap();
        let narrow = Services::new(narrow).with_max_document_bytes(4096);
        let open = Services::default();
        assert!(narrow.policy().check_name("other.example.com").is_err());
        assert!(open.policy().check_name("other.example.com").is_ok());
        assert_eq!(narrow.document_allowance().limit(), 4096);
        assert_eq!(
            open.document_allowance().limit(),
            DEFAULT_MAX_DOCUMENT_BYTES
        );
        assert!(!Arc::ptr_eq(narrow.farewells(), open.farewells()));
        let missing = open.documents("/attachmentsAs").err().unwrap();
        assert_eq!(
            missing.message,
            "/attachmentsAs: documents need Camunda's REST API; set CAMUNDA_REST_ADDRESS on the worker"
        );
    }

    /// Two registries in one process, each with its own policy: what a global policy could not
    /// give (the first to set it won for every test of the binary).
    #[tokio::test]
    async fn each_registry_runs_its_operations_under_its_own_policy() {
        use crate::error::ErrorCode;
        use crate::operation::JobContext;
        use crate::registry::Registry;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let variables = serde_json::json!({
            "authentication": { "username": "u", "password": "p" },
            "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 5 }
        });
        let narrow = HostPolicy::new(
            "mail.example.com".parse::<HostRules>().unwrap(),
            HostRules::default(),
            true,
        )
        .unwrap();
        let open = Registry::standard("email", None, &Default::default()).unwrap();
        let strict = Registry::standard("email", None, &Default::default())
            .unwrap()
            .with_services(Arc::new(Services::new(narrow)));
        for (registry, code, words) in [
            (&open, ErrorCode::ConnectionFailed, "TCP connect: "),
            (
                &strict,
                ErrorCode::InvalidInput,
                "/server/host: 127.0.0.1 is not allowed on this worker (EMAIL_ALLOWED_HOSTS)",
            ),
        ] {
            let entry = registry.find("pop3:list").unwrap();
            let job = JobContext::with_services(registry.services().clone());
            let error = entry
                .operation
                .run(variables.clone(), &job)
                .await
                .err()
                .unwrap();
            assert_eq!(error.code, code, "{}", error.message);
            assert!(error.message.starts_with(words), "{}", error.message);
        }
    }
}
