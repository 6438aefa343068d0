//! The pruner and the malformed-mail repairs, through the response they lead to.

use base64::Engine;
use serde_json::Value;

use super::*;
use crate::mail::message::{Envelope, read_response_within, respond};

const LIMITS: Limits = Limits {
    max_attachment_bytes: 1000,
    max_response_bytes: 4000,
};

fn read(raw: &[u8], limits: Limits) -> Value {
    read_response_within(raw, &Envelope::default(), limits)
}

fn streamed(raw: &[u8], limits: Limits) -> Pruned {
    // As POP3 feeds it: lines without endings, CRLF given.
    let mut pruner = Pruner::new(limits);
    for line in raw.split(|b| *b == b'\n') {
        pruner.push(line.strip_suffix(b"\r").unwrap_or(line), b"\r\n");
    }
    pruner.finish()
}

/// As POP3 feeds a message whose lines may be longer than it holds: pieces of at most `max`.
fn in_pieces(raw: &[u8], limits: Limits, max: usize) -> Pruned {
    let mut pruner = Pruner::new(limits);
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut chunks = line.chunks(max).peekable();
        if chunks.peek().is_none() {
            pruner.push(b"", b"\r\n");
        }
        while let Some(chunk) = chunks.next() {
            if chunks.peek().is_some() {
                pruner.push_piece(chunk);
            } else {
                pruner.push(chunk, b"\r\n");
            }
        }
    }
    pruner.finish()
}

fn b64_lines(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
        .collect()
}

#[test]
fn small_messages_pass_through_unchanged() {
    let raw = b"From: a@example.test\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
    let pruned = prune(raw, LIMITS);
    assert_eq!(pruned.raw, raw);
    assert!(!pruned.budget_cut);
    let lf = b"From: a@example.test\nSubject: s\n\nline one\nline two\n";
    assert_eq!(prune(lf, LIMITS).raw, lf);
}

#[test]
fn nested_multiparts_keep_bodies_and_cut_large_attachments_with_exact_sizes() {
    let attachment: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let raw = format!(
        "From: a@example.test\r\nSubject: nest\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nplain text\r\n--inner \t\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n--outer\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--outer\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=small.txt\r\n\r\nsmall\r\n--outer--  \r\nepilogue\r\n",
        b64_lines(&attachment)
    );
    let pruned = streamed(raw.as_bytes(), LIMITS);
    assert!(!pruned.budget_cut, "a limit cut is not a budget cut");
    assert!(pruned.raw.len() < 1500, "{}", pruned.raw.len());
    let v = read(raw.as_bytes(), LIMITS);
    assert_eq!(v["plainTextBody"], "plain text");
    assert_eq!(v["htmlBody"], "<p>html</p>");
    assert_eq!(v["attachments"][0]["fileName"], "big.bin");
    assert_eq!(v["attachments"][0]["size"], 5000);
    assert_eq!(v["attachments"][0]["truncated"], true);
    assert!(v["attachments"][0].get("content").is_none());
    assert_eq!(v["attachments"][1]["fileName"], "small.txt");
    assert_eq!(v["attachments"][1]["content"], "c21hbGw=");
    assert_eq!(v["truncated"], false);
}

#[test]
fn base64_sizes_are_counted_exactly() {
    for len in [0usize, 1, 2, 3, 4, 57, 58, 1001, 3000] {
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n",
            b64_lines(&vec![7u8; len])
        );
        let v = read(
            raw.as_bytes(),
            Limits {
                max_attachment_bytes: 0,
                max_response_bytes: 100_000,
            },
        );
        assert_eq!(v["attachments"][0]["size"], len, "{len}");
    }
}

#[test]
fn cut_bodies_are_prefixes_on_char_boundaries() {
    let text: String = "Grüße, 世界! ".repeat(2000);
    for (encoding, body) in [
        ("8bit", text.replace(' ', "\r\n")),
        ("8bit", text.clone()),
        ("base64", b64_lines(text.as_bytes())),
        (
            "quoted-printable",
            text.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("={b:02X}")
                    }
                })
                .collect::<Vec<_>>()
                .chunks(20)
                .map(|c| c.concat() + "=\r\n")
                .collect(),
        ),
    ] {
        for multipart in [false, true] {
            let raw = if multipart {
                format!(
                    "Subject: s\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{body}\r\n--b--\r\n"
                )
            } else {
                format!(
                    "Subject: s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{body}"
                )
            };
            let v = read(raw.as_bytes(), LIMITS);
            let got = v["plainTextBody"].as_str().unwrap_or_default();
            let real = if encoding == "8bit" {
                body.clone()
            } else {
                text.clone()
            };
            assert!(!got.is_empty(), "{encoding} {multipart}");
            assert!(
                real.starts_with(got),
                "{encoding} {multipart}: not a prefix: {got:?}"
            );
            assert_eq!(v["truncated"], true);
            assert!(serde_json::to_vec(&v).unwrap().len() <= 4000);
        }
    }
}

#[test]
fn a_flood_of_headers_or_parts_stays_within_the_budget() {
    let mut raw = String::from("From: a@example.test\r\nSubject: many\r\n");
    for i in 0..100_000 {
        raw.push_str(&format!("X-Header-{i}: value {i}\r\n"));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nbody\r\n");
    let pruned = prune(raw.as_bytes(), LIMITS);
    assert!(pruned.budget_cut);
    assert!(pruned.raw.len() < 2000);
    let v = respond(pruned, &Envelope::default(), LIMITS);
    assert_eq!(v["subject"], "many");
    assert_eq!(v["plainTextBody"], "body\r\n");
    assert_eq!(v["truncated"], true);

    let mut raw =
        String::from("Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for i in 0..20_000 {
        raw.push_str(&format!("--b\r\nContent-Type: application/x-{i}\r\nContent-Disposition: attachment; filename=f{i}\r\n\r\ndata\r\n"));
    }
    raw.push_str("--b--\r\n");
    let pruned = prune(raw.as_bytes(), LIMITS);
    assert!(pruned.raw.len() < 10_000, "{}", pruned.raw.len());
    let v = respond(pruned, &Envelope::default(), LIMITS);
    assert!(serde_json::to_vec(&v).unwrap().len() <= 4000);
    assert_eq!(v["truncated"], true);
}

#[test]
fn garbage_and_truncated_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let sample = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nab=\r\n=C3=A9=\r\n--x\r\nContent-Transfer-Encoding: base64\r\nContent-Type: text/html\r\n\r\nPGI+\r\n--x--\r\n";
    let alphabet = b"-=\r\n:; \t\"xb\x00\xff\xc3=AZ/+.";
    for round in 0..3000 {
        let mut raw: Vec<u8> = sample[..(next() as usize % sample.len())].to_vec();
        for _ in 0..(next() % 40) {
            let at = next() as usize % (raw.len() + 1);
            raw.insert(at, alphabet[next() as usize % alphabet.len()]);
        }
        let limits = Limits {
            max_attachment_bytes: next() as usize % 64,
            max_response_bytes: next() as usize % 600,
        };
        let v = read(&raw, limits);
        assert!(v.is_object(), "round {round}");
        let _ = streamed(&raw, limits);
        let _ = in_pieces(&raw, limits, 1 + next() as usize % 16);
    }
}

#[test]
fn malformed_mail_is_read_like_pythons_email() {
    let v = read(
        b"From: a@example.test\r\nSubject: s\r\nContent-Type: text\r\n\r\nhello body\r\n",
        LIMITS,
    );
    assert_eq!(v["plainTextBody"], "hello body\r\n");
    assert_eq!(v["attachments"], serde_json::json!([]));

    let v = read(
        b"From: a@example.test\r\nSubject: s\r\nThis is the body\r\nsecond line\r\n",
        LIMITS,
    );
    assert_eq!(v["subject"], "s");
    assert_eq!(v["plainTextBody"], "This is the body\r\nsecond line\r\n");

    let v = read(b"From sender@example.test Thu Feb  1 10:00:00 2024\r\nFrom: foo\r\nSubject : s\r\n\r\nbody\r\n", LIMITS);
    assert_eq!(v["subject"], "s");
    assert_eq!(v["fromAddress"], "foo");

    let v = read(b"From: a@example.test\r\nSubject: he\x00llo \xff\xfe w\r\nX-Bad: \x80\x00x\r\nX-Other: ok\r\n\r\nbody text\r\n", LIMITS);
    assert_eq!(v["subject"], "hello \u{fffd}\u{fffd} w");
    assert_eq!(v["plainTextBody"], "body text\r\n");
    let headers = v["headers"].as_array().unwrap();
    assert_eq!(headers.len(), 4, "{headers:?}");
    assert_eq!(headers[3]["value"], "ok");

    let v = read(b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b  \r\nContent-Type: text\r\n\r\nfirst\r\n--b\t\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nabc\r\n--b-- \r\n", LIMITS);
    assert_eq!(v["plainTextBody"], "first");
    assert_eq!(v["attachments"][0]["fileName"], "etc_passwd");
    assert_eq!(v["attachments"][0]["content"], "YWJj");
}

#[test]
fn lines_in_pieces_read_like_whole_lines() {
    let attachment: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let one_line = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let html = "<p>".to_string() + &"ä".repeat(100_000) + "</p>";
    let subject = "s".repeat(3000);
    let raw = format!(
        "Subject: {subject}\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{one_line}\r\n--b\r\nContent-Type: text/plain\r\n\r\nafter\r\n--b--\r\n"
    );
    let limits = Limits {
        max_attachment_bytes: 1000,
        max_response_bytes: 40_000,
    };
    let whole = prune(raw.as_bytes(), limits);
    let pieces = in_pieces(raw.as_bytes(), limits, 1000);
    let at = whole.raw.iter().zip(&pieces.raw).position(|(a, b)| a != b);
    let show = |raw: &[u8], at: usize| {
        String::from_utf8_lossy(&raw[at.saturating_sub(40)..(at + 80).min(raw.len())]).into_owned()
    };
    if let Some(at) = at
        .or((whole.raw.len() != pieces.raw.len()).then_some(whole.raw.len().min(pieces.raw.len())))
    {
        panic!(
            "differ at {at} ({} vs {}):\n{:?}\n{:?}",
            whole.raw.len(),
            pieces.raw.len(),
            show(&whole.raw, at),
            show(&pieces.raw, at)
        );
    }
    let v = respond(pieces, &Envelope::default(), limits);
    assert_eq!(v["subject"], subject);
    assert_eq!(v["attachments"][0]["size"], 300_000);
    assert_eq!(v["plainTextBody"], "after");
    let got = v["htmlBody"].as_str().unwrap();
    assert!(got.len() > 10_000 && html.starts_with(got));
}

#[test]
fn deep_nesting_is_bounded_and_fast() {
    let depth = 5000;
    let mut raw = String::from("Subject: deep\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
    for _ in 0..20_000 {
        raw.push_str("--not-a-boundary\r\n");
    }
    let started = std::time::Instant::now();
    let v = read(raw.as_bytes(), LIMITS);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(v["subject"], "deep");
    assert!(serde_json::to_vec(&v).unwrap().len() <= LIMITS.max_response_bytes);
}

mod bounds;

#[test]
fn an_outer_boundary_inside_a_nested_part_ends_it_as_python_does() {
    // Python's email package checks every open boundary on every line, with blanks allowed
    // after it: `--outer   ` inside the inner text ends the inner multipart (unclosed), and
    // what follows is a part of the outer one. Python 3 reads this message as: plain body
    // "line one", no HTML body, attachments [a.txt, 8 bytes]; the part after `--outer   `
    // is text/plain whose payload runs to the inner close delimiter.
    let raw = b"Message-ID: <nested@example.test>\r\nFrom: a@example.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nline one\r\n--outer   \r\nstill text?\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n--outer\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--outer--\r\n";
    let roomy = Limits {
        max_attachment_bytes: 1 << 20,
        max_response_bytes: 1 << 20,
    };
    for v in [
        read(raw, roomy),
        respond(streamed(raw, roomy), &Envelope::default(), roomy),
    ] {
        assert_eq!(v["subject"], "nested");
        assert_eq!(v["fromAddress"], "a@example.test");
        assert_eq!(v["plainTextBody"], "line one", "{v}");
        assert_eq!(v["htmlBody"], Value::Null, "{v}");
        let attachments = v["attachments"].as_array().expect("attachments");
        assert_eq!(attachments.len(), 1, "{v}");
        assert_eq!(attachments[0]["fileName"], "a.txt");
        assert_eq!(attachments[0]["size"], 8);
        assert_eq!(attachments[0]["content"], "YXR0YWNoZWQ=");
    }
}

#[test]
fn quoted_printable_sizes_are_counted_exactly() {
    // Python 3 decodes this attachment to 76 bytes (escapes, `=20` before line ends, soft
    // breaks, a last line without one).
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=q.txt\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe =3D teuer\t=20\r\nzwei =20\r\nGr=C3=BC=C3=9Fe =3D teuer\t=20\r\nzwei =20\r\nohne Ende =C3=A9=\r\nsoft=\r\n break\r\n--b--\r\n";
    for max_attachment_bytes in [0, 1000] {
        let limits = Limits {
            max_attachment_bytes,
            max_response_bytes: 100_000,
        };
        let v = respond(streamed(raw, limits), &Envelope::default(), limits);
        assert_eq!(v["attachments"][0]["size"], 76, "{v}");
    }
}
