//! Takes a response imap-proto has no parser for out of the server's bytes before async-imap
//! sees them (a response it cannot parse would stop the session for good): NAMESPACE
//! (RFC 2342) while our NAMESPACE command runs, ESEARCH (RFC 4731/5267) while our
//! `UID SORT RETURN (PARTIAL ...)` runs. Armed only for that one command; otherwise bytes pass
//! untouched. While armed, literals in the lines it passes on (an unsolicited FETCH) are passed
//! on whole, so bytes inside a literal are never mistaken for the start of a response.
//!
//! Until login is done it also keeps the last tagged line the server sent: async-imap hands a
//! refused STARTTLS or login back with the completion only as debug text, and the session reads
//! the server's status, response code and words from this line instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::imap::error::ServerReply;

/// Which response an armed tap takes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    Namespace,
    Esearch,
}

impl Capture {
    fn start(self) -> &'static [u8] {
        match self {
            Capture::Namespace => b"* NAMESPACE ",
            Capture::Esearch => b"* ESEARCH ",
        }
    }
}

/// More captured data than this (in one response or many) is not what a server means: a
/// NAMESPACE is a few folders, an ESEARCH for a listing as many UIDs as the listing's limit.
const MAX_CAPTURE: usize = 64 * 1024;
/// The end of a passed-on line that is kept to see whether it announces a literal.
const TAIL: usize = 24;
/// The longest tagged line kept before login; a longer one is not kept (its words are lost,
/// not its meaning: the session still sees the refusal).
const MAX_COMPLETION: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a line's start, `n` bytes of the captured response's start matched and held back.
    Start(usize),
    /// In a line that is not captured.
    Line,
    /// In a literal of a line that is not captured, this many bytes to go.
    Passing(usize),
    /// In a captured response.
    Capture,
    /// In a literal of a captured response, this many bytes to go.
    Literal(usize),
}

#[derive(Debug)]
pub struct Tap<S> {
    inner: S,
    armed: bool,
    capture: Capture,
    state: State,
    /// The last bytes of the line being passed on.
    tail: Vec<u8>,
    /// Bytes matched against [`START`] and not yet handed on.
    held: Vec<u8>,
    /// Bytes ready for the reader.
    out: Vec<u8>,
    /// The response being captured (after [`START`]).
    line: Vec<u8>,
    captured: Vec<Vec<u8>>,
    /// Whether tagged lines are still kept (until login is done).
    watching: bool,
    /// The line being read, while watching (emptied past [`MAX_COMPLETION`]).
    current: Vec<u8>,
    overlong: bool,
    /// The last tagged line read while watching.
    completion: Option<Vec<u8>>,
}

impl<S> Tap<S> {
    pub fn new(inner: S) -> Self {
        Tap {
            inner,
            armed: false,
            capture: Capture::Namespace,
            state: State::Start(0),
            tail: Vec::new(),
            held: Vec::new(),
            out: Vec::new(),
            line: Vec::new(),
            captured: Vec::new(),
            watching: true,
            current: Vec::new(),
            overlong: false,
            completion: None,
        }
    }

    /// Stops keeping tagged lines (login is done: from now on the session reads every
    /// completion itself).
    pub fn stop_watching(&mut self) {
        self.watching = false;
        self.current = Vec::new();
        self.completion = None;
    }

    /// The NO or BAD in the last tagged line read before login was done, taken.
    pub fn take_refusal(&mut self) -> Option<ServerReply> {
        ServerReply::from_line(&self.completion.take()?)
    }

    /// Keeps the last complete tagged line among the bytes handed to the reader.
    fn watch(&mut self, bytes: &[u8]) {
        if !self.watching {
            return;
        }
        for &b in bytes {
            if self.current.len() < MAX_COMPLETION {
                self.current.push(b);
            } else {
                self.overlong = true;
            }
            if b == b'\n' {
                let line = std::mem::take(&mut self.current);
                let untagged = line.first().is_some_and(|&c| c == b'*' || c == b'+');
                if !self.overlong && !untagged {
                    self.completion = Some(line);
                }
                self.overlong = false;
            }
        }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The stream under the tap (the guard, whose allowance a command sets).
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Captures `capture` responses from now on. Called between commands, so the next byte
    /// starts a line.
    pub fn arm(&mut self, capture: Capture) {
        self.armed = true;
        self.capture = capture;
        self.state = State::Start(0);
        self.tail.clear();
        self.captured.clear();
    }

    /// Stops capturing; returns the data of each captured response seen while armed (after
    /// its `* NAME `).
    pub fn disarm(&mut self) -> Vec<Vec<u8>> {
        self.armed = false;
        self.out.append(&mut self.held);
        self.state = State::Line;
        std::mem::take(&mut self.captured)
    }

    fn feed(&mut self, bytes: &[u8]) -> io::Result<()> {
        let start = self.capture.start();
        for &b in bytes {
            self.state = match self.state {
                State::Start(n) if b.eq_ignore_ascii_case(&start[n]) => {
                    self.held.push(b);
                    if n + 1 == start.len() {
                        self.held.clear();
                        self.line.clear();
                        State::Capture
                    } else {
                        State::Start(n + 1)
                    }
                }
                State::Start(n) => {
                    if n == 0 {
                        self.tail.clear();
                    }
                    self.out.append(&mut self.held);
                    self.pass_on(b)
                }
                State::Line => self.pass_on(b),
                State::Passing(left) => {
                    self.out.push(b);
                    if left <= 1 {
                        State::Line
                    } else {
                        State::Passing(left - 1)
                    }
                }
                State::Capture => {
                    self.line.push(b);
                    let held: usize = self.captured.iter().map(Vec::len).sum();
                    if held + self.line.len() > MAX_CAPTURE {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the server's {} response is too long",
                                String::from_utf8_lossy(&start[2..start.len() - 1])
                            ),
                        ));
                    }
                    if b != b'\n' {
                        State::Capture
                    } else if let Some(length) = literal_length(&self.line) {
                        State::Literal(length)
                    } else {
                        self.captured.push(std::mem::take(&mut self.line));
                        State::Start(0)
                    }
                }
                State::Literal(left) => {
                    self.line.push(b);
                    if left <= 1 {
                        State::Capture
                    } else {
                        State::Literal(left - 1)
                    }
                }
            };
        }
        Ok(())
    }
}

impl<S> Tap<S> {
    /// Hands on one byte of a line that is not captured; at its end, a literal it announces
    /// is handed on whole before anything is looked at again.
    fn pass_on(&mut self, b: u8) -> State {
        self.out.push(b);
        if self.tail.len() == TAIL {
            self.tail.remove(0);
        }
        self.tail.push(b);
        if b != b'\n' {
            return State::Line;
        }
        let announced = literal_length(&self.tail);
        self.tail.clear();
        match announced {
            Some(length) => State::Passing(length),
            None => State::Start(0),
        }
    }
}

/// The length of a literal announced at the end of `line` (`... {12}\r\n`), however large.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let body = body.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let length: u64 = std::str::from_utf8(digits)
        .ok()?
        .parse()
        .unwrap_or(u64::MAX);
    Some(usize::try_from(length).unwrap_or(usize::MAX)).filter(|&n| n > 0)
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = this.poll_read_through(cx, buf);
        if this.watching {
            this.watch(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncRead + Unpin> Tap<S> {
    fn poll_read_through(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self;
        loop {
            if !this.out.is_empty() {
                let n = this.out.len().min(buf.remaining());
                buf.put_slice(&this.out[..n]);
                this.out.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if !this.armed {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The end of the stream: whatever was held back is the server's.
                    this.out.append(&mut this.held);
                    if this.out.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => this.feed(read.filled())?,
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
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
mod tests;
