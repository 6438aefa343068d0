//! IMAP: sessions behind a pool, the protocol pieces async-imap lacks, and one file per
//! operation.

pub mod common;
pub mod delete;
pub mod list;
pub mod move_;
pub mod pool;
pub mod program;
pub mod read;
pub mod search;
pub mod session;
pub mod skeleton;
pub mod structure;
pub mod wire;
