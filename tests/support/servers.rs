//! The IMAP/POP3 servers the server-independent tests run against, and a bench for one of them:
//! the worker behind the test gateway, with every IMAP command it sends recorded and checked
//! against RFC 3501's grammar.
//!
//! - Dovecot (the mail testbed): separator `.`, no namespace prefix.
//! - Cyrus with Debian's defaults: separator `.`, personal namespace `INBOX.`.
//! - Cyrus with upstream's defaults: separator `/`, no prefix.
//!
//! Each also answers on 127.0.0.2 as an older server (no MOVE, UIDPLUS, SORT or LITERAL+), so
//! the client's fallbacks run against each implementation.

use serde_json::{Value, json};

use super::recorder::Recorder;
use super::{Jobs, cyrus, mailbox, testbed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Dovecot,
    CyrusDebian,
    CyrusUpstream,
}

/// Where the older-server profile of every implementation listens (same ports).
pub const OLDER: &str = "127.0.0.2";

impl Server {
    pub fn imap_port(self) -> u16 {
        match self {
            Server::Dovecot => testbed().port("PORT_IMAP"),
            Server::CyrusDebian => cyrus().port("CYRUS_DEBIAN_IMAP"),
            Server::CyrusUpstream => cyrus().port("CYRUS_UPSTREAM_IMAP"),
        }
    }

    pub fn pop3_port(self) -> u16 {
        match self {
            Server::Dovecot => testbed().port("PORT_POP3"),
            Server::CyrusDebian => cyrus().port("CYRUS_DEBIAN_POP3"),
            Server::CyrusUpstream => cyrus().port("CYRUS_UPSTREAM_POP3"),
        }
    }

    pub fn is_cyrus(self) -> bool {
        self != Server::Dovecot
    }

    /// The hierarchy separator.
    pub fn delimiter(self) -> &'static str {
        match self {
            Server::CyrusUpstream => "/",
            _ => ".",
        }
    }

    /// The personal namespace's prefix (RFC 2342).
    pub fn prefix(self) -> &'static str {
        match self {
            Server::CyrusDebian => "INBOX.",
            _ => "",
        }
    }

    /// The server's own name of the folder a user writes as `segments` (relative to the
    /// personal namespace), as another client sees it.
    pub fn folder(self, segments: &[&str]) -> String {
        format!("{}{}", self.prefix(), segments.join(self.delimiter()))
    }

    /// Fills `folder` (the server's name, created first) over IMAP, independently of the worker.
    pub async fn append(self, user: &str, folder: &str, messages: &[(&[u8], &str)]) {
        mailbox::append_at(self.imap_port(), user, folder, messages).await
    }

    pub async fn create_folder(self, user: &str, folder: &str) {
        mailbox::create_folder_at(self.imap_port(), user, folder).await
    }

    /// Message-ID → flags in `folder` (the server's name); empty when it does not exist.
    pub async fn flags(
        self,
        user: &str,
        folder: &str,
    ) -> std::collections::HashMap<String, Vec<String>> {
        mailbox::flags_at(self.imap_port(), user, folder).await
    }

    pub async fn folders(self, user: &str) -> Vec<String> {
        mailbox::folders_at(self.imap_port(), user).await
    }

    pub async fn clear_inbox(self, user: &str) {
        mailbox::clear_inbox_at(self.imap_port(), user).await
    }

    /// Messages in `folder` (the server's name) whose Message-ID is `<id>`.
    pub async fn copies(self, user: &str, folder: &str, id: &str) -> usize {
        super::census::copies(self.imap_port(), user, folder, id).await
    }
}

/// The worker running one protocol's jobs against one server, current and older profile,
/// through recorders.
pub struct Bench {
    pub server: Server,
    pub jobs: Jobs,
    protocol: &'static str,
    current: Recorder,
    older: Recorder,
}

impl Bench {
    pub async fn start(server: Server, protocol: &'static str) -> Bench {
        let port = if protocol == "pop3" {
            server.pop3_port()
        } else {
            server.imap_port()
        };
        Bench {
            server,
            jobs: Jobs::start(protocol).await,
            protocol,
            current: Recorder::start("127.0.0.1", port).await,
            older: Recorder::start(OLDER, port).await,
        }
    }

    /// A job's variables: `user` on the server (plaintext, through the recorder), with `extra`.
    pub fn vars(&self, user: &str, extra: Value) -> Value {
        vars(user, self.current.port, extra)
    }

    /// The response of a job for `user` that must complete.
    pub async fn ok(&self, operation: &str, user: &str, extra: Value) -> Value {
        self.jobs.ok(operation, self.vars(user, extra)).await
    }

    /// Retries, message and backoff of a job for `user` that must fail.
    pub async fn fails(&self, operation: &str, user: &str, extra: Value) -> (i32, String, i64) {
        self.jobs.fails(operation, self.vars(user, extra)).await
    }

    /// The same against the older-server profile.
    pub fn older_vars(&self, user: &str, extra: Value) -> Value {
        vars(user, self.older.port, extra)
    }

    /// What the worker sent to the current profile so far, as text.
    pub fn sent(&self) -> String {
        self.current.sent()
    }

    /// Fails the test when any IMAP command the worker sent broke RFC 3501's grammar (POP3 is
    /// line-based and has no such grammar to check).
    pub fn assert_grammatical(&self) {
        if self.protocol != "imap" {
            return;
        }
        for recorder in [&self.current, &self.older] {
            let violations = recorder.violations();
            assert!(
                violations.is_empty(),
                "{:?}: commands against RFC 3501's grammar:\n{}\n\nall sent:\n{}",
                self.server,
                violations.join("\n"),
                recorder.sent()
            );
        }
    }
}

fn vars(user: &str, port: u16, extra: Value) -> Value {
    let mut v = json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 20 }
    });
    for (k, val) in extra.as_object().expect("object") {
        v[k] = val.clone();
    }
    v
}

/// One test function run against every server, as a module of three tests
/// (`name::dovecot`, `name::cyrus_debian`, `name::cyrus_upstream`).
#[macro_export]
macro_rules! on_every_server {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::support::servers::Server;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn dovecot() {
                    super::$name(Server::Dovecot).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cyrus_debian() {
                    super::$name(Server::CyrusDebian).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cyrus_upstream() {
                    super::$name(Server::CyrusUpstream).await
                }
            }
        )*
    };
}
