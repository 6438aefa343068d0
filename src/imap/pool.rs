//! IMAP sessions kept open between jobs, keyed by the full endpoint, the login and a digest of
//! its secret ([`SessionKey`]).
//!
//! A login costs several round trips and, with TLS, a handshake; a process that reads mail in a
//! loop should pay it once. A session is checked with NOOP before reuse, dropped after any
//! protocol error or timeout, and closed once idle for [`IDLE_TIMEOUT`].

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::session::ImapSession;
use crate::error::Result;
use crate::mail::server::{Authentication, Endpoint, SessionKey, Target};

/// Servers drop idle clients after 30 minutes at the earliest (RFC 3501 §5.4); we close ours
/// much sooner to hold few connections on shared servers.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Idle sessions kept per key; more concurrent jobs open more, and the extra close on return.
const IDLE_PER_KEY: usize = 8;

pub struct ImapPool {
    pooling: bool,
    idle: Mutex<HashMap<SessionKey, Vec<(ImapSession, Instant)>>>,
    reaper_started: std::sync::atomic::AtomicBool,
}

/// A session on loan from the pool; it goes back when dropped, unless broken.
pub struct Lease {
    session: Option<ImapSession>,
    key: SessionKey,
    pool: Arc<ImapPool>,
}

impl Deref for Lease {
    type Target = ImapSession;
    fn deref(&self) -> &ImapSession {
        self.session
            .as_ref()
            .expect("a lease holds its session until dropped")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut ImapSession {
        self.session
            .as_mut()
            .expect("a lease holds its session until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.give_back(&self.key, session);
        }
    }
}

impl ImapPool {
    pub fn new(pooling: bool) -> Arc<ImapPool> {
        Arc::new(ImapPool {
            pooling,
            idle: Mutex::new(HashMap::new()),
            reaper_started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A logged-in session: an idle one that still answers NOOP, or a new one.
    pub async fn acquire(
        self: &Arc<Self>,
        endpoint: &Endpoint,
        auth: &Authentication,
    ) -> Result<Lease> {
        let key = Target {
            endpoint: endpoint.clone(),
            authentication: auth.clone(),
        }
        .session_key();
        if self.pooling {
            self.start_reaper();
            while let Some(mut session) = self.take_idle(&key) {
                if session.noop().await.is_ok() && !session.broken {
                    return Ok(Lease {
                        session: Some(session),
                        key,
                        pool: self.clone(),
                    });
                }
            }
        }
        let session = ImapSession::connect(endpoint, auth).await?;
        Ok(Lease {
            session: Some(session),
            key,
            pool: self.clone(),
        })
    }

    fn take_idle(&self, key: &SessionKey) -> Option<ImapSession> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let sessions = idle.get_mut(key)?;
        while let Some((session, since)) = sessions.pop() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(session);
            }
        }
        None
    }

    fn give_back(&self, key: &SessionKey, session: ImapSession) {
        if !self.pooling || session.broken {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let sessions = idle.entry(key.clone()).or_default();
        if sessions.len() < IDLE_PER_KEY {
            sessions.push((session, Instant::now()));
        }
    }

    /// Idle sessions, for metrics and tests.
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .map_or(0, |idle| idle.values().map(Vec::len).sum())
    }

    /// Closes idle sessions past their time, every so often, for as long as the pool lives.
    fn start_reaper(self: &Arc<Self>) {
        if self
            .reaper_started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let weak: Weak<ImapPool> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_TIMEOUT / 4).await;
                let Some(pool) = weak.upgrade() else { return };
                let expired: Vec<ImapSession> = {
                    let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                    let mut expired = Vec::new();
                    for sessions in idle.values_mut() {
                        let (old, fresh): (Vec<_>, Vec<_>) = sessions
                            .drain(..)
                            .partition(|(_, since)| since.elapsed() >= IDLE_TIMEOUT);
                        *sessions = fresh;
                        expired.extend(old.into_iter().map(|(s, _)| s));
                    }
                    idle.retain(|_, sessions| !sessions.is_empty());
                    expired
                };
                for session in expired {
                    session.logout().await;
                }
            }
        });
    }
}
