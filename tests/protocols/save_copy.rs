//! smtp:send's `saveCopyTo` with a large attachment: the copy is stored from the same pieces
//! the send streamed, so a send that saves holds no more of the message than one that does
//! not (the worker's peak memory measured for each, in workers of their own).

use std::time::Duration;

use serde_json::json;

use crate::documents::payload;
use crate::support;
use support::documents::DocumentStore;
use support::fake_smtp::sink;
use support::gateway::completed;
use support::mailbox::login_at;
use support::{Jobs, testbed, unique};

const MB: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_a_copy_of_a_20_mb_send_holds_no_second_copy_of_the_message() {
    use futures_util::StreamExt;
    let store = DocumentStore::start().await;
    let url = store.url();
    let document = payload(20 * MB as usize, 41);
    let reference = store.put(&document, "big.bin", "application/octet-stream");
    let (smtp_port, received) = sink(Duration::ZERO).await;
    let imap_port = testbed().port("PORT_IMAP");
    let folder = format!("Sent{}", unique("big").replace('-', ""));
    let mut growth = Vec::new();
    for save in [false, true] {
        // A worker each: a process's peak (VmHWM) only grows.
        let jobs = Jobs::start_with("smtp", &[("CAMUNDA_REST_ADDRESS", &url)]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut job = json!({
            "authentication": { "type": "none" },
            "server": { "host": "127.0.0.1", "port": smtp_port, "security": "none", "timeoutSeconds": 120 },
            "from": "ops3@example.test", "to": "sink@example.test",
            "subject": format!("saved {save}"), "body": "attached", "attachments": [reference]
        });
        if save {
            job["saveCopyTo"] = json!({
                "folder": folder,
                "server": { "host": "127.0.0.1", "port": imap_port, "security": "none", "timeoutSeconds": 120 },
                "authentication": { "type": "simple", "username": "ops3@example.test", "password": "ops3-pw" }
            });
        }
        let before = jobs.worker_peak_rss();
        let key = jobs.gateway.create_job(
            "email:smtp:send:1",
            job,
            json!({ "resultVariable": "r" }),
            1,
        );
        let r = completed(
            jobs.gateway
                .wait_outcome(key, Duration::from_secs(120))
                .await,
        )["r"]
            .clone();
        let after = jobs.worker_peak_rss();
        assert_eq!(r["sent"], true, "{r}");
        println!(
            "smtp:send of a 20 MB document, saveCopyTo {save}: worker peak RSS {:.1} MB before, \
             {:.1} MB after (growth {:.1} MB)",
            before as f64 / 1e6,
            after as f64 / 1e6,
            after.saturating_sub(before) as f64 / 1e6
        );
        growth.push(after.saturating_sub(before));
        if save {
            assert!(r["savedTo"]["uid"].as_u64().is_some(), "{r}");
        }
    }
    let extra = growth[1].saturating_sub(growth[0]);
    assert!(
        extra < 8 * MB,
        "saving the copy added {:.1} MB to the send's peak (a copy of the message is about 27 MB)",
        extra as f64 / 1e6
    );

    // The copy is the message as sent, byte for byte.
    let sent = received
        .lock()
        .expect("lock")
        .pop()
        .expect("the saved send");
    let mut session = login_at(imap_port, "ops3").await;
    session.select(&folder).await.expect("select");
    let fetched: Vec<_> = session
        .fetch("1", "BODY.PEEK[]")
        .await
        .expect("fetch")
        .collect()
        .await;
    let stored = fetched
        .iter()
        .filter_map(|f| f.as_ref().ok())
        .find_map(|f| f.body().map(<[u8]>::to_vec))
        .expect("the saved copy");
    assert!(
        stored == sent,
        "the saved copy differs from the message sent"
    );
    let _ = session.logout().await;
}
