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
