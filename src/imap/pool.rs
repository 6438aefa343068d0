//! IMAP sessions kept open between jobs, keyed by the full endpoint, the login and a digest of
//! its secret ([`SessionKey`]).
//!
//! A login costs several round trips and, with TLS, a handshake; a process that reads mail in a
//! loop should pay it once. A session whose command failed at the protocol level or ran past
//! its timeout marks itself broken and is closed when its lease ends instead of returning. So
//! is a session whose lease is dropped while a command is still in flight (its job timed out
//! or was aborted from outside, the operation-wide timeout firing before the command's own):
//! the rest of that reply may still be on its way, and the next job would read it. Idle
//! sessions are closed after [`IDLE_TIMEOUT`].

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::guard::Allowance;
use super::session::ImapSession;
use crate::error::Result;
use crate::mail::auth::Authentication;
use crate::mail::server::{Endpoint, SessionKey};
use crate::mail::session_pool::IdleSessions;
use crate::services::Services;

/// Servers drop idle clients after 30 minutes at the earliest (RFC 3501 §5.4); we close ours
/// much sooner to hold few connections on shared servers.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A session back in the pool for less than this, with nothing from its server since, is
/// reused without a NOOP: servers close idle clients after minutes, not seconds, and a closed
/// connection shows as an end of stream without a round trip.
const TRUSTED_IDLE: Duration = Duration::from_secs(5);
/// Idle sessions kept per key; more concurrent jobs open more, and the extra close on return.
const IDLE_PER_KEY: usize = 8;

pub struct ImapPool {
    pooling: bool,
    /// What a command without mail text may receive, by the response budget.
    control: Allowance,
    idle: IdleSessions<ImapSession>,
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
        Self::with_budget(pooling, crate::operation::DEFAULT_MAX_RESPONSE_BYTES)
    }

    /// A pool whose sessions hold servers to `max_response_bytes`, the response budget (see
    /// [`Allowance::control`]).
    pub fn with_budget(pooling: bool, max_response_bytes: usize) -> Arc<ImapPool> {
        Arc::new(ImapPool {
            pooling,
            control: Allowance::control(max_response_bytes),
            idle: IdleSessions::new(IDLE_TIMEOUT, IDLE_PER_KEY),
            reaper_started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A logged-in session: an idle one back within [`TRUSTED_IDLE`] and quiet since, or one
    /// that still answers NOOP, or a new one connected under `services`.
    pub async fn acquire(
        self: &Arc<Self>,
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
    ) -> Result<Lease> {
        let key = SessionKey::new(endpoint, auth);
        if self.pooling {
            self.start_reaper();
            while let Some((mut session, idle_for)) = self.idle.take(&key, ImapSession::reusable) {
                session.limit_replies(self.control);
                let trusted = idle_for < TRUSTED_IDLE && session.is_quiet();
                if trusted || (session.noop().await.is_ok() && session.reusable()) {
                    return Ok(Lease {
                        session: Some(session),
                        key,
                        pool: self.clone(),
                    });
                }
            }
        }
        let mut session = ImapSession::connect(services, endpoint, auth).await?;
        session.limit_replies(self.control);
        Ok(Lease {
            session: Some(session),
            key,
            pool: self.clone(),
        })
    }

    fn give_back(&self, key: &SessionKey, session: ImapSession) {
        if !self.pooling || !session.reusable() {
            return;
        }
        // A full key drops the session; its connection closes with it.
        drop(self.idle.put(key.clone(), session));
    }

    /// Idle sessions, for metrics and tests.
    pub fn idle_count(&self) -> usize {
        self.idle.len()
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
                let expired = pool.idle.expired();
                for session in expired {
                    session.logout().await;
                }
            }
        });
    }
}
