//! SMTP servers on loopback made for tests: a sink that takes any message (and keeps the
//! body, to check what arrived), and servers that misbehave at one step of the session.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Where a hostile server misbehaves, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `220-` and then `bytes` without a line feed.
    EndlessGreetingLine(usize),
    /// `250-x` continuation lines after EHLO, `bytes` worth, never a last line.
    EndlessEhloReply(usize),
    /// After the final dot: `250-` and then `bytes` without a line feed.
    EndlessLineAfterData(usize),
    /// `220-` and then one byte every 100 ms, for ever.
    TrickledGreeting,
    /// Hangs up right after taking each message, as a server restarting or timing out would.
    HangsUpAfterEachMessage,
    /// Answers the next command after each message with `421` and hangs up (RFC 5321 4.2.2).
    Says421AfterEachMessage,
    /// Refuses MAIL with `550` on a connection that has already delivered a message.
    RefusesMailAfterFirstMessage,
    /// Refuses any recipient whose address starts with `nobody@`; DATA then gets 354 if
    /// another recipient was accepted, as Postfix does, and 554 if none was.
    RefusesNobody,
    /// [`Misbehaviour::RefusesNobody`], from a server that does not offer PIPELINING.
    RefusesNobodyWithoutPipelining,
    /// Does not offer PIPELINING after EHLO.
    OffersNoPipelining,
    /// Offers neither 8BITMIME nor SMTPUTF8 after EHLO, as a 7-bit-only relay.
    OffersNo8BitMime,
    /// Waits 300 ms before answering MAIL, reading nothing meanwhile.
    PausesBeforeAnsweringMail,
}

async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    (listener, port)
}

/// Writes `prefix` and then `bytes` bytes of `fill` (with no line feed), stopping when the
/// client goes away.
async fn flood<W: AsyncWriteExt + Unpin>(write: &mut W, prefix: &[u8], fill: &[u8], bytes: usize) {
    if write.write_all(prefix).await.is_err() {
        return;
    }
    let chunk: Vec<u8> = fill.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0;
    while sent < bytes {
        if write.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// A server that misbehaves as told on every connection; returns its port.
pub async fn hostile(misbehaviour: Misbehaviour) -> u16 {
    serve(Some(misbehaviour), Duration::ZERO).await.0
}

/// Each command a server was sent, as `"<connection number> <VERB>"`, with a `+` after the
/// verb when the next command had already arrived with it (the client pipelines).
pub type Commands = Arc<Mutex<Vec<String>>>;

/// [`hostile`] (or a plain sink with `None`) that also records every command it is sent.
pub async fn recording(misbehaviour: Option<Misbehaviour>) -> (u16, Received, Commands) {
    let commands = Commands::default();
    let (port, received) = serve_recording(misbehaviour, Duration::ZERO, commands.clone()).await;
    (port, received, commands)
}

/// Messages a [`sink`] took.
pub type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// A server that takes every message, after `delay` before each reply to the end of DATA;
/// returns its port and what it received.
pub async fn sink(delay: Duration) -> (u16, Received) {
    serve(None, delay).await
}

async fn serve(misbehaviour: Option<Misbehaviour>, delay: Duration) -> (u16, Received) {
    serve_recording(misbehaviour, delay, Commands::default()).await
}

async fn serve_recording(
    misbehaviour: Option<Misbehaviour>,
    delay: Duration,
    commands: Commands,
) -> (u16, Received) {
    let (listener, port) = listener().await;
    let received: Received = Arc::default();
    let kept = received.clone();
    tokio::spawn(async move {
        let mut connections = 0usize;
        while let Ok((stream, _)) = listener.accept().await {
            connections += 1;
            let log = Log {
                connection: connections,
                commands: commands.clone(),
            };
            tokio::spawn(session(stream, misbehaviour, delay, kept.clone(), log));
        }
    });
    (port, received)
}

struct Log {
    connection: usize,
    commands: Commands,
}

async fn session(
    stream: tokio::net::TcpStream,
    misbehaviour: Option<Misbehaviour>,
    delay: Duration,
    kept: Received,
    log: Log,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    match misbehaviour {
        Some(Misbehaviour::EndlessGreetingLine(bytes)) => {
            return flood(&mut write, b"220-", b"x", bytes).await;
        }
        Some(Misbehaviour::TrickledGreeting) => {
            let _ = write.write_all(b"220-").await;
            while write.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return;
        }
        _ => {}
    }
    let _ = write.write_all(b"220 fake ESMTP\r\n").await;
    let mut line = String::new();
    let mut delivered = 0usize;
    let mut accepted_recipients = 0usize;
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let more_waiting = if lines.buffer().is_empty() { "" } else { "+" };
        if let Ok(mut commands) = log.commands.lock() {
            commands.push(format!("{} {verb}{more_waiting}", log.connection));
        }
        let reply: &[u8] = match (verb.as_str(), misbehaviour) {
            (_, Some(Misbehaviour::Says421AfterEachMessage)) if delivered > 0 => {
                let _ = write.write_all(b"421 4.4.2 fake idle too long\r\n").await;
                return;
            }
            ("MAIL", Some(Misbehaviour::RefusesMailAfterFirstMessage)) if delivered > 0 => {
                b"550 5.7.1 fake refuses a second message\r\n"
            }
            ("EHLO", Some(Misbehaviour::EndlessEhloReply(bytes))) => {
                return flood(&mut write, b"250-fake\r\n", b"250-x\r\n", bytes).await;
            }
            (
                "EHLO",
                Some(
                    Misbehaviour::OffersNoPipelining | Misbehaviour::RefusesNobodyWithoutPipelining,
                ),
            ) => b"250-fake\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            ("EHLO", Some(Misbehaviour::OffersNo8BitMime)) => b"250-fake\r\n250 PIPELINING\r\n",
            ("EHLO", _) => b"250-fake\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            ("MAIL", _) => {
                if misbehaviour == Some(Misbehaviour::PausesBeforeAnsweringMail) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                accepted_recipients = 0;
                b"250 2.1.0 ok\r\n"
            }
            (
                "RCPT",
                Some(Misbehaviour::RefusesNobody | Misbehaviour::RefusesNobodyWithoutPipelining),
            ) if line.to_ascii_lowercase().contains("<nobody@") => {
                b"550 5.1.1 fake: no such user\r\n"
            }
            ("RCPT", _) => {
                accepted_recipients += 1;
                b"250 2.1.5 ok\r\n"
            }
            (
                "DATA",
                Some(Misbehaviour::RefusesNobody | Misbehaviour::RefusesNobodyWithoutPipelining),
            ) if accepted_recipients == 0 => b"554 5.5.1 fake: no valid recipients\r\n",
            ("DATA", _) => {
                let _ = write.write_all(b"354 go on\r\n").await;
                let Some(body) = read_message(&mut lines).await else {
                    return;
                };
                if let Some(Misbehaviour::EndlessLineAfterData(bytes)) = misbehaviour {
                    return flood(&mut write, b"250-", b"y", bytes).await;
                }
                kept.lock().expect("lock").push(body);
                delivered += 1;
                tokio::time::sleep(delay).await;
                if let Some(Misbehaviour::HangsUpAfterEachMessage) = misbehaviour {
                    let _ = write.write_all(b"250 2.0.0 taken\r\n").await;
                    return;
                }
                b"250 2.0.0 taken\r\n"
            }
            ("QUIT", _) => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Reads a message up to its final dot; returns its body, dot-stuffing undone.
async fn read_message<R: AsyncBufReadExt + Unpin>(lines: &mut R) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        if line == b".\r\n" {
            return Some(body);
        }
        let text = line.strip_prefix(b".").unwrap_or(&line);
        body.extend_from_slice(text);
    }
}
