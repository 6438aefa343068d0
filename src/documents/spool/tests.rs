use base64::Engine;

use super::*;
use crate::documents::disk::DEFAULT_MAX_DOCUMENT_BYTES;

fn spool(raw: &[u8], chunk: usize) -> (Vec<Spooled>, Vec<Vec<u8>>, SpoolDir) {
    let mut spool =
        Spool::with_allowance(Allowance::with_limit(DEFAULT_MAX_DOCUMENT_BYTES)).unwrap();
    for piece in raw.chunks(chunk) {
        spool.feed(piece);
    }
    let (attachments, dir) = spool.finish().unwrap();
    let contents = attachments
        .iter()
        .map(|a| std::fs::read(&a.path).unwrap())
        .collect();
    (attachments, contents, dir)
}

fn wrapped_base64(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn sample() -> (Vec<u8>, Vec<u8>) {
    let binary: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let raw = format!(
        "From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n\
         --inner\r\nContent-Type: text/plain\r\n\r\nhello body\r\n\
         --inner\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--inner--\r\n\
         --outer\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n{}\r\n\
         --outer\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         Gr=C3=BC=C3=9Fe, a long line that is =\r\nsoft-broken\r\nsecond line\r\n\
         --outer\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=a.csv\r\n\
         Content-ID: <c1@x>\r\n\r\na,b\r\n1,2\r\n\
         --outer--\r\nepilogue\r\n",
        wrapped_base64(&binary)
    );
    (raw.into_bytes(), binary)
}

#[test]
fn attachments_decode_to_their_bytes_in_any_chunking() {
    let (raw, binary) = sample();
    for chunk in [1, 7, 1000, raw.len()] {
        let (attachments, contents, _dir) = spool(&raw, chunk);
        let names: Vec<&str> = attachments.iter().map(|a| a.file_name.as_str()).collect();
        assert_eq!(names, ["data.bin", "notes.txt", "a.csv"], "chunk {chunk}");
        assert_eq!(contents[0], binary, "chunk {chunk}");
        assert_eq!(attachments[0].size, binary.len() as u64);
        assert_eq!(attachments[0].content_type, "application/octet-stream");
        assert_eq!(
            String::from_utf8_lossy(&contents[1]),
            "Grüße, a long line that is soft-broken\r\nsecond line"
        );
        assert_eq!(contents[2], b"a,b\r\n1,2");
        assert_eq!(attachments[2].content_id.as_deref(), Some("c1@x"));
    }
}

#[test]
fn the_directory_goes_when_dropped() {
    let (raw, _) = sample();
    let (attachments, _contents, dir) = spool(&raw, 4096);
    let path = attachments[0].path.clone();
    assert!(path.exists());
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn a_single_part_message_is_its_body_and_hostile_input_is_bounded() {
    let (attachments, _, _dir) = spool(b"Subject: x\r\n\r\njust text\r\n", 3);
    assert!(attachments.is_empty());
    // A top-level attachment, an unterminated multipart and a never-ending line.
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: application/pdf; name=x.pdf\r\n\r\n"
        .to_vec();
    raw.extend(std::iter::repeat_n(b'x', 300_000));
    let (attachments, contents, _dir) = spool(&raw, 8192);
    assert_eq!(attachments.len(), 1);
    assert_eq!(contents[0].len(), 300_000);
    // A path in the file name is not kept.
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: text/plain; name=\"../../etc/passwd\"\r\n\r\nx\r\n--b--\r\n";
    let (attachments, _, _dir) = spool(raw, 5);
    assert_eq!(attachments[0].file_name, "etc_passwd");
}

#[test]
fn an_endless_header_line_is_skipped_in_bounded_memory() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Long: ".to_vec();
    raw.extend(std::iter::repeat_n(b'y', 2_000_000));
    raw.extend_from_slice(
        b"\r\n\r\nskipped\r\n--b\r\nContent-Type: application/pdf\r\n\r\nkept\r\n--b--\r\n",
    );
    let mut spool =
        Spool::with_allowance(Allowance::with_limit(DEFAULT_MAX_DOCUMENT_BYTES)).unwrap();
    for piece in raw.chunks(4096) {
        spool.feed(piece);
        assert!(
            spool.line.len() <= 64 * 1024 + 4096,
            "a line is never held whole"
        );
    }
    let (attachments, _dir) = spool.finish().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(std::fs::read(&attachments[0].path).unwrap(), b"kept");
}

#[test]
fn what_does_not_fit_the_allowance_is_refused_and_the_rest_still_kept() {
    use crate::documents::disk::Allowance;
    let (raw, _) = sample();
    for chunk in [1, 4096, raw.len()] {
        let mut spool = Spool::with_allowance(Allowance::with_limit(1000)).unwrap();
        for piece in raw.chunks(chunk) {
            spool.feed(piece);
        }
        let (attachments, _dir) = spool.finish().unwrap();
        let refused = attachments[0].refused.as_deref().unwrap_or_default();
        assert!(refused.contains("EMAIL_MAX_DOCUMENT_BYTES"), "{refused}");
        assert!(!attachments[0].path.exists(), "the refused file is gone");
        assert!(attachments[1..].iter().all(|a| a.refused.is_none()));
        assert_eq!(std::fs::read(&attachments[2].path).unwrap(), b"a,b\r\n1,2");
        let on_disk: u64 = attachments[1..]
            .iter()
            .map(|a| std::fs::metadata(&a.path).unwrap().len())
            .sum();
        assert!(on_disk <= 1000, "{on_disk} bytes on disk");
    }
}
