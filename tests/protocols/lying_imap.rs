//! An IMAP server that lies about a message's size, or leaves out its BODYSTRUCTURE: a proxy
//! in front of the testbed's Dovecot rewrites the FETCH answers. The worker must read no more
//! than about the budget whatever RFC822.SIZE says (SPEC §7.1).

use crate::support;

use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use support::mailbox::write_maildir;
use support::proxy::rewriting_relay;
use support::{Jobs, testbed, unique};

const BUDGET: usize = 64 * 1024;

/// What the proxy changes in the server's answers.
#[derive(Clone, Copy)]
struct Lies {
    /// RFC822.SIZE becomes 1.
    size: bool,
    /// BODYSTRUCTURE (...) is left out of a FETCH line that has no literal.
    structure: bool,
}

/// Rewrites one line from the server.
fn rewrite(line: &str, lies: Lies) -> String {
    let mut line = line.to_string();
    if lies.size
        && let Some(at) = line.find("RFC822.SIZE ")
    {
        let start = at + "RFC822.SIZE ".len();
        let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
        line.replace_range(start..start + digits, "1");
    }
    if lies.structure
        && !line.trim_end().ends_with('}')
        && let Some(at) = line.find(" BODYSTRUCTURE (")
    {
        // The structure runs to the FETCH list's closing parenthesis at the line's end.
        let end = line.trim_end().len() - 1;
        line.replace_range(at..end, "");
    }
    line
}

fn vars(port: u16, folder: &str, id: &str) -> Value {
    json!({
        "authentication": { "username": "budget3@example.test", "password": "budget3-pw" },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 60 },
        "folder": folder, "messageId": id
    })
}

#[test]
fn the_rewrite_changes_only_what_it_should() {
    let lies = Lies {
        size: true,
        structure: true,
    };
    assert_eq!(
        rewrite(
            "* 1 FETCH (UID 4 RFC822.SIZE 5000123 INTERNALDATE \"x\" BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL))\r\n",
            lies
        ),
        "* 1 FETCH (UID 4 RFC822.SIZE 1 INTERNALDATE \"x\")\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_size_never_makes_imap_fetch_the_whole_message() {
    let tb = testbed();
    let folder = unique("Lying").replace('-', "");
    let body: String = (0..100_000)
        .map(|i| format!("line {i:06} of a message far above the budget\r\n"))
        .collect();
    let mut stored = Vec::new();
    let mut ids = Vec::new();
    for n in 0..2 {
        let id = format!("lying{n}-{}@example.test", unique("l"));
        let raw = format!(
            "Message-ID: <{id}>\r\nFrom: liar@example.test\r\nSubject: lying {n}\r\nContent-Type: text/plain\r\n\r\n{body}"
        );
        stored.push((raw.into_bytes(), 1_700_000_000 + n));
        ids.push(id);
    }
    write_maildir(tb.dir(), "budget3", &folder, &stored);
    let jobs = Jobs::start_with("imap", &[("EMAIL_MAX_RESPONSE_BYTES", "65536")]).await;
    for (n, structure) in [false, true].into_iter().enumerate() {
        let lies = Lies {
            size: true,
            structure,
        };
        let (port, received) =
            rewriting_relay(tb.port("PORT_IMAP"), move |line| rewrite(line, lies)).await;
        let r = jobs.ok("read", vars(port, &folder, &ids[n])).await;
        let transferred = received.load(Ordering::SeqCst) as usize;
        assert!(
            transferred < 4 * BUDGET,
            "{transferred} bytes from the server (structure left out: {structure})"
        );
        assert_eq!(r["subject"], format!("lying {n}"));
        assert_eq!(r["truncated"], true);
        let plain = r["plainTextBody"].as_str().expect("body");
        assert!(
            plain.len() > 10_000 && body.starts_with(plain),
            "{}",
            plain.len()
        );
    }
}

/// The list's `UID SORT RETURN (PARTIAL 1:n)` answer, honest, unreadable, or claiming every
/// UID there could be: the honest one is used, an unreadable one falls back to the whole
/// order (same listing), and a boundless one is cut to the limit without growing memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_sort_answer_is_used_read_safely_or_replaced() {
    let tb = testbed();
    let folder = unique("Partial").replace('-', "");
    let tag = unique("p");
    let stored: Vec<(Vec<u8>, i64)> = [("small", 10), ("big", 3000), ("mid", 500)]
        .iter()
        .enumerate()
        .map(|(n, (name, size))| {
            let raw = format!(
                "Message-ID: <{name}-{tag}@example.test>\r\nFrom: a@example.test\r\nSubject: {name}\r\n\r\n{}\r\n",
                "x".repeat(*size)
            );
            (raw.into_bytes(), 1_700_000_000 + n as i64)
        })
        .collect();
    write_maildir(tb.dir(), "budget3", &folder, &stored);
    let jobs = Jobs::start("imap").await;
    let list = |port: u16| {
        json!({
            "authentication": { "username": "budget3@example.test", "password": "budget3-pw" },
            "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 60 },
            "folder": folder, "maxToBeRead": 2, "sortField": "SIZE", "sortOrder": "DESC"
        })
    };
    let expected = [
        format!("<big-{tag}@example.test>"),
        format!("<mid-{tag}@example.test>"),
    ];
    let ids = |listed: &Value| -> Vec<String> {
        listed
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["messageId"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for answer in ["honest", "unreadable", "boundless"] {
        let log = seen.clone();
        let (port, _) = rewriting_relay(tb.port("PORT_IMAP"), move |line| {
            if !line.starts_with("* ESEARCH ") {
                return line.to_string();
            }
            log.lock().unwrap().push(line.to_string());
            match answer {
                "unreadable" => "* ESEARCH (TAG \"x\") UID PARTIAL (1:2 ???)\r\n".to_string(),
                "boundless" => {
                    "* ESEARCH (TAG \"x\") UID PARTIAL (1:2 1:4294967295)\r\n".to_string()
                }
                _ => line.to_string(),
            }
        })
        .await;
        let listed = jobs.ok("list", list(port)).await;
        if answer == "boundless" {
            assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
        } else {
            assert_eq!(ids(&listed), expected, "{answer}: {listed}");
        }
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "Dovecot was asked for a partial sort each time: {:?}",
        seen.lock().unwrap()
    );
}
