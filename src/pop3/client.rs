//! A POP3 client of our own (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595, AUTH with an
//! initial response from RFC 5034) on tokio and rustls.
//!
//! The crates that exist are unfit: none speaks STLS, and the live one leaves dot-stuffing in
//! the message and re-parses its buffer on every read. Here multi-line responses are read line
//! by line, un-stuffed, and capped in size; every command has the server's timeout; `-ERR`
//! texts become coded errors.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use tokio::io::{AsyncWriteExt, BufReader};

use super::error::{Pop3Error, Pop3ErrorKind, ServerReply};
use super::lines::{read_line, read_multiline, read_multiline_each};
use crate::error::Result;
use crate::mail::auth::Authentication;
use crate::mail::cut::Limits;
use crate::mail::net::{MailStream, open_noting, upgrade};
use crate::mail::prune::{Pruned, Pruner};
use crate::mail::server::{Endpoint, Security};
use crate::oauth::mail::{ConnectOnce, connect};
use crate::services::Services;

mod headers;
mod login;
mod oauth;

use super::farewell::Farewells;

/// No answer whose whole is not kept may run longer than this (a header block, of which
/// [`MAX_HEADER_BYTES`] are kept): what never ends is not read until the job's timeout.
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// The longest LIST or UIDL answer: some 150,000 messages and more. A longer one is a server
/// that never ends its listing.
pub const MAX_LISTING_BYTES: usize = 4 * 1024 * 1024;

/// The longest CAPA answer.
const MAX_CAPA_BYTES: usize = 64 * 1024;

pub use headers::{HEADER_BATCH, MAX_HEADER_BYTES};

/// A command's answer: `+OK` with its words, or the server's `-ERR`.
type Status = std::result::Result<String, ServerReply>;

/// `+OK …` → Ok(rest), `-ERR …` → Err(reply), anything else → a protocol error.
fn status(line: &[u8]) -> std::result::Result<Status, Pop3Error> {
    let text = String::from_utf8_lossy(line).to_string();
    if let Some(rest) = text.strip_prefix("+OK") {
        Ok(Ok(rest.trim().to_string()))
    } else if let Some(rest) = text.strip_prefix("-ERR") {
        Ok(Err(ServerReply::new(rest.trim().to_string())))
    } else {
        let garbage: String = text.chars().take(200).collect();
        Err(Pop3Error::new(
            Pop3ErrorKind::Protocol,
            format!("not a POP3 response: {garbage}"),
        ))
    }
}

/// Parses `n size` lines of LIST, skipping malformed ones.
pub fn parse_sizes(body: &[u8]) -> Vec<(u32, u64)> {
    body.split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let mut parts = line.split_whitespace();
            let number = parts.next()?.parse().ok()?;
            let size = parts.next()?.parse().ok()?;
            Some((number, size))
        })
        .collect()
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
    /// None once the connection was handed on: to TLS after STLS, or to QUIT.
    reader: Option<BufReader<MailStream>>,
    timeout: Duration,
    capabilities: Vec<String>,
    line: Vec<u8>,
    /// Commands sent, in order (verbs only, never arguments): tests and logs read them.
    pub sent: Vec<&'static str>,
    /// Where a session dropped before its QUIT says goodbye (see [`super::farewell`]).
    farewells: Arc<Farewells>,
}

impl std::fmt::Debug for Pop3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pop3Client").finish_non_exhaustive()
    }
}

impl Pop3Client {
    /// Connects, secures, reads capabilities and logs in, under the process's `services` (the
    /// host policy, the OAuth2 token caches, the farewells shutdown waits for).
    pub async fn connect(
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
    ) -> Result<Pop3Client> {
        Self::connect_noting(services, endpoint, auth, &mut Vec::new()).await
    }

    /// Like [`Pop3Client::connect`], noting each step (the `check` subcommand). An OAuth2
    /// login gets its token first; a fetched token the server rejects is replaced once.
    pub async fn connect_noting(
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
        steps: &mut Vec<String>,
    ) -> Result<Pop3Client> {
        connect::<Pop3Client>(services, endpoint, auth, steps).await
    }

    async fn log_in_once(
        services: &Services,
        endpoint: &Endpoint,
        auth: &Authentication,
        token: Option<&SecretString>,
        steps: &mut Vec<String>,
    ) -> Result<Pop3Client> {
        let stream = open_noting(services.policy(), endpoint, steps).await?;
        let mut client = Pop3Client {
            reader: Some(BufReader::new(stream)),
            timeout: endpoint.timeout,
            capabilities: Vec::new(),
            line: Vec::new(),
            sent: Vec::new(),
            farewells: services.farewells().clone(),
        };
        let greeting = client.read_status().await?;
        if let Err(reply) = greeting {
            return Err(Pop3Error::new(
                Pop3ErrorKind::Connection,
                format!("the server refused the connection: {reply}"),
            )
            .with_source(reply)
            .into());
        }
        client.capabilities = client.capa().await.unwrap_or_default();
        if endpoint.security == Security::Starttls {
            if !client.has("STLS") {
                return Err(Pop3Error::new(
                    Pop3ErrorKind::Tls,
                    "the server does not offer STLS; refusing to continue in clear text",
                )
                .into());
            }
            client.simple("STLS", "STLS", Pop3ErrorKind::Tls).await?;
            // Anything the server sent after its +OK is dropped with the buffer: bytes that
            // arrived in clear text must not be read as if they came over TLS.
            let plain = client.reader.take().ok_or_else(closed)?;
            client.reader = Some(BufReader::new(upgrade(plain.into_inner(), endpoint).await?));
            client.capabilities = Vec::new();
            client.line = Vec::new();
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

    async fn read_status(&mut self) -> Result<Status, Pop3Error> {
        let mut line = std::mem::take(&mut self.line);
        let result = timed(self.timeout, "reading a response", async {
            match self.reader.as_mut() {
                Some(reader) => read_line(reader, &mut line).await,
                None => Err(std::io::ErrorKind::NotConnected.into()),
            }
        })
        .await;
        let parsed = result.and_then(|_| status(&line));
        self.line = line;
        parsed
    }

    async fn write(&mut self, command: &str) -> Result<(), Pop3Error> {
        let line = format!("{command}\r\n");
        let timeout = self.timeout;
        let stream = self.stream()?.get_mut();
        let written = async {
            stream.write_all(line.as_bytes()).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, written).await {
            Err(_) => Err(Pop3Error::new(
                Pop3ErrorKind::Timeout,
                "the server stopped reading",
            )),
            Ok(Err(e)) => Err(Pop3Error::new(
                Pop3ErrorKind::Connection,
                format!("sending a command: {e}"),
            )
            .with_source(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends a command and reads its status line.
    async fn exchange(&mut self, command: &str, verb: &'static str) -> Result<Status, Pop3Error> {
        self.sent.push(verb);
        self.write(command).await?;
        self.read_status().await
    }

    /// A single-line command whose `-ERR` means `on_err`.
    async fn simple(
        &mut self,
        command: &str,
        verb: &'static str,
        on_err: Pop3ErrorKind,
    ) -> Result<String, Pop3Error> {
        self.exchange(command, verb)
            .await?
            .map_err(|reply| Pop3Error::refused(verb, reply, on_err))
    }

    /// A multi-line command: its body, un-stuffed, of at most `cap` bytes.
    async fn multi(
        &mut self,
        command: &str,
        verb: &'static str,
        cap: usize,
    ) -> Result<Vec<u8>, Pop3Error> {
        self.simple(command, verb, Pop3ErrorKind::Refused).await?;
        let timeout = self.timeout;
        let body = read_multiline(self.stream()?, cap, timeout).await;
        body.map_err(|e| Pop3Error::io(verb, e))
    }

    async fn capa(&mut self) -> Result<Vec<String>, Pop3Error> {
        let body = self.multi("CAPA", "CAPA", MAX_CAPA_BYTES).await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(|l| l.trim().to_ascii_uppercase())
            .collect())
    }

    /// Message numbers and sizes (LIST).
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        let body = self.multi("LIST", "LIST", MAX_LISTING_BYTES).await?;
        Ok(parse_sizes(&body))
    }

    /// Message numbers and their unique ids (UIDL), which stay the same across sessions.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        let body = self.multi("UIDL", "UIDL", MAX_LISTING_BYTES).await?;
        Ok(parse_pairs(&body))
    }

    /// RETR, streamed: the message goes to `each` line by line (see
    /// [`read_multiline_each`]), so nothing is held here. `size` is the message's size by
    /// LIST: an answer much longer than that is a server that never ends it.
    pub async fn retr_each(
        &mut self,
        number: u32,
        size: u64,
        each: impl FnMut(&[u8], bool),
    ) -> Result<(), Pop3Error> {
        let retr = format!("RETR {number}");
        self.simple(&retr, "RETR", Pop3ErrorKind::MessageMissing)
            .await?;
        let timeout = self.timeout;
        read_multiline_each(self.stream()?, answer_bound(size), timeout, each)
            .await
            .map_err(|e| Pop3Error::io("RETR", e))
    }

    /// RETR through a [`Pruner`]: what a read response under `limits` could hold of the
    /// message, however large it is.
    pub async fn retr_pruned(
        &mut self,
        number: u32,
        size: u64,
        limits: Limits,
    ) -> Result<Pruned, Pop3Error> {
        let mut pruner = Pruner::new(limits);
        self.retr_each(number, size, |piece, complete| pruner.feed(piece, complete))
            .await?;
        Ok(pruner.finish())
    }

    pub async fn dele(&mut self, number: u32) -> Result<(), Pop3Error> {
        self.simple(
            &format!("DELE {number}"),
            "DELE",
            Pop3ErrorKind::MessageMissing,
        )
        .await
        .map(|_| ())
    }

    pub async fn rset(&mut self) -> Result<(), Pop3Error> {
        self.simple("RSET", "RSET", Pop3ErrorKind::Refused)
            .await
            .map(|_| ())
    }

    pub async fn noop(&mut self) -> Result<(), Pop3Error> {
        self.simple("NOOP", "NOOP", Pop3ErrorKind::Refused)
            .await
            .map(|_| ())
    }

    /// Ends the session; deletions marked with DELE take effect only now (RFC 1939 §6).
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        // Once QUIT may have reached the server, an RSET after it would be a lie: whatever
        // happens to the reply, the drop that follows says no farewell.
        let result = self
            .simple("QUIT", "QUIT", Pop3ErrorKind::Unconfirmed)
            .await
            .map(|_| ());
        self.reader = None;
        result
    }

    fn stream(&mut self) -> Result<&mut BufReader<MailStream>, Pop3Error> {
        self.reader.as_mut().ok_or_else(closed)
    }
}

/// The longest answer about a message of `size` bytes (by LIST) that is believed: twice the
/// size and a MiB, for servers that count a message differently from how they send it.
fn answer_bound(size: u64) -> u64 {
    size.saturating_mul(2).saturating_add(1024 * 1024)
}

fn closed() -> Pop3Error {
    Pop3Error::new(
        Pop3ErrorKind::Connection,
        "the POP3 connection is already closed",
    )
}

/// A session dropped before its QUIT rolls back its DELE marks (see [`super::farewell`]).
impl Drop for Pop3Client {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            self.farewells.send(reader);
        }
    }
}

async fn timed<T>(
    timeout: Duration,
    what: &str,
    future: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Pop3Error> {
    match tokio::time::timeout(timeout, future).await {
        Err(_) => Err(Pop3Error::new(
            Pop3ErrorKind::Timeout,
            format!("{what}: no answer within {} s", timeout.as_secs()),
        )),
        Ok(Err(e)) => {
            Err(Pop3Error::new(Pop3ErrorKind::Connection, format!("{what}: {e}")).with_source(e))
        }
        Ok(Ok(v)) => Ok(v),
    }
}

/// One attempt, for the login rule every protocol shares (`crate::oauth::mail::connect`).
impl ConnectOnce for Pop3Client {
    type Session = Pop3Client;
    fn connect_once<'a>(
        services: &'a Services,
        endpoint: &'a Endpoint,
        auth: &'a Authentication,
        token: Option<&'a SecretString>,
        steps: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Pop3Client>> {
        Box::pin(Self::log_in_once(services, endpoint, auth, token, steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status(b"+OK 2 320").unwrap(), Ok("2 320".into()));
        let refused = status(b"-ERR [AUTH] Authentication failed.")
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.code.as_deref(), Some("AUTH"));
        assert_eq!(refused.text, "[AUTH] Authentication failed.");
        let garbage = status(b"* OK imap?").unwrap_err();
        assert_eq!(garbage.kind(), Pop3ErrorKind::Protocol);
        assert_eq!(garbage.to_string(), "not a POP3 response: * OK imap?");
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
