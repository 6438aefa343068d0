//! IMAP answers that must not become incidents: a MOVE whose reply was lost after the server
//! carried it out, and a NO to UID SEARCH (the server's trouble of the moment).

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use support::census::copies;
use support::fault::{Fault, FaultProxy};
use support::mailbox::append;
use support::{Jobs, testbed, unique};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn plain(port: u16, user: &str) -> Value {
    json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 5 }
    })
}

fn message(id: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nFrom: a@example.test\r\nTo: b@example.test\r\nSubject: {id}\r\n\r\nbody\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_retried_after_its_reply_was_lost_succeeds_and_moves_once() {
    let jobs = Jobs::start("imap").await;
    let imap = testbed().port("PORT_IMAP");
    let proxy = FaultProxy::start(imap).await;
    let source = unique("MoveSrc");
    let target = unique("MoveDst");
    let id = format!("{}@example.test", unique("lost-reply"));
    append("fault3", &source, &[(&message(&id), "")]).await;
    let mut job = plain(proxy.port, "fault3");
    job["messageId"] = json!(id);
    job["sourceFolder"] = json!(source);
    job["targetFolder"] = json!(target);

    proxy.set(Fault::CutReplyTo("UID MOVE"));
    let (retries, message, _) = jobs.fails("move", job.clone()).await;
    assert_eq!(retries, 2, "the lost reply is retried: {message}");
    assert!(message.starts_with("CONNECTION_FAILED"), "{message}");
    assert_eq!(
        copies(imap, "fault3", &target, &id).await,
        1,
        "the server did move it"
    );

    // Zeebe's retry of the same job.
    proxy.set(Fault::Pass);
    let r = jobs.ok("move", job).await;
    assert_eq!(r["messageId"], json!(format!("<{id}>")), "{r}");
    assert_eq!(r["to"], json!(target));
    assert!(r["targetUid"].as_u64().is_some(), "{r}");
    assert_eq!(copies(imap, "fault3", &source, &id).await, 0);
    assert_eq!(
        copies(imap, "fault3", &target, &id).await,
        1,
        "moved exactly once"
    );
}

/// A minimal IMAP server that logs anyone in and answers UID SEARCH with `search_reply`.
async fn refusing_server(search_reply: &'static str) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let searched = Arc::new(AtomicBool::new(false));
    let seen = searched.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write
                    .write_all(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
                    .await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
                    let verb = rest.to_ascii_uppercase();
                    let reply = if verb.starts_with("CAPABILITY") {
                        format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
                    } else if verb.starts_with("EXAMINE") || verb.starts_with("SELECT") {
                        format!(
                            "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-ONLY] done\r\n"
                        )
                    } else if verb.starts_with("UID SEARCH") {
                        seen.store(true, Ordering::SeqCst);
                        format!("{tag} {search_reply}\r\n")
                    } else if verb.starts_with("LOGOUT") {
                        format!("* BYE bye\r\n{tag} OK done\r\n")
                    } else {
                        format!("{tag} OK done\r\n")
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, searched)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_to_uid_search_is_retried_and_a_bad_is_an_incident() {
    let jobs = Jobs::start("imap").await;
    let criteria = json!({ "field": "SUBJECT", "value": "anything" });

    let (port, searched) = refusing_server("NO [UNAVAILABLE] search index is being rebuilt").await;
    let mut job = plain(port, "fault4");
    job["criteria"] = criteria.clone();
    let (retries, message, backoff) = jobs.fails("search", job).await;
    assert!(
        searched.load(Ordering::SeqCst),
        "the search reached the server"
    );
    assert_eq!((retries, backoff), (2, 2000), "{message}");
    assert!(message.starts_with("TEMPORARY_FAILURE"), "{message}");

    let (port, _) = refusing_server("BAD [BADCHARSET (US-ASCII)] unsupported charset").await;
    let mut job = plain(port, "fault4");
    job["criteria"] = criteria;
    let (retries, message, _) = jobs.fails("search", job).await;
    assert_eq!(retries, 0, "{message}");
    assert!(message.starts_with("INVALID_INPUT"), "{message}");
}
