//! imap:forward's attached original as it arrives (docs/responses.md, `imap:forward`): the
//! delivered message's raw bytes are cut by hand, so nothing decodes the part on the way. A
//! `message/rfc822` part is 7bit or 8bit (RFC 2046 5.2.1), never base64, with the original's
//! bytes as its body; an original SMTP cannot carry as it is goes as a base64 octet-stream;
//! a relay without 8BITMIME gets no 8-bit original.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::imap::vars;
use crate::operations::smtp_block;
use crate::support;
use support::fake_smtp::{Misbehaviour, recording};
use support::mailbox::{append, fetch_by_subject};
use support::{Jobs, testbed, unique};

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + from)
}

/// The header block and the body of the part named `forwarded-message.eml` in `raw`: from its
/// boundary line to the CRLF before the next one.
fn attached_part(raw: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let named = find(raw, b"forwarded-message.eml", 0).unwrap_or_else(|| panic!("{text}"));
    let start = raw[..named]
        .windows(4)
        .rposition(|w| w == b"\r\n--")
        .expect("the part's boundary")
        + 2;
    let line_end = find(raw, b"\r\n", start).expect("the boundary line");
    let boundary = &raw[start..line_end];
    let body_start = find(raw, b"\r\n\r\n", line_end).expect("the part's headers") + 4;
    let headers = String::from_utf8_lossy(&raw[line_end + 2..body_start]).to_ascii_lowercase();
    let closing = [b"\r\n".as_slice(), boundary].concat();
    let body_end = find(raw, &closing, body_start).expect("the closing boundary");
    (headers, raw[body_start..body_end].to_vec())
}

fn original(id: &str, subject: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: ops7@example.test\r\nTo: ops8@example.test\r\n\
         Subject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{headers}\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn forward(folder: &str, id: &str, smtp: Value) -> Value {
    vars(
        "ops8",
        json!({ "folder": folder, "messageId": id, "smtp": smtp, "to": "ops6@example.test" }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_original_is_a_7bit_or_8bit_part_with_its_bytes_unchanged() {
    let s = Jobs::start("imap").await;
    let marker = unique("fb").replace('-', "");
    let folder = unique("Fwd8").replace('-', "");
    let long_line = vec![b'x'; 1500];
    let cases: [(&str, &str, Vec<u8>, &str); 3] = [
        (
            "Seven",
            "Content-Type: text/plain\r\n",
            b"Plain text.\r\n.A line with a leading dot\r\n".to_vec(),
            "content-transfer-encoding: 7bit",
        ),
        (
            "Eight",
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n",
            b"Caf\xe9 cr\xe8me\r\n".to_vec(),
            "content-transfer-encoding: 8bit",
        ),
        (
            "Long",
            "Content-Type: text/html\r\n",
            [long_line.as_slice(), b"\r\n"].concat(),
            "content-transfer-encoding: base64",
        ),
    ];
    let port = testbed().port("PORT_IMAP");
    for (name, headers, body, encoding) in cases {
        let subject = format!("{name} {marker}");
        let id = format!("{name}-{marker}@customer.test");
        let raw = original(&id, &subject, headers, &body);
        append("ops8", &folder, &[(&raw, "")]).await;
        let r = s
            .ok("forward", forward(&folder, &id, smtp_block("ops8")))
            .await;
        assert_eq!(r["sent"], true, "{r}");
        let got = fetch_by_subject(port, "ops6", &subject, 1, Duration::from_secs(20)).await;
        assert_eq!(got.len(), 1, "{name}: the forward did not arrive");
        let (part_headers, part_body) = attached_part(&got[0]);
        assert!(part_headers.contains(encoding), "{name}: {part_headers}");
        if name == "Long" {
            // A line over 998 octets cannot go as it is: an octet-stream, still byte for byte.
            assert!(
                part_headers.contains("application/octet-stream"),
                "{part_headers}"
            );
            let mut compact = part_body;
            compact.retain(|b| !b.is_ascii_whitespace());
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .expect("base64");
            assert_eq!(decoded, raw, "{name}: the forwarded bytes changed");
        } else {
            assert!(part_headers.contains("message/rfc822"), "{part_headers}");
            assert_eq!(
                part_body,
                raw,
                "{name}: the part's body is not the original's bytes:\n{}",
                String::from_utf8_lossy(&part_body)
            );
        }
    }

    // A relay without 8BITMIME: the 7-bit original goes, the 8-bit one is refused before
    // anything is sent, saying what to do instead.
    let (relay, received, _) = recording(Some(Misbehaviour::OffersNo8BitMime)).await;
    let plain_relay = json!({
        "server": { "host": "127.0.0.1", "port": relay, "security": "none" },
        "authentication": { "type": "none" }
    });
    let seven = format!("Seven-{marker}@customer.test");
    let r = s
        .ok("forward", forward(&folder, &seven, plain_relay.clone()))
        .await;
    assert_eq!(r["sent"], true, "{r}");
    let taken = received
        .lock()
        .expect("lock")
        .pop()
        .expect("the 7-bit forward");
    let (part_headers, _) = attached_part(&taken);
    assert!(
        part_headers.contains("content-transfer-encoding: 7bit"),
        "{part_headers}"
    );
    let eight = format!("Eight-{marker}@customer.test");
    let (retries, message, _) = s
        .fails("forward", forward(&folder, &eight, plain_relay))
        .await;
    assert_eq!(retries, 0, "{message}");
    assert!(
        message.starts_with("MESSAGE_REJECTED: ") && message.contains("asAttachment: false"),
        "{message}"
    );
    assert!(received.lock().expect("lock").is_empty());
}
