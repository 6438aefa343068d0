use super::*;
use tokio::io::AsyncReadExt;

async fn through(chunks: &[&[u8]], armed: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut tap = Tap::new(Chunks(chunks.iter().map(|c| c.to_vec()).collect()));
    if armed {
        tap.arm(Capture::Namespace);
    }
    let mut seen = Vec::new();
    tap.read_to_end(&mut seen).await.unwrap();
    let captured = tap.disarm();
    (seen, captured)
}

/// A reader that hands out one chunk per read.
struct Chunks(std::collections::VecDeque<Vec<u8>>);

impl AsyncRead for Chunks {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let chunks = &mut self.get_mut().0;
        if let Some(mut chunk) = chunks.pop_front() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            if n < chunk.len() {
                chunks.push_front(chunk.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn the_namespace_response_is_taken_out_however_it_is_split() {
    let wire: &[u8] = b"* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n* NO maybe\r\nA1 OK done\r\n";
    for split in 1..wire.len() {
        let (seen, captured) = through(&[&wire[..split], &wire[split..]], true).await;
        assert_eq!(seen, b"* NO maybe\r\nA1 OK done\r\n", "split at {split}");
        assert_eq!(captured, [b"((\"INBOX.\" \".\")) NIL NIL\r\n".to_vec()]);
    }
    // With a literal inside, and untouched when not armed.
    let literal: &[u8] = b"* namespace (({5}\r\nINBOX \".\")) NIL NIL\r\nA1 OK\r\n";
    let (seen, captured) = through(&[literal], true).await;
    assert_eq!(seen, b"A1 OK\r\n");
    assert_eq!(captured, [b"(({5}\r\nINBOX \".\")) NIL NIL\r\n".to_vec()]);
    let (seen, captured) = through(&[wire], false).await;
    assert_eq!(seen, wire);
    assert!(captured.is_empty());
    // A stream that ends in the middle of a candidate keeps its bytes.
    let (seen, _) = through(&[b"* NAMES"], true).await;
    assert_eq!(seen, b"* NAMES");
}

async fn through_esearch(chunks: &[&[u8]]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut tap = Tap::new(Chunks(chunks.iter().map(|c| c.to_vec()).collect()));
    tap.arm(Capture::Esearch);
    let mut seen = Vec::new();
    tap.read_to_end(&mut seen).await.unwrap();
    let captured = tap.disarm();
    (seen, captured)
}

#[tokio::test]
async fn the_esearch_response_is_taken_out_however_it_is_split() {
    let wire: &[u8] =
        b"* 3 EXISTS\r\n* ESEARCH (TAG \"A4\") UID PARTIAL (1:2 9,8)\r\nA4 OK sorted\r\n";
    for split in 1..wire.len() {
        let (seen, captured) = through_esearch(&[&wire[..split], &wire[split..]]).await;
        assert_eq!(seen, b"* 3 EXISTS\r\nA4 OK sorted\r\n", "split at {split}");
        assert_eq!(
            captured,
            [b"(TAG \"A4\") UID PARTIAL (1:2 9,8)\r\n".to_vec()]
        );
    }
}

#[tokio::test]
async fn bytes_inside_a_passed_literal_are_never_taken_for_a_response() {
    // An unsolicited FETCH whose literal holds what looks like an ESEARCH line: handed on
    // whole (async-imap reads the literal), and only the real response is captured.
    let wire: &[u8] = b"* 1 FETCH (UID 5 BODY[] {33}\r\n\r\n* ESEARCH (TAG \"x\") UID ALL 1\r\n)\r\n* ESEARCH (TAG \"A4\") UID\r\nA4 OK\r\n";
    for split in 1..wire.len() {
        let (seen, captured) = through_esearch(&[&wire[..split], &wire[split..]]).await;
        assert_eq!(
            seen,
            b"* 1 FETCH (UID 5 BODY[] {33}\r\n\r\n* ESEARCH (TAG \"x\") UID ALL 1\r\n)\r\nA4 OK\r\n",
            "split at {split}"
        );
        assert_eq!(
            captured,
            [b"(TAG \"A4\") UID\r\n".to_vec()],
            "split at {split}"
        );
    }
    // A literal announced larger than what follows passes everything on, to the end.
    let (seen, captured) =
        through_esearch(&[b"* 1 FETCH (BODY[] {4294967296}\r\n* ESEARCH x\r\n"]).await;
    assert_eq!(seen, b"* 1 FETCH (BODY[] {4294967296}\r\n* ESEARCH x\r\n");
    assert!(captured.is_empty());
}

#[tokio::test]
async fn a_flood_of_namespace_data_ends_the_session() {
    let flood = b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n".repeat(5000);
    let mut tap = Tap::new(Chunks(vec![flood].into()));
    tap.arm(Capture::Namespace);
    let mut seen = Vec::new();
    let error = tap.read_to_end(&mut seen).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn the_last_completion_before_login_is_read_however_it_is_split() {
    use crate::imap::error::{ReplyCode, ReplyStatus};
    let wire: &[u8] =
        b"* OK ready\r\n* CAPABILITY IMAP4rev1\r\nA0001 NO [AUTHENTICATIONFAILED] nope\r\n";
    for split in 1..wire.len() {
        let mut tap = Tap::new(Chunks(
            vec![wire[..split].to_vec(), wire[split..].to_vec()].into(),
        ));
        let mut seen = Vec::new();
        tap.read_to_end(&mut seen).await.unwrap();
        assert_eq!(seen, wire);
        let reply = tap.take_refusal().expect("the completion");
        assert_eq!(reply.status, ReplyStatus::No);
        assert_eq!(reply.code, Some(ReplyCode::AuthenticationFailed));
        assert_eq!(
            reply.text, "[AUTHENTICATIONFAILED] nope",
            "split at {split}"
        );
        assert_eq!(tap.take_refusal(), None, "taken once");
    }
    // After login nothing is kept; an overlong line is never kept.
    let mut tap = Tap::new(Chunks(vec![b"A1 NO late\r\n".to_vec()].into()));
    tap.stop_watching();
    tap.read_to_end(&mut Vec::new()).await.unwrap();
    assert_eq!(tap.take_refusal(), None);
    let long = [b"A1 NO ".as_slice(), &[b'x'; MAX_COMPLETION], b"\r\n"].concat();
    let mut tap = Tap::new(Chunks(vec![long].into()));
    tap.read_to_end(&mut Vec::new()).await.unwrap();
    assert_eq!(tap.take_refusal(), None);
}
