//! One token request (RFC 6749 §4.4 client credentials, §6 refresh) as a form POST, and its
//! answer read into a token or an error that quotes the endpoint's `error` and
//! `error_description`, never the credentials that were sent.

use std::time::Duration;

use reqwest::{Method, Url};
use secrecy::SecretString;
use serde::Deserialize;

use crate::outbound_http::{HttpClient, HttpError, form_body};

/// A granted token, with the refresh token the endpoint may have rotated.
pub struct Granted {
    pub access_token: SecretString,
    pub expires_in: Option<Duration>,
    pub refresh_token: Option<SecretString>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EndpointError {
    /// The endpoint could not be asked or did not answer (network, TLS, timeout, policy).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The endpoint refused the grant (4xx): wrong or revoked credentials, in its words.
    #[error("{url} refused the token request: HTTP {status}{detail}")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
    /// The endpoint failed (5xx) or sent a redirect, which is not followed.
    #[error("{url} answered HTTP {status}{detail}")]
    Failed {
        url: String,
        status: u16,
        detail: String,
    },
    /// A 2xx without a usable token.
    #[error("{url} sent no usable token: {reason}")]
    BadResponse { url: String, reason: String },
}

#[derive(Deserialize)]
struct Success {
    access_token: String,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct Failure {
    error: Option<String>,
    error_description: Option<String>,
}

/// Posts `form` to `url` and reads the answer.
pub async fn request_token(
    client: &HttpClient,
    url: &Url,
    form: &[(&str, &str)],
    timeout: Duration,
) -> Result<Granted, EndpointError> {
    let request = client
        .request(Method::POST, url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(form_body(form));
    let response = client.send(request, timeout).await?;
    let shown = shown_url(url);
    if !response.is_success() {
        let detail = failure_detail(&response.body);
        return Err(if (400..500).contains(&response.status) {
            EndpointError::Refused {
                url: shown,
                status: response.status,
                detail,
            }
        } else {
            EndpointError::Failed {
                url: shown,
                status: response.status,
                detail,
            }
        });
    }
    let success: Success =
        serde_json::from_slice(&response.body).map_err(|e| EndpointError::BadResponse {
            url: shown.clone(),
            reason: format!("not a token response ({})", e.classify_name()),
        })?;
    // The token goes into a SASL payload framed by \x01 and into protocol lines: a control
    // character from a hostile endpoint would break the framing or end the line.
    if success.access_token.is_empty() || success.access_token.chars().any(char::is_control) {
        return Err(EndpointError::BadResponse {
            url: shown,
            reason: "the access token is empty or holds control characters".into(),
        });
    }
    Ok(Granted {
        access_token: success.access_token.into(),
        expires_in: lifetime(success.expires_in.as_ref()),
        refresh_token: success
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
    })
}

/// `expires_in` as endpoints really write it. RFC 6749 §5.1 asks for a number of seconds; some
/// endpoints send a string, a fraction, zero, a negative number or a number no clock can
/// reach. The rule: a number, or a string holding one, counts in whole seconds (rounded
/// down); zero or less means the token is already at its end (it serves the callers that
/// asked for it and is never handed out again); anything else (a word, `true`, an object) is
/// as if the endpoint had named no lifetime, so the caller's default applies. A huge value
/// comes out as the longest `Duration`; the cache caps it (see `oauth::cache`).
fn lifetime(value: Option<&serde_json::Value>) -> Option<Duration> {
    let seconds = match value? {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !seconds.is_finite() {
        return None;
    }
    // A float-to-integer `as` saturates: below zero is 0, beyond u64 is u64::MAX.
    Some(Duration::from_secs(seconds.max(0.0) as u64))
}

/// The URL as messages show it: without query or fragment, which could carry a credential.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// `: invalid_grant (the refresh token expired)` from an RFC 6749 §5.2 error body; printable
/// characters only, and short, since the endpoint's words end up in an incident.
fn failure_detail(body: &[u8]) -> String {
    let Ok(failure) = serde_json::from_slice::<Failure>(body) else {
        return String::new();
    };
    let clean = |text: String, limit: usize| -> String {
        text.chars()
            .filter(|c| !c.is_control())
            .take(limit)
            .collect()
    };
    match (failure.error, failure.error_description) {
        (Some(error), Some(description)) => {
            format!(": {} ({})", clean(error, 100), clean(description, 400))
        }
        (Some(error), None) => format!(": {}", clean(error, 100)),
        (None, Some(description)) => format!(": {}", clean(description, 400)),
        (None, None) => String::new(),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "bad JSON",
            serde_json::error::Category::Data => "no access_token",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_quoted_cleanly() {
        assert_eq!(
            failure_detail(
                br#"{"error":"invalid_grant","error_description":"AADSTS70008: expired\r\nx"}"#
            ),
            ": invalid_grant (AADSTS70008: expiredx)"
        );
        assert_eq!(failure_detail(b"<html>"), "");
        assert_eq!(
            failure_detail(br#"{"error":"invalid_client"}"#),
            ": invalid_client"
        );
    }

    /// Issue 21: what endpoints really write as `expires_in`, read by one rule.
    #[test]
    fn lifetimes_as_endpoints_write_them() {
        let read = |v: serde_json::Value| lifetime(Some(&v)).map(|d| d.as_secs());
        assert_eq!(read(serde_json::json!(3600)), Some(3600));
        assert_eq!(read(serde_json::json!("3600")), Some(3600));
        assert_eq!(read(serde_json::json!(" 3600 ")), Some(3600));
        assert_eq!(read(serde_json::json!(3599.9)), Some(3599));
        assert_eq!(read(serde_json::json!("59.5")), Some(59));
        assert_eq!(read(serde_json::json!(0)), Some(0));
        assert_eq!(read(serde_json::json!(-30)), Some(0));
        assert_eq!(read(serde_json::json!("-1")), Some(0));
        assert_eq!(read(serde_json::json!(u64::MAX)), Some(u64::MAX));
        assert_eq!(read(serde_json::json!(1e300)), Some(u64::MAX));
        assert_eq!(read(serde_json::json!("soon")), None);
        assert_eq!(read(serde_json::json!("NaN")), None);
        assert_eq!(read(serde_json::json!("inf")), None);
        assert_eq!(read(serde_json::json!(true)), None);
        assert_eq!(read(serde_json::json!({ "s": 1 })), None);
        assert_eq!(lifetime(None), None);
    }

    #[test]
    fn shown_urls_lose_what_could_be_secret() {
        let url = Url::parse("https://u:p@login.example.com/t/token?key=abc#x").unwrap();
        assert_eq!(shown_url(&url), "https://login.example.com/t/token");
    }
}
