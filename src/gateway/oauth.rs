//! OAuth2 client credentials for Camunda SaaS and Identity: a token fetched on first use,
//! cached, refreshed in the background shortly before it expires (or fetched again when the
//! gateway rejects it). The request goes through the worker's one outbound HTTP client; the
//! caching is the shared [`crate::oauth::cache`], so a slow authorization server delays only
//! calls that have no valid token, never calls that hold one.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::oauth::cache::{FetchError, Fetched, Margins, TokenCache};
use crate::oauth::endpoint::{EndpointError, request_token};
use crate::outbound_http::{HttpClient, HttpOptions};

const MARGINS: Margins = Margins {
    refresh_before: Duration::from_secs(30),
    stale_before: Duration::from_secs(5),
    default_lifetime: Duration::from_secs(300),
};
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

#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid authorization server URL '{0}'")]
    Url(String),
    #[error("authorization server: {0}")]
    Endpoint(#[from] EndpointError),
    #[error("the token request was interrupted")]
    Interrupted,
}

impl FetchError for OAuthError {
    fn interrupted() -> Self {
        OAuthError::Interrupted
    }
}

/// Hands out a valid access token, fetching one when needed; see the module notes.
pub struct TokenProvider {
    cache: Arc<TokenCache<OAuthError>>,
}

impl TokenProvider {
    /// A provider that trusts the system roots.
    pub fn new(config: OAuthConfig) -> Arc<Self> {
        Self::trusting(config, None)
    }

    /// A provider that trusts `ca_pem` (the gateway's `CAMUNDA_CA_CERTIFICATE_PATH`) besides
    /// the system roots: a self-managed Identity often sits behind the same private CA as the
    /// gateway. The endpoint is the operator's, so the host policy does not bound it.
    pub fn trusting(config: OAuthConfig, ca_pem: Option<String>) -> Arc<Self> {
        let config = Arc::new(config);
        let client = HttpClient::operator(HttpOptions {
            extra_root_pem: ca_pem,
            ..HttpOptions::default()
        });
        let cache = TokenCache::new(MARGINS, move || {
            let config = config.clone();
            let client = client.clone();
            async move {
                let client = client.map_err(OAuthError::Url)?;
                fetch(&client, &config).await
            }
            .boxed()
        });
        Arc::new(TokenProvider { cache })
    }

    pub async fn token(&self) -> Result<SecretString, OAuthError> {
        self.cache.token().await
    }

    /// Forgets the cached token, after the gateway answered UNAUTHENTICATED. Returns at once,
    /// even while a fetch is in flight.
    pub fn invalidate(&self) {
        self.cache.clear();
    }
}

async fn fetch(client: &HttpClient, config: &OAuthConfig) -> Result<Fetched, OAuthError> {
    let url = Url::parse(&config.authorization_server_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| OAuthError::Url(config.authorization_server_url.clone()))?;
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.expose_secret()),
    ];
    if let Some(audience) = &config.audience {
        form.push(("audience", audience));
    }
    if let Some(scope) = &config.scope {
        form.push(("scope", scope));
    }
    let granted = request_token(client, &url, &form, TOKEN_REQUEST_TIMEOUT).await?;
    Ok(Fetched {
        token: granted.access_token,
        expires_in: granted.expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
