//! SMTP sessions, pooled per endpoint and login ([`SessionKey`]), on lettre's protocol code.
//!
//! Opening an SMTP session costs a TCP handshake, a TLS handshake, EHLO twice and AUTH: several
//! round trips per message when each job starts from scratch, as Camunda's connector does.
//! Reusing sessions keeps a process that sends mail in a loop at the speed of the server.
//!
//! We open the socket ourselves and hand it to lettre, with TCP_NODELAY (a small last write
//! would otherwise wait for the server's delayed ACK, about 40 ms per message) and our TLS
//! settings, for implicit TLS and (through [`super::starttls`]) for STARTTLS alike. lettre
//! speaks the commands and reads the replies, through the bound of [`super::wire`]; the
//! message body goes through our own handle on the stream ([`super::data`]), streamed.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};

use super::data::Outgoing;
use super::error::{SmtpError, SmtpErrorKind};
use super::transaction::transaction;
use super::wire::SmtpStream;
use crate::error::Result;
use crate::mail::auth::Authentication;
use crate::mail::net::{MailStream, open_noting};
use crate::mail::server::{Endpoint, Security, SessionKey};
use crate::mail::session_pool::IdleSessions;
use crate::oauth::mail::ConnectOnce;
use crate::services::Services;

/// Sessions idle longer than this are closed; servers drop idle clients after a few minutes
/// anyway (Postfix after 300 s) and a dead pooled session costs a failed NOOP.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle sessions kept per server and login; more concurrent jobs open more, and the extra
/// close when they are done.
const IDLE_PER_KEY: usize = 16;
/// A session back in the pool for less than this is reused without a NOOP. Servers close idle
/// sessions after minutes, not seconds; one that did close it meanwhile answers MAIL with 421
/// or not at all, and the message then goes on a new session (see [`Failed`]).
const TRUSTED_IDLE: Duration = Duration::from_secs(5);

impl AsyncTokioStream for MailStream {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            MailStream::Plain(tcp) => tcp.peer_addr(),
            MailStream::Tls(tls) => tls.get_ref().0.peer_addr(),
        }
    }
}

/// One SMTP session: lettre's connection, and our handle on its stream for message bodies.
pub struct Session {
    pub(super) connection: AsyncSmtpConnection,
    pub(super) stream: SmtpStream,
}

/// Idle SMTP sessions, keyed by everything that makes a session different.
pub struct SmtpTransports {
    pooling: bool,
    idle: IdleSessions<Session>,
}

impl SmtpTransports {
    pub fn new(pooling: bool) -> Self {
        SmtpTransports {
            pooling,
            idle: IdleSessions::new(IDLE_TIMEOUT, IDLE_PER_KEY),
        }
    }

    /// Sends one message on a pooled or new session; a new one connects under `services`.
    pub async fn send(
        &self,
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
        envelope: &Envelope,
        message: &Outgoing,
    ) -> Result<()> {
        let key = SessionKey::new(endpoint, auth);
        let (mut session, unprobed) = self.session(services, &key, endpoint, auth).await?;
        let mut outcome = within(endpoint, transaction(&mut session, envelope, message)).await;
        if unprobed && matches!(&outcome, Ok(Err(failed)) if failed.closed_before_mail) {
            // The server closed the session while it sat in the pool: nothing was accepted
            // on it, so the message goes once more, on a new session.
            let _ = within(endpoint, session.connection.abort()).await;
            session = connect(services, endpoint, auth, &mut Vec::new()).await?;
            outcome = within(endpoint, transaction(&mut session, envelope, message)).await;
        }
        match outcome {
            Ok(Ok(())) => {
                self.give_back(key, session);
                Ok(())
            }
            // A session whose transaction failed half-way is closed, never pooled.
            Ok(Err(failed)) => {
                let _ = within(endpoint, session.connection.abort()).await;
                Err(failed.error.into())
            }
            Err(timeout) => Err(timeout.into()),
        }
    }

    /// A pooled session, or a new one; `true` with a session taken unprobed. A session back
    /// within [`TRUSTED_IDLE`] is taken as it is (a NOOP per message is a fifth round trip on
    /// top of MAIL, RCPT, DATA and the body); an older one is probed first.
    async fn session(
        &self,
        services: &Services,
        key: &SessionKey,
        endpoint: &Endpoint,
        auth: &Authentication,
    ) -> Result<(Session, bool)> {
        match self.idle.take(key, |s| !s.connection.has_broken()) {
            Some((idle, idle_for)) if idle_for < TRUSTED_IDLE => Ok((idle, true)),
            Some((mut idle, _)) => {
                // The server may have closed it while it sat idle.
                if within(endpoint, idle.connection.test_connected())
                    .await
                    .unwrap_or(false)
                {
                    Ok((idle, false))
                } else {
                    Ok((
                        connect(services, endpoint, auth, &mut Vec::new()).await?,
                        false,
                    ))
                }
            }
            None => Ok((
                connect(services, endpoint, auth, &mut Vec::new()).await?,
                false,
            )),
        }
    }

    fn give_back(&self, key: SessionKey, session: Session) {
        if !self.pooling || session.connection.has_broken() {
            return;
        }
        // SMTP has no reaper: sessions past their idle time go whenever one comes back.
        drop(self.idle.expired());
        drop(self.idle.put(key, session));
    }

    /// Idle sessions, for metrics.
    pub fn len(&self) -> usize {
        self.idle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs one SMTP step under the server's timeout.
pub(super) async fn within<T>(
    endpoint: &Endpoint,
    step: impl std::future::Future<Output = T>,
) -> Result<T, SmtpError> {
    tokio::time::timeout(endpoint.timeout, step)
        .await
        .map_err(|_| {
            SmtpError::new(
                SmtpErrorKind::Timeout,
                format!("no answer within {} s", endpoint.timeout.as_secs()),
            )
        })
}

fn credentials(auth: &Authentication) -> Option<(Credentials, Vec<Mechanism>)> {
    match auth {
        Authentication::Simple { username, password } => Some((
            Credentials::new(username.clone(), password.expose_secret().to_string()),
            vec![Mechanism::Plain, Mechanism::Login],
        )),
        Authentication::Oauth2(_) | Authentication::None => None,
    }
}

/// Connects, secures and logs in, noting each step (the `check` subcommand prints them). An
/// OAuth2 login gets its token first; a fetched token the server rejects is replaced once.
async fn connect(
    services: &Services,
    endpoint: &Endpoint,
    auth: &Authentication,
    steps: &mut Vec<String>,
) -> Result<Session> {
    crate::oauth::mail::connect::<Smtp>(services, endpoint, auth, steps).await
}

/// SMTP's one connection attempt, for the login rule every protocol shares.
struct Smtp;

impl ConnectOnce for Smtp {
    type Session = Session;
    fn connect_once<'a>(
        services: &'a Services,
        endpoint: &'a Endpoint,
        auth: &'a Authentication,
        token: Option<&'a SecretString>,
        steps: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Session>> {
        Box::pin(connect_once(services, endpoint, auth, token, steps))
    }
}

async fn connect_once(
    services: &Services,
    endpoint: &Endpoint,
    auth: &Authentication,
    token: Option<&SecretString>,
    steps: &mut Vec<String>,
) -> Result<Session> {
    let stream = open_noting(services.policy(), endpoint, steps).await?;
    let hello = ClientId::default();
    let transport: Box<dyn AsyncTokioStream> = if endpoint.security == Security::Starttls {
        let upgraded = super::starttls::upgrade_to_tls(stream, endpoint, &hello).await?;
        steps.push("tls: STARTTLS upgrade done, certificate verified".into());
        Box::new(upgraded)
    } else {
        Box::new(stream)
    };
    // Every byte the server sends from here on passes the reply bound.
    let stream = SmtpStream::new(transport);
    let mut connection = within(
        endpoint,
        AsyncSmtpConnection::connect_with_transport(Box::new(stream.clone()), &hello),
    )
    .await?
    .map_err(SmtpError::lettre)?;
    steps.push(format!(
        "smtp: greeted, EHLO answered by {}",
        connection.server_info()
    ));
    if let (Authentication::Oauth2(login), Some(token)) = (auth, token) {
        let mechanism = super::oauth::authenticate(&mut connection, endpoint, login, token).await?;
        steps.push(format!(
            "auth: logged in as {} with {}",
            login.username,
            mechanism.name()
        ));
    } else if let Some((credentials, mechanisms)) = credentials(auth) {
        within(endpoint, connection.auth(&mechanisms, &credentials))
            .await?
            .map_err(SmtpError::lettre)?;
        steps.push(format!(
            "auth: logged in as {}",
            auth.username().unwrap_or_default()
        ));
    } else {
        steps.push("auth: none requested".into());
    }
    Ok(Session { connection, stream })
}

/// Connects step by step and describes each step, for the `check` subcommand.
pub async fn check(
    services: &Services,
    endpoint: &Endpoint,
    auth: &Authentication,
) -> Result<Vec<String>> {
    let mut steps = Vec::new();
    let mut session = connect(services, endpoint, auth, &mut steps).await?;
    let _ = within(endpoint, session.connection.quit()).await;
    Ok(steps)
}
