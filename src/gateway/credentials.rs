//! What the worker presents to Camunda: nothing, Basic credentials (the default of a
//! self-managed 8.8+ installation) or an OAuth token. The gRPC client and the document store's
//! REST client share one value of this type, so both always speak as the same identity.

use std::sync::Arc;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use super::oauth::{OAuthConfig, TokenProvider};

/// Basic credentials, e.g. the `connector` user a Camunda 8.8 Helm installation creates.
#[derive(Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The `authorization` value for one request, held as a secret until it is put on the wire.
pub type AuthorizationValue = SecretString;

#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    /// The header value, computed once.
    Basic {
        username: String,
        header: SecretString,
    },
    OAuth {
        client_id: String,
        tokens: Arc<TokenProvider>,
    },
}

impl Credentials {
    /// Basic wins over nothing, OAuth over nothing; configuration refuses both at once before
    /// this is called. `ca_pem` is trusted by the OAuth client besides the system roots.
    pub fn new(
        basic: Option<&BasicAuth>,
        oauth: Option<&OAuthConfig>,
        ca_pem: Option<&str>,
    ) -> Credentials {
        if let Some(basic) = basic {
            let pair = format!("{}:{}", basic.username, basic.password.expose_secret());
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            return Credentials::Basic {
                username: basic.username.clone(),
                header: format!("Basic {encoded}").into(),
            };
        }
        match oauth {
            Some(config) => Credentials::OAuth {
                client_id: config.client_id.clone(),
                tokens: TokenProvider::trusting(config.clone(), ca_pem.map(str::to_string)),
            },
            None => Credentials::None,
        }
    }

    /// The value of the `authorization` header or metadata, if any.
    pub async fn authorization(&self) -> Result<Option<AuthorizationValue>, String> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Basic { header, .. } => Ok(Some(header.clone())),
            Credentials::OAuth { tokens, .. } => {
                let token = tokens.token().await.map_err(|e| e.to_string())?;
                Ok(Some(format!("Bearer {}", token.expose_secret()).into()))
            }
        }
    }

    /// Called when Camunda answered 401 / UNAUTHENTICATED: a cached token is dropped so the
    /// next call fetches a new one. Basic credentials cannot get better by themselves.
    pub fn rejected(&self) {
        if let Credentials::OAuth { tokens, .. } = self {
            tokens.invalidate();
        }
    }

    /// Says who the worker is, for log lines and errors; never a secret.
    pub fn describe(&self) -> String {
        match self {
            Credentials::None => "no credentials".into(),
            Credentials::Basic { username, .. } => format!("basic auth as user '{username}'"),
            Credentials::OAuth { client_id, .. } => format!("OAuth client '{client_id}'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn basic_header_is_rfc_7617() {
        let basic = BasicAuth {
            username: "connector".into(),
            password: "connector".to_string().into(),
        };
        let credentials = Credentials::new(Some(&basic), None, None);
        let header = credentials.authorization().await.unwrap().unwrap();
        assert_eq!(header.expose_secret(), "Basic Y29ubmVjdG9yOmNvbm5lY3Rvcg==");
        assert_eq!(credentials.describe(), "basic auth as user 'connector'");
        let other = BasicAuth {
            username: "demo".into(),
            password: "pw-4711".to_string().into(),
        };
        assert!(!format!("{other:?}").contains("pw-4711"));
    }
}
