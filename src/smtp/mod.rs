//! SMTP: the send operation and the pooled transport behind it.

mod attachment;
mod compose;
pub mod data;
pub mod error;
mod forwarded;
mod oauth;
pub mod save;
pub mod send;
pub mod starttls;
mod text_body;
mod transaction;
pub mod transport;
pub mod wire;

use std::sync::Arc;

use crate::imap::pool::ImapPool;
use crate::operation::Operation;

/// The SMTP operations, on the shared transports (and the IMAP sessions a sent copy is
/// saved with).
pub fn operations(
    transports: &Arc<transport::SmtpTransports>,
    imap: &Arc<ImapPool>,
) -> Vec<Arc<dyn Operation>> {
    vec![Arc::new(
        send::SendOperation::new(transports.clone()).saving_with(imap.clone()),
    )]
}
