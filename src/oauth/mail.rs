//! The mail logins' OAuth2 (SPEC §2.1): the `authentication` block of `type: oauth2`, where its
//! token comes from (given, or fetched by the worker from `tokenEndpoint`), one token cache per
//! set of credentials for the whole process, and the one retry with a new token when a server
//! rejects a cached one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::cache::{FetchError, Fetched, Margins, TokenCache};
use super::endpoint::{EndpointError, request_token, shown_url};
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::sasl::Mechanism;
use crate::outbound_http::{HttpClient, HttpError, HttpOptions};

/// SPEC §2.1: a token is used until 60 s before it expires; a fresh one is fetched in the
/// background from 90 s before.
const MARGINS: Margins = Margins {
    refresh_before: Duration::from_secs(90),
    stale_before: Duration::from_secs(60),
    default_lifetime: Duration::from_secs(3600),
};

/// The `authentication` block with `type: oauth2`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Login {
    pub username: String,
    #[serde(default)]
    pub mechanism: Option<Mechanism>,
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
}

/// Where a login's token comes from.
pub enum TokenSource<'a> {
    Given(&'a SecretString),
    Endpoint(Url),
}

impl OAuth2Login {
    /// What a schema cannot say, each with its JSON pointer: exactly one token source, a
    /// client for the endpoint, an `https://` endpoint (plain HTTP on loopback only) that the
    /// host policy allows. Checked before any request.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (&self.access_token, &self.token_endpoint) {
            (Some(_), Some(_)) => problems.push(
                "/authentication: give either accessToken or tokenEndpoint (with clientId), not both"
                    .to_string(),
            ),
            (None, None) => problems.push(
                "/authentication: an OAuth2 login needs accessToken, or tokenEndpoint and clientId"
                    .to_string(),
            ),
            _ => {}
        }
        if let Some(endpoint) = &self.token_endpoint {
            if self.client_id.as_deref().is_none_or(str::is_empty) {
                problems.push(
                    "/authentication: \"clientId\" is a required property with tokenEndpoint"
                        .into(),
                );
            }
            if let Err(problem) = endpoint_url(endpoint) {
                problems.push(format!("/authentication/tokenEndpoint: {problem}"));
            }
        } else {
            for (name, given) in [
                ("clientId", self.client_id.is_some()),
                ("clientSecret", self.client_secret.is_some()),
                ("scope", self.scope.is_some()),
                ("refreshToken", self.refresh_token.is_some()),
            ] {
                if given {
                    problems.push(format!(
                        "/authentication/{name}: only used with tokenEndpoint"
                    ));
                }
            }
        }
        problems
    }

    /// The fields that are written into protocol lines or form bodies, by name.
    pub fn line_fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![("username", self.username.as_str())];
        if let Some(token) = &self.access_token {
            fields.push(("accessToken", token.expose_secret()));
        }
        if let Some(secret) = &self.client_secret {
            fields.push(("clientSecret", secret.expose_secret()));
        }
        if let Some(token) = &self.refresh_token {
            fields.push(("refreshToken", token.expose_secret()));
        }
        fields
    }

    pub fn source(&self) -> Result<TokenSource<'_>> {
        match (&self.access_token, &self.token_endpoint) {
            (Some(token), None) => Ok(TokenSource::Given(token)),
            (None, Some(endpoint)) => {
                endpoint_url(endpoint)
                    .map(TokenSource::Endpoint)
                    .map_err(|p| {
                        EmailError::invalid_input(format!("/authentication/tokenEndpoint: {p}"))
                    })
            }
            _ => Err(EmailError::invalid_input(self.problems().join("; "))),
        }
    }

    /// What identifies the credentials (the cache key and the session pools' key): the
    /// endpoint, client, scope and the secrets, digested.
    pub fn credentials_digest(&self) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let parts: [&str; 6] = [
            self.access_token.as_ref().map_or("", |t| t.expose_secret()),
            self.token_endpoint.as_deref().unwrap_or(""),
            self.client_id.as_deref().unwrap_or(""),
            self.client_secret
                .as_ref()
                .map_or("", |s| s.expose_secret()),
            self.scope.as_deref().unwrap_or(""),
            self.refresh_token
                .as_ref()
                .map_or("", |t| t.expose_secret()),
        ];
        for part in parts {
            // Length-prefixed, so no two different field sets give the same bytes.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        digest
    }
}

/// `https://`, or `http://` to a loopback address (a local test or sidecar endpoint), and
/// allowed by the host policy by name.
fn endpoint_url(text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default().to_string();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err("must be https:// (plain http:// only to a loopback address)".to_string());
        }
        other => return Err(format!("the scheme '{other}' is not https")),
    }
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    crate::outbound_http::check_host(&url).map_err(|e| e.to_string())?;
    Ok(url)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

impl FetchError for EmailError {
    fn interrupted() -> Self {
        EmailError::new(
            ErrorCode::ConnectionFailed,
            "the token request was interrupted",
        )
    }
}

type Caches = Mutex<HashMap<[u8; 32], Arc<TokenCache<EmailError>>>>;

/// The process's token caches, one per set of credentials, shared by jobs and watchers.
fn caches() -> &'static Caches {
    static CACHES: OnceLock<Caches> = OnceLock::new();
    CACHES.get_or_init(Mutex::default)
}

/// The one HTTP client for token endpoints.
fn http_client() -> Result<HttpClient> {
    static CLIENT: OnceLock<std::result::Result<HttpClient, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| HttpClient::new(HttpOptions::default()))
        .clone()
        .map_err(|e| EmailError::new(ErrorCode::TlsError, e))
}

/// The request timeout for a token; the login that waits for it is bounded by the server's
/// `timeoutSeconds` on top.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn cache_for(login: &OAuth2Login, url: Url) -> Arc<TokenCache<EmailError>> {
    let key = login.credentials_digest();
    let mut caches = caches().lock().unwrap_or_else(|e| e.into_inner());
    caches
        .entry(key)
        .or_insert_with(|| {
            let client_id = login.client_id.clone().unwrap_or_default();
            let client_secret = login.client_secret.clone();
            let scope = login.scope.clone();
            // Rotated by the endpoint: the newest one is used from then on.
            let refresh_token = Arc::new(Mutex::new(login.refresh_token.clone()));
            TokenCache::new(MARGINS, move || {
                let url = url.clone();
                let client_id = client_id.clone();
                let client_secret = client_secret.clone();
                let scope = scope.clone();
                let refresh_token = refresh_token.clone();
                async move {
                    let current = refresh_token
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    let mut form: Vec<(&str, &str)> = Vec::new();
                    match &current {
                        Some(token) => {
                            form.push(("grant_type", "refresh_token"));
                            form.push(("refresh_token", token.expose_secret()));
                        }
                        None => form.push(("grant_type", "client_credentials")),
                    }
                    form.push(("client_id", &client_id));
                    if let Some(secret) = &client_secret {
                        form.push(("client_secret", secret.expose_secret()));
                    }
                    if let Some(scope) = &scope {
                        form.push(("scope", scope));
                    }
                    let client = http_client()?;
                    let granted = request_token(&client, &url, &form, TOKEN_REQUEST_TIMEOUT)
                        .await
                        .map_err(endpoint_error)?;
                    if let (Some(rotated), Some(_)) = (granted.refresh_token, &current) {
                        *refresh_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(rotated);
                    }
                    tracing::debug!(endpoint = %shown_url(&url), "OAuth2 token obtained");
                    Ok(Fetched {
                        token: granted.access_token,
                        expires_in: granted.expires_in,
                    })
                }
                .boxed()
            })
        })
        .clone()
}

/// SPEC §2.1's codes: a refused grant is the credentials' fault (no retry), an endpoint that
/// cannot be reached or fails may work next time.
fn endpoint_error(error: EndpointError) -> EmailError {
    let code = match &error {
        EndpointError::Refused { .. } => ErrorCode::AuthenticationFailed,
        EndpointError::Http(HttpError::Refused(_) | HttpError::Url(_)) => ErrorCode::InvalidInput,
        EndpointError::Http(HttpError::Timeout { .. }) => ErrorCode::ConnectionFailed,
        EndpointError::Http(HttpError::Tls { .. }) => ErrorCode::TlsError,
        _ => ErrorCode::ConnectionFailed,
    };
    let message = match (&error, code) {
        (_, ErrorCode::InvalidInput) => format!("/authentication/tokenEndpoint: {error}"),
        _ => format!("token endpoint: {error}"),
    };
    EmailError::new(code, message)
}

/// A token a login uses, and where it came from: a token the worker fetched may be replaced
/// once when a server rejects it (it may have been revoked, or the server's clock runs ahead
/// of ours); a given token cannot.
pub struct Lease {
    token: SecretString,
    cache: Option<Arc<TokenCache<EmailError>>>,
}

impl Lease {
    /// The token for `login`, fetched (or taken from the cache) within `timeout`; for the
    /// `check` subcommand, notes the token step.
    pub async fn acquire(
        login: &OAuth2Login,
        timeout: Duration,
        steps: &mut Vec<String>,
    ) -> Result<Lease> {
        match login.source()? {
            TokenSource::Given(token) => Ok(Lease {
                token: token.clone(),
                cache: None,
            }),
            TokenSource::Endpoint(url) => {
                let shown = shown_url(&url);
                let cache = cache_for(login, url);
                // The token may take most of the operation's time, not all of it: an endpoint
                // that hangs is reported as the endpoint's failure (SPEC §2.1), not as the
                // operation's timeout.
                let patience = timeout.saturating_sub(timeout / 5);
                let cached = tokio::time::timeout(patience, cache.lease())
                    .await
                    .map_err(|_| {
                        EmailError::new(
                            ErrorCode::ConnectionFailed,
                            format!(
                                "token endpoint {shown}: no token within {:.1} s",
                                patience.as_secs_f64()
                            ),
                        )
                    })??;
                let left = cached
                    .expires_at
                    .saturating_duration_since(std::time::Instant::now());
                steps.push(format!(
                    "token: endpoint {shown} reached, token obtained, expires in {} s",
                    left.as_secs()
                ));
                Ok(Lease {
                    token: cached.token,
                    cache: Some(cache),
                })
            }
        }
    }

    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// After a login failed with `error`: a new lease when the server rejected a token the
    /// worker fetched (that token is dropped from the cache first), else `None`.
    pub async fn renew(
        &self,
        login: &OAuth2Login,
        error: &EmailError,
        timeout: Duration,
        steps: &mut Vec<String>,
    ) -> Result<Option<Lease>> {
        match &self.cache {
            Some(cache) if error.code == ErrorCode::AuthenticationFailed => {
                cache.invalidate(&self.token);
                tracing::info!(
                    user = %login.username,
                    "the server rejected a cached OAuth2 token; fetching a new one"
                );
                Lease::acquire(login, timeout, steps).await.map(Some)
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn login(value: serde_json::Value) -> OAuth2Login {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_token_sources_and_their_problems() {
        let given = login(json!({ "username": "u", "accessToken": "t" }));
        assert!(given.problems().is_empty());
        let both = login(json!({ "username": "u", "accessToken": "t",
            "tokenEndpoint": "https://login.example.com/token", "clientId": "c" }));
        assert!(both.problems()[0].contains("not both"));
        let neither = login(json!({ "username": "u" }));
        assert!(neither.problems()[0].starts_with("/authentication: "));
        let no_client =
            login(json!({ "username": "u", "tokenEndpoint": "https://login.example.com/t" }));
        assert!(no_client.problems()[0].contains("clientId"));
        let plain = login(
            json!({ "username": "u", "tokenEndpoint": "http://login.example.com/t", "clientId": "c" }),
        );
        assert!(plain.problems()[0].starts_with("/authentication/tokenEndpoint: must be https://"));
        for local in [
            "http://127.0.0.1:8080/t",
            "http://localhost/t",
            "http://[::1]:1/t",
        ] {
            let ok = login(json!({ "username": "u", "tokenEndpoint": local, "clientId": "c" }));
            assert!(ok.problems().is_empty(), "{local}: {:?}", ok.problems());
        }
        let metadata = login(
            json!({ "username": "u", "tokenEndpoint": "https://169.254.169.254/t", "clientId": "c" }),
        );
        assert!(metadata.problems()[0].starts_with("/authentication/tokenEndpoint: "));
        let stray = login(json!({ "username": "u", "accessToken": "t", "clientSecret": "s" }));
        assert_eq!(
            stray.problems(),
            ["/authentication/clientSecret: only used with tokenEndpoint"]
        );
    }

    #[test]
    fn credentials_digests_differ_by_every_field() {
        let base = json!({ "username": "u", "tokenEndpoint": "https://a/t", "clientId": "c",
            "clientSecret": "s", "scope": "x", "refreshToken": "r" });
        let digest = |v: &serde_json::Value| login(v.clone()).credentials_digest();
        for field in [
            "tokenEndpoint",
            "clientId",
            "clientSecret",
            "scope",
            "refreshToken",
        ] {
            let mut other = base.clone();
            other[field] = json!("other");
            assert_ne!(digest(&base), digest(&other), "{field}");
        }
    }
}
