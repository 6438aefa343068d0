//! Every input in the fuzz seed corpora (`fuzz/corpus/<target>/`) and every input a fuzz run
//! ever found failing (`fuzz/regressions/<target>/`, added with its fix) goes through the same
//! checks as its fuzz target, on the stable toolchain, in every `cargo test`.

use std::path::Path;
use std::time::Duration;

use email_connector::imap::program::search_program;
use email_connector::imap::response::interpret;
use email_connector::imap::wire::{decode_mailbox, encode_mailbox};
use email_connector::mail::criteria::{Criterion, MessageView};
use email_connector::mail::cut::Limits;
use email_connector::mail::message::{Envelope, respond};
use email_connector::mail::prune::prune;
use email_connector::pop3::client::parse_pairs;
use email_connector::pop3::lines::{read_line, read_multiline, read_multiline_each};
use serde_json::Value;

#[path = "../../fuzz/checks/imap_framing.rs"]
mod imap_framing;
#[path = "../../fuzz/checks/pop3_framing.rs"]
mod pop3_framing;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut found = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).expect("read a fuzz input");
            found.push((entry.path().display().to_string(), bytes));
        }
    }
    found.sort();
    found
}

#[test]
fn criteria_inputs() {
    let message = b"From: Ann <ann@example.test>\r\nSubject: Invoice 42\r\n\r\nPlease pay.\r\n";
    let all = inputs("criteria");
    assert!(all.len() >= 5, "the seed corpus is there");
    let mut accepted = 0;
    for (name, data) in all {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        let as_string = Value::String(text.to_string());
        let parsed: Option<Value> = serde_json::from_str(text).ok();
        for value in [Some(&as_string), parsed.as_ref()].into_iter().flatten() {
            if let Ok(criterion) = Criterion::parse(value, "/criteria") {
                accepted += 1;
                let program = search_program(&criterion);
                assert!(!program.segments(true).is_empty(), "{name}");
                let view = MessageView::new(message, criterion.needs_body());
                let _ = criterion.evaluate(&view);
            }
        }
    }
    assert!(accepted >= 4, "the valid seeds parse");
}

#[test]
fn imap_response_inputs() {
    let all = inputs("imap_response");
    assert!(all.len() >= 9);
    for (name, data) in all {
        let reply = interpret(&data);
        if name.ends_with("/search") {
            assert_eq!(
                interpret(&data).ids(),
                [1, 2, 3, 10, 4_294_967_295],
                "{name}"
            );
        }
        if name.ends_with("/copyuid") {
            assert_eq!(reply.copy_uid(), Some(3956), "{name}");
        }
        if name.ends_with("/fetch") {
            let items: Vec<_> = reply.fetches().collect();
            assert_eq!(items.len(), 1, "{name}");
            assert_eq!(items[0].uid, Some(7));
        }
        let text = String::from_utf8_lossy(&data);
        assert_eq!(decode_mailbox(&encode_mailbox(&text)), text, "{name}");
    }
    assert_eq!(decode_mailbox("INBOX.Entw&APw-rfe"), "INBOX.Entwürfe");
}

#[test]
fn imap_framing_inputs() {
    use email_connector::imap::frames::read_in_pieces;
    use email_connector::imap::guard::Allowance;
    let all = inputs("imap_framing");
    assert!(all.len() >= 9);
    for (name, data) in all {
        imap_framing::check(&data);
        let (head, stream) = data.split_at(4);
        let allowance = Allowance {
            literal: 1 << (head[0] % 20),
            bytes: 1 << (head[1] % 24),
        };
        let framed = read_in_pieces(stream, allowance, &[3]);
        let refused = ["/literal_over_cap", "/greeting_literal", "/endless_line"];
        assert_eq!(
            framed.refused,
            refused.iter().any(|r| name.ends_with(r)),
            "{name}"
        );
        if name.ends_with("/fetch_literal") {
            assert_eq!(framed.events.len(), 2, "{name}");
        }
    }
}

#[tokio::test]
async fn pop3_framing_inputs() {
    let all = inputs("pop3_framing");
    assert!(all.len() >= 6);
    for (_, data) in all {
        pop3_framing::check(&data).await;
    }
}

#[tokio::test]
async fn pop3_response_inputs() {
    let all = inputs("pop3_response");
    assert!(all.len() >= 4);
    for (name, data) in all {
        let mut line = Vec::new();
        let _ = read_line(&mut tokio::io::BufReader::new(&data[..]), &mut line).await;
        let body = read_multiline(
            &mut tokio::io::BufReader::new(&data[..]),
            4096,
            Duration::from_secs(1),
        )
        .await;
        if let Ok(body) = &body {
            let _ = parse_pairs(body);
        }
        if name.ends_with("/uidl") {
            assert_eq!(parse_pairs(&body.expect("a UIDL body")).len(), 2, "{name}");
        }
        let mut seen = 0;
        let _ = read_multiline_each(
            &mut tokio::io::BufReader::new(&data[..]),
            u64::MAX,
            Duration::from_secs(1),
            |piece, _| seen += piece.len(),
        )
        .await;
        assert!(seen <= data.len(), "{name}");
    }
}

#[test]
fn message_json_inputs() {
    let all = inputs("message_json");
    assert!(all.len() >= 3);
    let limits = Limits {
        max_attachment_bytes: 2048,
        max_response_bytes: 16 * 1024,
    };
    for (name, data) in all {
        let envelope = Envelope {
            size: data.len() as u64,
            received: None,
            ..Default::default()
        };
        let response = respond(prune(&data, limits), &envelope, limits);
        let text = serde_json::to_string(&response).expect("serializes");
        assert!(text.len() <= limits.max_response_bytes, "{name}");
    }
}

#[tokio::test]
async fn smtp_reply_inputs() {
    use email_connector::smtp::starttls::read_reply;
    use email_connector::smtp::wire::{Bounded, MAX_REPLY_LINES};
    let all = inputs("smtp_reply");
    assert!(all.len() >= 7);
    for (name, data) in all {
        let mut reader = tokio::io::BufReader::with_capacity(64, Bounded::new(&data[..]));
        let mut replies = Vec::new();
        while let Ok(reply) = read_reply(&mut reader, &mut Vec::new()).await {
            assert!(reply.lines.len() <= MAX_REPLY_LINES, "{name}");
            // RFC 5321's Reply-code: %x32-35 %x30-35 %x30-39 (and 1yz, which some servers use).
            assert!((100..=559).contains(&reply.code), "{name}: {}", reply.code);
            replies.push(reply.code);
        }
        let expected: &[u16] = match name.rsplit('/').next().unwrap_or("") {
            "greeting" => &[220],
            "ehlo" => &[250],
            "data" => &[354, 250, 221],
            "rejected" => &[550],
            // A continuation, then a line whose first three digits are `092` and whose fourth
            // is a digit: not a reply line, so not a reply (it was read as code 92).
            "reply-code-092" => &[],
            _ => &[],
        };
        assert_eq!(replies, expected, "{name}");
    }
}
