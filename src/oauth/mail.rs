//! The mail logins' tokens (docs/processes.md, "OAuth2 logins"): given, or fetched by the
//! worker from `tokenEndpoint` through one token cache per set of credentials, kept in the
//! process's [`MailTokens`] (part of [`crate::services::Services`]), and the one retry with a
//! new token when a server rejects a cached one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use super::cache::{Fetched, Margins, TokenCache};
use super::endpoint::{request_token, shown_url};
use super::error::{OAuthLoginError, OAuthLoginErrorKind};
use super::login::{OAuth2Login, TokenSource, endpoint_url};
use crate::error::{ErrorCode, Result};
use crate::mail::auth::Authentication;
use crate::mail::policy::HostPolicy;
use crate::mail::server::Endpoint;
use crate::outbound_http::{HttpClient, HttpOptions, check_host};
use crate::services::Services;

/// A token is used until 60 s before it expires; a fresh one is fetched in the background
/// from 90 s before, so a job rarely waits for the endpoint.
const MARGINS: Margins = Margins {
    refresh_before: Duration::from_secs(90),
    stale_before: Duration::from_secs(60),
    default_lifetime: Duration::from_secs(3600),
};

/// The most token caches kept at once. Every distinct set of credentials in a job's variables
/// makes one, and a process author can write any number of them: without a bound, a loop over
/// made-up client ids would grow the worker without end. A thousand covers any real
/// deployment's accounts; past it, the cache used longest ago and held by no login goes.
const MAX_CACHES: usize = 1024;

/// A token cache with the last time a login asked for it.
type Kept<V> = (Arc<V>, Instant);
type Cache = TokenCache<OAuthLoginError>;

/// The token caches of one process, one per set of credentials, shared by its jobs and
/// watchers, and the one HTTP client for token endpoints, under the process's host policy.
pub struct MailTokens {
    policy: Arc<HostPolicy>,
    /// Built on first use: most workers never fetch a token.
    client: OnceLock<std::result::Result<HttpClient, String>>,
    caches: Mutex<HashMap<[u8; 32], Kept<Cache>>>,
}

/// The request timeout for a token; the login that waits for it is bounded by the server's
/// `timeoutSeconds` on top.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The entry for `key`, made by `make` if there is none, keeping at most `limit` entries: to
/// make room, those used longest ago that nobody else holds are dropped. When every entry is
/// in use the map grows past `limit` for as long as they are, which the number of jobs and
/// watchers running at once bounds. An evicted cache forgets a refresh token the endpoint
/// rotated; the next login starts again from the job's own.
fn kept<V>(
    map: &mut HashMap<[u8; 32], Kept<V>>,
    key: [u8; 32],
    limit: usize,
    make: impl FnOnce() -> Arc<V>,
) -> Arc<V> {
    let now = Instant::now();
    if let Some((value, used)) = map.get_mut(&key) {
        *used = now;
        return value.clone();
    }
    while map.len() >= limit {
        let idle = map
            .iter()
            .filter(|(_, (value, _))| Arc::strong_count(value) == 1)
            .min_by_key(|(_, (_, used))| *used)
            .map(|(key, _)| *key);
        match idle {
            Some(idle) => map.remove(&idle),
            None => break,
        };
    }
    let value = make();
    map.insert(key, (value.clone(), now));
    value
}

impl MailTokens {
    pub fn new(policy: Arc<HostPolicy>) -> MailTokens {
        MailTokens {
            policy,
            client: OnceLock::new(),
            caches: Mutex::default(),
        }
    }

    /// The one HTTP client for token endpoints, under the host policy.
    fn client(&self) -> std::result::Result<HttpClient, OAuthLoginError> {
        self.client
            .get_or_init(|| HttpClient::policed(HttpOptions::default(), self.policy.clone()))
            .clone()
            .map_err(|e| OAuthLoginError::new(OAuthLoginErrorKind::Tls, e))
    }

    /// The policy's refusal of a token endpoint, before any request.
    fn check(&self, url: &Url) -> std::result::Result<(), OAuthLoginError> {
        check_host(url, &self.policy).map_err(|e| {
            OAuthLoginError::new(
                OAuthLoginErrorKind::Endpoint,
                format!("/authentication/tokenEndpoint: {e}"),
            )
        })
    }

    fn cache_for(
        &self,
        login: &OAuth2Login,
        url: Url,
    ) -> std::result::Result<Arc<Cache>, OAuthLoginError> {
        let client = self.client()?;
        let key = login.credentials_digest();
        let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        Ok(kept(&mut caches, key, MAX_CACHES, || {
            fetching(login, url, client)
        }))
    }
}

/// A cache whose fetch asks `url` with `login`'s credentials.
fn fetching(login: &OAuth2Login, url: Url, client: HttpClient) -> Arc<Cache> {
    let client_id = login.client_id.clone().unwrap_or_default();
    let client_secret = login.client_secret.clone();
    let scope = login.scope.clone();
    // Rotated by the endpoint: the newest one is used from then on.
    let refresh_token = Arc::new(Mutex::new(login.refresh_token.clone()));
    TokenCache::new(MARGINS, move || {
        let url = url.clone();
        let client = client.clone();
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
            let granted = request_token(&client, &url, &form, TOKEN_REQUEST_TIMEOUT).await?;
            if let (Some(rotated), Some(_)) = (granted.refresh_token, &current) {
                *refresh_token.lock().unwrap_or_else(|e| e.into_inner()) = Some(rotated);
            }
            // Not the URL: its path may hold a secret (a tenant), and this task knows no
            // job's mask.
            tracing::debug!(
                lifetime_s = granted.expires_in.map(|d| d.as_secs()),
                "OAuth2 token obtained"
            );
            Ok(Fetched {
                token: granted.access_token,
                expires_in: granted.expires_in,
            })
        }
        .boxed()
    })
}

/// `policy`'s refusal of `login`'s token endpoint, as the input problem a job or a watcher
/// gets for it (`/authentication/tokenEndpoint: ...`), checked with the variables, before any
/// request. `None` without an endpoint, for one that is no valid URL (that is a problem of its
/// own, [`OAuth2Login::problems`]), and for one the policy allows.
pub fn endpoint_refusal(login: &OAuth2Login, policy: &HostPolicy) -> Option<String> {
    let url = endpoint_url(login.token_endpoint.as_deref()?).ok()?;
    let refused = check_host(&url, policy).err()?;
    Some(format!("/authentication/tokenEndpoint: {refused}"))
}

/// A protocol's one attempt to connect and log in, given the process's services and the
/// token an OAuth2 login presents (`None` for every other kind of login). [`connect`] decides
/// how many attempts there are.
pub trait ConnectOnce {
    type Session;
    fn connect_once<'a>(
        services: &'a Services,
        endpoint: &'a Endpoint,
        auth: &'a Authentication,
        token: Option<&'a SecretString>,
        steps: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Self::Session>>;
}

/// Connects and logs in with `C`, noting each step (the `check` subcommand prints them): an
/// OAuth2 login gets its token first, and a token the worker fetched that the server rejects
/// is replaced once. SMTP, IMAP and POP3 all log in through here, so the rule is one rule.
pub async fn connect<C: ConnectOnce>(
    services: &Services,
    endpoint: &Endpoint,
    auth: &Authentication,
    steps: &mut Vec<String>,
) -> Result<C::Session> {
    let Authentication::Oauth2(login) = auth else {
        return C::connect_once(services, endpoint, auth, None, steps).await;
    };
    let tokens = services.tokens();
    let lease = Lease::acquire(tokens, login, endpoint.timeout, steps).await?;
    match C::connect_once(services, endpoint, auth, Some(lease.token()), steps).await {
        Err(error) => match lease
            .renew(tokens, login, &error, endpoint.timeout, steps)
            .await?
        {
            Some(fresh) => {
                C::connect_once(services, endpoint, auth, Some(fresh.token()), steps).await
            }
            None => Err(error),
        },
        done => done,
    }
}

/// A token a login uses, and where it came from: a token the worker fetched may be replaced
/// once when a server rejects it (it may have been revoked, or the server's clock runs ahead
/// of ours); a given token cannot.
pub struct Lease {
    token: SecretString,
    cache: Option<Arc<Cache>>,
}

impl Lease {
    /// The token for `login`, fetched (or taken from the cache of `tokens`) within `timeout`;
    /// for the `check` subcommand, notes the token step.
    pub async fn acquire(
        tokens: &MailTokens,
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
                tokens.check(&url)?;
                let shown = shown_url(&url);
                let cache = tokens.cache_for(login, url)?;
                // The token may take most of the operation's time, not all of it: an endpoint
                // that hangs is reported as the endpoint's failure (`CONNECTION_FAILED` after
                // 80 % of `timeoutSeconds`), not as the operation's timeout.
                let patience = timeout.saturating_sub(timeout / 5);
                let cached = tokio::time::timeout(patience, cache.lease())
                    .await
                    .map_err(|_| {
                        OAuthLoginError::new(
                            OAuthLoginErrorKind::Unreachable,
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
        tokens: &MailTokens,
        login: &OAuth2Login,
        error: &crate::error::EmailError,
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
                Lease::acquire(tokens, login, timeout, steps)
                    .await
                    .map(Some)
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(n as u64).to_be_bytes());
        key
    }

    fn login(value: serde_json::Value) -> OAuth2Login {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_policy_refuses_a_token_endpoint_by_its_own_words() {
        let policy = HostPolicy::default();
        let metadata = login(serde_json::json!({ "username": "u",
            "tokenEndpoint": "https://169.254.169.254/t", "clientId": "c" }));
        assert_eq!(
            endpoint_refusal(&metadata, &policy).as_deref(),
            Some(
                "/authentication/tokenEndpoint: 169.254.169.254 is refused on this worker (EMAIL_DENIED_HOSTS)"
            )
        );
        // No refusal where the login has its own problem, or no endpoint, or an allowed one.
        for allowed in [
            serde_json::json!({ "username": "u", "tokenEndpoint": "http://169.254.169.254/t", "clientId": "c" }),
            serde_json::json!({ "username": "u", "accessToken": "t" }),
            serde_json::json!({ "username": "u", "tokenEndpoint": "https://login.example.com/t", "clientId": "c" }),
        ] {
            assert_eq!(
                endpoint_refusal(&login(allowed.clone()), &policy),
                None,
                "{allowed}"
            );
        }
        // The policy is the one given: another process's (or test's) refuses what this allows.
        let narrow = HostPolicy::new(
            "mail.example.com".parse().unwrap(),
            crate::mail::policy::HostRules::default(),
            true,
        )
        .unwrap();
        let elsewhere = login(serde_json::json!({ "username": "u",
            "tokenEndpoint": "https://login.example.com/t", "clientId": "c" }));
        assert!(endpoint_refusal(&elsewhere, &narrow).is_some());
    }

    #[tokio::test]
    async fn a_refused_endpoint_gets_no_request_and_keeps_its_code() {
        let tokens = MailTokens::new(Arc::new(HostPolicy::default()));
        let metadata = login(serde_json::json!({ "username": "u",
            "tokenEndpoint": "https://169.254.169.254/t", "clientId": "c" }));
        let error = Lease::acquire(&tokens, &metadata, Duration::from_secs(5), &mut Vec::new())
            .await
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::InvalidInput);
        assert!(
            error
                .message
                .starts_with("/authentication/tokenEndpoint: 169.254.169.254 is refused"),
            "{}",
            error.message
        );
        assert!(tokens.caches.lock().unwrap().is_empty());
    }

    #[test]
    fn made_up_credentials_never_grow_the_caches_past_their_limit() {
        let mut map = HashMap::new();
        let held = kept(&mut map, key(0), 8, || Arc::new(0usize));
        for n in 1..10_000 {
            kept(&mut map, key(n), 8, || Arc::new(n));
        }
        assert_eq!(map.len(), 8);
        // One in use is never dropped to make room, and is the same cache when asked again.
        assert!(map.contains_key(&key(0)));
        assert!(Arc::ptr_eq(
            &held,
            &kept(&mut map, key(0), 8, || Arc::new(7))
        ));
        // The newest ones are kept.
        assert!(map.contains_key(&key(9_999)));
    }

    #[test]
    fn the_cache_used_longest_ago_goes_first() {
        let mut map = HashMap::new();
        for n in 0..3 {
            kept(&mut map, key(n), 3, || Arc::new(n));
            std::thread::sleep(Duration::from_millis(2));
        }
        // 0 used again: 1 is now the oldest.
        kept(&mut map, key(0), 3, || Arc::new(99));
        kept(&mut map, key(3), 3, || Arc::new(3));
        assert!(map.contains_key(&key(0)));
        assert!(!map.contains_key(&key(1)));
        assert!(map.contains_key(&key(2)) && map.contains_key(&key(3)));
    }

    #[test]
    fn when_every_cache_is_in_use_the_map_grows_with_them_only() {
        let mut map = HashMap::new();
        let held: Vec<_> = (0..4)
            .map(|n| kept(&mut map, key(n), 2, || Arc::new(n)))
            .collect();
        assert_eq!(map.len(), 4);
        drop(held);
        kept(&mut map, key(10), 2, || Arc::new(10));
        assert_eq!(map.len(), 2, "back to the limit once they are idle");
    }
}
