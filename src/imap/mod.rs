//! IMAP: sessions behind a pool, the protocol pieces async-imap lacks, and one file per
//! operation.

pub mod answer;
pub mod append;
pub mod common;
pub mod copy;
pub mod delete;
pub mod error;
pub mod esearch;
pub mod export;
pub mod flags;
pub mod folder;
pub mod folders;
pub mod forward;
pub mod frames;
pub mod guard;
pub mod identity;
pub mod list;
pub mod move_;
pub mod nesting;
mod oauth;
pub mod pool;
pub mod program;
pub mod read;
pub mod reply;
pub mod response;
pub mod search;
pub mod session;
pub mod sizes;
pub mod skeleton;
pub mod structure;
pub mod wire;

use std::sync::Arc;

use crate::operation::{Operation, OperationSettings};
use crate::smtp::transport::SmtpTransports;

/// The IMAP operations, in the order they are documented, on one session pool.
pub fn operations(
    settings: &OperationSettings,
    pool: &Arc<pool::ImapPool>,
) -> Vec<Arc<dyn Operation>> {
    vec![
        Arc::new(list::ListOperation {
            pool: pool.clone(),
            max_response_bytes: settings.max_response_bytes,
        }),
        Arc::new(read::ReadOperation {
            pool: pool.clone(),
            limits: settings.read_limits(),
        }),
        Arc::new(delete::DeleteOperation { pool: pool.clone() }),
        Arc::new(search::SearchOperation {
            pool: pool.clone(),
            max_response_bytes: settings.max_response_bytes,
        }),
        Arc::new(move_::MoveOperation { pool: pool.clone() }),
        Arc::new(copy::CopyOperation { pool: pool.clone() }),
        Arc::new(flags::FlagsOperation { pool: pool.clone() }),
        Arc::new(folders::FoldersOperation { pool: pool.clone() }),
        Arc::new(append::AppendOperation { pool: pool.clone() }),
        Arc::new(export::ExportOperation {
            pool: pool.clone(),
            max_response_bytes: settings.max_response_bytes,
        }),
    ]
}

/// The IMAP operations that also send (reply, forward), on the IMAP sessions and the SMTP
/// transports.
pub fn answering_operations(
    pool: &Arc<pool::ImapPool>,
    transports: &Arc<SmtpTransports>,
) -> Vec<Arc<dyn Operation>> {
    vec![
        Arc::new(reply::ReplyOperation {
            pool: pool.clone(),
            transports: transports.clone(),
        }),
        Arc::new(forward::ForwardOperation {
            pool: pool.clone(),
            transports: transports.clone(),
        }),
    ]
}
