//! POP3: a client of our own and one file per operation. Sessions are not pooled (POP3 locks
//! the maildrop while a session is open), but each job uses one session for all its commands.

pub mod client;
pub mod common;
pub mod delete;
pub mod list;
pub mod read;
pub mod search;
