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
//!
//! One login holds at most `sessions_per_login` sessions to a server at once, in use or idle
//! (servers refuse more: Dovecot allows 10 per user and address by default, Gmail 15 per
//! account); a job beyond that waits for one to come free, at most the server's timeout.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ImapError, ImapErrorKind};
use super::guard::Allowance;
use super::session::ImapSession;
use crate::error::Result;
use crate::mail::auth::Authentication;
use crate::mail::server::{Endpoint, SessionKey};
use crate::mail::session_key::AccountKey;
use crate::mail::session_pool::IdleSessions;
use crate::services::Services;

/// Servers drop idle clients after 30 minutes at the earliest (RFC 3501 §5.4); we close ours
/// much sooner to hold few connections on shared servers.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A session back in the pool for less than this, with nothing from its server since, is
/// reused without a NOOP: servers close idle clients after minutes, not seconds, and a closed
/// connection shows as an end of stream without a round trip.
const TRUSTED_IDLE: Duration = Duration::from_secs(5);

pub struct ImapPool {
    pooling: bool,
    /// What a command without mail text may receive, by the response budget.
    control: Allowance,
    idle: IdleSessions<ImapSession>,
    reaper_started: std::sync::atomic::AtomicBool,
    sessions_per_login: usize,
    /// One gate per user and server, holding `sessions_per_login` permits.
    gates: Mutex<HashMap<AccountKey, Arc<Semaphore>>>,
}

/// A session on loan from the pool; it goes back when dropped, unless broken.
pub struct Lease {
    session: Option<ImapSession>,
    key: SessionKey,
    pool: Arc<ImapPool>,
    /// This session's place among its login's; freed after the session went back.
    _permit: OwnedSemaphorePermit,
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
        Self::with_limits(
            pooling,
            max_response_bytes,
            crate::operation::DEFAULT_IMAP_SESSIONS_PER_LOGIN,
        )
    }

    /// A pool whose logins hold at most `sessions_per_login` sessions to a server each.
    pub fn with_limits(
        pooling: bool,
        max_response_bytes: usize,
        sessions_per_login: usize,
    ) -> Arc<ImapPool> {
        let sessions_per_login = sessions_per_login.max(1);
        Arc::new(ImapPool {
            pooling,
            control: Allowance::control(max_response_bytes),
            idle: IdleSessions::new(IDLE_TIMEOUT, sessions_per_login),
            reaper_started: std::sync::atomic::AtomicBool::new(false),
            sessions_per_login,
            gates: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a place among `key`'s sessions, at most `endpoint`'s timeout.
    async fn admit(&self, key: &SessionKey, endpoint: &Endpoint) -> Result<OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            gates
                .entry(key.account())
                .or_insert_with(|| Arc::new(Semaphore::new(self.sessions_per_login)))
                .clone()
        };
        match tokio::time::timeout(endpoint.timeout, gate.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => {
                Err(ImapError::new(ImapErrorKind::Internal, "session gate closed").into())
            }
            Err(_) => Err(ImapError::new(
                ImapErrorKind::Busy,
                format!(
                    "all {} sessions of this login to {}:{} stayed in use for {} s \
                     (EMAIL_IMAP_SESSIONS_PER_LOGIN)",
                    self.sessions_per_login,
                    endpoint.host,
                    endpoint.port,
                    endpoint.timeout.as_secs_f64()
                ),
            )
            .into()),
        }
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
        self.start_reaper();
        let permit = self.admit(&key, endpoint).await?;
        if self.pooling {
            while let Some((mut session, idle_for)) = self.idle.take(&key, ImapSession::reusable) {
                session.limit_replies(self.control);
                let trusted = idle_for < TRUSTED_IDLE && session.is_quiet();
                if trusted || (session.noop().await.is_ok() && session.reusable()) {
                    return Ok(Lease {
                        session: Some(session),
                        key,
                        pool: self.clone(),
                        _permit: permit,
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
            _permit: permit,
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
                // A gate no lease holds is the map's alone: forget it.
                pool.gates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|_, gate| Arc::strong_count(gate) > 1);
            }
        });
    }
}
