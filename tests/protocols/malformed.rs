//! Malformed mail read over IMAP and POP3 as Python's `email` package would read it: each
//! fixture is read through a worker with the default budget (IMAP fetches it whole) and
//! through one with a 64 KiB budget, where the fixture, padded past it, goes the IMAP
//! BODYSTRUCTURE path; POP3 always streams it through the pruner.

use crate::support;

use serde_json::{Value, json};
use support::mailbox::{clear_inbox, write_maildir};
use support::{Jobs, testbed, unique};

/// The tests here share budget4's INBOX (POP3 reads only the INBOX) and empty it.
static POP3_INBOX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The padding that puts a fixture above the small budget.
const PAD: usize = 100_000;

fn padding() -> String {
    (0..PAD / 50)
        .map(|i| format!("padding line {i:06} ..........................\r\n"))
        .collect()
}

/// Name, message (with `{id}` and `{pad}` to fill in), and what the response must show.
type Check = fn(&Value);

fn fixtures() -> Vec<(&'static str, &'static str, Check)> {
    vec![
        (
            "text-without-subtype",
            "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: no subtype\r\nContent-Type: text; charset=utf-8\r\n\r\nhello body\r\n{pad}",
            |r| {
                assert!(body(r).starts_with("hello body\r\n"), "{r}");
                assert_eq!(r["attachments"], json!([]));
            },
        ),
        (
            "no-blank-line",
            "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: no blank line\r\nThis is the body\r\nsecond line\r\n{pad}",
            |r| {
                assert_eq!(r["subject"], "no blank line");
                assert!(
                    body(r).starts_with("This is the body\r\nsecond line\r\n"),
                    "{r}"
                );
            },
        ),
        (
            "boundary-with-trailing-whitespace",
            "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: spaces\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b  \r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b\t\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nabc\r\n--b \r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"pad\\\\..\\\\x\u{7}.txt\"\r\n\r\n{pad}--b-- \r\n",
            |r| {
                assert_eq!(r["plainTextBody"], "first part", "{r}");
                let names: Vec<&str> = r["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["fileName"].as_str().unwrap())
                    .collect();
                assert_eq!(names, ["etc_passwd", "pad_x.txt"]);
            },
        ),
        (
            // A body no mailer broke into lines: POP3 reads it in pieces instead of failing.
            "one-overlong-line",
            "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: one line\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{line}</p>\r\n",
            |r| {
                let html = r["htmlBody"].as_str().expect("html");
                assert!(
                    html.len() > 30_000 && html.starts_with("<p>ÄÖÜ"),
                    "{}",
                    html.len()
                );
                assert!(
                    html.trim_start_matches("<p>")
                        .trim_end_matches("</p>\r\n")
                        .chars()
                        .all(|c| "ÄÖÜ".contains(c))
                );
            },
        ),
        (
            "from-without-domain",
            "Message-ID: <{id}>\r\nFrom: foo\r\nSubject: local only\r\n\r\nbody\r\n{pad}",
            |r| assert_eq!(r["fromAddress"], "foo"),
        ),
        (
            "nul-and-8bit-in-headers",
            "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: he\u{0}llo \u{1}wor\u{7f}ld\r\nX-Garbage: \u{0}\u{0}x\r\nX-Other: ok\r\n\r\nbody text\r\n{pad}",
            |r| {
                let subject = r["subject"].as_str().expect("subject");
                assert!(
                    subject.starts_with("he") && subject.contains("llo"),
                    "{subject:?}"
                );
                assert!(!subject.contains('\u{0}'));
                assert!(
                    r["headers"]
                        .as_array()
                        .unwrap()
                        .contains(&json!({ "header": "X-Other", "value": "ok" })),
                    "{r}"
                );
                assert!(body(r).starts_with("body text\r\n"), "{r}");
            },
        ),
        (
            // Python takes the first line for the mbox separator and reads the header after it.
            "mbox-from-line",
            "From sender@example.test Thu Feb  1 10:00:00 2024\r\nMessage-ID: <{id}>\r\nFrom: Ann <ann@example.test>\r\nSubject: mbox line\r\nContent-Type: text/plain\r\n\r\nhello\r\n{pad}",
            |r| {
                assert_eq!(r["subject"], "mbox line", "{r}");
                assert_eq!(r["fromAddress"], "ann@example.test");
                assert!(body(r).starts_with("hello\r\n"), "{r}");
                assert!(!body(r).contains("From sender"), "{r}");
            },
        ),
        (
            // `--outer` and blanks inside the inner text: Python ends the inner multipart
            // there; the plain body is "line one", no HTML body, one attachment. Unpadded:
            // read whole at both budgets. A message above the budget is read by the server's
            // BODYSTRUCTURE, and Dovecot splits this one differently (its second part is
            // text/html: "<p>html</p>\r\n--inner--").
            "outer-boundary-inside-inner",
            "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nline one\r\n--outer   \r\nstill text?\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n--outer\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nattached\r\n--outer--\r\n",
            |r| {
                assert_eq!(r["plainTextBody"], "line one", "{r}");
                assert_eq!(r["htmlBody"], Value::Null, "{r}");
                let names: Vec<&str> = r["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["fileName"].as_str().unwrap_or_default())
                    .collect();
                assert_eq!(names, ["a.txt"], "{r}");
                assert_eq!(r["attachments"][0]["size"], 8);
            },
        ),
    ]
}

fn body(r: &Value) -> &str {
    r["plainTextBody"].as_str().unwrap_or_default()
}

/// The fixtures' raw bytes with ids; the 8-bit garbage is put in as bytes.
fn messages(tag: &str) -> Vec<(String, Vec<u8>, Check)> {
    fixtures()
        .into_iter()
        .map(|(name, template, check)| {
            let id = format!("{name}-{tag}@example.test");
            let mut raw = template
                .replace("{id}", &id)
                .replace("{pad}", &padding())
                .replace("{line}", &"ÄÖÜ".repeat(50_000))
                .into_bytes();
            if name.starts_with("nul") {
                // Latin-1 and stray bytes in the Subject, as broken mailers send them.
                let at = raw.windows(3).position(|w| w == b"wor").unwrap();
                raw.splice(at..at, [0xff, 0xe9, 0x80]);
            }
            (id, raw, check)
        })
        .collect()
}

async fn read_all(jobs: &Jobs, vars: impl Fn(&str) -> Value, tag: &str) {
    for (id, _, check) in messages(tag) {
        let r = jobs.ok("read", vars(&id)).await;
        check(&r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mail_is_read_over_imap_and_pop3_whole_and_pruned() {
    let tb = testbed();
    let tag = unique("m");
    let folder = unique("Malformed").replace('-', "");
    let stored: Vec<(Vec<u8>, i64)> = messages(&tag)
        .into_iter()
        .enumerate()
        .map(|(i, (_, raw, _))| (raw, 1_700_000_000 + i as i64))
        .collect();
    write_maildir(tb.dir(), "budget1", &folder, &stored);
    let _inbox = POP3_INBOX.lock().await;
    clear_inbox("budget4").await;
    write_maildir(tb.dir(), "budget4", "INBOX", &stored);
    let imap = |id: &str| {
        json!({
            "authentication": { "username": "budget1@example.test", "password": "budget1-pw" },
            "server": { "host": "127.0.0.1", "port": tb.port("PORT_IMAP"), "security": "none" },
            "folder": folder, "messageId": id
        })
    };
    let pop3 = |id: &str| {
        json!({
            "authentication": { "username": "budget4@example.test", "password": "budget4-pw" },
            "server": { "host": "127.0.0.1", "port": tb.port("PORT_POP3"), "security": "none" },
            "messageId": id, "deleteAfterRead": false
        })
    };
    for env in [&[][..], &[("EMAIL_MAX_RESPONSE_BYTES", "65536")][..]] {
        let jobs = Jobs::start_with("imap", env).await;
        read_all(&jobs, imap, &tag).await;
        let jobs = Jobs::start_with("pop3", env).await;
        read_all(&jobs, pop3, &tag).await;
    }
    clear_inbox("budget4").await;
}

/// A million parts with no header (7 MB, `--b` and a blank line each): the pruner keeps at
/// most 10,000 parts and a skeleton about the budget, so the parser never sees the million
/// and the worker's memory stays about where a plain read leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_empty_parts_over_pop3_is_cut_in_bounded_memory() {
    let tb = testbed();
    let id = format!("flood-{}@example.test", unique("m"));
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: flood@example.test\r\nSubject: flood\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
    )
    .into_bytes();
    for _ in 0..1_000_000 {
        raw.extend_from_slice(b"--b\r\n\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let _inbox = POP3_INBOX.lock().await;
    clear_inbox("budget4").await;
    write_maildir(tb.dir(), "budget4", "INBOX", &[(raw, 1_700_000_000)]);
    let jobs = Jobs::start("pop3").await;
    let r = jobs
        .ok(
            "read",
            json!({
                "authentication": { "username": "budget4@example.test", "password": "budget4-pw" },
                "server": { "host": "127.0.0.1", "port": tb.port("PORT_POP3"), "security": "none" },
                "messageId": id, "deleteAfterRead": false
            }),
        )
        .await;
    assert_eq!(r["subject"], "flood");
    assert_eq!(r["plainTextBody"], "first");
    assert_eq!(r["truncated"], true);
    let peak = jobs.worker_peak_rss();
    // The read-memory benchmark puts a 100 MB POP3 read at about 26 MB; a million parsed parts
    // took hundreds of MB.
    assert!(peak < 64 * 1024 * 1024, "peak RSS {peak}");
    clear_inbox("budget4").await;
}
