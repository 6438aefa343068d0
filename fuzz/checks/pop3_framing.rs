//! The checks of the `pop3_framing` fuzz target, shared with `tests/faults/fuzz_regressions.rs`: a
//! hostile POP3 server's multi-line answers as the client reads them, arriving in reads of
//! any size. A header block kept to a cap holds whole lines of the answer and no more, the
//! rest is read to the terminator (the next line is the next answer's), an answer past its
//! bound is an error, and none of it depends on how the bytes were split. The first three
//! bytes choose the cap, the bound and the read size.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use email_connector::pop3::lines::{Kept, read_line, read_multiline, read_multiline_kept};
use tokio::io::{AsyncRead, BufReader, ReadBuf};

/// Hands out its bytes `piece` at a time.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.piece.min(self.data.len()).min(buf.remaining());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

/// The kept answer and the line after it.
async fn kept(data: &[u8], piece: usize, keep: usize, max: u64) -> Option<(Kept, Vec<u8>)> {
    let mut reader = BufReader::with_capacity(64, Pieces { data, piece });
    let kept = read_multiline_kept(&mut reader, keep, max, Duration::from_secs(1))
        .await
        .ok()?;
    let mut next = Vec::new();
    let _ = read_line(&mut reader, &mut next).await;
    Some((kept, next))
}

pub async fn check(input: &[u8]) {
    let Some((head, data)) = input.split_first_chunk::<3>() else {
        return;
    };
    let keep = usize::from(head[0]) * 4;
    let max = u64::from(head[1]) * 64;
    let piece = usize::from(head[2] % 16) + 1;
    let whole = kept(data, data.len().max(1), keep, max).await;
    let split = kept(data, piece, keep, max).await;
    assert_eq!(whole, split, "the reads changed the answer");
    let Some((kept, _)) = whole else { return };
    assert!(kept.bytes.len() <= keep);
    assert!(
        kept.bytes.is_empty() || kept.bytes.ends_with(b"\r\n"),
        "whole lines only"
    );
    // What was kept is the start of the whole answer (read with no cap), line for line.
    let mut reader = BufReader::new(data);
    if let Ok(full) = read_multiline(&mut reader, usize::MAX, Duration::from_secs(1)).await {
        assert!(full.starts_with(&kept.bytes), "not a prefix of the answer");
        assert_eq!(kept.cut, kept.bytes.len() < full.len());
    }
}
