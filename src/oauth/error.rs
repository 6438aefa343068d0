//! What goes wrong getting an OAuth2 mail login's token, and the one place that says which
//! contract code each failure gets ([`OAuthLoginErrorKind::code`]). What the mail server then
//! says of the token is the protocol's error.

use super::cache::FetchError;
use super::endpoint::EndpointError;
use crate::error::{EmailError, ErrorCode};
use crate::outbound_http::HttpError;

/// What went wrong, as far as it decides the contract's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthLoginErrorKind {
    /// The endpoint refused the grant (`400`/`401`): the credentials' fault, no retry.
    Refused,
    /// The job's `tokenEndpoint` is not one the worker may call (the host policy, a URL that
    /// does not parse).
    Endpoint,
    /// The endpoint could not be reached, failed, answered without a token or not in time:
    /// it may work next time.
    Unreachable,
    /// TLS with the endpoint failed, or the client for it could not be set up.
    Tls,
}

impl OAuthLoginErrorKind {
    /// The contract's code for each kind: the only place the OAuth2 login chooses one.
    pub fn code(self) -> ErrorCode {
        match self {
            OAuthLoginErrorKind::Refused => ErrorCode::AuthenticationFailed,
            OAuthLoginErrorKind::Endpoint => ErrorCode::InvalidInput,
            OAuthLoginErrorKind::Unreachable => ErrorCode::ConnectionFailed,
            OAuthLoginErrorKind::Tls => ErrorCode::TlsError,
        }
    }
}

/// A token that could not be had: its kind, our words (which already quote the cause) and the
/// endpoint's failure when it was one. Cloned for every login that waited on the same fetch.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct OAuthLoginError {
    kind: OAuthLoginErrorKind,
    message: String,
    #[source]
    source: Option<EndpointError>,
}

impl OAuthLoginError {
    pub fn new(kind: OAuthLoginErrorKind, message: impl Into<String>) -> OAuthLoginError {
        OAuthLoginError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn kind(&self) -> OAuthLoginErrorKind {
        self.kind
    }
}

/// An endpoint's failure, sorted: a refused grant is the credentials' fault, an endpoint the
/// policy refuses or a URL that does not parse the job's, the rest the network's or the
/// endpoint's. The job's input is named when it is at fault.
impl From<EndpointError> for OAuthLoginError {
    fn from(error: EndpointError) -> OAuthLoginError {
        let kind = match &error {
            EndpointError::Refused { .. } => OAuthLoginErrorKind::Refused,
            EndpointError::Http(HttpError::Refused(_) | HttpError::Url(_)) => {
                OAuthLoginErrorKind::Endpoint
            }
            EndpointError::Http(HttpError::Tls { .. }) => OAuthLoginErrorKind::Tls,
            EndpointError::Http(_)
            | EndpointError::Failed { .. }
            | EndpointError::BadResponse { .. } => OAuthLoginErrorKind::Unreachable,
        };
        let message = match kind {
            OAuthLoginErrorKind::Endpoint => format!("/authentication/tokenEndpoint: {error}"),
            _ => format!("token endpoint: {error}"),
        };
        OAuthLoginError {
            kind,
            message,
            source: Some(error),
        }
    }
}

impl FetchError for OAuthLoginError {
    fn interrupted() -> Self {
        OAuthLoginError::new(
            OAuthLoginErrorKind::Unreachable,
            "the token request was interrupted",
        )
    }
}

/// The one mapping from a failed token to the contract's error.
impl From<OAuthLoginError> for EmailError {
    fn from(error: OAuthLoginError) -> EmailError {
        EmailError::new(error.kind.code(), error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_contract_code() {
        use OAuthLoginErrorKind::*;
        let table = [
            (Refused, ErrorCode::AuthenticationFailed),
            (Endpoint, ErrorCode::InvalidInput),
            (Unreachable, ErrorCode::ConnectionFailed),
            (Tls, ErrorCode::TlsError),
        ];
        // A kind added later fails to compile here until it is given a row.
        for (kind, _) in table {
            match kind {
                Refused | Endpoint | Unreachable | Tls => {}
            }
        }
        crate::error::assert_each_kind_maps(&table, |kind| {
            OAuthLoginError::new(kind, "words").into()
        });
    }

    /// The codes and texts the call sites chose before this type: unchanged.
    #[test]
    fn endpoint_failures_keep_their_codes_and_words() {
        let url = "https://login.example.com/token".to_string();
        let cases = [
            (
                EndpointError::Refused {
                    url: url.clone(),
                    status: 400,
                    detail: ": invalid_grant".into(),
                },
                ErrorCode::AuthenticationFailed,
                "token endpoint: https://login.example.com/token refused the token request: HTTP 400: invalid_grant",
            ),
            (
                HttpError::Refused("'x' is refused on this worker (EMAIL_DENIED_HOSTS)".into())
                    .into(),
                ErrorCode::InvalidInput,
                "/authentication/tokenEndpoint: 'x' is refused on this worker (EMAIL_DENIED_HOSTS)",
            ),
            (
                HttpError::Url("bad".into()).into(),
                ErrorCode::InvalidInput,
                "/authentication/tokenEndpoint: invalid URL: bad",
            ),
            (
                HttpError::Timeout {
                    host: "login.example.com".into(),
                    seconds: 30,
                }
                .into(),
                ErrorCode::ConnectionFailed,
                "token endpoint: login.example.com did not answer within 30 s",
            ),
            (
                HttpError::Tls {
                    host: "login.example.com".into(),
                    reason: "unknown issuer".into(),
                }
                .into(),
                ErrorCode::TlsError,
                "token endpoint: TLS with login.example.com failed: unknown issuer",
            ),
            (
                HttpError::Unreachable {
                    host: "login.example.com".into(),
                    reason: "refused".into(),
                }
                .into(),
                ErrorCode::ConnectionFailed,
                "token endpoint: cannot reach login.example.com: refused",
            ),
            (
                EndpointError::Failed {
                    url: url.clone(),
                    status: 503,
                    detail: String::new(),
                },
                ErrorCode::ConnectionFailed,
                "token endpoint: https://login.example.com/token answered HTTP 503",
            ),
            (
                EndpointError::BadResponse {
                    url,
                    reason: "no access_token".into(),
                },
                ErrorCode::ConnectionFailed,
                "token endpoint: https://login.example.com/token sent no usable token: no access_token",
            ),
        ];
        for (endpoint, code, message) in cases {
            let error = EmailError::from(OAuthLoginError::from(endpoint));
            assert_eq!((error.code, error.message.as_str()), (code, message));
        }
        let interrupted = EmailError::from(OAuthLoginError::interrupted());
        assert_eq!(interrupted.code, ErrorCode::ConnectionFailed);
        assert_eq!(interrupted.message, "the token request was interrupted");
    }
}
