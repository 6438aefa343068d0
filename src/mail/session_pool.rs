//! Idle mail sessions kept for reuse, keyed by [`SessionKey`] (the full endpoint, the login
//! and a digest of its secret), shared by the SMTP and IMAP pools. What makes a session usable
//! again (NOOP, lettre's own check) stays with each protocol; this keeps the bookkeeping: at
//! most a few per key, none past its idle time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::mail::server::SessionKey;

pub struct IdleSessions<S> {
    idle: Mutex<HashMap<SessionKey, Vec<(S, Instant)>>>,
    timeout: Duration,
    per_key: usize,
}

impl<S> IdleSessions<S> {
    /// Keeps at most `per_key` sessions per key, each for at most `timeout`.
    pub fn new(timeout: Duration, per_key: usize) -> Self {
        IdleSessions {
            idle: Mutex::new(HashMap::new()),
            timeout,
            per_key,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Vec<(S, Instant)>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently returned session for `key` that is within its idle time and that
    /// `usable` accepts, with how long it sat idle (a session back a moment ago needs no
    /// probe); the others met on the way are dropped.
    pub fn take(&self, key: &SessionKey, usable: impl Fn(&S) -> bool) -> Option<(S, Duration)> {
        let mut idle = self.lock();
        let sessions = idle.get_mut(key)?;
        while let Some((session, since)) = sessions.pop() {
            let idle_for = since.elapsed();
            if idle_for < self.timeout && usable(&session) {
                return Some((session, idle_for));
            }
        }
        None
    }

    /// Keeps `session` for reuse if its key has room; returns it when there is none, so the
    /// caller can close it properly.
    pub fn put(&self, key: SessionKey, session: S) -> Option<S> {
        let mut idle = self.lock();
        let sessions = idle.entry(key).or_default();
        if sessions.len() < self.per_key {
            sessions.push((session, Instant::now()));
            None
        } else {
            Some(session)
        }
    }

    /// Removes and returns every session past its idle time. Cheap when none is: sessions are
    /// kept in the order they came back, so only the oldest of each key needs a look, and
    /// nothing is moved or allocated (SMTP calls this on every message it sends).
    pub fn expired(&self) -> Vec<S> {
        let mut idle = self.lock();
        let mut expired = Vec::new();
        for sessions in idle.values_mut() {
            let fresh_from = sessions
                .iter()
                .position(|(_, since)| since.elapsed() < self.timeout)
                .unwrap_or(sessions.len());
            expired.extend(sessions.drain(..fresh_from).map(|(s, _)| s));
        }
        idle.retain(|_, sessions| !sessions.is_empty());
        expired
    }

    /// Sessions kept now, for metrics.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::auth::Authentication;
    use crate::mail::server::{Endpoint, Security};

    fn key(port: u16) -> SessionKey {
        let endpoint = Endpoint {
            host: "h".into(),
            port,
            security: Security::None,
            server_certificate: None,
            accept_invalid_certificates: false,
            timeout: Duration::from_secs(1),
        };
        SessionKey::new(&endpoint, &Authentication::None)
    }

    #[test]
    fn bounded_per_key_newest_first_and_expiring() {
        let idle = IdleSessions::new(Duration::from_millis(50), 2);
        assert!(idle.put(key(1), "a").is_none());
        assert!(idle.put(key(1), "b").is_none());
        assert_eq!(idle.put(key(1), "c"), Some("c"));
        assert!(idle.put(key(2), "x").is_none());
        assert_eq!(idle.len(), 3);
        let (newest, idle_for) = idle.take(&key(1), |_| true).expect("a session");
        assert_eq!(newest, "b");
        assert!(idle_for < Duration::from_millis(50));
        assert_eq!(idle.take(&key(1), |s| *s != "a"), None);
        assert_eq!(idle.take(&key(3), |_| true), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(idle.expired(), vec!["x"]);
        assert!(idle.is_empty());
    }
}
