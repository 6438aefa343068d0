//! Attachments as Camunda documents (`attachmentsAs: document`; docs/configuration.md,
//! "Camunda 8.8 and newer"): the document store's REST client, the spool that takes
//! attachments out of a message as it streams by, and the step that uploads them and puts the
//! store's references into a read response.

pub mod attach;
mod decode;
pub mod disk;
pub mod spool;
pub mod store;

pub use attach::attach_documents;
pub use store::{DocumentReference, DocumentStore};

use disk::Allowance;

/// The document store as one job (or one watcher's mail) uses it: the store, and the bytes
/// the job may keep on disk (`EMAIL_MAX_DOCUMENT_BYTES`). Given by
/// [`crate::services::Services::documents`].
#[derive(Clone, Copy)]
pub struct Documents<'a> {
    pub store: &'a DocumentStore,
    pub max_bytes: u64,
}

impl Documents<'_> {
    /// A fresh budget for one job.
    pub fn allowance(&self) -> Allowance {
        Allowance::with_limit(self.max_bytes)
    }
}
