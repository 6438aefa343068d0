//! What goes wrong in an IMAP session, and the one place that says which contract code each
//! failure gets ([`ImapErrorKind::code`]).
//!
//! A NO or BAD is read from the parsed completion ([`ServerReply`]): its status, its response
//! code (imap-proto's, or an RFC 5530 code it leaves at the front of the text) and the
//! server's words. The message keeps the server's words as sent; the worker and the watchers
//! mask every secret value in it before it leaves the process (a server may quote the
//! password it refused).

use async_imap::imap_proto::{Outcome, Response, ResponseCode, Status};

use crate::error::{EmailError, ErrorCode};
use crate::mail::tls::is_tls_failure;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, as far as it decides the contract's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapErrorKind {
    /// The server did not answer in time.
    Timeout,
    /// The TLS handshake or the TLS layer failed, or STARTTLS was not on offer (we never go
    /// on in clear text).
    Tls,
    /// The connection failed or closed, or the server ended the session.
    Connection,
    /// The server broke the protocol or sent more than a command may keep.
    Protocol,
    /// A NO or BAD to a command whose failure leaves nothing better to say (NOOP, LIST,
    /// FETCH, EXPUNGE): the server's trouble, worth another try.
    Refused,
    /// The server refused the login.
    LoginRefused,
    /// The server could not check the login just now (`[UNAVAILABLE]`, RFC 5530).
    LoginUnavailable,
    /// The job asks for something IMAP cannot carry, or the server says the command as given
    /// can never work (BAD, NO [BADCHARSET]).
    Input,
    /// The folder does not exist or cannot be created.
    FolderMissing,
    /// The mail is not (or no longer) there.
    MessageMissing,
    /// The server cannot do it now, but may later (busy, over quota, no UIDPLUS answer).
    Busy,
    /// A defect of ours.
    Internal,
}

impl ImapErrorKind {
    /// The contract's code for each kind: the only place IMAP chooses one.
    pub fn code(self) -> ErrorCode {
        match self {
            ImapErrorKind::Timeout => ErrorCode::Timeout,
            ImapErrorKind::Tls => ErrorCode::TlsError,
            ImapErrorKind::Connection | ImapErrorKind::Protocol | ImapErrorKind::Refused => {
                ErrorCode::ConnectionFailed
            }
            ImapErrorKind::LoginRefused => ErrorCode::AuthenticationFailed,
            ImapErrorKind::LoginUnavailable | ImapErrorKind::Busy => ErrorCode::TemporaryFailure,
            ImapErrorKind::Input => ErrorCode::InvalidInput,
            ImapErrorKind::FolderMissing => ErrorCode::FolderNotFound,
            ImapErrorKind::MessageMissing => ErrorCode::EmailNotFound,
            ImapErrorKind::Internal => ErrorCode::Internal,
        }
    }
}

/// An IMAP failure: its kind, our words (which already quote the cause), and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ImapError {
    kind: ImapErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl ImapError {
    pub fn new(kind: ImapErrorKind, message: impl Into<String>) -> ImapError {
        ImapError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error with its cause kept for [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl Into<BoxError>) -> ImapError {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> ImapErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's completion, when the error is its NO or BAD.
    pub fn reply(&self) -> Option<&ServerReply> {
        self.source.as_ref()?.downcast_ref()
    }

    /// The same error, its message put in other words (a folder named as the process wrote it).
    pub fn reworded(mut self, reword: impl FnOnce(String) -> String) -> ImapError {
        self.message = reword(self.message);
        self
    }

    /// A command's NO or BAD: `on_no` says what a NO means for this command; a BAD (or NO
    /// [BADCHARSET]) means the command as given can never work, `on_bad`.
    pub fn refused(
        command: &str,
        reply: ServerReply,
        on_no: ImapErrorKind,
        on_bad: ImapErrorKind,
    ) -> ImapError {
        let kind = if reply.malformed() { on_bad } else { on_no };
        ImapError::new(kind, format!("{command} refused: {}", reply.text)).with_source(reply)
    }

    /// An async-imap error met outside a command we read ourselves (greeting, STARTTLS, login,
    /// CAPABILITY). Its NO and BAD carry the server's words only as debug text, so `reply` is
    /// the completion the connection saw (see `session::tap`).
    pub fn library(
        error: async_imap::error::Error,
        doing: &str,
        reply: Option<ServerReply>,
    ) -> ImapError {
        use async_imap::error::Error;
        match error {
            Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                ImapError::new(ImapErrorKind::Timeout, format!("{doing}: {io}")).with_source(io)
            }
            Error::Io(io) if is_tls_failure(&io) => {
                ImapError::new(ImapErrorKind::Tls, format!("{doing}: {io}")).with_source(io)
            }
            Error::Io(io) => {
                ImapError::new(ImapErrorKind::Connection, format!("{doing}: {io}")).with_source(io)
            }
            Error::ConnectionLost => ImapError::new(
                ImapErrorKind::Connection,
                format!("{doing}: the server closed the connection"),
            ),
            Error::Validate(e) => {
                ImapError::new(ImapErrorKind::Input, format!("{doing}: {e}")).with_source(e)
            }
            Error::No(_) | Error::Bad(_) => ImapError::refused(
                doing,
                reply.unwrap_or_else(ServerReply::unreadable),
                ImapErrorKind::Refused,
                ImapErrorKind::Refused,
            ),
            other => ImapError::new(ImapErrorKind::Connection, format!("{doing}: {other}"))
                .with_source(other),
        }
    }
}

/// The one mapping from an IMAP failure to the contract's error.
impl From<ImapError> for EmailError {
    fn from(error: ImapError) -> EmailError {
        EmailError::new(error.kind.code(), error.message)
    }
}

/// How a command ended, when not with OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    No,
    Bad,
}

/// The response codes (RFC 3501, RFC 5530) an error may carry. imap-proto parses the first
/// ones; the RFC 5530 codes it leaves at the front of the text, where we read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyCode {
    Alert,
    BadCharset,
    Parse,
    TryCreate,
    AuthenticationFailed,
    AuthorizationFailed,
    Unavailable,
    Nonexistent,
    AlreadyExists,
    OverQuota,
    InUse,
    Limit,
    ServerBug,
    /// Any other code, upper-cased.
    Other(String),
}

impl ReplyCode {
    fn from_atom(atom: &str) -> ReplyCode {
        let atom = atom.to_ascii_uppercase();
        match atom.as_str() {
            "ALERT" => ReplyCode::Alert,
            "BADCHARSET" => ReplyCode::BadCharset,
            "PARSE" => ReplyCode::Parse,
            "TRYCREATE" => ReplyCode::TryCreate,
            "AUTHENTICATIONFAILED" => ReplyCode::AuthenticationFailed,
            "AUTHORIZATIONFAILED" => ReplyCode::AuthorizationFailed,
            "UNAVAILABLE" => ReplyCode::Unavailable,
            "NONEXISTENT" => ReplyCode::Nonexistent,
            "ALREADYEXISTS" => ReplyCode::AlreadyExists,
            "OVERQUOTA" => ReplyCode::OverQuota,
            "INUSE" => ReplyCode::InUse,
            "LIMIT" => ReplyCode::Limit,
            "SERVERBUG" => ReplyCode::ServerBug,
            _ => ReplyCode::Other(atom),
        }
    }
}

/// A server's NO or BAD completion, as parsed: what we quote and what we decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct ServerReply {
    pub status: ReplyStatus,
    pub code: Option<ReplyCode>,
    /// The server's words as sent (with an RFC 5530 code imap-proto left in them).
    pub text: String,
}

impl ServerReply {
    /// The completion in a parsed tagged response, when it is not OK.
    pub fn from_response(response: &Response<'_>) -> Option<ServerReply> {
        match response {
            Response::Done {
                status, outcome, ..
            } if !matches!(status, Status::Ok) => Some(ServerReply::from_outcome(status, outcome)),
            _ => None,
        }
    }

    /// A completion that is not OK: a BAD, or a NO (any other status a server puts on a
    /// tagged line is a refusal too).
    pub fn from_outcome(status: &Status, outcome: &Outcome<'_>) -> ServerReply {
        let status = match status {
            Status::Bad => ReplyStatus::Bad,
            _ => ReplyStatus::No,
        };
        let text = outcome.information.as_deref().unwrap_or("").trim();
        let code = match &outcome.code {
            Some(ResponseCode::Alert) => Some(ReplyCode::Alert),
            Some(ResponseCode::BadCharset(_)) => Some(ReplyCode::BadCharset),
            Some(ResponseCode::Parse) => Some(ReplyCode::Parse),
            Some(ResponseCode::TryCreate) => Some(ReplyCode::TryCreate),
            Some(_) => None,
            None => leading_code(text),
        };
        ServerReply {
            status,
            code,
            text: text.to_string(),
        }
    }

    /// The completion in one tagged line of the server's, if that is what it holds.
    pub fn from_line(line: &[u8]) -> Option<ServerReply> {
        let (_, response) = Response::parse(line).ok()?;
        ServerReply::from_response(&response)
    }

    /// A NO we saw but could not read (the connection's record of it was cut).
    pub fn unreadable() -> ServerReply {
        ServerReply {
            status: ReplyStatus::No,
            code: None,
            text: "(the server's answer could not be read)".into(),
        }
    }

    /// BAD, or NO [BADCHARSET]: the command as given cannot work, now or later.
    pub fn malformed(&self) -> bool {
        self.status == ReplyStatus::Bad || self.code == Some(ReplyCode::BadCharset)
    }
}

/// A response code at the front of a text imap-proto did not parse (`[UNAVAILABLE] ...`).
fn leading_code(text: &str) -> Option<ReplyCode> {
    let inside = text.strip_prefix('[')?;
    let end = inside.find(']')?;
    let atom = inside[..end].split(' ').next()?;
    (!atom.is_empty()).then(|| ReplyCode::from_atom(atom))
}

#[cfg(test)]
mod tests;
