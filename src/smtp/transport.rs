//! lettre transports, one per server + user + security, each keeping a pool of open sessions.
//!
//! Opening an SMTP session costs a TCP handshake, a TLS handshake, EHLO twice and AUTH: several
//! round trips per message when each job starts from scratch, as Camunda's connector does.
//! Reusing sessions keeps a process that sends mail in a loop at the speed of the server.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::server::{Authentication, Endpoint, Security};
use crate::mail::tls::{is_tls_failure, parse_pem_certificates};

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Sessions idle longer than this are closed; servers drop idle clients after a few minutes
/// anyway (Postfix after 300 s) and a closed pooled session costs a failed attempt.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Open sessions per transport; above this, concurrent jobs to one server wait for a session.
const SESSIONS_PER_SERVER: u32 = 16;
/// Distinct transports kept; past this the least recently used is dropped (with its sessions).
const MAX_TRANSPORTS: usize = 64;

/// The transports in use, keyed by everything that makes a session different.
pub struct SmtpTransports {
    pooling: bool,
    transports: Mutex<HashMap<u64, (Transport, Instant)>>,
}

impl SmtpTransports {
    pub fn new(pooling: bool) -> Self {
        SmtpTransports {
            pooling,
            transports: Mutex::new(HashMap::new()),
        }
    }

    /// A transport for this server and login, shared with earlier jobs when pooling is on.
    pub fn get(&self, endpoint: &Endpoint, auth: &Authentication) -> Result<Transport> {
        if !self.pooling {
            return build_transport(endpoint, auth, PoolConfig::new().max_size(1).min_idle(0));
        }
        let key = session_key(endpoint, auth);
        let mut transports = self
            .transports
            .lock()
            .map_err(|_| EmailError::internal("SMTP transport table poisoned"))?;
        if let Some((transport, used)) = transports.get_mut(&key) {
            *used = Instant::now();
            return Ok(transport.clone());
        }
        if transports.len() >= MAX_TRANSPORTS
            && let Some(oldest) = transports
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            transports.remove(&oldest);
        }
        let transport = build_transport(
            endpoint,
            auth,
            PoolConfig::new()
                .max_size(SESSIONS_PER_SERVER)
                .idle_timeout(IDLE_TIMEOUT),
        )?;
        transports.insert(key, (transport.clone(), Instant::now()));
        Ok(transport)
    }

    /// Forgets the transport of a server whose sessions failed, so the next job starts fresh.
    pub fn discard(&self, endpoint: &Endpoint, auth: &Authentication) {
        if let Ok(mut transports) = self.transports.lock() {
            transports.remove(&session_key(endpoint, auth));
        }
    }

    pub fn len(&self) -> usize {
        self.transports.lock().map_or(0, |t| t.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A hash of the endpoint and credentials. The password takes part so that a changed password
/// never reuses a session logged in with the old one; only the hash is kept as the key.
fn session_key(endpoint: &Endpoint, auth: &Authentication) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    endpoint.hash(&mut hasher);
    match auth {
        Authentication::Simple { username, password } => {
            (1u8, username, password.expose_secret()).hash(&mut hasher)
        }
        Authentication::Oauth2 {
            username,
            access_token,
        } => (2u8, username, access_token.expose_secret()).hash(&mut hasher),
        Authentication::None => 0u8.hash(&mut hasher),
    }
    hasher.finish()
}

fn tls_parameters(endpoint: &Endpoint) -> Result<TlsParameters> {
    let mut builder = TlsParameters::builder(endpoint.host.clone());
    if let Some(pem) = &endpoint.server_certificate {
        for der in parse_pem_certificates(pem)? {
            let cert = Certificate::from_der(der.to_vec()).map_err(|e| {
                EmailError::invalid_input(format!("/server/serverCertificate: {e}"))
            })?;
            builder = builder.add_root_certificate(cert);
        }
    }
    if endpoint.accept_invalid_certificates {
        tracing::warn!(
            server = %endpoint.address(),
            "acceptInvalidCertificates is set: the server's certificate is not verified (development only)"
        );
        builder = builder.dangerous_accept_invalid_certs(true);
    }
    builder
        .build_rustls()
        .map_err(|e| EmailError::new(ErrorCode::TlsError, e.to_string()))
}

fn tls_mode(endpoint: &Endpoint) -> Result<Tls> {
    Ok(match endpoint.security {
        Security::Tls => Tls::Wrapper(tls_parameters(endpoint)?),
        // Required, not Opportunistic: a server that stops offering STARTTLS must not
        // silently receive the password in clear text.
        Security::Starttls => Tls::Required(tls_parameters(endpoint)?),
        Security::None => Tls::None,
    })
}

fn credentials(auth: &Authentication) -> Option<(Credentials, Vec<Mechanism>)> {
    match auth {
        Authentication::Simple { username, password } => Some((
            Credentials::new(username.clone(), password.expose_secret().to_string()),
            vec![Mechanism::Plain, Mechanism::Login],
        )),
        Authentication::Oauth2 {
            username,
            access_token,
        } => Some((
            Credentials::new(username.clone(), access_token.expose_secret().to_string()),
            vec![Mechanism::Xoauth2],
        )),
        Authentication::None => None,
    }
}

fn build_transport(
    endpoint: &Endpoint,
    auth: &Authentication,
    pool: PoolConfig,
) -> Result<Transport> {
    let mut builder = Transport::builder_dangerous(endpoint.host.clone())
        .port(endpoint.port)
        .tls(tls_mode(endpoint)?)
        .timeout(Some(endpoint.timeout))
        .pool_config(pool);
    if let Some((credentials, mechanisms)) = credentials(auth) {
        builder = builder.credentials(credentials).authentication(mechanisms);
    }
    Ok(builder.build())
}

/// Maps a lettre failure to a contract code. The server's reply text is kept: it is what an
/// operator needs ("5.1.1 User unknown") and it never contains our credentials.
pub fn classify(error: &lettre::transport::smtp::Error) -> EmailError {
    let text = error.to_string();
    let code = if error.is_timeout() {
        ErrorCode::Timeout
    } else if error.is_tls() || is_tls_failure(error) || text.contains("STARTTLS is not supported")
    {
        ErrorCode::TlsError
    } else if let Some(status) = error.status() {
        classify_reply(&status.to_string(), &text)
    } else if text.contains("No compatible authentication mechanism") {
        ErrorCode::AuthenticationFailed
    } else {
        ErrorCode::ConnectionFailed
    };
    let message = match code {
        ErrorCode::TlsError if text.contains("STARTTLS is not supported") => {
            "the server does not offer STARTTLS; refusing to continue in clear text".to_string()
        }
        ErrorCode::AuthenticationFailed if error.status().is_none() => {
            "the server offers no login mechanism this connection can use (is AUTH only offered after TLS?)".to_string()
        }
        _ => text,
    };
    EmailError::new(code, message)
}

/// Classifies a negative SMTP reply by its code and enhanced status code (RFC 3463).
fn classify_reply(code: &str, text: &str) -> ErrorCode {
    let lower = text.to_ascii_lowercase();
    // X.1.Y is "addressing"; 5.1.7 and 5.1.8 are about the sender, the rest the recipients.
    let enhanced_addressing = [
        "5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.6", "5.1.10",
    ]
    .iter()
    .any(|c| text.contains(&format!(" {c} ")) || text.contains(&format!(": {c} ")));
    match code {
        "535" | "534" | "538" | "530" => ErrorCode::AuthenticationFailed,
        c if c.starts_with('4') => ErrorCode::TemporaryFailure,
        "550" | "551" | "553" | "554" | "552"
            if enhanced_addressing
                || lower.contains("recipient")
                || lower.contains("user unknown") =>
        {
            ErrorCode::RecipientsRejected
        }
        c if c.starts_with('5') => ErrorCode::MessageRejected,
        _ => ErrorCode::ConnectionFailed,
    }
}

/// Connects step by step and describes each step, for the `check` subcommand.
pub async fn check(endpoint: &Endpoint, auth: &Authentication) -> Result<Vec<String>> {
    let mut steps = Vec::new();
    let started = Instant::now();
    let tcp = tokio::time::timeout(
        endpoint.timeout,
        tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
    )
    .await
    .map_err(|_| EmailError::new(ErrorCode::Timeout, "TCP connect timed out"))?
    .map_err(|e| EmailError::new(ErrorCode::ConnectionFailed, format!("TCP connect: {e}")))?;
    drop(tcp);
    steps.push(format!(
        "tcp: connected to {} in {} ms",
        endpoint.address(),
        started.elapsed().as_millis()
    ));
    let hello = ClientId::default();
    let wrapper_tls = match endpoint.security {
        Security::Tls => Some(tls_parameters(endpoint)?),
        _ => None,
    };
    let mut connection = AsyncSmtpConnection::connect_tokio1(
        (endpoint.host.as_str(), endpoint.port),
        Some(endpoint.timeout),
        &hello,
        wrapper_tls,
        None,
    )
    .await
    .map_err(|e| classify(&e))?;
    if endpoint.security == Security::Tls {
        steps.push("tls: implicit TLS handshake done, certificate verified".into());
    }
    steps.push(format!(
        "smtp: greeted, EHLO answered by {}",
        connection.server_info()
    ));
    if endpoint.security == Security::Starttls {
        connection
            .starttls(tls_parameters(endpoint)?, &hello)
            .await
            .map_err(|e| classify(&e))?;
        steps.push(format!(
            "tls: STARTTLS upgrade done, certificate verified; EHLO after TLS: {}",
            connection.server_info()
        ));
    }
    match credentials(auth) {
        Some((credentials, mechanisms)) => {
            connection
                .auth(&mechanisms, &credentials)
                .await
                .map_err(|e| classify(&e))?;
            steps.push(format!(
                "auth: logged in as {}",
                auth.username().unwrap_or_default()
            ));
        }
        None => steps.push("auth: none requested".into()),
    }
    let _ = connection.quit().await;
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_to_contract_codes() {
        let c = |code, text| classify_reply(code, text);
        assert_eq!(
            c(
                "535",
                "permanent error (535): 5.7.8 Error: authentication failed"
            ),
            ErrorCode::AuthenticationFailed
        );
        assert_eq!(
            c(
                "550",
                "permanent error (550): 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown"
            ),
            ErrorCode::RecipientsRejected
        );
        assert_eq!(
            c("554", "permanent error (554): 5.7.1 Client host rejected"),
            ErrorCode::MessageRejected
        );
        assert_eq!(
            c(
                "552",
                "permanent error (552): 5.3.4 Message size exceeds fixed limit"
            ),
            ErrorCode::MessageRejected
        );
        assert_eq!(
            c("451", "transient error (451): 4.3.0 try again"),
            ErrorCode::TemporaryFailure
        );
        assert_eq!(
            c("454", "transient error (454): 4.7.0 TLS not available"),
            ErrorCode::TemporaryFailure
        );
    }

    #[test]
    fn session_keys_differ_by_password_and_security() {
        let endpoint = Endpoint {
            host: "h".into(),
            port: 25,
            security: Security::None,
            server_certificate: None,
            accept_invalid_certificates: false,
            timeout: Duration::from_secs(1),
        };
        let a = Authentication::Simple {
            username: "u".into(),
            password: "1".to_string().into(),
        };
        let b = Authentication::Simple {
            username: "u".into(),
            password: "2".to_string().into(),
        };
        assert_ne!(session_key(&endpoint, &a), session_key(&endpoint, &b));
        let tls = Endpoint {
            security: Security::Tls,
            ..endpoint.clone()
        };
        assert_ne!(session_key(&endpoint, &a), session_key(&tls, &a));
        assert_eq!(session_key(&endpoint, &a), session_key(&endpoint, &a));
    }
}
