//! Attachments as Camunda documents (`attachmentsAs: document`; docs/configuration.md,
//! "Camunda 8.8 and newer"): the document store's REST client, the spool that takes
//! attachments out of a message as it streams by, and the step that uploads them and puts the
//! store's references into a read response.

pub mod attach;
mod decode;
pub mod disk;
pub mod spool;
pub mod store;

use std::sync::OnceLock;

pub use attach::attach_documents;
pub use store::{DocumentReference, DocumentStore};

use crate::error::{EmailError, Result};

static STORE: OnceLock<DocumentStore> = OnceLock::new();

/// Makes `store` the process's document store; called once, at start, when
/// `CAMUNDA_REST_ADDRESS` is set.
pub fn install(store: DocumentStore) -> std::result::Result<(), String> {
    STORE
        .set(store)
        .map_err(|_| "the document store is already configured".to_string())
}

/// The document store, or the error that says how to configure one (`pointer` names the
/// input that asked for it).
pub fn store(pointer: &str) -> Result<&'static DocumentStore> {
    STORE.get().ok_or_else(|| {
        EmailError::invalid_input(format!(
            "{pointer}: documents need Camunda's REST API; set CAMUNDA_REST_ADDRESS on the worker"
        ))
    })
}
