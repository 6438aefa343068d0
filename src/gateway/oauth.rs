//! OAuth2 client credentials for Camunda SaaS and Identity: a token fetched on first use,
//! cached, and fetched again shortly before it expires (or when the gateway rejects it).
//!
//! The token request is one form POST; a small HTTP/1.1 exchange on hyper (already part of
//! the gRPC stack) does it without a second HTTP client in the binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::mail::tls::client_config;

/// Fetch a new token this long before the old one expires, so no request carries a token that
/// expires in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct OAuthConfig {
    pub authorization_server_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub audience: Option<String>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("authorization_server_url", &self.authorization_server_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("audience", &self.audience)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid authorization server URL '{0}'")]
    Url(String),
    #[error("cannot reach the authorization server {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the authorization server {url} refused the client credentials: HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the authorization server {url} sent no usable token: {reason}")]
    BadResponse { url: String, reason: String },
}

struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
}

/// Hands out a valid access token, fetching one when needed. One fetch at a time: concurrent
/// callers wait for it instead of each asking the server.
pub struct TokenProvider {
    config: OAuthConfig,
    cached: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl TokenProvider {
    pub fn new(config: OAuthConfig) -> Arc<Self> {
        Arc::new(TokenProvider {
            config,
            cached: Mutex::new(None),
        })
    }

    pub async fn token(&self) -> Result<SecretString, OAuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let (value, expires_in) = self.fetch().await?;
        let lifetime = Duration::from_secs(expires_in.unwrap_or(300));
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2);
        *cached = Some(CachedToken {
            value: value.clone(),
            refresh_at,
        });
        Ok(value)
    }

    /// Drops the cached token, after the gateway answered UNAUTHENTICATED.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<(SecretString, Option<u64>), OAuthError> {
        let url = &self.config.authorization_server_url;
        let uri: http::Uri = url.parse().map_err(|_| OAuthError::Url(url.clone()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(OAuthError::Url(url.clone())),
        };
        let host = uri
            .host()
            .ok_or_else(|| OAuthError::Url(url.clone()))?
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.config.client_id.clone()),
            (
                "client_secret",
                self.config.client_secret.expose_secret().to_string(),
            ),
        ];
        if let Some(audience) = &self.config.audience {
            form.push(("audience", audience.clone()));
        }
        if let Some(scope) = &self.config.scope {
            form.push(("scope", scope.clone()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let request = http::Request::post(path)
            .header(
                http::header::HOST,
                uri.authority().map_or(host.as_str(), |a| a.as_str()),
            )
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| OAuthError::Url(url.clone()))?;
        let unreachable = |reason: String| OAuthError::Unreachable {
            url: url.clone(),
            reason,
        };
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if https {
                let config = client_config(None, false).map_err(|e| unreachable(e.message))?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| OAuthError::Url(url.clone()))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                send(TokioIo::new(tls), request).await
            } else {
                send(TokioIo::new(tcp), request).await
            }
            .map_err(unreachable)
        };
        let (status, bytes) = tokio::time::timeout(TOKEN_REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable("timed out".into()))??;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes);
            return Err(OAuthError::Refused {
                url: url.clone(),
                status,
                body: text.chars().take(300).collect(),
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&bytes).map_err(|e| OAuthError::BadResponse {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok((parsed.access_token.into(), parsed.expires_in))
    }
}

async fn send<IO>(io: IO, request: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("zeebe.camunda.io"), "zeebe.camunda.io");
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = OAuthConfig {
            authorization_server_url: "https://login".into(),
            client_id: "id".into(),
            client_secret: "very-secret".to_string().into(),
            audience: None,
            scope: None,
        };
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
