//! The mail operations end to end and the commands they send: SMTP, IMAP and POP3 jobs through
//! the test gateway and the worker process against the mail testbed (Dovecot and Postfix), Cyrus
//! IMAP (`servers`) and the OAuth testbed (`oauth_mail`, fixed ports 12xxx), plus the RFC 3501
//! grammar checker without a server (`grammar`). One binary, so the worker and the test support
//! are linked once; each testbed starts once per run, on the first test that needs it.

#[path = "../support/mod.rs"]
mod support;

mod budget;
mod camunda_dropin;
mod camunda_dropin_documents;
mod camunda_dropin_headers;
mod credentials;
mod documents;
mod forward;
mod grammar;
mod imap;
mod lying_imap;
mod malformed;
mod oauth_mail;
mod operations;
mod pop3;
mod save_copy;
mod servers;
mod servers_ops;
mod smtp;
mod tls_trust;
