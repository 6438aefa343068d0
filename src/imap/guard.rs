//! The stream guard: every byte an IMAP server sends passes it before async-imap buffers and
//! imap-proto parses it. It checks the syntax that could hurt the parser ([`Nesting`]) and
//! holds the server to what the command in flight can use ([`Allowance`]): no literal larger
//! than the command could return, and no more bytes in all. async-imap keeps a response whole
//! in memory before it is parsed and collects nothing by size, so without the guard a server
//! sets the worker's memory: an announced literal, a line that never ends or an endless run
//! of small responses grows it until the process is killed.
//!
//! A refusal fails the read and every later one: the connection is out of step with the
//! protocol, and the session is closed (`CONNECTION_FAILED`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::nesting::Nesting;

/// Room for what surrounds the data a command asks for: FETCH attribute names, UIDs, flags, a
/// server's unsolicited EXISTS and FETCH FLAGS, the tagged completion.
pub const SLACK: u64 = 64 * 1024;

/// What the server may send in reply to one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// The largest literal accepted.
    pub literal: u64,
    /// Bytes in all, from the command's start to its completion (the greeting and login count
    /// as one command). The same number caps what the session keeps of the untagged responses
    /// (see `ImapSession::execute_within`).
    pub bytes: u64,
}

impl Allowance {
    /// The greeting, STARTTLS and the login with its CAPABILITY, read by async-imap (which
    /// parses its whole buffer again after every 4 KiB read, so a long line costs time by
    /// its square: kept short here). No literal belongs there, and none is let through: a
    /// text line ending in `{n}` is text to imap-proto but a literal to the guard, which
    /// would not check the n bytes after it, and async-imap would parse them.
    pub const LOGIN: Allowance = Allowance {
        literal: 0,
        bytes: 1024 * 1024,
    };

    /// [`Allowance::control`] at the default response budget (4 MiB).
    pub const CONTROL: Allowance = Allowance::control(crate::operation::DEFAULT_MAX_RESPONSE_BYTES);

    /// Commands whose replies carry no mail text: SELECT, LIST, SEARCH and SORT, STORE,
    /// EXPUNGE, IDLE, and fetches of UIDs, dates, sizes and structures. A literal there is a
    /// folder name or a parameter value. The response budget and a MiB: what a job holds
    /// follows the budget, as the deployment's memory is sized (a reply is held once as
    /// bytes and once parsed; UIDs take 4 bytes each however short they were sent). At the
    /// default budget a SEARCH or SORT answer of some 500,000 UIDs fits.
    pub const fn control(max_response_bytes: usize) -> Allowance {
        Allowance {
            literal: SLACK,
            bytes: (max_response_bytes as u64).saturating_add(1024 * 1024),
        }
    }

    /// A fetch of at most `sections` literals of at most `each` bytes.
    pub fn fetching(sections: u64, each: u64) -> Allowance {
        Allowance {
            literal: each,
            bytes: sections
                .saturating_mul(each.saturating_add(1024))
                .saturating_add(SLACK),
        }
    }
}

impl Default for Allowance {
    fn default() -> Self {
        Allowance::CONTROL
    }
}

/// A stream whose incoming bytes pass through [`Nesting`] and are counted against an
/// [`Allowance`]; see the module documentation.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    nesting: Nesting,
    allowance: Allowance,
    received: u64,
    refused: bool,
}

impl<S> Guarded<S> {
    /// A guarded stream under [`Allowance::LOGIN`].
    pub fn new(inner: S) -> Self {
        let mut guarded = Guarded {
            inner,
            nesting: Nesting::default(),
            allowance: Allowance::LOGIN,
            received: 0,
            refused: false,
        };
        guarded.allow(Allowance::LOGIN);
        guarded
    }

    /// Starts a command: the server may send `allowance` from now on.
    pub fn allow(&mut self, allowance: Allowance) {
        self.allowance = allowance;
        self.received = 0;
        self.nesting.limit_literals(allowance.literal);
    }

    /// The stream itself (for the STARTTLS upgrade), with the count started afresh.
    pub fn into_inner(self) -> S {
        self.inner
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Counts and checks bytes just read.
    pub fn check(&mut self, new: &[u8]) -> io::Result<()> {
        self.received = self.received.saturating_add(new.len() as u64);
        if self.received > self.allowance.bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the server sent more than the {} bytes one command can use",
                    self.allowance.bytes
                ),
            ));
        }
        self.nesting.scan(new)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if this.refused {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an earlier response was refused; the connection is out of step",
            )));
        }
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = buf.filled().get(before..).unwrap_or_default();
                let checked = this.check(new);
                if checked.is_err() {
                    // A failed read hands over nothing, and every later read fails too:
                    // the connection is out of step with the protocol.
                    buf.set_filled(before);
                    this.refused = true;
                }
                Poll::Ready(checked)
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
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

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::imap::nesting::MAX_PARENS;
    use crate::imap::nesting::tests::deep;

    #[tokio::test]
    async fn a_guarded_stream_fails_the_read() {
        let bytes = deep(1000);
        let mut guarded = Guarded::new(bytes.as_slice());
        let mut out = Vec::new();
        let error = guarded.read_to_end(&mut out).await.expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let ok = deep(MAX_PARENS / 2);
        let mut guarded = Guarded::new(ok.as_slice());
        let mut out = Vec::new();
        guarded.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, ok);
    }

    #[tokio::test]
    async fn a_command_gets_its_allowance_and_no_more() {
        // The greeting's allowance: a literal larger than a folder name is refused.
        let greeting = b"* 1 FETCH (BODY[] {536000000}\r\n".to_vec();
        let mut guarded = Guarded::new(greeting.as_slice());
        let error = guarded
            .read_to_end(&mut Vec::new())
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("536000000"), "{error}");

        // Small responses without end: refused past the byte allowance.
        let endless = b"* OK still here\r\n".repeat(10_000);
        let mut guarded = Guarded::new(endless.as_slice());
        guarded.allow(Allowance {
            literal: 10,
            bytes: 100_000,
        });
        let mut out = Vec::new();
        let error = guarded.read_to_end(&mut out).await.expect_err("refused");
        assert!(error.to_string().contains("100000"), "{error}");
        assert!(out.len() <= 100_000, "{}", out.len());

        // A new command starts the count afresh.
        let mut guarded = Guarded::new(&b""[..]);
        guarded.allow(Allowance {
            literal: 10,
            bytes: 20,
        });
        guarded.check(&[b'x'; 20]).expect("within");
        guarded.allow(Allowance {
            literal: 10,
            bytes: 20,
        });
        guarded.check(&[b'x'; 20]).expect("within again");
        assert!(guarded.check(b"x").is_err());
    }

    #[test]
    fn a_fetch_allowance_covers_its_sections_and_the_rest() {
        let allowance = Allowance::fetching(100, 65_536);
        assert_eq!(allowance.literal, 65_536);
        assert_eq!(allowance.bytes, 100 * (65_536 + 1024) + SLACK);
        assert_eq!(Allowance::fetching(u64::MAX, u64::MAX).bytes, u64::MAX);
    }
}
