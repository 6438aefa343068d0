//! What lies between lettre and the socket. A server is chosen by the job, so it is hostile
//! input: lettre reads a reply line whole before it checks its length (a `220-` and 1 GiB
//! without a line feed took 1 GB), so every byte the server sends passes [`ReplyBound`] first,
//! before and after STARTTLS, for every reply (greeting, EHLO, AUTH, MAIL, RCPT, DATA, the
//! reply after the final dot, NOOP, QUIT). The stream is also shared ([`SmtpStream`]): lettre
//! sends the commands, and the message body is written through our own handle in pieces
//! ([`super::data`]), where lettre would take it as one slice in memory.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// RFC 5321 allows 512 octets per reply line; lettre refuses lines over 1,000 once read.
pub const MAX_LINE_BYTES: usize = 2048;
/// Lines of one reply: EHLO lists a dozen extensions, nothing needs hundreds.
pub const MAX_REPLY_LINES: usize = 200;
/// All lines of one reply together.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Counts the server's bytes as they arrive and refuses a reply line, a reply's number of
/// lines or its total beyond the limits above, whoever reads the bytes afterwards.
#[derive(Debug, Default, Clone)]
pub struct ReplyBound {
    /// Bytes of the current line so far.
    line: usize,
    /// The current line's fourth byte is `-`: more lines of the same reply follow.
    continued: bool,
    /// Lines of the current reply that said more would follow.
    lines: usize,
    /// Bytes of the current reply so far.
    bytes: usize,
}

impl ReplyBound {
    /// Takes the next bytes from the server, in any chunking.
    pub fn pass(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &byte in bytes {
            if self.line == 3 {
                self.continued = byte == b'-';
            }
            self.line += 1;
            self.bytes += 1;
            if byte == b'\n' {
                if self.continued {
                    self.lines += 1;
                } else {
                    self.lines = 0;
                    self.bytes = 0;
                }
                self.line = 0;
                self.continued = false;
                if self.lines >= MAX_REPLY_LINES {
                    return Err(refused(format!(
                        "the server's reply goes on for more than {MAX_REPLY_LINES} lines"
                    )));
                }
            } else if self.line > MAX_LINE_BYTES {
                return Err(refused(format!(
                    "a line of the server's reply is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            if self.bytes > MAX_REPLY_BYTES {
                return Err(refused(format!(
                    "the server's reply is longer than {MAX_REPLY_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// Notes whether the server offers PIPELINING (RFC 2920): a line `250-PIPELINING` or
/// `250 PIPELINING` in the reply to EHLO, which is the second reply on a session's stream (the
/// greeting is the first, replayed after STARTTLS). Lines end at CRLF, as lettre reads them.
/// Only the first bytes of each line are looked at, so the scan costs nothing and holds nothing,
/// whatever the server sends; each session's stream starts with a new scanner, so nothing said
/// before STARTTLS is believed after it.
#[derive(Debug, Default, Clone)]
struct PipeliningSeen {
    head: [u8; 16],
    len: usize,
    after_cr: bool,
    /// Replies ended so far.
    replies: usize,
    seen: bool,
}

impl PipeliningSeen {
    const EHLO_REPLY: usize = 1;

    fn pass(&mut self, bytes: &[u8]) {
        if self.replies > Self::EHLO_REPLY {
            return;
        }
        for &byte in bytes {
            if byte == b'\n' && self.after_cr {
                self.end_line();
            } else {
                self.after_cr = byte == b'\r';
                if self.len < self.head.len() {
                    self.head[self.len] = byte;
                    self.len += 1;
                }
            }
        }
    }

    fn end_line(&mut self) {
        let line = self.head[..self.len]
            .strip_suffix(b"\r")
            .unwrap_or(&self.head[..self.len]);
        if self.replies == Self::EHLO_REPLY
            && line.len() == 14
            && line.starts_with(b"250")
            && matches!(line[3], b'-' | b' ')
            && line[4..].eq_ignore_ascii_case(b"PIPELINING")
        {
            self.seen = true;
        }
        // A reply's last line has no `-` after its code.
        if line.get(3) != Some(&b'-') {
            self.replies += 1;
        }
        self.len = 0;
        self.after_cr = false;
    }
}

fn refused(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

/// A stream whose reads pass a [`ReplyBound`]; once it refused, it refuses every read.
#[derive(Debug)]
pub struct Bounded<S> {
    inner: S,
    bound: ReplyBound,
    refused: Option<String>,
    pipelining: PipeliningSeen,
}

impl<S> Bounded<S> {
    pub fn new(inner: S) -> Self {
        Bounded {
            inner,
            bound: ReplyBound::default(),
            refused: None,
            pipelining: PipeliningSeen::default(),
        }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(reason) = &this.refused {
            return Poll::Ready(Err(refused(reason.clone())));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(error) = this.bound.pass(&buf.filled()[before..]) {
                    this.refused = Some(error.to_string());
                    // Nothing of a refused read reaches the reader.
                    buf.set_filled(before);
                    return Poll::Ready(Err(error));
                }
                this.pipelining.pass(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The session's stream, bounded, with two handles: one lettre owns, one we write the message
/// body through. They are used in turn by the one task that runs the session, so the lock is
/// never contended; it is taken inside each poll only, never across an await.
#[derive(Debug, Clone)]
pub struct SmtpStream(Arc<Mutex<Bounded<Box<dyn AsyncTokioStream>>>>);

impl SmtpStream {
    pub fn new(inner: Box<dyn AsyncTokioStream>) -> Self {
        SmtpStream(Arc::new(Mutex::new(Bounded::new(inner))))
    }

    fn lock(&self) -> MutexGuard<'_, Bounded<Box<dyn AsyncTokioStream>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's EHLO on this stream offered PIPELINING.
    pub fn offers_pipelining(&self) -> bool {
        self.lock().pipelining.seen
    }
}

impl AsyncRead for SmtpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_read(cx, buf)
    }
}

impl AsyncWrite for SmtpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.lock()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.lock()).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for SmtpStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.lock().inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(bytes: &[u8], chunk: usize) -> io::Result<()> {
        let mut bound = ReplyBound::default();
        bytes.chunks(chunk.max(1)).try_for_each(|c| bound.pass(c))
    }

    #[test]
    fn ordinary_replies_pass_in_any_chunking() {
        let ehlo =
            b"250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n";
        for chunk in [1, 3, 7, 1000] {
            feed(ehlo, chunk).unwrap();
            // Many short replies in a row: each one starts the count again.
            feed(&b"250 2.1.0 Ok\r\n".repeat(10_000), chunk).unwrap();
        }
    }

    #[test]
    fn pipelining_is_seen_only_as_a_keyword_of_the_ehlo_reply() {
        let seen = |bytes: &[u8], chunk: usize| {
            let mut scan = PipeliningSeen::default();
            bytes.chunks(chunk).for_each(|c| scan.pass(c));
            scan.seen
        };
        let greeting = b"220 mail.example.test ESMTP\r\n";
        let with = |ehlo: &[u8]| [&greeting[..], ehlo].concat();
        for chunk in [1, 5, 100] {
            assert!(seen(
                &with(b"250-x\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
                chunk
            ));
            assert!(seen(&with(b"250-x\r\n250 pipelining\r\n"), chunk));
            assert!(!seen(
                &with(b"250-x\r\n250-PIPELININGX\r\n250 SIZE\r\n"),
                chunk
            ));
            assert!(!seen(&with(b"250-x PIPELINING\r\n250 SIZE\r\n"), chunk));
            assert!(!seen(&with(b"550-PIPELINING\r\n550 no\r\n"), chunk));
            assert!(
                !seen(&with(b"250-PIPELINING"), chunk),
                "a line not yet ended"
            );
            assert!(
                !seen(&with(b"250-x\n250-PIPELINING\n250 SIZE\n"), chunk),
                "bare LF"
            );
            // In the greeting, or in a reply after EHLO's, it is no keyword.
            assert!(!seen(
                b"220-x\r\n250-PIPELINING\r\n220 ok\r\n250 x\r\n",
                chunk
            ));
            assert!(!seen(
                &with(b"250 x\r\n250-PIPELINING\r\n250 ok\r\n"),
                chunk
            ));
        }
    }

    #[test]
    fn long_lines_endless_replies_and_large_replies_are_refused() {
        let mut long = b"220-".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES));
        assert!(feed(&long, 4096).is_err());
        assert!(feed(&b"250-x\r\n".repeat(MAX_REPLY_LINES + 1), 64).is_err());
        let wide = format!("250-{}\r\n", "y".repeat(MAX_LINE_BYTES - 10));
        assert!(feed(wide.repeat(40).as_bytes(), 512).is_err());
        // Lines without a reply code are counted as lines all the same.
        assert!(feed(&b"\n".repeat(10), 1).is_ok());
    }
}
