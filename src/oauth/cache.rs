//! One access token per set of credentials, shared by every caller: fetched by one request at a
//! time (callers that find no usable token wait for that same request), refreshed in the
//! background while the old token is still good, and never behind a lock that is held across
//! the fetch: the lock guards only the bookkeeping, so a slow token endpoint delays only the
//! callers that have no usable token at all.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use secrecy::{ExposeSecret, SecretString};

use crate::secrets::SecretMask;

/// What a fetch brings back.
pub struct Fetched {
    pub token: SecretString,
    pub expires_in: Option<Duration>,
}

/// When a token stops being handed out, and when a fresh one is fetched in the background
/// while the old one is still handed out, both measured back from the expiry the endpoint
/// announced. A token with less than `stale_before` left is never handed out again (it still
/// serves the callers that waited for its fetch); the background refresh starts no earlier
/// than half-way through the lifetime, so a short-lived token is not fetched again at once.
#[derive(Debug, Clone, Copy)]
pub struct Margins {
    pub refresh_before: Duration,
    pub stale_before: Duration,
    /// The lifetime assumed when the endpoint names none.
    pub default_lifetime: Duration,
}

/// The longest a token is kept, whatever lifetime the endpoint announces: a day is beyond
/// any real access token, and an endpoint's mistake (`expires_in: 18446744073709551615`) must
/// neither overflow the clock nor keep a token for ever.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub trait FetchError: Clone + Send + Sync + 'static {
    /// The fetch ended without an answer (its task panicked or was cancelled).
    fn interrupted() -> Self;
}

type Fetch<E> = Arc<dyn Fn() -> BoxFuture<'static, Result<Fetched, E>> + Send + Sync>;
type InFlight<E> = Shared<BoxFuture<'static, Result<Cached, E>>>;

/// A token with the times it is refreshed, stops being handed out, and expires.
#[derive(Clone)]
pub struct Cached {
    pub token: SecretString,
    refresh_at: Instant,
    stale_at: Instant,
    pub expires_at: Instant,
    /// Masks the token in every log line for as long as anyone holds it: it is no job's
    /// resolved secret, so no job's mask knows it.
    _masked: SecretMask,
}

struct State<E> {
    cached: Option<Cached>,
    in_flight: Option<InFlight<E>>,
}

pub struct TokenCache<E: FetchError> {
    fetch: Fetch<E>,
    margins: Margins,
    state: Mutex<State<E>>,
}

impl<E: FetchError> TokenCache<E> {
    pub fn new(
        margins: Margins,
        fetch: impl Fn() -> BoxFuture<'static, Result<Fetched, E>> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(TokenCache {
            fetch: Arc::new(fetch),
            margins,
            state: Mutex::new(State {
                cached: None,
                in_flight: None,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State<E>> {
        // The bookkeeping stays consistent even if a holder panicked: every update is one
        // assignment.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A usable token: the cached one, or the result of the fetch in flight (started now if
    /// none is).
    pub async fn token(self: &Arc<Self>) -> Result<SecretString, E> {
        self.lease().await.map(|cached| cached.token)
    }

    /// [`TokenCache::token`] with its expiry.
    pub async fn lease(self: &Arc<Self>) -> Result<Cached, E> {
        let in_flight = {
            let mut state = self.state();
            let now = Instant::now();
            if let Some(cached) = state.cached.clone()
                && now < cached.stale_at
            {
                if now >= cached.refresh_at && state.in_flight.is_none() {
                    // Started, not awaited: callers keep the good token meanwhile.
                    let _background = self.start(&mut state);
                }
                return Ok(cached);
            }
            match &state.in_flight {
                Some(in_flight) => in_flight.clone(),
                None => self.start(&mut state),
            }
        };
        in_flight.await
    }

    /// Forgets `rejected` (a server refused it), so the next caller fetches a new token. A
    /// token fetched meanwhile by someone else is kept: it is not the one that was refused.
    pub fn invalidate(&self, rejected: &SecretString) {
        let mut state = self.state();
        if state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == rejected.expose_secret())
        {
            state.cached = None;
        }
    }

    /// Forgets the cached token, whichever it is (the caller does not know which was refused).
    pub fn clear(&self) {
        self.state().cached = None;
    }

    /// Spawns the fetch as a task of its own, so it completes (and fills the cache) even when
    /// the callers that wait for it give up.
    fn start(self: &Arc<Self>, state: &mut State<E>) -> InFlight<E> {
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let result = (this.fetch)().await;
            let mut state = this.state();
            state.in_flight = None;
            let fetched = result?;
            let cached = this.cache(fetched, started);
            state.cached = Some(cached.clone());
            Ok(cached)
        });
        let in_flight = async move { task.await.unwrap_or_else(|_| Err(E::interrupted())) }
            .boxed()
            .shared();
        state.in_flight = Some(in_flight.clone());
        in_flight
    }

    fn cache(&self, fetched: Fetched, started: Instant) -> Cached {
        let lifetime = fetched
            .expires_in
            .unwrap_or(self.margins.default_lifetime)
            .min(MAX_LIFETIME);
        // MAX_LIFETIME keeps these far from the ends of Instant's range; checked all the same.
        let expires = started.checked_add(lifetime).unwrap_or(started);
        let before = |margin: Duration| expires.checked_sub(margin).unwrap_or(started).max(started);
        Cached {
            _masked: SecretMask::new(vec![fetched.token.clone()]),
            token: fetched.token,
            refresh_at: before(self.margins.refresh_before.min(lifetime / 2)),
            stale_at: before(self.margins.stale_before),
            expires_at: expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Clone, PartialEq)]
    struct Failed(&'static str);

    impl FetchError for Failed {
        fn interrupted() -> Self {
            Failed("interrupted")
        }
    }

    const MARGINS: Margins = Margins {
        refresh_before: Duration::from_secs(90),
        stale_before: Duration::from_secs(60),
        default_lifetime: Duration::from_secs(300),
    };

    fn counting(lifetime: u64, delay: Duration) -> (Arc<TokenCache<Failed>>, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let cache = TokenCache::new(MARGINS, move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                Ok(Fetched {
                    token: format!("token-{n}").into(),
                    expires_in: Some(Duration::from_secs(lifetime)),
                })
            }
            .boxed()
        });
        (cache, count)
    }

    #[tokio::test]
    async fn many_callers_on_a_cold_cache_make_one_request() {
        let (cache, count) = counting(3600, Duration::from_millis(100));
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(
                    async move { cache.token().await.map(|t| t.expose_secret().to_string()) },
                )
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), "token-0");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
        cache.token().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rejected_token_is_replaced_once() {
        let (cache, count) = counting(3600, Duration::ZERO);
        let first = cache.token().await.unwrap();
        cache.invalidate(&first);
        cache.invalidate(&first);
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        // A late rejection of the old token does not throw away the new one.
        cache.invalidate(&first);
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_expired_token_is_fetched_again() {
        // A 2 s lifetime is less than the 60 s margin: not handed out again.
        let (cache, count) = counting(2, Duration::ZERO);
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-0");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    /// Issue 21: `expires_in: 18446744073709551615` overflowed the expiry instant; the fetch
    /// task panicked and every job failed as CONNECTION_FAILED.
    #[tokio::test]
    async fn a_lifetime_past_any_clock_is_capped_not_a_panic() {
        let (cache, count) = counting(u64::MAX, Duration::ZERO);
        let lease = cache.lease().await.expect("a token, not a panic");
        assert_eq!(lease.token.expose_secret(), "token-0");
        assert!(lease.expires_at <= Instant::now() + Duration::from_secs(24 * 3600));
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-0");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    /// A token with less than the stale margin (60 s for mail logins) left is not handed out
    /// to a later caller: the next one fetches anew.
    #[tokio::test]
    async fn a_token_with_less_than_the_stale_margin_left_is_not_reused() {
        let (cache, count) = counting(30, Duration::ZERO);
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-0");
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-1");
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let (cache, count) = counting(3600, Duration::ZERO);
        cache.token().await.unwrap();
        assert_eq!(cache.token().await.unwrap().expose_secret(), "token-0");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_shared_and_the_next_caller_tries_again() {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let cache = TokenCache::new(MARGINS, move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if n == 0 {
                    Err(Failed("down"))
                } else {
                    Ok(Fetched {
                        token: "up".to_string().into(),
                        expires_in: None,
                    })
                }
            }
            .boxed()
        });
        let (a, b) = tokio::join!(cache.token(), cache.token());
        assert_eq!(
            (a.unwrap_err(), b.unwrap_err()),
            (Failed("down"), Failed("down"))
        );
        assert_eq!(cache.token().await.unwrap().expose_secret(), "up");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
