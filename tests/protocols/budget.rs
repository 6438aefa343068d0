//! The response budget end to end (SPEC §7.1): large messages read over IMAP and POP3 through
//! the worker process complete under Zeebe's 4 MiB message limit, with prefixes of the real
//! bodies and attachment metadata, and IMAP never fetches what it cannot return.

use crate::support;

use std::sync::atomic::Ordering;

use base64::Engine;
use serde_json::{Value, json};
use support::gateway::Outcome;
use support::mailbox::{clear_inbox, write_maildir};
use support::proxy::rewriting_relay;
use support::{Jobs, testbed, unique};

const MIB: usize = 1024 * 1024;
/// The default budget, and Zeebe's default message limit.
const BUDGET: usize = 3 * MIB;
const ZEEBE_LIMIT: usize = 4 * MIB;

/// The POP3 tests share budget2's INBOX (POP3 reads only the INBOX) and empty it: one at a time.
static POP3_INBOX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn imap_vars(user: &str, port: u16, folder: &str, id: &str) -> Value {
    json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 60 },
        "folder": folder, "messageId": id
    })
}

fn pop3_vars(user: &str, id: &str) -> Value {
    json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": testbed().port("PORT_POP3S"), "security": "tls", "serverCertificate": testbed().ca_pem(), "timeoutSeconds": 60 },
        "messageId": id, "deleteAfterRead": false
    })
}

/// UTF-8 text of about `bytes` bytes in lines, with characters JSON must escape.
fn text(bytes: usize, tag: &str) -> String {
    let mut out = String::with_capacity(bytes + 100);
    let mut i = 0;
    while out.len() < bytes {
        out.push_str(&format!(
            "{tag} line {i:07}: Grüße \"quoted\" \\ tab\there – 世界\r\n"
        ));
        i += 1;
    }
    out
}

fn b64_lines(bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() * 78 / 76 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable with soft breaks, as mailers write it.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.split_inclusive("\r\n") {
        let mut width = 0;
        for b in line.trim_end_matches("\r\n").bytes() {
            let piece = if (b' '..=b'~').contains(&b) && b != b'=' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if width + piece.len() > 73 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

/// A 6 MB text/plain body in `encoding` (8bit, base64 or quoted-printable), and the text.
fn six_mb_plain(id: &str, encoding: &str) -> (Vec<u8>, String) {
    let body = text(6_000_000, "plain");
    let encoded = match encoding {
        "base64" => b64_lines(body.as_bytes()),
        "quoted-printable" => quoted_printable(&body),
        _ => body.clone(),
    };
    let raw = format!(
        "Message-ID: <{id}>\r\nFrom: big@example.test\r\nSubject: six megabytes\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{encoded}"
    );
    (raw.into_bytes(), body)
}

/// The large messages both protocols read: three 6 MB bodies and the five attachments.
fn large_messages(tag: &str) -> Large {
    let mut messages = Vec::new();
    let mut body = String::new();
    for encoding in ["8bit", "base64", "quoted-printable"] {
        let id = format!("six-{encoding}-{tag}@example.test");
        let (raw, text) = six_mb_plain(&id, encoding);
        body = text;
        messages.push((id, raw));
    }
    let id = format!("five-{tag}@example.test");
    let (raw, html) = five_attachments(&id);
    messages.push((id, raw));
    (messages, body, html)
}

type Large = (Vec<(String, Vec<u8>)>, String, String);

async fn read_large(jobs: &Jobs, vars: impl Fn(&str) -> Value, large: &Large) {
    let (messages, body, html) = large;
    for (id, _) in &messages[..3] {
        let (r, size) = completed(jobs, vars(id)).await;
        check_six(&r, size, body);
    }
    let (r, size) = completed(jobs, vars(&messages[3].0)).await;
    check_five(&r, size, html);
}

fn stored(large: &Large) -> Vec<(Vec<u8>, i64)> {
    large
        .0
        .iter()
        .enumerate()
        .map(|(i, (_, raw))| (raw.clone(), 1_700_000_000 + i as i64))
        .collect()
}

fn attachment_bytes(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + n * 13) % 256) as u8).collect()
}

/// Five 1 MB attachments and a 2 MB HTML body.
fn five_attachments(id: &str) -> (Vec<u8>, String) {
    let html = format!(
        "<html><body>{}</body></html>",
        text(2_000_000, "<p>html</p>")
    );
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: \"Big Sender\" <big@example.test>\r\nSubject: five attachments\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n"
    );
    for n in 0..5 {
        raw.push_str(&format!(
            "--mix\r\nContent-Type: application/octet-stream; name=\"file{n}.bin\"\r\nContent-Disposition: attachment; filename=\"file{n}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64_lines(&attachment_bytes(n, 1_000_000))
        ));
    }
    raw.push_str("--mix--\r\n");
    (raw.into_bytes(), html)
}

/// The response of a job that must complete, and the size of its serialized variables.
async fn completed(jobs: &Jobs, variables: Value) -> (Value, usize) {
    match jobs.run("read", variables).await.1 {
        Outcome::Completed { variables } => {
            let size = variables.to_string().len();
            (variables["r"].clone(), size)
        }
        other => panic!("read: expected completion, got {other:?}"),
    }
}

fn check_six(r: &Value, size: usize, body: &str) {
    assert!(size < ZEEBE_LIMIT, "{size}");
    assert!(
        size <= BUDGET + 16,
        "the budget plus the variable's name: {size}"
    );
    assert_eq!(r["truncated"], true);
    assert_eq!(r["subject"], "six megabytes");
    let plain = r["plainTextBody"].as_str().expect("plain text");
    assert!(plain.len() > 2 * MIB, "only {} bytes kept", plain.len());
    assert!(body.starts_with(plain), "not a prefix of the real body");
    assert_eq!(r["htmlBody"], Value::Null);
}

fn check_five(r: &Value, size: usize, html: &str) {
    assert!(size < ZEEBE_LIMIT, "{size}");
    assert!(
        size <= BUDGET + 16,
        "the budget plus the variable's name: {size}"
    );
    assert_eq!(r["truncated"], true);
    let got = r["htmlBody"].as_str().expect("html");
    assert!(
        !got.is_empty() && html.starts_with(got),
        "html not a prefix"
    );
    let attachments = r["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 5, "{attachments:?}");
    for (n, a) in attachments.iter().enumerate() {
        assert_eq!(a["fileName"], format!("file{n}.bin"));
        assert_eq!(a["contentType"], "application/octet-stream");
        // Decoded bytes, exactly: POP3 counts them, IMAP works them out from the part's ends.
        assert_eq!(a["size"], 1_000_000, "{}", a["fileName"]);
        match a.get("content") {
            Some(content) => assert_eq!(
                content.as_str().unwrap(),
                base64::engine::general_purpose::STANDARD.encode(attachment_bytes(n, 1_000_000))
            ),
            None => assert_eq!(a["truncated"], true),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_over_imap_fit_the_budget() {
    let jobs = Jobs::start("imap").await;
    let tb = testbed();
    let folder = unique("Budget").replace('-', "");
    let large = large_messages(&unique("b"));
    write_maildir(tb.dir(), "budget1", &folder, &stored(&large));
    let port = tb.port("PORT_IMAP");
    let vars = |id: &str| imap_vars("budget1", port, &folder, id);
    read_large(&jobs, vars, &large).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_over_pop3_fit_the_budget() {
    let jobs = Jobs::start("pop3").await;
    let tb = testbed();
    let _inbox = POP3_INBOX.lock().await;
    clear_inbox("budget2").await;
    let large = large_messages(&unique("b"));
    write_maildir(tb.dir(), "budget2", "INBOX", &stored(&large));
    read_large(&jobs, |id| pop3_vars("budget2", id), &large).await;
    clear_inbox("budget2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_fetches_only_what_the_response_can_return() {
    let jobs = Jobs::start("imap").await;
    let tb = testbed();
    let (proxy, received) = rewriting_relay(tb.port("PORT_IMAP"), str::to_string).await;
    let folder = unique("Huge").replace('-', "");
    let id = format!("huge-{}@example.test", unique("b"));
    let html = text(10_000_000, "<i>html</i>");
    let attachment = attachment_bytes(9, 20_000_000);
    let raw = format!(
        "Message-ID: <{id}>\r\nFrom: huge@example.test\r\nSubject: huge\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=h\r\n\r\n--h\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nshort plain text\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--alt--\r\n--h\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename*=utf-8''gro%C3%9F.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--h--\r\n",
        b64_lines(&attachment)
    );
    let total = raw.len();
    write_maildir(
        tb.dir(),
        "budget3",
        &folder,
        &[(raw.into_bytes(), 1_700_000_000)],
    );
    received.store(0, Ordering::SeqCst);
    let (r, size) = completed(&jobs, imap_vars("budget3", proxy, &folder, &id)).await;
    let transferred = received.load(Ordering::SeqCst) as usize;
    assert!(
        transferred < BUDGET + MIB,
        "{transferred} bytes came from the server for a {total}-byte message"
    );
    assert!(size <= BUDGET + 16, "{size}");
    assert_eq!(r["truncated"], true);
    assert_eq!(r["plainTextBody"], "short plain text");
    let got = r["htmlBody"].as_str().expect("html");
    assert!(got.len() > 2 * MIB && html.starts_with(got));
    let zip = &r["attachments"][0];
    assert_eq!(zip["fileName"], "groß.zip");
    assert_eq!(zip["contentType"], "application/zip");
    assert_eq!(zip["truncated"], true);
    assert_eq!(zip["size"], 20_000_000);
    assert_eq!(r["size"].as_u64(), Some(total as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_headers_keep_a_prefix_over_imap_and_pop3() {
    let id = format!("headers-{}@example.test", unique("b"));
    let mut raw =
        format!("Message-ID: <{id}>\r\nFrom: many@example.test\r\nSubject: many headers\r\n");
    for i in 0..100_000 {
        raw.push_str(&format!(
            "X-Filler-{i:06}: a value that fills the header block\r\n"
        ));
    }
    let body = text(2_000_000, "body");
    raw.push_str(&format!(
        "Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ));
    for (r, size) in read_over_imap_and_pop3(raw, "Headers", &id).await {
        assert!(size <= BUDGET + 16, "{size}");
        assert_eq!(r["truncated"], true);
        assert_eq!(r["subject"], "many headers");
        assert_eq!(r["fromAddress"], "many@example.test");
        let headers = r["headers"].as_array().expect("headers");
        assert!(
            headers.len() > 1000 && headers.len() < 100_000,
            "{}",
            headers.len()
        );
        assert_eq!(headers[0]["header"], "Message-ID");
        let plain = r["plainTextBody"].as_str().expect("body");
        assert!(!plain.is_empty() && body.starts_with(plain));
    }
}

/// Stores `raw` for IMAP (a folder of its own in budget3) and for POP3 (budget2's maildrop,
/// under the POP3 lock), reads it both ways, and returns each response with its size.
async fn read_over_imap_and_pop3(raw: String, label: &str, id: &str) -> Vec<(Value, usize)> {
    let tb = testbed();
    let folder = unique(label).replace('-', "");
    write_maildir(
        tb.dir(),
        "budget3",
        &folder,
        &[(raw.clone().into_bytes(), 1_700_000_000)],
    );
    let _inbox = POP3_INBOX.lock().await;
    clear_inbox("budget2").await;
    write_maildir(
        tb.dir(),
        "budget2",
        "INBOX",
        &[(raw.into_bytes(), 1_700_000_000)],
    );
    let imap = Jobs::start("imap").await;
    let pop3 = Jobs::start("pop3").await;
    let mut results = Vec::new();
    for (jobs, vars) in [
        (
            &imap,
            imap_vars("budget3", tb.port("PORT_IMAP"), &folder, id),
        ),
        (&pop3, pop3_vars("budget2", id)),
    ] {
        results.push(completed(jobs, vars).await);
    }
    clear_inbox("budget2").await;
    results
}

/// A message above the budget whose response is within it: IMAP takes the BODYSTRUCTURE path
/// (fetching 500 sections over several commands), and nothing is cut for the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_small_attachments_all_arrive_over_imap_and_pop3() {
    let id = format!("parts-{}@example.test", unique("b"));
    let body = text(1_500_000, "parts");
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: parts@example.test\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    for n in 0..500 {
        raw.push_str(&format!(
            "--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"part{n}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64_lines(&attachment_bytes(n, 1000))
        ));
    }
    raw.push_str(&format!(
        "--p\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment; filename=\"big.mp4\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--p--\r\n",
        b64_lines(&attachment_bytes(7, 3_000_000))
    ));
    assert!(raw.len() > BUDGET);
    for (r, size) in read_over_imap_and_pop3(raw, "Parts", &id).await {
        assert!(size <= BUDGET, "{size}");
        assert_eq!(r["truncated"], false, "only the attachment limit applied");
        assert!(body.starts_with(r["plainTextBody"].as_str().expect("body")));
        assert!(r["plainTextBody"].as_str().unwrap().len() + 2 >= body.len());
        let attachments = r["attachments"].as_array().expect("attachments");
        assert_eq!(attachments.len(), 501);
        for (n, a) in attachments[..500].iter().enumerate() {
            assert_eq!(a["fileName"], format!("part{n}.bin"));
            assert_eq!(
                a["content"],
                base64::engine::general_purpose::STANDARD.encode(attachment_bytes(n, 1000))
            );
        }
        assert_eq!(attachments[500]["fileName"], "big.mp4");
        assert_eq!(attachments[500]["truncated"], true);
        assert_eq!(attachments[500]["size"], 3_000_000);
    }
}

/// Base64 of `bytes` in lines of `width` characters.
fn b64_width(bytes: &[u8], width: usize) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(width)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect()
}

/// Attachments over the attachment limit are listed with their decoded size, exactly: IMAP
/// reads the message by its BODYSTRUCTURE (which gives encoded sizes only) and works the
/// size out from each part's first and last KiB; POP3 counts as it streams. Lengths give
/// every padding (none, `=`, `==`); widths are MIME's 76, PEM's 64 and others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_left_on_the_server_have_their_exact_decoded_size() {
    let id = format!("sizes-{}@example.test", unique("b"));
    let cases = [
        (1_500_000, 76),
        (1_500_001, 76),
        (1_500_002, 64),
        (1_200_000, 72),
        (1_300_001, 60),
    ];
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: sizes@example.test\r\nSubject: sizes\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\nContent-Type: text/plain\r\n\r\nsee the attachments\r\n"
    );
    for (n, (len, width)) in cases.iter().enumerate() {
        raw.push_str(&format!(
            "--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f{n}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
            b64_width(&attachment_bytes(n, *len), *width)
        ));
    }
    raw.push_str("--p--\r\n");
    for (r, _) in read_over_imap_and_pop3(raw, "Sizes", &id).await {
        let attachments = r["attachments"].as_array().expect("attachments");
        assert_eq!(attachments.len(), cases.len());
        for (a, (len, width)) in attachments.iter().zip(cases) {
            assert_eq!(a["truncated"], true);
            assert_eq!(a["size"], len, "{len} bytes in lines of {width}");
        }
    }
}
