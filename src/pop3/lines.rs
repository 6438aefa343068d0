//! POP3's line framing: status lines, and multi-line responses read line by line with
//! dot-stuffing undone, each line under its own timeout so a large message on a slow link keeps
//! going while data comes and a silent server does not.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest line we accept (RFC 1939 allows 512 octets; real servers send longer headers).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads one CRLF- (or LF-) terminated line, without the terminator. Errors on EOF and on a
/// line longer than `MAX_LINE_BYTES`.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<()> {
    if read_line_piece(reader, line, MAX_LINE_BYTES).await? {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a response line is too long",
        ))
    }
}

/// Reads the body of a multi-line response up to the terminating `.` line, undoing
/// dot-stuffing, with lines joined by CRLF. Errors past `cap` bytes, and with `TimedOut` when
/// one line takes longer than `line_timeout`: a large message on a slow link keeps going as
/// long as data comes, a silent server does not.
pub async fn read_multiline<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    cap: usize,
    line_timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        tokio::time::timeout(line_timeout, read_line(reader, &mut line))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the server stopped sending")
            })??;
        if line == b"." {
            return Ok(out);
        }
        let content = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        if out.len() + content.len() + 2 > cap {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the response exceeds {cap} bytes"),
            ));
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads up to a line end (dropping CRLF or LF), or `max` bytes of a longer line. Returns
/// whether the line ended.
async fn read_line_piece<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        match available.iter().position(|b| *b == b'\n') {
            Some(end) if line.len() + end <= max => {
                line.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(true);
            }
            _ => {
                let take = available.len().min(max - line.len());
                line.extend_from_slice(&available[..take]);
                reader.consume(take);
                if line.len() >= max {
                    return Ok(false);
                }
            }
        }
    }
}

/// Like [`read_multiline`], but hands the message to `each` line by line (un-stuffed,
/// without CRLF, `true` when the line ends there) instead of collecting it: RETR of a message
/// of any size keeps only what `each` keeps. A line longer than `MAX_LINE_BYTES` (a body
/// some mailer never broke into lines) comes in pieces instead of failing the read. An
/// answer longer than `max` bytes (as sent) is an error: what never ends is not read forever.
pub async fn read_multiline_each<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: u64,
    line_timeout: Duration,
    mut each: impl FnMut(&[u8], bool),
) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut piece = Vec::new();
    let mut at_start = true;
    // A CR that ended one piece: it belongs to a CRLF if the next piece starts the LF.
    let mut held_cr = false;
    let mut read: u64 = 0;
    loop {
        let complete = tokio::time::timeout(
            line_timeout,
            read_line_piece(reader, &mut line, MAX_LINE_BYTES),
        )
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "the server stopped sending")
        })??;
        if at_start && complete && line == b"." {
            return Ok(());
        }
        read = read.saturating_add(line.len() as u64 + u64::from(complete));
        if read > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the answer exceeds {max} bytes"),
            ));
        }
        piece.clear();
        if held_cr && !(complete && line.is_empty()) {
            piece.push(b'\r');
        }
        let content = match line.strip_prefix(b".") {
            Some(rest) if at_start => rest,
            _ => &line[..],
        };
        piece.extend_from_slice(content);
        held_cr = !complete && piece.last() == Some(&b'\r');
        if held_cr {
            piece.pop();
        }
        each(&piece, complete);
        at_start = complete;
    }
}

/// A multi-line answer of which only a prefix is kept.
#[derive(Debug, Default, PartialEq)]
pub struct Kept {
    /// The whole lines that fit, un-stuffed, each ending in CRLF.
    pub bytes: Vec<u8>,
    /// Lines were left out.
    pub cut: bool,
}

/// Reads a multi-line answer to its end (at most `max` bytes), keeping the whole lines that
/// fit in `keep` bytes: the rest is read and dropped, so the session stays in step and a
/// long answer costs `keep` bytes of memory, not its size.
pub async fn read_multiline_kept<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    keep: usize,
    max: u64,
    line_timeout: Duration,
) -> std::io::Result<Kept> {
    let mut kept = Kept::default();
    // Where the line being read began in `kept.bytes`: a line that does not fit goes whole.
    let mut line_start = 0;
    read_multiline_each(reader, max, line_timeout, |piece, complete| {
        if kept.cut {
            return;
        }
        let eol = if complete { 2 } else { 0 };
        if kept.bytes.len() + piece.len() + eol > keep {
            kept.bytes.truncate(line_start);
            kept.cut = true;
            return;
        }
        kept.bytes.extend_from_slice(piece);
        if complete {
            kept.bytes.extend_from_slice(b"\r\n");
            line_start = kept.bytes.len();
        }
    })
    .await?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn multiline(input: &[u8], cap: usize) -> std::io::Result<Vec<u8>> {
        let mut reader = BufReader::new(input);
        read_multiline(&mut reader, cap, Duration::from_secs(1)).await
    }

    #[tokio::test]
    async fn dot_stuffing_is_undone() {
        let body = multiline(b"Subject: x\r\n\r\n..leading dot\r\n.\r\n", 1024)
            .await
            .unwrap();
        assert_eq!(body, b"Subject: x\r\n\r\n.leading dot\r\n");
        let lf_only = multiline(b"a\n..b\n.\n", 1024).await.unwrap();
        assert_eq!(lf_only, b"a\r\n.b\r\n");
    }

    #[tokio::test]
    async fn malformed_input_errors_and_never_panics() {
        assert!(multiline(b"no terminator\r\n", 1024).await.is_err());
        assert!(multiline(b"", 1024).await.is_err());
        assert!(multiline(b"0123456789\r\n.\r\n", 8).await.is_err());
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        assert!(multiline(&long, usize::MAX).await.is_err());
        assert_eq!(multiline(b"\r\n.\r\n", 16).await.unwrap(), b"\r\n");
        assert_eq!(
            multiline(b"\xff\xfe\r\n.\r\n", 16).await.unwrap(),
            b"\xff\xfe\r\n"
        );
    }

    #[tokio::test]
    async fn long_lines_come_in_pieces_and_dots_are_undone_at_line_starts_only() {
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        let mut input = b"..a\r\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b".b\r\n.\r\n");
        let mut reader = BufReader::new(&input[..]);
        let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
        read_multiline_each(
            &mut reader,
            u64::MAX,
            Duration::from_secs(1),
            |piece, complete| got.push((piece.to_vec(), complete)),
        )
        .await
        .unwrap();
        assert_eq!(got[0], (b".a".to_vec(), true));
        let joined: Vec<u8> = got[1..].iter().flat_map(|(p, _)| p.clone()).collect();
        let mut expected = long.clone();
        expected.extend_from_slice(b".b");
        assert_eq!(joined, expected, "a dot inside a long line stays");
        assert_eq!(got.last().map(|g| g.1), Some(true));
        assert!(got[1..got.len() - 1].iter().all(|g| !g.1));

        // A CR that ends a piece and the LF that starts the next make one line end.
        let mut input = vec![b'y'; MAX_LINE_BYTES - 1];
        input.extend_from_slice(b"\r\nz\r\n.\r\n");
        let mut reader = BufReader::new(&input[..]);
        let mut joined = Vec::new();
        read_multiline_each(
            &mut reader,
            u64::MAX,
            Duration::from_secs(1),
            |piece, complete| {
                joined.extend_from_slice(piece);
                if complete {
                    joined.push(b'|');
                }
            },
        )
        .await
        .unwrap();
        let mut expected = vec![b'y'; MAX_LINE_BYTES - 1];
        expected.extend_from_slice(b"|z|");
        assert_eq!(joined, expected);
    }

    #[tokio::test]
    async fn a_kept_answer_holds_whole_lines_up_to_its_cap_and_reads_the_rest() {
        let answer = b"Subject: one\r\nX-Long: 0123456789\r\n..dot\r\n.\r\n+OK next\r\n";
        let mut reader = BufReader::new(&answer[..]);
        let kept = read_multiline_kept(&mut reader, 20, u64::MAX, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            kept,
            Kept {
                bytes: b"Subject: one\r\n".to_vec(),
                cut: true
            }
        );
        // The session is in step: the next status line is what comes next.
        let mut line = Vec::new();
        read_line(&mut reader, &mut line).await.unwrap();
        assert_eq!(line, b"+OK next");
        let mut whole = BufReader::new(&answer[..]);
        let kept = read_multiline_kept(&mut whole, 1024, u64::MAX, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            kept.bytes,
            b"Subject: one\r\nX-Long: 0123456789\r\n.dot\r\n"
        );
        assert!(!kept.cut);
        // A long line in pieces goes whole too, and an answer past `max` is an error.
        let mut long = vec![b'h'; MAX_LINE_BYTES * 3];
        long.extend_from_slice(b"\r\nshort\r\n.\r\n");
        let kept = read_multiline_kept(
            &mut BufReader::new(&long[..]),
            MAX_LINE_BYTES,
            u64::MAX,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert!(kept.bytes.is_empty() && kept.cut);
        let endless = b"line\r\n".repeat(1000);
        let error = read_multiline_kept(
            &mut BufReader::new(&endless[..]),
            64,
            1000,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }
}
