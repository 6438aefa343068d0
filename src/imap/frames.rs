//! Whole responses out of the bytes a server sends, each parsed once.
//!
//! async-imap reads in 4 KiB steps and, not knowing where a response ends, parses its whole
//! buffer again after each: a response of n bytes costs n²/8 KiB of parsing, so one 8 MiB
//! line kept a core busy for minutes. Here the response's end is found first (a line end
//! outside quoted strings and literals, the way [`Nesting`] reads the syntax), and imap-proto
//! parses it then, once. The bytes come through the session's guard, which has already
//! checked them against the command's allowance, so the buffer is bounded by it.

use std::io;

use async_imap::imap_proto::Response;

use super::guard::{Allowance, Guarded};
use super::nesting::Nesting;
use super::response::{Event, into_event};

/// Responses cut out of a stream of bytes; see the module documentation.
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
    /// Where the next response starts in `buf`.
    start: usize,
    /// How far `buf` has been scanned for a response's end.
    scanned: usize,
    scanner: Nesting,
}

impl Frames {
    /// Room for the next read: at least `room` bytes free.
    pub fn spare(&mut self, room: usize) -> &mut Vec<u8> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            // What was parsed goes before the buffer grows.
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.reserve(room);
        &mut self.buf
    }

    /// Adds bytes the server sent.
    pub fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).extend_from_slice(bytes);
    }

    /// Bytes received and not yet handed out as a response.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete response, in our own terms; None until one has fully arrived. An
    /// error when the bytes are not IMAP: the connection is then out of step for good.
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            let Some(end) = self.scanner.scan_to_end(&self.buf[self.scanned..])? else {
                self.scanned = self.buf.len();
                return Ok(None);
            };
            self.scanned += end;
            let frame = &self.buf[self.start..self.scanned];
            match Response::parse(frame) {
                Ok((rest, response)) => {
                    let parsed = into_event(response);
                    if !rest.is_empty() {
                        // imap-proto ended the response before the line end found here: a
                        // text line ending in `{n}`, which the guard took for a literal and
                        // skipped. What it skipped was never checked, so it is never parsed.
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the server ended a text line with what reads as a literal",
                        ));
                    }
                    self.start = self.scanned;
                    return Ok(Some(parsed));
                }
                // The response goes on past this line end: look for the next one.
                Err(e) if e.is_incomplete() => {}
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the server sent a response that is not IMAP: {:?}",
                            String::from_utf8_lossy(&frame[..frame.len().min(120)])
                        ),
                    ));
                }
            }
        }
    }
}

/// What a session makes of a server's bytes: see [`read_in_pieces`].
#[derive(Debug, Default, PartialEq)]
pub struct Framed {
    pub events: Vec<Event>,
    /// The guard refused the stream (nesting, a literal or the bytes over the allowance).
    pub refused: bool,
    /// A response was not IMAP.
    pub malformed: bool,
    /// The most bytes held at once, received and not yet handed out.
    pub peak_held: usize,
    /// Bytes held at the end: an unfinished response.
    pub held: usize,
}

/// Reads `data` the way a session does (the guard under `allowance`, then [`Frames`]), in
/// reads of the sizes in `pieces` taken in turn (0 reads one byte). For the fuzz target and
/// tests.
pub fn read_in_pieces(data: &[u8], allowance: Allowance, pieces: &[usize]) -> Framed {
    let mut guard = Guarded::new(());
    guard.allow(allowance);
    let mut frames = Frames::default();
    let mut framed = Framed::default();
    let mut rest = data;
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let size = sizes
            .next()
            .copied()
            .unwrap_or(usize::MAX)
            .clamp(1, rest.len());
        let (piece, after) = rest.split_at(size);
        rest = after;
        if guard.check(piece).is_err() {
            framed.refused = true;
            return framed;
        }
        frames.push(piece);
        framed.peak_held = framed.peak_held.max(frames.pending());
        loop {
            match frames.next_event() {
                Ok(Some(event)) => framed.events.push(event),
                Ok(None) => break,
                Err(_) => {
                    framed.malformed = true;
                    return framed;
                }
            }
        }
    }
    framed.held = frames.pending();
    framed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response::Untagged;

    fn events(bytes: &[u8], piece: usize) -> io::Result<Vec<String>> {
        let mut frames = Frames::default();
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece.max(1)) {
            frames.push(chunk);
            while let Some(event) = frames.next_event()? {
                out.push(match event {
                    Event::Continue => "+".to_string(),
                    Event::Done { tag, refusal, .. } => format!("{tag} {}", refusal.is_none()),
                    Event::Untagged(Untagged::Fetch(item)) => {
                        format!("fetch {:?} {}", item.uid, item.body.map_or(0, |b| b.len()))
                    }
                    Event::Untagged(Untagged::Ids(ids)) => format!("ids {}", ids.len()),
                    Event::Untagged(other) => format!("{other:?}"),
                });
            }
        }
        Ok(out)
    }

    #[test]
    fn responses_come_whole_whatever_the_pieces() {
        let stream = b"* 3 EXISTS\r\n* 1 FETCH (UID 7 BODY[] {12}\r\nline one\r\n\r\n)\r\n\
                       * OK {5} is text here\r\n+ go ahead\r\n* SEARCH 1 2 3\r\nA1 OK done\r\n";
        let whole = events(stream, stream.len()).expect("IMAP");
        assert_eq!(
            whole,
            [
                "Exists(3)",
                "fetch Some(7) 12",
                "Other",
                "+",
                "ids 3",
                "A1 true"
            ]
        );
        for piece in [1, 2, 3, 7, 64] {
            assert_eq!(events(stream, piece).expect("IMAP"), whole, "piece {piece}");
        }
    }

    #[test]
    fn a_long_line_is_parsed_once_it_ends() {
        let mut line = b"* SEARCH".to_vec();
        for _ in 0..200_000 {
            line.extend_from_slice(b" 1234567");
        }
        let started = std::time::Instant::now();
        let mut frames = Frames::default();
        for chunk in line.chunks(4096) {
            frames.push(chunk);
            assert!(frames.next_event().expect("so far IMAP").is_none());
        }
        frames.push(b"\r\n");
        assert!(matches!(
            frames.next_event().expect("IMAP"),
            Some(Event::Untagged(Untagged::Ids(ids))) if ids.len() == 200_000
        ));
        assert_eq!(frames.pending(), 0);
        // Parsed once, not once per piece: linear, so well under a second even unoptimised.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_text_line_ending_in_what_reads_as_a_literal_is_refused() {
        // imap-proto reads `* OK {5}` as text to the line end; the guard and the framing
        // take `{5}` for a literal and skip what follows, so it is refused, not resynchronised.
        let stream = b"* OK {5}\r\nabcde\r\n* 1 EXISTS\r\n";
        assert!(events(stream, 4).is_err());
        // Braces in the middle of a text line are text to both.
        assert_eq!(
            events(b"* OK {5} left\r\n".as_slice(), 3).expect("IMAP"),
            ["Other"]
        );
    }

    #[test]
    fn what_is_not_imap_is_an_error() {
        assert!(events(b"garbage without a tag\r\n", 4).is_err());
    }
}
