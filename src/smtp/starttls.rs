//! SMTP STARTTLS (RFC 3207) on our own TLS configuration.
//!
//! lettre's `starttls` builds its rustls settings itself, from the Mozilla roots it bundles,
//! and takes no `ClientConfig`: a company CA in the system store then worked on port 465 (our
//! TLS) and failed on 587. So the clear-text part is done here (greeting, EHLO, STARTTLS, 220),
//! the upgrade uses [`crate::mail::net::upgrade`] like every other protocol, and the TLS stream
//! goes to lettre. lettre reads a greeting first on any stream it is given, so the greeting we
//! read is replayed to it; it then sends EHLO again, as RFC 3207 requires after TLS.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite};
use tokio::io::{AsyncWriteExt, BufReader, ReadBuf};

use super::error::{NO_STARTTLS, SmtpError, SmtpErrorKind};
use super::transport::within;
use super::wire::Bounded;
use crate::error::Result;
use crate::mail::net::{MailStream, upgrade};
use crate::mail::server::Endpoint;

/// One SMTP reply: its code and the text of each line.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

fn broken(text: impl Into<String>) -> SmtpError {
    SmtpError::new(SmtpErrorKind::Connection, text)
}

/// Reads one (possibly multi-line) reply, appending its bytes to `raw`. The reader's stream
/// is [`Bounded`]: it refuses a line or a reply beyond the limits before they are buffered.
pub async fn read_reply<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    raw: &mut Vec<u8>,
) -> Result<Reply, SmtpError> {
    let mut lines = Vec::new();
    let mut first_code = None;
    loop {
        let mut line = Vec::new();
        let read = reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| broken(format!("reading the server's reply: {e}")))?;
        if read == 0 || !line.ends_with(b"\n") {
            return Err(broken("the server closed the connection"));
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let code = reply_code(&text).ok_or_else(|| {
            broken(format!(
                "not an SMTP reply: {}",
                text.chars().take(100).collect::<String>()
            ))
        })?;
        // Every line of a reply carries the code; the first one's is the reply's.
        first_code.get_or_insert(code);
        let more = text.as_bytes().get(3) == Some(&b'-');
        lines.push(text.get(4..).unwrap_or("").to_string());
        if !more {
            return Ok(Reply {
                code: first_code.unwrap_or(code),
                lines,
            });
        }
    }
}

/// The code of a reply line (RFC 5321 4.2: `Reply-code [ SP / "-" text ]`), whose first digit
/// is 1 to 5 and second 0 to 5; anything else is not SMTP, and a server that sends it is not
/// believed about anything else either.
fn reply_code(line: &str) -> Option<u16> {
    let bytes = line.as_bytes();
    let (first, second, third) = (*bytes.first()?, *bytes.get(1)?, *bytes.get(2)?);
    let well_formed = (b'1'..=b'5').contains(&first)
        && (b'0'..=b'5').contains(&second)
        && third.is_ascii_digit()
        && matches!(bytes.get(3), None | Some(b' ') | Some(b'-'));
    well_formed.then(|| {
        u16::from(first - b'0') * 100 + u16::from(second - b'0') * 10 + u16::from(third - b'0')
    })
}

async fn command(
    reader: &mut BufReader<Bounded<MailStream>>,
    endpoint: &Endpoint,
    line: &str,
) -> Result<Reply, SmtpError> {
    within(endpoint, async {
        let stream = reader.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| broken(format!("sending {line}: {e}")))?;
        stream
            .flush()
            .await
            .map_err(|e| broken(format!("sending {line}: {e}")))?;
        read_reply(reader, &mut Vec::new()).await
    })
    .await?
}

/// Greeting, EHLO and STARTTLS in clear text, then the TLS handshake with our configuration.
/// Returns the TLS stream with the greeting queued for lettre to read.
pub async fn upgrade_to_tls(
    stream: MailStream,
    endpoint: &Endpoint,
    hello: &ClientId,
) -> Result<Replay> {
    let mut reader = BufReader::new(Bounded::new(stream));
    let mut greeting = Vec::new();
    let reply = within(endpoint, read_reply(&mut reader, &mut greeting)).await??;
    match reply.code {
        220 => {}
        400..=499 => {
            return Err(SmtpError::new(
                SmtpErrorKind::Transient,
                format!("the server is not accepting mail now: {}", reply.text()),
            )
            .into());
        }
        _ => {
            return Err(broken(format!(
                "the server refused the connection: {}",
                reply.text()
            ))
            .into());
        }
    }
    let ehlo = command(&mut reader, endpoint, &format!("EHLO {hello}")).await?;
    if ehlo.code != 250 {
        return Err(broken(format!("EHLO refused: {}", ehlo.text())).into());
    }
    let offered = ehlo.lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(SmtpError::new(SmtpErrorKind::Tls, NO_STARTTLS).into());
    }
    let started = command(&mut reader, endpoint, "STARTTLS").await?;
    if started.code != 220 {
        return Err(SmtpError::new(
            SmtpErrorKind::Tls,
            format!("the server refused STARTTLS: {}", started.text()),
        )
        .into());
    }
    // Whatever the server sent after its 220 is dropped with the buffer: bytes that came in
    // clear text must never be read as if they had come over TLS (CVE-2011-0411 and kin).
    let tls = upgrade(reader.into_inner().into_inner(), endpoint).await?;
    Ok(Replay {
        pending: greeting,
        offset: 0,
        inner: tls,
    })
}

/// A stream that first yields `pending` (the server's greeting, already read), then the
/// inner stream.
#[derive(Debug)]
pub struct Replay {
    pending: Vec<u8>,
    offset: usize,
    inner: MailStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.offset < this.pending.len() {
            let rest = &this.pending[this.offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.offset += n;
            if this.offset == this.pending.len() {
                this.pending = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Replay {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::smtp::wire::{MAX_LINE_BYTES, MAX_REPLY_LINES};

    async fn parse(bytes: &[u8]) -> Result<Reply, SmtpError> {
        let mut reader = BufReader::new(Bounded::new(bytes));
        read_reply(&mut reader, &mut Vec::new()).await
    }

    #[tokio::test]
    async fn multi_line_replies_are_read_whole() {
        let reply = parse(b"250-mail.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\nrest")
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.lines, ["mail.example.test", "PIPELINING", "STARTTLS"]);
        let bare = parse(b"220\n").await.unwrap();
        assert_eq!((bare.code, bare.lines.len()), (220, 1));
    }

    #[tokio::test]
    async fn garbage_endless_and_cut_replies_are_errors() {
        assert!(parse(b"HTTP/1.1 400 Bad Request\r\n").await.is_err());
        assert!(parse(b"250-a\r\n").await.is_err());
        assert!(parse(&vec![b'2'; MAX_LINE_BYTES + 1]).await.is_err());
        let endless: Vec<u8> = b"250-x\r\n".repeat(MAX_REPLY_LINES + 5);
        assert!(parse(&endless).await.is_err());
    }
}
