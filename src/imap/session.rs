//! One IMAP session: connected (TLS, STARTTLS or plain), logged in, with every command under
//! the server's timeout.
//!
//! async-imap does the framing and login; the commands it lacks or gets wrong for us (UID
//! SORT, ordered SEARCH, literals, COPYUID, modified UTF-7 names) go through [`ImapSession::
//! execute`], which sends a [`Command`] and collects the untagged responses up to its tagged
//! completion.

use std::collections::HashSet;
use std::time::Duration;

use async_imap::{Client, Session};
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};

mod append;
pub use append::Literal;
mod command;
mod folders;
mod tap;

pub use tap::Capture;

use super::error::{ImapError, ImapErrorKind, ServerReply};
use super::folder::Namespace;
use super::frames::Frames;
use super::guard::{Allowance, Guarded};
use super::oauth::{ErrorChallenge, OAuthExchange, refusal};
use super::response::{Event, Untagged, event};
use super::wire::Command;
use crate::error::Result;
use crate::mail::auth::Authentication;
use crate::mail::net::{MailStream, open_noting, upgrade};
use crate::mail::server::{Endpoint, Security};
use crate::mail::tls::is_tls_failure;
use crate::oauth::mail::{ConnectOnce, connect};
use crate::services::Services;

const NO_STARTTLS: &str = "the server does not offer STARTTLS; refusing to continue in clear text";

/// The connection under async-imap: our taps on the server's bytes around the TLS stream.
pub(super) type Wire = tap::Tap<Guarded<MailStream>>;

pub struct ImapSession {
    inner: Session<Wire>,
    capabilities: HashSet<String>,
    timeout: Duration,
    /// Set when the session's state is unknown (timeout, protocol error): never reuse it.
    pub broken: bool,
    /// Set while a command awaits its tagged completion. A session dropped with it set was
    /// cancelled mid-command (its job timed out or was aborted): its connection may still
    /// carry the rest of that reply, so it is never reused.
    in_command: bool,
    namespace: Option<Namespace>,
    /// Responses read after login (see [`super::frames`]).
    frames: Frames,
    /// What a command without mail text may receive.
    control: Allowance,
}

impl std::fmt::Debug for ImapSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSession")
            .field("broken", &self.broken)
            .finish()
    }
}

impl ImapSession {
    /// Connects, secures and logs in, under the process's `services` (the host policy, the
    /// OAuth2 token caches).
    pub async fn connect(
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
    ) -> Result<ImapSession> {
        Self::connect_noting(services, endpoint, auth, &mut Vec::new()).await
    }

    /// Like [`ImapSession::connect`], noting each step as it succeeds (the `check` command).
    /// An OAuth2 login gets its token first; a fetched token the server rejects is replaced
    /// once.
    pub async fn connect_noting(
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
        steps: &mut Vec<String>,
    ) -> Result<ImapSession> {
        connect::<ImapSession>(services, endpoint, auth, steps).await
    }

    async fn log_in_once(
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
        token: Option<&SecretString>,
        steps: &mut Vec<String>,
    ) -> Result<ImapSession> {
        let stream = open_noting(services.policy(), endpoint, steps).await?;
        let timeout = endpoint.timeout;
        // Every byte from the server passes the guard before async-imap buffers it.
        let mut client = Client::new(tap::Tap::new(Guarded::new(stream)));
        let greeting = tokio::time::timeout(timeout, client.read_response())
            .await
            .map_err(|_| {
                ImapError::new(
                    ImapErrorKind::Timeout,
                    format!("the server sent no greeting within {} s", timeout.as_secs()),
                )
            })?;
        match greeting {
            Ok(Some(response)) => {
                if let Event::Untagged(Untagged::Bye(text)) = event(response.parsed()) {
                    return Err(ImapError::new(
                        ImapErrorKind::Connection,
                        format!("the server refused the connection: {text}"),
                    )
                    .into());
                }
            }
            Ok(None) => {
                return Err(ImapError::new(
                    ImapErrorKind::Connection,
                    "the server closed the connection before greeting",
                )
                .into());
            }
            Err(e) => {
                let kind = if is_tls_failure(&e) {
                    ImapErrorKind::Tls
                } else {
                    ImapErrorKind::Connection
                };
                return Err(ImapError::new(kind, format!("greeting: {e}"))
                    .with_source(e)
                    .into());
            }
        }
        if endpoint.security == Security::Starttls {
            let started =
                tokio::time::timeout(timeout, client.run_command_and_check_ok("STARTTLS", None))
                    .await
                    .map_err(|_| ImapError::new(ImapErrorKind::Timeout, "no answer to STARTTLS"))?;
            if let Err(e) = started {
                let refused = match client.get_mut().take_refusal() {
                    Some(reply) => ImapError::new(
                        ImapErrorKind::Tls,
                        format!("{NO_STARTTLS} ({})", reply.text),
                    )
                    .with_source(reply),
                    None => ImapError::new(ImapErrorKind::Tls, format!("{NO_STARTTLS} ({e})"))
                        .with_source(e),
                };
                return Err(refused.into());
            }
            let stream = upgrade(client.into_inner().into_inner().into_inner(), endpoint).await?;
            client = Client::new(tap::Tap::new(Guarded::new(stream)));
            steps.push("tls: STARTTLS upgrade done, certificate verified".into());
        }
        let error_challenge = ErrorChallenge::default();
        let mut oauth_mechanism = None;
        let login = match auth {
            Authentication::Simple { username, password } => {
                tokio::time::timeout(timeout, client.login(username, password.expose_secret()))
                    .await
            }
            Authentication::Oauth2(login) => {
                let Some(token) = token else {
                    return Err(ImapError::new(
                        ImapErrorKind::Internal,
                        "an OAuth2 login without a token",
                    )
                    .into());
                };
                let exchange =
                    OAuthExchange::prepare(&mut client, login, token, endpoint, &error_challenge)
                        .await?;
                let mechanism = exchange.mechanism();
                oauth_mechanism = Some(mechanism);
                tokio::time::timeout(timeout, client.authenticate(mechanism.name(), exchange)).await
            }
            Authentication::None => {
                return Err(ImapError::new(
                    ImapErrorKind::Input,
                    "/authentication/type: IMAP needs a login; 'none' is for SMTP only",
                )
                .into());
            }
        };
        let mut inner = match login {
            Err(_) => {
                return Err(
                    ImapError::new(ImapErrorKind::Timeout, "no answer to the login").into(),
                );
            }
            Ok(Ok(session)) => session,
            Ok(Err((
                async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_),
                mut client,
            ))) => {
                let reply = client
                    .get_mut()
                    .take_refusal()
                    .unwrap_or_else(ServerReply::unreadable);
                return Err(refusal(
                    auth.username().unwrap_or_default(),
                    reply,
                    oauth_mechanism,
                    &error_challenge,
                )
                .into());
            }
            Ok(Err((e, mut client))) => {
                let reply = client.get_mut().take_refusal();
                return Err(ImapError::library(e, "login", reply).into());
            }
        };
        let capabilities = tokio::time::timeout(timeout, inner.capabilities())
            .await
            .map_err(|_| ImapError::new(ImapErrorKind::Timeout, "no answer to CAPABILITY"))?;
        let capabilities = match capabilities {
            Ok(capabilities) => capabilities,
            Err(e) => {
                let reply = inner.get_mut().take_refusal();
                return Err(ImapError::library(e, "CAPABILITY", reply).into());
            }
        };
        // From here on the session reads every completion itself.
        inner.get_mut().stop_watching();
        let capabilities = capabilities
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                async_imap::types::Capability::Auth(a) => {
                    format!("AUTH={}", a.to_ascii_uppercase())
                }
                async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect();
        steps.push(format!(
            "auth: logged in as {}",
            auth.username().unwrap_or_default()
        ));
        let session = ImapSession {
            inner,
            capabilities,
            timeout,
            broken: false,
            in_command: false,
            namespace: None,
            frames: Frames::default(),
            control: Allowance::CONTROL,
        };
        steps.push(format!(
            "imap: capabilities {}",
            session.capabilities().join(" ")
        ));
        Ok(session)
    }

    /// Commands without mail text may receive `allowance` from now on (see
    /// [`Allowance::control`]).
    pub fn limit_replies(&mut self, allowance: Allowance) {
        self.control = allowance;
    }

    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.contains(capability)
    }

    pub fn capabilities(&self) -> Vec<String> {
        let mut list: Vec<String> = self.capabilities.iter().cloned().collect();
        list.sort();
        list
    }

    /// Selects a folder for reading (EXAMINE, no flag changes) or writing (SELECT). Returns
    /// UIDVALIDITY and the message count.
    pub async fn select(&mut self, folder: &str, writable: bool) -> Result<(u32, u32), ImapError> {
        let verb = if writable { "SELECT" } else { "EXAMINE" };
        let reply = self
            .execute(
                &Command::new(verb).mailbox(folder),
                ImapErrorKind::FolderMissing,
            )
            .await
            .map_err(|e| {
                if e.kind() == ImapErrorKind::FolderMissing {
                    e.reworded(|message| format!("folder '{folder}': {message}"))
                } else {
                    e
                }
            })?;
        let mut validity = 0;
        let mut exists = 0;
        for untagged in &reply.data {
            match untagged {
                Untagged::Exists(n) => exists = *n,
                Untagged::UidValidity(v) => validity = *v,
                _ => {}
            }
        }
        Ok((validity, exists))
    }

    /// Waits in IDLE (RFC 2177) until the server announces new mail (EXISTS) or `max` passes,
    /// then ends IDLE with DONE. Returns whether mail was announced. The caller keeps `max`
    /// under the 29 minutes after which servers may drop an idle client.
    pub async fn idle_wait(&mut self, max: Duration) -> Result<bool, ImapError> {
        // Cancelled before the tagged completion, the session is mid-IDLE: never reusable.
        self.in_command = true;
        self.allow(self.control);
        let Some(tag) = self.send("IDLE", true).await? else {
            return Err(ImapError::new(ImapErrorKind::Internal, "no tag for IDLE"));
        };
        loop {
            match self.read().await? {
                Event::Continue => break,
                Event::Done {
                    tag: t, refusal, ..
                } if t == tag => {
                    let Some(reply) = refusal else {
                        return Err(ImapError::new(
                            ImapErrorKind::Connection,
                            "IDLE refused: the server completed it at once",
                        ));
                    };
                    return Err(ImapError::refused(
                        "IDLE",
                        reply,
                        ImapErrorKind::Connection,
                        ImapErrorKind::Connection,
                    ));
                }
                _ => {}
            }
        }
        let deadline = tokio::time::Instant::now() + max;
        let mut announced = false;
        while !announced {
            // Reading is cancel safe, so giving up at the deadline loses nothing: whatever
            // arrives later is read after DONE.
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Err(_) => break,
                Ok(Ok(Some(event))) => match event {
                    Event::Untagged(Untagged::Exists(_) | Untagged::Fetch(_)) => announced = true,
                    Event::Untagged(Untagged::Bye(text)) => {
                        self.broken = true;
                        return Err(ended(text));
                    }
                    _ => {}
                },
                Ok(Ok(None)) => {
                    self.broken = true;
                    return Err(closed());
                }
                Ok(Err(e)) => {
                    self.broken = true;
                    return Err(ImapError::library(e.into(), "IDLE", None));
                }
            }
        }
        self.send("DONE", false).await?;
        loop {
            match self.read().await? {
                Event::Done { tag: t, .. } if t == tag => {
                    self.in_command = false;
                    return Ok(announced);
                }
                Event::Untagged(Untagged::Bye(text)) => {
                    self.broken = true;
                    return Err(ended(text));
                }
                _ => {}
            }
        }
    }

    /// Whether the server has sent nothing (and not closed the connection) since the last
    /// reply was read: see [`crate::mail::net::MailStream::is_quiet`].
    pub fn is_quiet(&mut self) -> bool {
        self.inner.get_mut().inner_mut().get_ref().is_quiet()
    }

    /// A cheap round trip that proves the session still works.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.execute(&Command::new("NOOP"), ImapErrorKind::Refused)
            .await
            .map(|_| ())
    }

    /// Says LOGOUT and reads the answer (our own way, as every response after login: see
    /// [`super::frames`]), for at most 2 s.
    pub async fn logout(mut self) {
        let said = async {
            self.allow(self.control);
            let Some(tag) = self.send("LOGOUT", true).await? else {
                return Ok(());
            };
            while let Ok(Some(event)) = self.next_event().await {
                if matches!(event, Event::Done { tag: ref t, .. } if *t == tag) {
                    break;
                }
            }
            Ok::<(), ImapError>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), said).await;
    }
}

/// The server said BYE.
pub(super) fn ended(text: String) -> ImapError {
    ImapError::new(
        ImapErrorKind::Connection,
        format!("the server ended the session: {text}"),
    )
}

/// The server closed the connection.
pub(super) fn closed() -> ImapError {
    ImapError::new(
        ImapErrorKind::Connection,
        "the server closed the connection",
    )
}

/// One attempt, for the login rule every protocol shares (`crate::oauth::mail::connect`).
impl ConnectOnce for ImapSession {
    type Session = ImapSession;
    fn connect_once<'a>(
        services: &'a Services,
        endpoint: &'a Endpoint,
        auth: &'a Authentication,
        token: Option<&'a SecretString>,
        steps: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<ImapSession>> {
        Box::pin(Self::log_in_once(services, endpoint, auth, token, steps))
    }
}
