//! One error type for every operation, with the stable codes of the contract.
//!
//! A model catches these codes on error boundary events (through the `bpmnErrors` task header),
//! and operators grep for them in incidents, so the code strings never change once released.
//! Each code also decides what happens to the job: whether Zeebe may retry it or whether an
//! incident is raised at once.

use std::fmt;
use std::time::Duration;

/// The stable error codes of the contract (docs/processes.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidInput,
    AuthenticationFailed,
    TlsError,
    ConnectionFailed,
    Timeout,
    TemporaryFailure,
    EmailNotFound,
    /// A Message-ID alone names several mails of the folder. Anyone can send a mail with any
    /// Message-ID, so the operation acts on none of them; not retried, since another attempt
    /// finds the same mails (the model names one by `uid` and `uidValidity`, or `uidl`).
    EmailAmbiguous,
    FolderNotFound,
    MessageRejected,
    RecipientsRejected,
    /// The gateway refused the job's completion as larger than its message limit (Zeebe's
    /// default: 4 MiB).
    /// Not retried: the same mail gives the same response until a limit is changed.
    ResponseTooLarge,
    /// A defect of ours (a panic in an operation, a response we cannot serialize). Retried,
    /// because the next attempt may land on a healthier replica.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::InvalidInput,
        ErrorCode::AuthenticationFailed,
        ErrorCode::TlsError,
        ErrorCode::ConnectionFailed,
        ErrorCode::Timeout,
        ErrorCode::TemporaryFailure,
        ErrorCode::EmailNotFound,
        ErrorCode::EmailAmbiguous,
        ErrorCode::FolderNotFound,
        ErrorCode::MessageRejected,
        ErrorCode::RecipientsRejected,
        ErrorCode::ResponseTooLarge,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::AuthenticationFailed => "AUTHENTICATION_FAILED",
            ErrorCode::TlsError => "TLS_ERROR",
            ErrorCode::ConnectionFailed => "CONNECTION_FAILED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::TemporaryFailure => "TEMPORARY_FAILURE",
            ErrorCode::EmailNotFound => "EMAIL_NOT_FOUND",
            ErrorCode::EmailAmbiguous => "EMAIL_AMBIGUOUS",
            ErrorCode::FolderNotFound => "FOLDER_NOT_FOUND",
            ErrorCode::MessageRejected => "MESSAGE_REJECTED",
            ErrorCode::RecipientsRejected => "RECIPIENTS_REJECTED",
            ErrorCode::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            ErrorCode::Internal => "INTERNAL_ERROR",
        }
    }

    /// Whether another attempt can succeed without anyone changing the model or the server.
    /// Retryable failures decrement the job's retries and wait `retryBackoff`; the others set
    /// retries to 0 so an incident shows the problem at once instead of after N useless tries.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::ConnectionFailed
                | ErrorCode::Timeout
                | ErrorCode::TemporaryFailure
                | ErrorCode::Internal
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation's failure: a code and a human message. The message never carries a secret:
/// operations build it from server replies and input they validated, and the worker masks
/// every resolved secret value again before the message leaves the process.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EmailError {
    pub code: ErrorCode,
    pub message: String,
    /// How long the server asked us to wait before trying again (a POP3 `LOGIN-DELAY`), when
    /// it said. A retry waits at least this long, whatever the task's `retryBackoff`.
    pub retry_after: Option<Duration>,
}

/// The longest wait a server may ask for: a later value is a server's mistake (or a hostile
/// one), and a job parked for days helps no one.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl EmailError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        EmailError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, with the server's wait before a retry (capped at [`MAX_RETRY_AFTER`]).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.min(MAX_RETRY_AFTER));
        self
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

pub type Result<T, E = EmailError> = std::result::Result<T, E>;

/// Zeebe stores at most this many characters of an error message in an incident; Camunda's
/// connector runtime truncates at the same length.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 6000;

/// Cuts a message to [`MAX_ERROR_MESSAGE_CHARS`] characters on a character boundary.
pub fn truncate_message(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        None => message.to_string(),
        Some((cut, _)) => {
            let marker = "…";
            let keep = message[..cut]
                .char_indices()
                .nth(MAX_ERROR_MESSAGE_CHARS - 1)
                .map_or(cut, |(i, _)| i);
            format!("{}{marker}", &message[..keep])
        }
    }
}

/// For each protocol's mapping test: every `(kind, code)` row, through `to_error` (a protocol
/// error of that kind with the message "words"), gives that code and keeps the message.
#[cfg(test)]
pub fn assert_each_kind_maps<K: Copy + fmt::Debug>(
    table: &[(K, ErrorCode)],
    to_error: impl Fn(K) -> EmailError,
) {
    for &(kind, code) in table {
        let error = to_error(kind);
        assert_eq!(error.code, code, "{kind:?}");
        assert_eq!(error.message, "words", "{kind:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_strings() {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "INVALID_INPUT",
                "AUTHENTICATION_FAILED",
                "TLS_ERROR",
                "CONNECTION_FAILED",
                "TIMEOUT",
                "TEMPORARY_FAILURE",
                "EMAIL_NOT_FOUND",
                "EMAIL_AMBIGUOUS",
                "FOLDER_NOT_FOUND",
                "MESSAGE_REJECTED",
                "RECIPIENTS_REJECTED",
                "RESPONSE_TOO_LARGE",
                "INTERNAL_ERROR"
            ]
        );
    }

    #[test]
    fn only_transient_codes_are_retryable() {
        let retryable: Vec<ErrorCode> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            [
                ErrorCode::ConnectionFailed,
                ErrorCode::Timeout,
                ErrorCode::TemporaryFailure,
                ErrorCode::Internal
            ]
        );
    }

    #[test]
    fn display_starts_with_the_code() {
        let e = EmailError::new(ErrorCode::EmailNotFound, "no message <a@b>");
        assert_eq!(e.to_string(), "EMAIL_NOT_FOUND: no message <a@b>");
    }

    #[test]
    fn truncation_keeps_the_limit_in_characters() {
        let long = "é".repeat(MAX_ERROR_MESSAGE_CHARS + 10);
        let cut = truncate_message(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_MESSAGE_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate_message("short"), "short");
        let exact = "x".repeat(MAX_ERROR_MESSAGE_CHARS);
        assert_eq!(truncate_message(&exact), exact);
    }
}
