//! What goes wrong in a POP3 session, and the one place that says which contract code each
//! failure gets ([`Pop3ErrorKind::code`]).
//!
//! A `-ERR` is read as [`ServerReply`]: the response code in brackets at its front (RFC 2449,
//! RFC 3206) and the server's words. The message keeps those words; the worker and the
//! watchers mask every secret value in it before it leaves the process.

use std::time::Duration;

use crate::error::{EmailError, ErrorCode};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, as far as it decides the contract's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop3ErrorKind {
    /// The server did not answer in time.
    Timeout,
    /// STLS was not on offer or was refused: we never go on in clear text.
    Tls,
    /// The connection failed or closed, or the server refused it at the greeting.
    Connection,
    /// The server sent something that is not POP3.
    Protocol,
    /// A `-ERR` to a command whose failure leaves nothing better to say (CAPA, LIST, UIDL,
    /// RSET, NOOP): the server's trouble, worth another try.
    Refused,
    /// The server refused the login.
    LoginRefused,
    /// The server refused the login for now (`[IN-USE]`, `[SYS/TEMP]`, `[LOGIN-DELAY]`).
    LoginUnavailable,
    /// The job asks for something POP3 cannot carry.
    Input,
    /// The message is not (or no longer) there.
    MessageMissing,
    /// The server did not confirm QUIT: the deletions may or may not have happened.
    Unconfirmed,
    /// A defect of ours.
    Internal,
}

impl Pop3ErrorKind {
    /// The contract's code for each kind: the only place POP3 chooses one.
    pub fn code(self) -> ErrorCode {
        match self {
            Pop3ErrorKind::Timeout => ErrorCode::Timeout,
            Pop3ErrorKind::Tls => ErrorCode::TlsError,
            Pop3ErrorKind::Connection | Pop3ErrorKind::Protocol | Pop3ErrorKind::Refused => {
                ErrorCode::ConnectionFailed
            }
            Pop3ErrorKind::LoginRefused => ErrorCode::AuthenticationFailed,
            Pop3ErrorKind::LoginUnavailable | Pop3ErrorKind::Unconfirmed => {
                ErrorCode::TemporaryFailure
            }
            Pop3ErrorKind::Input => ErrorCode::InvalidInput,
            Pop3ErrorKind::MessageMissing => ErrorCode::EmailNotFound,
            Pop3ErrorKind::Internal => ErrorCode::Internal,
        }
    }
}

/// A POP3 failure: its kind, our words (which already quote the cause), the cause, and the
/// wait the server asked for before another login.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Pop3Error {
    kind: Pop3ErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
    retry_after: Option<Duration>,
}

impl Pop3Error {
    pub fn new(kind: Pop3ErrorKind, message: impl Into<String>) -> Pop3Error {
        Pop3Error {
            kind,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// The same error with its cause kept for [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Pop3Error {
        self.source = Some(source.into());
        self
    }

    /// The same error, with the server's wait before a retry.
    pub fn retry_after(mut self, wait: Duration) -> Pop3Error {
        self.retry_after = Some(wait);
        self
    }

    pub fn kind(&self) -> Pop3ErrorKind {
        self.kind
    }

    /// The server's `-ERR`, when the error is one.
    pub fn reply(&self) -> Option<&ServerReply> {
        self.source.as_ref()?.downcast_ref()
    }

    /// A `-ERR` to `verb`, which means `kind` for that command.
    pub fn refused(verb: &str, reply: ServerReply, kind: Pop3ErrorKind) -> Pop3Error {
        Pop3Error::new(kind, format!("{verb} refused: {}", reply.text)).with_source(reply)
    }

    /// A failed read or write: the server's silence is a timeout, anything else a broken
    /// connection.
    pub fn io(doing: &str, e: std::io::Error) -> Pop3Error {
        let kind = if e.kind() == std::io::ErrorKind::TimedOut {
            Pop3ErrorKind::Timeout
        } else {
            Pop3ErrorKind::Connection
        };
        Pop3Error::new(kind, format!("{doing}: {e}")).with_source(e)
    }
}

/// The one mapping from a POP3 failure to the contract's error.
impl From<Pop3Error> for EmailError {
    fn from(error: Pop3Error) -> EmailError {
        let email = EmailError::new(error.kind.code(), error.message);
        match error.retry_after {
            Some(wait) => email.retry_after(wait),
            None => email,
        }
    }
}

/// A server's `-ERR`: the response code at its front, if any, and its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct ServerReply {
    /// The bracketed response code, upper-cased (`IN-USE`, `SYS/TEMP`, `AUTH`).
    pub code: Option<String>,
    /// The server's words after `-ERR`, code included.
    pub text: String,
}

impl ServerReply {
    pub fn new(text: String) -> ServerReply {
        let code = text
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .map(|(code, _)| code.to_ascii_uppercase());
        ServerReply { code, text }
    }

    /// What a refused login means, by its response code (RFC 2449, RFC 3206). A maildrop
    /// locked by another session (`[IN-USE]`), a passing server problem (`[SYS/TEMP]`) or
    /// logging in too often (`[LOGIN-DELAY]`) is worth another try later; a wrong password is
    /// not, and retrying it only risks locking the account.
    pub fn login_kind(&self) -> Pop3ErrorKind {
        match self.code.as_deref() {
            Some("IN-USE" | "SYS/TEMP" | "LOGIN-DELAY") => Pop3ErrorKind::LoginUnavailable,
            _ => Pop3ErrorKind::LoginRefused,
        }
    }

    /// Whether the refusal is `[LOGIN-DELAY]`: the server allows a login only so often.
    pub fn is_login_delay(&self) -> bool {
        self.code.as_deref() == Some("LOGIN-DELAY")
    }
}

#[cfg(test)]
mod tests;
