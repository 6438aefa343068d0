//! SMTP: the send operation and the pooled transport behind it.

mod attachment;
mod compose;
pub mod data;
pub mod error;
mod oauth;
pub mod send;
pub mod starttls;
mod transaction;
pub mod transport;
pub mod wire;

use std::sync::Arc;

use crate::operation::Operation;

/// The SMTP operations, on the shared transports.
pub fn operations(transports: &Arc<transport::SmtpTransports>) -> Vec<Arc<dyn Operation>> {
    vec![Arc::new(send::SendOperation::new(transports.clone()))]
}
