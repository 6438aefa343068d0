//! A POP3 client of our own (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595, AUTH with an
//! initial response from RFC 5034) on tokio and rustls.
//!
//! The crates that exist are unfit: none speaks STLS, and the live one leaves dot-stuffing in
//! the message and re-parses its buffer on every read. Here multi-line responses are read line
//! by line, un-stuffed, and capped in size; every command has the server's timeout; `-ERR`
//! texts become coded errors.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncWriteExt, BufReader};

use super::lines::{read_line, read_multiline, read_multiline_each};
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::net::{MailStream, open_noting, upgrade};
use crate::mail::server::{Authentication, Endpoint, Security};
use crate::oauth::mail::Lease;

#[path = "client_oauth.rs"]
mod oauth;

/// No single response may exceed this: a message bigger than any sane limit, or a server that
/// never ends a listing, must not exhaust memory.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// `+OK …` → Ok(rest), `-ERR …` → Err(rest), anything else → a protocol error.
fn status(line: &[u8]) -> std::result::Result<std::result::Result<String, String>, String> {
    let text = String::from_utf8_lossy(line).to_string();
    if let Some(rest) = text.strip_prefix("+OK") {
        Ok(Ok(rest.trim().to_string()))
    } else if let Some(rest) = text.strip_prefix("-ERR") {
        Ok(Err(rest.trim().to_string()))
    } else {
        Err(text.chars().take(200).collect())
    }
}

/// What a refused login means, by the response code in its `-ERR` text (RFC 2449, RFC 3206).
/// A maildrop locked by another session (`[IN-USE]`), a passing server problem (`[SYS/TEMP]`)
/// or logging in too often (`[LOGIN-DELAY]`) is worth another try later; a wrong password is
/// not, and retrying it only risks locking the account.
fn login_refusal_code(text: &str) -> ErrorCode {
    let code = text
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map(|(code, _)| code.to_ascii_uppercase());
    match code.as_deref() {
        Some("IN-USE" | "SYS/TEMP" | "LOGIN-DELAY") => ErrorCode::TemporaryFailure,
        _ => ErrorCode::AuthenticationFailed,
    }
}

/// Parses `n size` or `n uid` lines of LIST and UIDL, skipping malformed ones.
pub fn parse_pairs(body: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let number = parts.next()?.parse().ok()?;
            let value = parts.next()?.to_string();
            Some((number, value))
        })
        .collect()
}

pub struct Pop3Client {
    reader: BufReader<MailStream>,
    timeout: Duration,
    capabilities: Vec<String>,
    line: Vec<u8>,
    /// Commands sent, in order (verbs only, never arguments): tests and logs read them.
    pub sent: Vec<&'static str>,
}

impl std::fmt::Debug for Pop3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Client").finish_non_exhaustive()
    }
}

impl Pop3Client {
    /// Connects, secures, reads capabilities and logs in.
    pub async fn connect(endpoint: &Endpoint, auth: &Authentication) -> Result<Pop3Client> {
        Self::connect_noting(endpoint, auth, &mut Vec::new()).await
    }

    /// Like [`Pop3Client::connect`], noting each step (the `check` subcommand). An OAuth2
    /// login gets its token first; a fetched token the server rejects is replaced once.
    pub async fn connect_noting(
        endpoint: &Endpoint,
        auth: &Authentication,
        steps: &mut Vec<String>,
    ) -> Result<Pop3Client> {
        let Authentication::Oauth2(login) = auth else {
            return Self::connect_once(endpoint, auth, None, steps).await;
        };
        let lease = Lease::acquire(login, endpoint.timeout, steps).await?;
        match Self::connect_once(endpoint, auth, Some(lease.token()), steps).await {
            Err(error) => match lease.renew(login, &error, endpoint.timeout, steps).await? {
                Some(fresh) => Self::connect_once(endpoint, auth, Some(fresh.token()), steps).await,
                None => Err(error),
            },
            done => done,
        }
    }

    async fn connect_once(
        endpoint: &Endpoint,
        auth: &Authentication,
        token: Option<&SecretString>,
        steps: &mut Vec<String>,
    ) -> Result<Pop3Client> {
        let stream = open_noting(endpoint, steps).await?;
        let mut client = Pop3Client {
            reader: BufReader::new(stream),
            timeout: endpoint.timeout,
            capabilities: Vec::new(),
            line: Vec::new(),
            sent: Vec::new(),
        };
        let greeting = client.read_status().await?;
        if let Err(text) = greeting {
            return Err(EmailError::new(
                ErrorCode::ConnectionFailed,
                format!("the server refused the connection: {text}"),
            ));
        }
        client.capabilities = client.capa().await.unwrap_or_default();
        if endpoint.security == Security::Starttls {
            if !client.has("STLS") {
                return Err(EmailError::new(
                    ErrorCode::TlsError,
                    "the server does not offer STLS; refusing to continue in clear text",
                ));
            }
            client.simple("STLS", "STLS", ErrorCode::TlsError).await?;
            // Anything the server sent after its +OK is dropped with the buffer: bytes that
            // arrived in clear text must not be read as if they came over TLS.
            let Pop3Client { reader, sent, .. } = client;
            client = Pop3Client {
                reader: BufReader::new(upgrade(reader.into_inner(), endpoint).await?),
                timeout: endpoint.timeout,
                capabilities: Vec::new(),
                line: Vec::new(),
                sent,
            };
            steps.push("tls: STLS upgrade done, certificate verified".into());
            client.capabilities = client.capa().await.unwrap_or_default();
        }
        client.login(auth, token, endpoint).await?;
        steps.push(format!(
            "auth: logged in as {}",
            auth.username().unwrap_or_default()
        ));
        client.capabilities = client.capa().await.unwrap_or(client.capabilities.clone());
        steps.push(format!(
            "pop3: capabilities {}",
            client.capabilities.join(" ")
        ));
        Ok(client)
    }

    pub fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.split_whitespace().next() == Some(capability))
    }

    fn has_sasl(&self, mechanism: &str) -> bool {
        self.capabilities.iter().any(|c| {
            c.starts_with("SASL")
                && c.split_whitespace()
                    .skip(1)
                    .any(|m| m.eq_ignore_ascii_case(mechanism))
        })
    }

    async fn login(
        &mut self,
        auth: &Authentication,
        token: Option<&SecretString>,
        endpoint: &Endpoint,
    ) -> Result<()> {
        let refused = |who: &str, text: String| {
            EmailError::new(
                login_refusal_code(&text),
                format!("login as {who} refused: {text}"),
            )
        };
        match auth {
            Authentication::Simple { username, password } => {
                if self.has_sasl("PLAIN") {
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("\0{username}\0{}", password.expose_secret()));
                    match self
                        .exchange(&format!("AUTH PLAIN {token}"), "AUTH")
                        .await?
                    {
                        Ok(_) => Ok(()),
                        Err(text) => Err(refused(username, text)),
                    }
                } else {
                    // Checked when the variables are read; again here because USER and PASS
                    // put them on a command line as they are.
                    for (field, value) in [
                        ("username", username.as_str()),
                        ("password", password.expose_secret()),
                    ] {
                        if value.contains(['\r', '\n']) {
                            return Err(EmailError::invalid_input(format!(
                                "/authentication/{field}: contains CR or LF"
                            )));
                        }
                    }
                    if let Err(text) = self.exchange(&format!("USER {username}"), "USER").await? {
                        return Err(refused(username, text));
                    }
                    match self
                        .exchange(&format!("PASS {}", password.expose_secret()), "PASS")
                        .await?
                    {
                        Ok(_) => Ok(()),
                        Err(text) => Err(refused(username, text)),
                    }
                }
            }
            Authentication::Oauth2(login) => match token {
                Some(token) => self.oauth_login(login, token, endpoint).await,
                None => Err(EmailError::internal("an OAuth2 login without a token")),
            },
            Authentication::None => Err(EmailError::invalid_input(
                "/authentication/type: POP3 needs a login; 'none' is for SMTP only",
            )),
        }
    }

    async fn read_status(&mut self) -> Result<std::result::Result<String, String>> {
        let mut line = std::mem::take(&mut self.line);
        let result = timed(
            self.timeout,
            "reading a response",
            read_line(&mut self.reader, &mut line),
        )
        .await;
        let parsed = result.map(|_| status(&line));
        self.line = line;
        match parsed? {
            Ok(s) => Ok(s),
            Err(garbage) => Err(EmailError::new(
                ErrorCode::ConnectionFailed,
                format!("not a POP3 response: {garbage}"),
            )),
        }
    }

    async fn write(&mut self, command: &str) -> Result<()> {
        let line = format!("{command}\r\n");
        let stream = self.reader.get_mut();
        let written = async {
            stream.write_all(line.as_bytes()).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.timeout, written).await {
            Err(_) => Err(EmailError::new(
                ErrorCode::Timeout,
                "the server stopped reading",
            )),
            Ok(Err(e)) => Err(EmailError::new(
                ErrorCode::ConnectionFailed,
                format!("sending a command: {e}"),
            )),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends a command and reads its status line.
    async fn exchange(
        &mut self,
        command: &str,
        verb: &'static str,
    ) -> Result<std::result::Result<String, String>> {
        self.sent.push(verb);
        self.write(command).await?;
        self.read_status().await
    }

    /// A single-line command whose `-ERR` becomes an error with `code`.
    async fn simple(
        &mut self,
        command: &str,
        verb: &'static str,
        code: ErrorCode,
    ) -> Result<String> {
        self.exchange(command, verb)
            .await?
            .map_err(|text| EmailError::new(code, format!("{verb} refused: {text}")))
    }

    /// A multi-line command: its body, un-stuffed.
    async fn multi(
        &mut self,
        command: &str,
        verb: &'static str,
        code: ErrorCode,
    ) -> Result<Vec<u8>> {
        self.simple(command, verb, code).await?;
        self.read_body(verb).await
    }

    async fn read_body(&mut self, verb: &str) -> Result<Vec<u8>> {
        match read_multiline(&mut self.reader, MAX_RESPONSE_BYTES, self.timeout).await {
            Ok(body) => Ok(body),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(EmailError::new(ErrorCode::Timeout, format!("{verb}: {e}")))
            }
            Err(e) => Err(EmailError::new(
                ErrorCode::ConnectionFailed,
                format!("{verb}: {e}"),
            )),
        }
    }

    async fn capa(&mut self) -> Result<Vec<String>> {
        let body = self
            .multi("CAPA", "CAPA", ErrorCode::ConnectionFailed)
            .await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(|l| l.trim().to_ascii_uppercase())
            .collect())
    }

    /// Message numbers and sizes (LIST).
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>> {
        let body = self
            .multi("LIST", "LIST", ErrorCode::ConnectionFailed)
            .await?;
        Ok(parse_pairs(&body)
            .into_iter()
            .filter_map(|(n, size)| Some((n, size.parse().ok()?)))
            .collect())
    }

    /// Message numbers and their unique ids (UIDL), which stay the same across sessions.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>> {
        let body = self
            .multi("UIDL", "UIDL", ErrorCode::ConnectionFailed)
            .await?;
        Ok(parse_pairs(&body))
    }

    /// The headers of each message in `numbers`, in order. With PIPELINING the TOP commands
    /// go out in batches, so a thousand headers cost a few round trips, not a thousand.
    pub async fn headers(&mut self, numbers: &[u32]) -> Result<Vec<Vec<u8>>> {
        let batch = if self.has("PIPELINING") { 64 } else { 1 };
        let mut result = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(batch) {
            let commands: String = chunk.iter().map(|n| format!("TOP {n} 0\r\n")).collect();
            self.sent.extend(std::iter::repeat_n("TOP", chunk.len()));
            let stream = self.reader.get_mut();
            let written = async {
                stream.write_all(commands.as_bytes()).await?;
                stream.flush().await
            };
            timed(self.timeout, "sending TOP", written).await?;
            for n in chunk {
                match self.read_status().await? {
                    Ok(_) => result.push(self.read_body("TOP").await?),
                    // Deleted meanwhile by another session: no headers.
                    Err(text) => {
                        tracing::debug!(message = n, "TOP refused: {text}");
                        result.push(Vec::new());
                    }
                }
            }
        }
        Ok(result)
    }

    pub async fn retr(&mut self, number: u32) -> Result<Vec<u8>> {
        self.multi(&format!("RETR {number}"), "RETR", ErrorCode::EmailNotFound)
            .await
    }

    /// RETR, streamed: the message goes to `each` line by line (see
    /// [`read_multiline_each`]), so no cap applies and nothing is held here.
    pub async fn retr_each(&mut self, number: u32, each: impl FnMut(&[u8], bool)) -> Result<()> {
        self.simple(&format!("RETR {number}"), "RETR", ErrorCode::EmailNotFound)
            .await?;
        match read_multiline_each(&mut self.reader, self.timeout, each).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                Err(EmailError::new(ErrorCode::Timeout, format!("RETR: {e}")))
            }
            Err(e) => Err(EmailError::new(
                ErrorCode::ConnectionFailed,
                format!("RETR: {e}"),
            )),
        }
    }

    pub async fn dele(&mut self, number: u32) -> Result<()> {
        self.simple(&format!("DELE {number}"), "DELE", ErrorCode::EmailNotFound)
            .await
            .map(|_| ())
    }

    pub async fn rset(&mut self) -> Result<()> {
        self.simple("RSET", "RSET", ErrorCode::ConnectionFailed)
            .await
            .map(|_| ())
    }

    pub async fn noop(&mut self) -> Result<()> {
        self.simple("NOOP", "NOOP", ErrorCode::ConnectionFailed)
            .await
            .map(|_| ())
    }

    /// Ends the session; deletions marked with DELE take effect only now (RFC 1939 §6).
    pub async fn quit(mut self) -> Result<()> {
        self.simple("QUIT", "QUIT", ErrorCode::TemporaryFailure)
            .await
            .map(|_| ())
    }
}

async fn timed<T>(
    timeout: Duration,
    what: &str,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, future).await {
        Err(_) => Err(EmailError::new(
            ErrorCode::Timeout,
            format!("{what}: no answer within {} s", timeout.as_secs()),
        )),
        Ok(Err(e)) => Err(EmailError::new(
            ErrorCode::ConnectionFailed,
            format!("{what}: {e}"),
        )),
        Ok(Ok(v)) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_refusals_by_response_code() {
        for (text, code) in [
            (
                "[IN-USE] Mailbox is locked by another POP3 session",
                ErrorCode::TemporaryFailure,
            ),
            ("[SYS/TEMP] Try again later", ErrorCode::TemporaryFailure),
            ("[in-use] lower case", ErrorCode::TemporaryFailure),
            ("[LOGIN-DELAY] Wait 5 minutes", ErrorCode::TemporaryFailure),
            (
                "[AUTH] Authentication failed.",
                ErrorCode::AuthenticationFailed,
            ),
            (
                "[SYS/PERM] Mailbox is broken",
                ErrorCode::AuthenticationFailed,
            ),
            ("Authentication failed.", ErrorCode::AuthenticationFailed),
            ("[IN-USE", ErrorCode::AuthenticationFailed),
            ("", ErrorCode::AuthenticationFailed),
        ] {
            assert_eq!(login_refusal_code(text), code, "{text}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(status(b"+OK 2 320"), Ok(Ok("2 320".into())));
        assert_eq!(
            status(b"-ERR [AUTH] Authentication failed."),
            Ok(Err("[AUTH] Authentication failed.".into()))
        );
        assert!(status(b"* OK imap?").is_err());
        assert!(status(b"").is_err());
    }

    #[test]
    fn list_and_uidl_pairs_skip_garbage() {
        assert_eq!(
            parse_pairs(b"1 120\r\n2 x\r\nbad\r\n3 99999\r\n"),
            vec![
                (1, "120".to_string()),
                (2, "x".to_string()),
                (3, "99999".to_string())
            ]
        );
    }
}
