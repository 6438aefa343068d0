//! A message as it goes to the server after DATA: the MIME text lettre built, with each
//! attachment's content base64-encoded on the fly from where it lies (a spooled document's
//! file, or an inline attachment's decoded bytes) in place of the placeholder compose put
//! there, and a forwarded original's bytes as they are. Memory stays at a few buffers whatever
//! the attachments weigh; the whole message never exists in one piece.

use std::path::PathBuf;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::{SmtpError, SmtpErrorKind};

type Result<T> = std::result::Result<T, SmtpError>;

/// Bytes of content per base64 line: 57 give the 76 characters RFC 2045 allows.
const LINE_BYTES: usize = 57;
/// Content read and encoded per step (a whole number of lines).
const CHUNK_BYTES: usize = LINE_BYTES * 1024;
/// What is written to the server per call.
const WRITE_BYTES: usize = 64 * 1024;

/// Where an attachment's content lies.
#[derive(Debug)]
pub enum Content {
    /// Decoded bytes (an inline attachment, already bounded by the job's size).
    Memory(Vec<u8>),
    /// A downloaded document in the job's spool.
    File(PathBuf),
    /// Bytes sent as they are, not encoded: a forwarded original in a `message/rfc822` part,
    /// which may only be 7bit, 8bit or binary (RFC 2046 5.2.1). Compose puts them here only
    /// when they are valid 7bit or 8bit text (CRLF lines of at most 998 octets, no NUL).
    Verbatim(Vec<u8>),
}

#[derive(Debug)]
enum Piece {
    /// MIME text with CRLF line ends, as lettre formats it.
    Text(Vec<u8>),
    /// Content to send as base64 lines, without a line break after the last, or verbatim.
    Content(Content),
}

/// The message after DATA, in pieces.
#[derive(Debug)]
pub struct Outgoing {
    pieces: Vec<Piece>,
}

impl Outgoing {
    /// A message without attachments to stream: `text` as it is.
    pub fn text(text: Vec<u8>) -> Outgoing {
        Outgoing {
            pieces: vec![Piece::Text(text)],
        }
    }

    /// Splits `formatted` at each placeholder in turn; `None` if one is not found exactly
    /// where compose put it (once, in order).
    pub fn assemble(formatted: Vec<u8>, parts: Vec<(String, Content)>) -> Option<Outgoing> {
        let mut pieces = Vec::with_capacity(parts.len() * 2 + 1);
        let mut rest = formatted.as_slice();
        for (placeholder, content) in parts {
            let at = find(rest, placeholder.as_bytes())?;
            pieces.push(Piece::Text(rest[..at].to_vec()));
            pieces.push(Piece::Content(content));
            rest = &rest[at + placeholder.len()..];
            if find(rest, placeholder.as_bytes()).is_some() {
                return None;
            }
        }
        pieces.push(Piece::Text(rest.to_vec()));
        Some(Outgoing { pieces })
    }

    /// Whether the message is 7-bit (else the server must offer 8BITMIME); base64 always is.
    pub fn is_ascii(&self) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Text(text) | Piece::Content(Content::Verbatim(text)) => text.is_ascii(),
            Piece::Content(_) => true,
        })
    }

    /// Whether a forwarded original in the message is 8-bit: a server without 8BITMIME cannot
    /// take it, and it cannot be base64 in its `message/rfc822` part.
    pub fn forwards_eight_bit(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Content(Content::Verbatim(bytes)) if !bytes.is_ascii()))
    }

    /// What the writer's buffer needs: room for a write and two encoded chunks when content
    /// is encoded on the way, else the text (and a little for dots and the end). A message of
    /// a few KiB must not ask the allocator for 180 KiB each time: a request that large makes
    /// glibc consolidate its free lists, once per message.
    fn buffer_capacity(&self) -> usize {
        let mut text = 0;
        for piece in &self.pieces {
            match piece {
                Piece::Text(bytes) | Piece::Content(Content::Verbatim(bytes)) => {
                    text += bytes.len()
                }
                Piece::Content(_) => return WRITE_BYTES + CHUNK_BYTES * 2,
            }
        }
        text.min(WRITE_BYTES) + text / 64 + 8
    }

    /// The message's bytes as the server received them (dot-stuffing undone, without the
    /// final `.`), in one buffer.
    pub async fn bytes(&self) -> Result<Vec<u8>> {
        let mut raw = Vec::with_capacity(usize::try_from(self.stored_len().await?).unwrap_or(0));
        self.write_stored_to(&mut raw).await?;
        Ok(raw)
    }

    /// The start of the message, its header among it: what a stored copy is recognised by.
    pub fn head(&self) -> &[u8] {
        match self.pieces.first() {
            Some(Piece::Text(text)) => text,
            _ => &[],
        }
    }

    /// How many bytes [`Outgoing::write_stored_to`] writes, counted without writing them: a
    /// saved copy is an IMAP literal, whose length goes first.
    pub async fn stored_len(&self) -> Result<u64> {
        let mut len = 0u64;
        let mut line_start = true;
        for piece in &self.pieces {
            let (bytes, ends_line) = match piece {
                Piece::Text(text) | Piece::Content(Content::Verbatim(text)) => {
                    (text.len() as u64, text.last().map(|b| *b == b'\n'))
                }
                Piece::Content(Content::Memory(bytes)) => (base64_len(bytes.len() as u64), None),
                Piece::Content(Content::File(path)) => {
                    let size = tokio::fs::metadata(path).await.map_err(unreadable)?.len();
                    (base64_len(size), None)
                }
            };
            if bytes > 0 {
                // Base64 lines end without a line break; the next text brings it.
                line_start = ends_line.unwrap_or(false);
            }
            len += bytes;
        }
        // The line break the writer adds before the end of the message.
        Ok(len + if line_start { 0 } else { 2 })
    }

    /// Writes the message as the server received it (dot-stuffing undone, without the final
    /// `.`): what a saved copy stores, from the same pieces the send wrote, so the copy costs
    /// no buffer of the whole message. Returns how many bytes were written.
    pub async fn write_stored_to<W: AsyncWrite + Unpin>(&self, out: &mut W) -> Result<u64> {
        self.write(out, false).await
    }

    /// Writes the message dot-stuffed (RFC 5321 4.5.2), then the final `.`.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, out: &mut W) -> Result<()> {
        self.write(out, true).await.map(|_| ())
    }

    async fn write<W: AsyncWrite + Unpin>(&self, out: &mut W, stuffed: bool) -> Result<u64> {
        let mut writer = Writer {
            out,
            buffer: Vec::with_capacity(self.buffer_capacity()),
            line_start: true,
            stuffed,
            written: 0,
        };
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) | Piece::Content(Content::Verbatim(text)) => {
                    writer.text(text).await?
                }
                Piece::Content(Content::Memory(bytes)) => {
                    writer.base64(&mut bytes.as_slice()).await?
                }
                Piece::Content(Content::File(path)) => {
                    let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
                    writer.base64(&mut file).await?
                }
            }
        }
        writer.finish().await
    }
}

/// The length of `bytes` bytes in base64 lines of [`LINE_BYTES`], CRLF between them.
fn base64_len(bytes: u64) -> u64 {
    let line = LINE_BYTES as u64;
    match bytes {
        0 => 0,
        n => n.div_ceil(3) * 4 + (n.div_ceil(line) - 1) * 2,
    }
}

struct Writer<'a, W> {
    out: &'a mut W,
    buffer: Vec<u8>,
    /// The next byte starts a line (a `.` there is doubled).
    line_start: bool,
    /// Whether lines starting with a dot are doubled and the end marked, as after DATA.
    stuffed: bool,
    /// Bytes handed to `out` so far.
    written: u64,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    async fn text(&mut self, text: &[u8]) -> Result<()> {
        for line in text.split_inclusive(|b| *b == b'\n') {
            if self.stuffed && self.line_start && line.first() == Some(&b'.') {
                self.buffer.push(b'.');
            }
            self.buffer.extend_from_slice(line);
            self.line_start = line.ends_with(b"\n");
            self.spill().await?;
        }
        Ok(())
    }

    async fn base64<R: AsyncRead + Unpin>(&mut self, source: &mut R) -> Result<()> {
        let engine = &base64::engine::general_purpose::STANDARD;
        let mut chunk = vec![0u8; CHUNK_BYTES];
        let mut first = true;
        loop {
            let filled = fill(source, &mut chunk).await.map_err(unreadable)?;
            for line in chunk[..filled].chunks(LINE_BYTES) {
                if !first {
                    self.buffer.extend_from_slice(b"\r\n");
                }
                first = false;
                let start = self.buffer.len();
                self.buffer.resize(start + line.len().div_ceil(3) * 4, 0);
                engine
                    .encode_slice(line, &mut self.buffer[start..])
                    .map_err(|e| {
                        SmtpError::new(SmtpErrorKind::Internal, format!("base64: {e}"))
                            .with_source(e)
                    })?;
                // A base64 line never starts with a dot.
                self.line_start = false;
            }
            self.spill().await?;
            if filled < chunk.len() {
                return Ok(());
            }
        }
    }

    async fn spill(&mut self) -> Result<()> {
        if self.buffer.len() >= WRITE_BYTES {
            self.out.write_all(&self.buffer).await.map_err(broken_off)?;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64> {
        if !self.line_start {
            self.buffer.extend_from_slice(b"\r\n");
        }
        // The final dot goes with the end of the message, in one write: a separate small write
        // would wait for the server's delayed ACK.
        if self.stuffed {
            self.buffer.extend_from_slice(b".\r\n");
        }
        self.out.write_all(&self.buffer).await.map_err(broken_off)?;
        self.written += self.buffer.len() as u64;
        self.out.flush().await.map_err(broken_off)?;
        Ok(self.written)
    }
}

fn unreadable(error: std::io::Error) -> SmtpError {
    SmtpError::new(
        SmtpErrorKind::Internal,
        format!("cannot read an attachment while sending: {error}"),
    )
    .with_source(error)
}

fn broken_off(error: std::io::Error) -> SmtpError {
    SmtpError::new(
        SmtpErrorKind::Connection,
        format!("the connection broke off while sending the message: {error}"),
    )
    .with_source(error)
}

/// Reads until `buffer` is full or the source ends; returns how much was read.
async fn fill<R: AsyncRead + Unpin>(source: &mut R, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = source.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sent(outgoing: &Outgoing) -> String {
        let mut out = Vec::new();
        outgoing.write_to(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn lines_starting_with_a_dot_are_doubled_and_the_end_is_marked() {
        let message = Outgoing::assemble(b".a\r\nb\r\n..c\r\nd".to_vec(), Vec::new()).unwrap();
        assert_eq!(sent(&message).await, "..a\r\nb\r\n...c\r\nd\r\n.\r\n");
        // What the server stored, as a saved copy keeps it.
        assert_eq!(message.bytes().await.unwrap(), b".a\r\nb\r\n..c\r\nd\r\n");
    }

    #[tokio::test]
    async fn content_goes_as_base64_lines_where_its_placeholder_was() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        let formatted = b"Header: x\r\n\r\nPLACEHOLDER\r\n--end--\r\n".to_vec();
        let message = Outgoing::assemble(
            formatted,
            vec![("PLACEHOLDER".into(), Content::Memory(bytes.clone()))],
        )
        .unwrap();
        let text = sent(&message).await;
        let body = text
            .strip_prefix("Header: x\r\n\r\n")
            .and_then(|t| t.strip_suffix("\r\n--end--\r\n.\r\n"))
            .unwrap();
        assert!(body.split("\r\n").all(|l| l.len() <= 76), "line too long");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body.replace("\r\n", ""))
            .unwrap();
        assert_eq!(decoded, bytes);
        let empty = Outgoing::assemble(
            b"a\r\nP\r\nb".to_vec(),
            vec![("P".into(), Content::Memory(Vec::new()))],
        )
        .unwrap();
        assert_eq!(sent(&empty).await, "a\r\n\r\nb\r\n.\r\n");
    }

    #[tokio::test]
    async fn the_stored_length_is_counted_before_writing() {
        let dir = std::env::temp_dir().join(format!("data-len-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("content");
        std::fs::write(&file, vec![7u8; 57 * 3 + 1]).unwrap();
        let cases = [
            (b"H: x\r\n\r\nA\r\nB".to_vec(), vec![]),
            (b"H: x\r\n\r\nA\r\n".to_vec(), vec![]),
            (
                b"H: x\r\n\r\nP".to_vec(),
                vec![Content::Memory(vec![1; 58])],
            ),
            (b"H: x\r\n\r\nP".to_vec(), vec![Content::Memory(vec![])]),
            (
                b"H: x\r\n\r\nP\r\n--b--".to_vec(),
                vec![Content::File(file.clone())],
            ),
            (
                b"H: x\r\n\r\nP\r\n".to_vec(),
                vec![Content::Verbatim(b".A\r\nB".to_vec())],
            ),
        ];
        for (formatted, contents) in cases {
            let parts = contents.into_iter().map(|c| ("P".to_string(), c)).collect();
            let message = Outgoing::assemble(formatted, parts).unwrap();
            let bytes = message.bytes().await.unwrap();
            assert_eq!(message.stored_len().await.unwrap(), bytes.len() as u64);
            let mut streamed = Vec::new();
            let written = message.write_stored_to(&mut streamed).await.unwrap();
            assert_eq!((written, streamed), (bytes.len() as u64, bytes));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_placeholder_missing_or_twice_is_refused() {
        let twice = b"P P".to_vec();
        assert!(Outgoing::assemble(twice, vec![("P".into(), Content::Memory(vec![]))]).is_none());
        let none = b"x".to_vec();
        assert!(Outgoing::assemble(none, vec![("P".into(), Content::Memory(vec![]))]).is_none());
    }
}
