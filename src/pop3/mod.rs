//! POP3: a client of our own and one file per operation. Sessions are not pooled (POP3 locks
//! the maildrop while a session is open), but each job uses one session for all its commands.

pub mod client;
pub mod common;
pub mod delete;
pub mod error;
pub mod farewell;
pub mod lines;
pub mod list;
pub mod read;
pub mod search;

use std::sync::Arc;

use crate::operation::{Operation, OperationSettings};

/// The POP3 operations, in the order they are documented.
pub fn operations(settings: &OperationSettings) -> Vec<Arc<dyn Operation>> {
    vec![
        Arc::new(list::ListOperation {
            max_response_bytes: settings.max_response_bytes,
        }),
        Arc::new(read::ReadOperation {
            limits: settings.read_limits(),
        }),
        Arc::new(delete::DeleteOperation),
        Arc::new(search::SearchOperation {
            max_response_bytes: settings.max_response_bytes,
        }),
    ]
}
