//! SMTP: the send operation and the pooled transport behind it.

pub mod send;
pub mod starttls;
pub mod transport;
