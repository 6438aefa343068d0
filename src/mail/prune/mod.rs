//! A streaming MIME pruner: reads a message line by line and keeps a skeleton that mail-parser
//! can parse, with at most as many body bytes as the response could still return.
//!
//! POP3 has to RETR a message whole; this lets a 100 MB message cost about the response
//! budget in memory. The same pass repairs what mail-parser would otherwise lose (see
//! [`crate::mail::normalize`]): a header block with no blank line before the body, a
//! `Content-Type: text` without subtype, NUL bytes and invalid UTF-8 in headers, boundary
//! lines with trailing whitespace. A part whose body was cut gets a marker header (see
//! [`crate::mail::cut::marker_name`]) with its real decoded size, which the response builder
//! turns into `truncated: true`.

mod body;
mod header;

use body::{Leaf, Role, actual, body_line, cost};

pub use super::cut::{CutReason, Limits, marker_name, parse_marker};
use super::cut::{marker_line, trim_end_ws};
use super::normalize::HeaderField;

/// Longest line held back while it comes in pieces (a header field's own cap).
const MAX_PENDING: usize = 256 * 1024;
/// A delimiter is `--`, at most 70 boundary characters and `--` (RFC 2046), plus some blanks.
const MAX_BOUNDARY_LINE: usize = 1024;

/// Multiparts nested deeper are read as one opaque part: every `--` line is checked against
/// each open boundary, so unbounded nesting would make a hostile message cost quadratic time.
pub const MAX_DEPTH: usize = 64;

/// Parts kept in all (containers included); later ones are dropped whole. Dovecot caps a
/// message at the same number of MIME parts (`max_total_mime_parts`): a mail with more is
/// not one a person wrote, and each part costs the parser about a hundred bytes and the
/// response a JSON entry.
pub const MAX_PARTS: usize = 10_000;

/// The pruned message.
#[derive(Debug, Default)]
pub struct Pruned {
    pub raw: Vec<u8>,
    /// Something was dropped for the budget (top headers, a body, an attachment).
    pub budget_cut: bool,
}

#[derive(Debug)]
enum Mode {
    Header,
    Body(Leaf),
    /// A multipart's preamble or epilogue, or anything after the last closing delimiter.
    Skip,
}

/// See the module documentation.
pub struct Pruner {
    limits: Limits,
    out: Vec<u8>,
    boundaries: Vec<Vec<u8>>,
    mode: Mode,
    top: bool,
    field: HeaderField,
    /// The header fields of the part being read, for its structure.
    content_type: String,
    transfer_encoding: String,
    disposition: String,
    header_kept: usize,
    text_pool: u64,
    attachment_pool: u64,
    /// Output bytes that are leaf bodies (bounded by the pools); everything else written is
    /// skeleton, and past [`Limits::skeleton_allowance`] parts are dropped whole.
    body_bytes: usize,
    /// Parts begun so far (containers too); past [`MAX_PARTS`] they are dropped whole.
    parts: usize,
    /// The start of a line that came in pieces (see [`Pruner::push_piece`]).
    pending: Vec<u8>,
    /// A long body line is being passed on piece by piece.
    continuing: bool,
    budget_cut: bool,
}

impl Pruner {
    pub fn new(limits: Limits) -> Pruner {
        Pruner {
            limits,
            out: Vec::new(),
            boundaries: Vec::new(),
            mode: Mode::Header,
            top: true,
            field: HeaderField::default(),
            content_type: String::new(),
            transfer_encoding: String::new(),
            disposition: String::new(),
            header_kept: 0,
            text_pool: limits.text_pool(),
            attachment_pool: limits.attachment_pool(0),
            body_bytes: 0,
            parts: 0,
            pending: Vec::new(),
            continuing: false,
            budget_cut: false,
        }
    }

    /// A piece of a line as a line reader hands it over: `complete` when the line ends there
    /// (its CRLF left out).
    pub fn feed(&mut self, piece: &[u8], complete: bool) {
        if complete {
            self.push(piece, b"\r\n")
        } else {
            self.push_piece(piece)
        }
    }

    /// Feeds a piece of a line too long to hold (POP3 hands those over in pieces); the next
    /// [`Pruner::push`] ends the line. Body text goes on at once; a header or a line that
    /// could still be a boundary waits, up to a cap.
    pub fn push_piece(&mut self, piece: &[u8]) {
        if self.continuing {
            if let Mode::Body(leaf) = &mut self.mode {
                body_line(leaf, &mut self.out, piece, b"", false);
            }
            return;
        }
        if self.pending.len() + piece.len() <= MAX_PENDING {
            self.pending.extend_from_slice(piece);
        } else {
            self.budget_cut = true;
        }
        if !matches!(self.mode, Mode::Header) && self.pending.len() > MAX_BOUNDARY_LINE {
            // Too long for a boundary: body text from here to the line's end.
            let pending = std::mem::take(&mut self.pending);
            if let Mode::Body(leaf) = &mut self.mode {
                body_line(leaf, &mut self.out, &pending, b"", false);
            }
            self.continuing = true;
        }
    }

    /// Feeds one line: its content and its line ending (`\r\n`, `\n`, or empty at the end).
    pub fn push(&mut self, content: &[u8], eol: &[u8]) {
        if self.continuing {
            self.continuing = false;
            self.body(content, eol);
            return;
        }
        if !self.pending.is_empty() {
            let mut line = std::mem::take(&mut self.pending);
            if line.len() + content.len() <= MAX_PENDING {
                line.extend_from_slice(content);
            } else {
                self.budget_cut = true;
            }
            self.push(&line, eol);
            return;
        }
        if let Mode::Header = self.mode {
            self.header_line(content, eol);
            return;
        }
        if content.starts_with(b"--") && !self.boundaries.is_empty() {
            let trimmed = trim_end_ws(content);
            for depth in (0..self.boundaries.len()).rev() {
                let boundary = &self.boundaries[depth];
                let Some(rest) = trimmed[2..].strip_prefix(boundary.as_slice()) else {
                    continue;
                };
                let closing = match rest {
                    b"" => false,
                    b"--" => true,
                    _ => continue,
                };
                let boundary = boundary.clone();
                self.end_leaf();
                // An outer delimiter ends the multiparts inside it, closed or not (Python's
                // email package checks every open boundary): they are closed here, so that
                // the parser, which looks for the innermost one only, reads what Python does.
                while self.boundaries.len() > depth + 1 {
                    if let Some(inner) = self.boundaries.pop() {
                        self.line_start();
                        self.out.extend_from_slice(b"--");
                        self.out.extend_from_slice(&inner);
                        self.out.extend_from_slice(b"--\r\n");
                    }
                }
                if !closing && !self.room_for_a_part() {
                    // Dropped whole, delimiter, header, body and any parts inside it: the
                    // output grows with the budget, never with the message.
                    self.budget_cut = true;
                    self.mode = Mode::Skip;
                    return;
                }
                self.line_start();
                self.out.extend_from_slice(b"--");
                self.out.extend_from_slice(&boundary);
                if closing {
                    self.out.extend_from_slice(b"--");
                    self.boundaries.pop();
                    self.mode = Mode::Skip;
                } else {
                    self.mode = Mode::Header;
                    self.top = false;
                    self.parts += 1;
                    self.start_part();
                }
                self.out
                    .extend_from_slice(if eol.is_empty() { b"\r\n" } else { eol });
                return;
            }
        }
        self.body(content, eol);
    }

    /// Ends the line being written, if any: a delimiter starts a line, also after a body
    /// cut inside a long one.
    fn line_start(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with(b"\n") {
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// A line of body text, kept or counted by the current leaf (nothing outside a leaf).
    fn body(&mut self, content: &[u8], eol: &[u8]) {
        let in_multipart = !self.boundaries.is_empty();
        if let Mode::Body(leaf) = &mut self.mode {
            body_line(leaf, &mut self.out, content, eol, in_multipart);
        }
    }

    /// Everything written that is not a leaf's body: delimiters, blank lines, headers of
    /// containers and leaves, markers.
    fn skeleton(&self) -> usize {
        self.out.len().saturating_sub(self.body_bytes)
    }

    /// Whether one more part may begin.
    fn room_for_a_part(&self) -> bool {
        self.parts < MAX_PARTS && self.skeleton() <= self.limits.skeleton_allowance()
    }

    /// Closes the leaf being read: adds its marker when its body was cut.
    fn end_leaf(&mut self) {
        let Mode::Body(leaf) = std::mem::replace(&mut self.mode, Mode::Skip) else {
            return;
        };
        let seen = actual(leaf.encoding, leaf.seen, leaf.last_eol);
        if !leaf.cut {
            let encoded = self.out.len().saturating_sub(leaf.body_start);
            self.body_bytes += encoded;
            let kept = cost(actual(leaf.encoding, leaf.kept, leaf.last_eol), encoded);
            match leaf.role {
                Role::Text => self.text_pool = self.text_pool.saturating_sub(kept),
                Role::Attachment => {
                    self.attachment_pool = self.attachment_pool.saturating_sub(kept)
                }
            }
            return;
        }
        let reason =
            if leaf.role == Role::Attachment && seen > self.limits.max_attachment_bytes as u64 {
                CutReason::Limit
            } else {
                self.budget_cut = true;
                CutReason::Budget
            };
        if leaf.role == Role::Attachment {
            self.out.truncate(leaf.body_start);
        } else {
            let encoded = self.out.len().saturating_sub(leaf.body_start);
            self.text_pool = self
                .text_pool
                .saturating_sub(cost(actual(leaf.encoding, leaf.kept, 0), encoded));
        }
        self.body_bytes += self.out.len().saturating_sub(leaf.body_start);
        let marker = marker_line(seen, reason);
        self.out
            .splice(leaf.header_end..leaf.header_end, marker.into_bytes());
    }

    pub fn finish(mut self) -> Pruned {
        if self.continuing || !self.pending.is_empty() {
            self.push(b"", b"");
        }
        if let Mode::Header = self.mode {
            self.flush_field();
            self.end_header(b"\r\n");
        }
        self.end_leaf();
        // Unclosed multiparts are closed, so that the parser sees every part that was kept.
        while let Some(boundary) = self.boundaries.pop() {
            self.out.extend_from_slice(b"\r\n--");
            self.out.extend_from_slice(&boundary);
            self.out.extend_from_slice(b"--\r\n");
        }
        Pruned {
            raw: self.out,
            budget_cut: self.budget_cut,
        }
    }
}

/// Prunes a message held in memory (IMAP).
pub fn prune(raw: &[u8], limits: Limits) -> Pruned {
    let mut pruner = Pruner::new(limits);
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let (content, eol) = split_eol(line);
        pruner.push(content, eol);
    }
    pruner.finish()
}

/// Splits a line into content and its ending (`\r\n`, `\n` or nothing).
pub fn split_eol(line: &[u8]) -> (&[u8], &[u8]) {
    if let Some(content) = line.strip_suffix(b"\r\n") {
        (content, &line[content.len()..])
    } else if let Some(content) = line.strip_suffix(b"\n") {
        (content, &line[content.len()..])
    } else {
        (line, b"")
    }
}

#[cfg(test)]
mod tests;
