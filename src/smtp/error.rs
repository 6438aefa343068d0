//! What goes wrong in an SMTP session, and the one place that says which contract code each
//! failure gets ([`SmtpErrorKind::code`]).
//!
//! lettre reads the replies; a negative one is classified here by its reply code and
//! enhanced status code (RFC 3463). The message keeps the server's words ("5.1.1 User
//! unknown" is what an operator needs); the worker masks every secret value in it before it
//! leaves the process.

use crate::error::{EmailError, ErrorCode};
use crate::mail::tls::is_tls_failure;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, as far as it decides the contract's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpErrorKind {
    /// The server did not answer in time.
    Timeout,
    /// The TLS handshake or the TLS layer failed, or STARTTLS was not on offer or refused
    /// (we never go on in clear text).
    Tls,
    /// The connection failed or broke off, or the server's answer was not SMTP.
    Connection,
    /// The server refused the login (535, 534, 538, 530), or offers no mechanism we can use.
    LoginRefused,
    /// A 4xx reply: the server cannot take it now.
    Transient,
    /// A 5xx reply naming the recipients (RFC 3463 X.1.Y addressing, "user unknown").
    RecipientsRejected,
    /// Any other 5xx reply, or a message the server cannot carry (SMTPUTF8, 8BITMIME).
    MessageRejected,
    /// A defect of ours, or an attachment we could not read while sending.
    Internal,
}

impl SmtpErrorKind {
    /// The contract's code for each kind: the only place SMTP chooses one.
    pub fn code(self) -> ErrorCode {
        match self {
            SmtpErrorKind::Timeout => ErrorCode::Timeout,
            SmtpErrorKind::Tls => ErrorCode::TlsError,
            SmtpErrorKind::Connection => ErrorCode::ConnectionFailed,
            SmtpErrorKind::LoginRefused => ErrorCode::AuthenticationFailed,
            SmtpErrorKind::Transient => ErrorCode::TemporaryFailure,
            SmtpErrorKind::RecipientsRejected => ErrorCode::RecipientsRejected,
            SmtpErrorKind::MessageRejected => ErrorCode::MessageRejected,
            SmtpErrorKind::Internal => ErrorCode::Internal,
        }
    }

    /// A negative reply by its code and enhanced status code (RFC 3463).
    pub fn of_reply(code: &str, text: &str) -> SmtpErrorKind {
        let lower = text.to_ascii_lowercase();
        // X.1.Y is "addressing"; 5.1.7 and 5.1.8 are about the sender, the rest the recipients.
        let enhanced_addressing = [
            "5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.6", "5.1.10",
        ]
        .iter()
        .any(|c| text.contains(&format!(" {c} ")) || text.contains(&format!(": {c} ")));
        match code {
            "535" | "534" | "538" | "530" => SmtpErrorKind::LoginRefused,
            c if c.starts_with('4') => SmtpErrorKind::Transient,
            "550" | "551" | "553" | "554" | "552"
                if enhanced_addressing
                    || lower.contains("recipient")
                    || lower.contains("user unknown") =>
            {
                SmtpErrorKind::RecipientsRejected
            }
            c if c.starts_with('5') => SmtpErrorKind::MessageRejected,
            _ => SmtpErrorKind::Connection,
        }
    }
}

/// The words for a server that offers no STARTTLS, said by lettre and by us alike.
pub const NO_STARTTLS: &str =
    "the server does not offer STARTTLS; refusing to continue in clear text";

/// An SMTP failure: its kind, our words (which already quote the cause), and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SmtpError {
    kind: SmtpErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl SmtpError {
    pub fn new(kind: SmtpErrorKind, message: impl Into<String>) -> SmtpError {
        SmtpError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error with its cause kept for [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl Into<BoxError>) -> SmtpError {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> SmtpErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// A lettre failure. The server's reply text is kept: it never contains our credentials.
    pub fn lettre(error: lettre::transport::smtp::Error) -> SmtpError {
        let text = error.to_string();
        let no_starttls = text.contains("STARTTLS is not supported");
        let kind = if error.is_timeout() {
            SmtpErrorKind::Timeout
        } else if error.is_tls() || is_tls_failure(&error) || no_starttls {
            SmtpErrorKind::Tls
        } else if let Some(status) = error.status() {
            SmtpErrorKind::of_reply(&status.to_string(), &text)
        } else if text.contains("No compatible authentication mechanism") {
            SmtpErrorKind::LoginRefused
        } else {
            SmtpErrorKind::Connection
        };
        let message = match kind {
            SmtpErrorKind::Tls if no_starttls => NO_STARTTLS.to_string(),
            SmtpErrorKind::LoginRefused if error.status().is_none() => {
                "the server offers no login mechanism this connection can use (is AUTH only offered after TLS?)".to_string()
            }
            _ => text,
        };
        SmtpError::new(kind, message).with_source(error)
    }
}

/// The one mapping from an SMTP failure to the contract's error.
impl From<SmtpError> for EmailError {
    fn from(error: SmtpError) -> EmailError {
        EmailError::new(error.kind.code(), error.message)
    }
}

#[cfg(test)]
mod tests;
