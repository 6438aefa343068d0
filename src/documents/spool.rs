//! A streaming MIME walker for `attachmentsAs: document`: the raw message goes through it in
//! chunks (IMAP partial fetches, POP3 RETR lines) and each attachment's decoded bytes go to a
//! file of their own in a private temporary directory, so a 20 MB attachment never sits in
//! memory. The files are then streamed to the document store, and the directory is removed
//! when the [`Spool`] is dropped, however the job ends. What one job writes is counted against
//! its [`Allowance`] as it is written: an attachment that does not fit is removed and marked
//! `refused`, and the attachments after it still get their chance.
//!
//! Bodies are the first `text/plain` and the first `text/html` leaf that are not marked as
//! attachments (they are in the read response already); every other leaf, attached messages
//! included (not descended into), is an attachment, as the read response lists them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders};

use super::decode::{decode_base64, decode_quoted_printable, is_base64};
pub use super::disk::SpoolDir;
use super::disk::{Allowance, describe_limit};
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::normalize::sanitize_file_name;

/// More parts than this and the rest are not spooled (the read response's pruner keeps the
/// same number).
const MAX_ATTACHMENTS: usize = 10_000;
/// A part header larger than this is hostile; what follows it is skipped.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Boundaries nested deeper than this are not followed (their parts are skipped).
const MAX_DEPTH: usize = 64;

/// One attachment on disk, decoded.
#[derive(Debug, Clone)]
pub struct Spooled {
    pub path: PathBuf,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub inline: bool,
    pub content_id: Option<String>,
    /// Why the content was not kept (over the job's allowance); the file is gone then.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TransferEncoding {
    Base64,
    QuotedPrintable,
    Identity,
}

enum Sink {
    /// Bytes that are not kept (preambles, bodies, epilogues, skipped parts).
    Skip,
    Attachment {
        writer: BufWriter<File>,
        encoding: TransferEncoding,
        /// base64 characters waiting for a complete group of four.
        pending: Vec<u8>,
        /// A line break owed to the content, written only once the next line shows the
        /// part goes on (the one before a boundary belongs to the boundary).
        owed_break: bool,
    },
}

enum State {
    Headers(Vec<u8>),
    Body(Sink),
}

/// Walks one message; feed it the raw bytes in order, then call [`Spool::finish`].
pub struct Spool {
    dir: Option<SpoolDir>,
    allowance: Allowance,
    boundaries: Vec<Vec<u8>>,
    state: State,
    line: Vec<u8>,
    seen_text: bool,
    seen_html: bool,
    attachments: Vec<Spooled>,
    error: Option<std::io::Error>,
}

impl Spool {
    pub fn with_allowance(allowance: Allowance) -> Result<Spool> {
        Ok(Spool {
            dir: Some(SpoolDir::create()?),
            allowance,
            boundaries: Vec::new(),
            state: State::Headers(Vec::new()),
            line: Vec::new(),
            seen_text: false,
            seen_html: false,
            attachments: Vec::new(),
            error: None,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), SpoolDir::path)
    }

    /// Takes the next bytes of the raw message, in any chunking.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&bytes[..=end]);
            let line = std::mem::take(&mut self.line);
            self.on_line(&line);
            self.line = line;
            self.line.clear();
            bytes = &bytes[end + 1..];
        }
        self.line.extend_from_slice(bytes);
        // A line without end that grows past any sane length is content: pass it on in
        // pieces so memory stays bounded (it cannot be a boundary or a header line anyway).
        if self.line.len() > 64 * 1024 {
            let line = std::mem::take(&mut self.line);
            match self.state {
                State::Body(_) => self.content(&line, false),
                // No header line is that long: the part is hostile, and what follows it up
                // to the next boundary is skipped.
                State::Headers(_) => self.state = State::Body(Sink::Skip),
            }
        }
    }

    /// The attachments spooled, once the whole message went through.
    pub fn finish(mut self) -> Result<(Vec<Spooled>, SpoolDir)> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line);
        }
        self.close_part();
        let dir = self
            .dir
            .take()
            .ok_or_else(|| EmailError::internal("the spool is gone"))?;
        if let Some(error) = self.error.take() {
            return Err(EmailError::new(
                ErrorCode::Internal,
                format!("cannot spool an attachment to disk: {error}"),
            ));
        }
        Ok((std::mem::take(&mut self.attachments), dir))
    }

    fn on_line(&mut self, line: &[u8]) {
        if let Some(index) = self.boundary_of(line) {
            let closing = trimmed(line).ends_with(b"--")
                && trimmed(line).len() == self.boundaries[index].len() + 4;
            self.close_part();
            self.boundaries.truncate(index + 1);
            if closing {
                self.boundaries.pop();
                self.state = State::Body(Sink::Skip);
            } else {
                self.state = State::Headers(Vec::new());
            }
            return;
        }
        match &mut self.state {
            State::Headers(header) => {
                if trimmed(line).is_empty() {
                    let header = std::mem::take(header);
                    self.start_part(&header);
                } else if header.len() + line.len() <= MAX_HEADER_BYTES {
                    header.extend_from_slice(line);
                } else {
                    self.state = State::Body(Sink::Skip);
                }
            }
            State::Body(_) => self.content(line, true),
        }
    }

    /// Which open boundary (innermost first) a line is, if any.
    fn boundary_of(&self, line: &[u8]) -> Option<usize> {
        let line = trimmed(line);
        let rest = line.strip_prefix(b"--")?;
        self.boundaries
            .iter()
            .enumerate()
            .rev()
            .find(|(_, b)| rest.starts_with(b) && matches!(&rest[b.len()..], b"" | b"--"))
            .map(|(i, _)| i)
    }

    fn start_part(&mut self, header: &[u8]) {
        let mut block = header.to_vec();
        block.extend_from_slice(b"\r\n");
        let parsed = MessageParser::new().parse_headers(&block[..]);
        let Some(message) = parsed else {
            self.state = State::Body(Sink::Skip);
            return;
        };
        let content_type = message.content_type();
        let (ctype, subtype) =
            content_type.map_or(("text".to_string(), "plain".to_string()), |ct| {
                (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or("").to_ascii_lowercase(),
                )
            });
        if ctype == "multipart" {
            let boundary = content_type.and_then(|ct| ct.attribute("boundary"));
            if let Some(boundary) = boundary.filter(|b| !b.is_empty())
                && self.boundaries.len() < MAX_DEPTH
            {
                self.boundaries.push(boundary.as_bytes().to_vec());
            }
            self.state = State::Body(Sink::Skip);
            return;
        }
        let disposition = message.content_disposition();
        let is_attachment = disposition.is_some_and(|d| d.is_attachment());
        let named = message.attachment_name();
        let body_candidate = !is_attachment && named.is_none() && ctype == "text";
        if body_candidate && subtype == "plain" && !self.seen_text {
            self.seen_text = true;
            self.state = State::Body(Sink::Skip);
            return;
        }
        if body_candidate && subtype == "html" && !self.seen_html {
            self.seen_html = true;
            self.state = State::Body(Sink::Skip);
            return;
        }
        if self.attachments.len() >= MAX_ATTACHMENTS {
            self.state = State::Body(Sink::Skip);
            return;
        }
        let index = self.attachments.len();
        let mime = if subtype.is_empty() {
            ctype.clone()
        } else {
            format!("{ctype}/{subtype}")
        };
        let fallback = if mime == "message/rfc822" {
            "message.eml"
        } else {
            ""
        };
        let file_name = sanitize_file_name(named.unwrap_or(fallback), index);
        let encoding = match message
            .content_transfer_encoding()
            .map(|e| e.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("base64") => TransferEncoding::Base64,
            Some("quoted-printable") => TransferEncoding::QuotedPrintable,
            _ => TransferEncoding::Identity,
        };
        let path = self.dir().join(format!("{index}.part"));
        match File::create(&path) {
            Ok(file) => {
                self.attachments.push(Spooled {
                    path,
                    file_name,
                    content_type: mime,
                    size: 0,
                    inline: disposition.is_some_and(|d| d.is_inline()),
                    content_id: message
                        .content_id()
                        .map(|id| id.trim_matches(['<', '>']).to_string()),
                    refused: None,
                });
                self.state = State::Body(Sink::Attachment {
                    writer: BufWriter::with_capacity(64 * 1024, file),
                    encoding,
                    pending: Vec::new(),
                    owed_break: false,
                });
            }
            Err(error) => {
                self.error.get_or_insert(error);
                self.state = State::Body(Sink::Skip);
            }
        }
    }

    /// Decodes one content line (`ends_line`: it came with its line break) into the open
    /// attachment, if any.
    fn content(&mut self, line: &[u8], ends_line: bool) {
        let State::Body(Sink::Attachment {
            writer,
            encoding,
            pending,
            owed_break,
        }) = &mut self.state
        else {
            return;
        };
        let mut out = Vec::with_capacity(line.len());
        match encoding {
            TransferEncoding::Base64 => {
                pending.extend(line.iter().copied().filter(|b| is_base64(*b)));
                let whole = pending.len() / 4 * 4;
                if whole > 0 {
                    decode_base64(&pending[..whole], &mut out);
                    pending.drain(..whole);
                }
            }
            TransferEncoding::QuotedPrintable => {
                if *owed_break {
                    out.extend_from_slice(b"\r\n");
                    *owed_break = false;
                }
                // Trailing blanks were added in transport; blanks before a soft break are text.
                let text = trim_end_spaces(strip_break(line));
                let (text, soft) = match text.strip_suffix(b"=") {
                    Some(t) => (t, true),
                    None => (text, false),
                };
                decode_quoted_printable(text, &mut out);
                *owed_break = ends_line && !soft;
            }
            TransferEncoding::Identity => {
                if *owed_break {
                    out.extend_from_slice(b"\r\n");
                    *owed_break = false;
                }
                out.extend_from_slice(strip_break(line));
                *owed_break = ends_line;
            }
        }
        if !self.allowance.take(out.len() as u64) {
            self.refuse_part();
            return;
        }
        if let Err(error) = writer.write_all(&out) {
            self.error.get_or_insert(error);
        }
        if let Some(last) = self.attachments.last_mut() {
            last.size += out.len() as u64;
        }
    }

    /// The open attachment does not fit the allowance: its file goes, its bytes are given
    /// back, and what is left of it is skipped.
    fn refuse_part(&mut self) {
        self.state = State::Body(Sink::Skip);
        if let Some(last) = self.attachments.last_mut() {
            let _ = std::fs::remove_file(&last.path);
            self.allowance.give_back(last.size);
            last.refused = Some(format!(
                "the attachment was not kept: the attachments of one job may take at most {} on disk; raise it on the worker",
                describe_limit(self.allowance.limit())
            ));
        }
    }

    fn close_part(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Body(Sink::Skip));
        if let State::Body(Sink::Attachment {
            mut writer,
            encoding,
            pending,
            ..
        }) = state
        {
            let mut out = Vec::new();
            if encoding == TransferEncoding::Base64 && !pending.is_empty() {
                decode_base64(&pending, &mut out);
            }
            if !self.allowance.take(out.len() as u64) {
                drop(writer);
                self.refuse_part();
                return;
            }
            let written = writer.write_all(&out).and_then(|()| writer.flush());
            if let Err(error) = written {
                self.error.get_or_insert(error);
            }
            if let Some(last) = self.attachments.last_mut() {
                last.size += out.len() as u64;
            }
        }
    }
}

fn strip_break(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trimmed(line: &[u8]) -> &[u8] {
    let mut line = strip_break(line);
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    line
}

fn trim_end_spaces(mut text: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = text {
        text = rest;
    }
    text
}

#[cfg(test)]
mod tests;
