//! An IMAP server that lies about a message's size, or leaves out its BODYSTRUCTURE: a proxy
//! in front of the testbed's Dovecot rewrites the FETCH answers. The worker must read no more
//! than about the budget whatever RFC822.SIZE says (SPEC §7.1).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use support::mailbox::write_maildir;
use support::{Jobs, testbed, unique};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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

/// A proxy to the plaintext IMAP port that rewrites the server's lines and counts its bytes.
async fn lying_proxy(upstream: u16, lies: Lies) -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (server_read, mut server_write) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                });
                let mut server_read = BufReader::new(server_read);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match server_read.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                            let out = match std::str::from_utf8(&line) {
                                Ok(text) if text.starts_with("* ") => {
                                    rewrite(text, lies).into_bytes()
                                }
                                _ => line.clone(),
                            };
                            if client_write.write_all(&out).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_write.shutdown().await;
                up.abort();
            });
        }
    });
    (port, count)
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
        let (port, received) = lying_proxy(
            tb.port("PORT_IMAP"),
            Lies {
                size: true,
                structure,
            },
        )
        .await;
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
