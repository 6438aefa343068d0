//! What goes wrong opening a mail connection (TCP to the checked addresses, then TLS), and
//! the one place that says which contract code each failure gets ([`NetErrorKind::code`]).
//! The host policy's refusals are its own (`INVALID_INPUT`, [`crate::mail::policy`]).

use crate::error::{EmailError, ErrorCode};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, as far as it decides the contract's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetErrorKind {
    /// No TCP connection, or no finished TLS handshake, within the server's timeout.
    Timeout,
    /// The name did not resolve, no address took the connection, or the connection broke off
    /// during the TLS handshake: the network's trouble, worth another try.
    Connection,
    /// The TLS handshake was refused (a certificate or protocol refusal): it needs a person.
    Tls,
    /// The job names a host TLS cannot verify a certificate against.
    Input,
}

impl NetErrorKind {
    /// The contract's code for each kind: the only place connecting chooses one.
    pub fn code(self) -> ErrorCode {
        match self {
            NetErrorKind::Timeout => ErrorCode::Timeout,
            NetErrorKind::Connection => ErrorCode::ConnectionFailed,
            NetErrorKind::Tls => ErrorCode::TlsError,
            NetErrorKind::Input => ErrorCode::InvalidInput,
        }
    }
}

/// A failure to connect: its kind, our words (which already quote the cause) and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NetError {
    kind: NetErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl NetError {
    pub fn new(kind: NetErrorKind, message: impl Into<String>) -> NetError {
        NetError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error with its cause kept for [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl Into<BoxError>) -> NetError {
        self.source = Some(source.into());
        self
    }

    pub fn kind(&self) -> NetErrorKind {
        self.kind
    }
}

/// The one mapping from a connection failure to the contract's error.
impl From<NetError> for EmailError {
    fn from(error: NetError) -> EmailError {
        EmailError::new(error.kind.code(), error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_contract_code() {
        use NetErrorKind::*;
        let table = [
            (Timeout, ErrorCode::Timeout),
            (Connection, ErrorCode::ConnectionFailed),
            (Tls, ErrorCode::TlsError),
            (Input, ErrorCode::InvalidInput),
        ];
        // A kind added later fails to compile here until it is given a row.
        for (kind, _) in table {
            match kind {
                Timeout | Connection | Tls | Input => {}
            }
        }
        crate::error::assert_each_kind_maps(&table, |kind| NetError::new(kind, "words").into());
    }

    #[test]
    fn the_cause_is_kept_but_not_repeated() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error =
            NetError::new(NetErrorKind::Connection, "TCP connect: refused").with_source(cause);
        assert_eq!(error.kind(), NetErrorKind::Connection);
        assert!(std::error::Error::source(&error).is_some());
        let email: EmailError = error.into();
        assert_eq!(email.message, "TCP connect: refused");
    }
}
