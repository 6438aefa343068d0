//! Dovecot and Postfix stopped and started while 500 jobs are in flight, on a private testbed
//! instance (TESTBED_PORT_OFFSET=3000) so the shared servers other tests use stay up. The test
//! plays Zeebe: a failed job with retries left is activated again, at most three attempts in
//! all. Every job must end completed, and the servers must hold every message as often as the
//! semantics allow: sent at least once and at most once per failed attempt, deleted, read and
//! deleted over POP3 exactly once.

use crate::support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::census::{append_on, copies, count_subject};
use support::gateway::{Outcome, TestGateway};
use support::{WorkerProcess, unique};

// Ports 13xxx: the OAuth testbed owns 12xxx.
const OFFSET: &str = "3000";

/// Runs the testbed script against the private instance; returns its settings.
fn private_testbed(action: &str) -> HashMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testbed/testbed.sh");
    let output = Command::new("bash")
        .arg(script)
        .arg(action)
        .env("TESTBED_PORT_OFFSET", OFFSET)
        .output()
        .expect("run the testbed script");
    assert!(
        output.status.success(),
        "testbed {action}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn port(vars: &HashMap<String, String>, name: &str) -> u16 {
    vars[name].parse().expect("port")
}

fn message(id: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nFrom: a@example.test\r\nTo: b@example.test\r\nSubject: {id}\r\n\r\nbody\r\n").into_bytes()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Send,
    Delete,
    Pop3Read,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_restarted_under_load_lose_and_double_nothing() {
    let vars = private_testbed("up");
    let maillog = format!("{}/postfix/maillog", vars["TESTBED_DIR"]);
    // Only what this run logs: job keys, and with them Message-IDs, repeat across runs.
    let log_start = std::fs::metadata(&maillog).map_or(0, |m| m.len() as usize);
    let (imap, pop3, smtp) = (
        port(&vars, "PORT_IMAP"),
        port(&vars, "PORT_POP3"),
        port(&vars, "PORT_SMTP"),
    );
    let run = unique("restart");
    let deletes: Vec<String> = (0..150)
        .map(|i| format!("del-{i}-{run}@example.test"))
        .collect();
    let reads: Vec<String> = (0..50)
        .map(|i| format!("pop-{i}-{run}@example.test"))
        .collect();
    append_on(
        imap,
        "restart1",
        "INBOX",
        &deletes.iter().map(|id| message(id)).collect::<Vec<_>>(),
    )
    .await;
    append_on(
        imap,
        "restart2",
        "INBOX",
        &reads.iter().map(|id| message(id)).collect::<Vec<_>>(),
    )
    .await;

    let gateway = TestGateway::start().await;
    let _worker = WorkerProcess::start(
        &gateway.url(),
        &[("EMAIL_MAX_JOBS_ACTIVE", "16"), ("RUST_LOG", "info")],
    );
    let server =
        |p: u16| json!({ "host": "127.0.0.1", "port": p, "security": "none", "timeoutSeconds": 5 });
    let login = |user: &str| json!({ "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") });
    let headers = json!({ "resultVariable": "r", "retryBackoff": "PT1S" });
    let mut jobs: Vec<(i64, Kind, String, Value)> = Vec::new();
    let mut create = |kind: Kind, id: String, variables: Value| {
        let job_type = match kind {
            Kind::Send => "email:smtp:send:1",
            Kind::Delete => "email:imap:delete:1",
            Kind::Pop3Read => "email:pop3:read:1",
        };
        let key = gateway.create_job(job_type, variables.clone(), headers.clone(), 3);
        jobs.push((key, kind, id, variables));
    };
    // 300 sends, 150 deletes, 50 POP3 reads: 500 jobs, interleaved.
    for i in 0..300 {
        let subject = format!("send-{i}-{run}");
        create(
            Kind::Send,
            subject.clone(),
            json!({ "authentication": { "type": "none" }, "server": server(smtp),
                    "from": "restart1@example.test", "to": "restart1@example.test",
                    "subject": subject, "body": "under load" }),
        );
        if i % 2 == 0 {
            let id = deletes[i / 2].clone();
            create(
                Kind::Delete,
                id.clone(),
                json!({ "authentication": login("restart1"), "server": server(imap), "messageId": id }),
            );
        }
        if i % 6 == 0 {
            let id = reads[i / 6].clone();
            create(
                Kind::Pop3Read,
                id.clone(),
                json!({ "authentication": login("restart2"), "server": server(pop3), "messageId": id }),
            );
        }
    }
    assert_eq!(jobs.len(), 500);

    // Once some jobs are done and many are in flight: stop both servers, wait, start them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while jobs
        .iter()
        .filter(|j| !gateway.outcomes(j.0).is_empty())
        .count()
        < 40
    {
        assert!(Instant::now() < deadline, "the jobs did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight = jobs
        .iter()
        .filter(|j| gateway.outcomes(j.0).is_empty())
        .count();
    private_testbed("stop");
    tokio::time::sleep(Duration::from_secs(3)).await;
    private_testbed("up");

    // Play Zeebe: a failure with retries left is activated again (at most 3 attempts).
    let mut attempts: HashMap<i64, usize> = jobs.iter().map(|j| (j.0, 1)).collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let mut pending = 0;
        for (key, kind, id, _) in &jobs {
            let outcomes = gateway.outcomes(*key);
            let tried = attempts[key];
            match outcomes.last() {
                None => pending += 1,
                Some(_) if outcomes.len() < tried => pending += 1,
                Some(Outcome::Completed { .. }) => {}
                Some(Outcome::Failed {
                    retries, message, ..
                }) => {
                    assert!(
                        *retries > 0 && tried < 3,
                        "{kind:?} {id}: attempt {tried} failed with {retries} retries left: {message}"
                    );
                    attempts.insert(*key, tried + 1);
                    gateway.requeue(*key);
                    pending += 1;
                }
                Some(other) => panic!("{kind:?} {id}: {other:?}"),
            }
        }
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} jobs never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let retried = attempts.values().filter(|a| **a > 1).count();
    println!("{in_flight} jobs in flight at the restart; {retried} needed a retry");

    // Postfix may hold what it took before the stop: flush its queue, then count.
    let _ = Command::new("postqueue")
        .arg("-c")
        .arg(format!("{}/postfix/etc", vars["TESTBED_DIR"]))
        .arg("-f")
        .status();
    let log = std::fs::read_to_string(&maillog)
        .map(|text| text.get(log_start..).unwrap_or_default().to_string())
        .unwrap_or_default();
    let mut doubled = 0;
    let mut redelivered = 0;
    for (key, kind, id, _) in &jobs {
        match kind {
            Kind::Send => {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut n = count_subject(imap, "restart1", "INBOX", id).await;
                while n == 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    n = count_subject(imap, "restart1", "INBOX", id).await;
                }
                assert!(n >= 1, "{id}: never delivered");
                // A send whose attempt failed after the server took the message is sent again:
                // at most one extra acceptance per failed attempt. Counted where Postfix
                // accepts a message (its cleanup line names the Message-ID), not in the
                // mailbox: a Dovecot stopped mid-LMTP makes Postfix deliver a message it took
                // once a second time, its own at-least-once delivery, not a second send.
                let message_id = match gateway.outcomes(*key).last() {
                    Some(Outcome::Completed { variables }) => variables["r"]["messageId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    other => panic!("{id}: {other:?}"),
                };
                let accepted = log
                    .lines()
                    .filter(|l| {
                        l.contains("/cleanup[") && l.ends_with(&format!("message-id={message_id}"))
                    })
                    .count();
                assert!(
                    (1..=attempts[key]).contains(&accepted),
                    "{id}: accepted {accepted} times after {} attempt(s) ({n} in the mailbox)",
                    attempts[key]
                );
                doubled += accepted - 1;
                redelivered += n.saturating_sub(accepted);
            }
            Kind::Delete => assert_eq!(
                copies(imap, "restart1", "INBOX", id).await,
                0,
                "{id} not deleted"
            ),
            Kind::Pop3Read => {
                match gateway.outcomes(*key).last() {
                    Some(Outcome::Completed { variables }) => {
                        assert_eq!(variables["r"]["messageId"], json!(format!("<{id}>")))
                    }
                    other => panic!("{id}: {other:?}"),
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while copies(imap, "restart2", "INBOX", id).await != 0 {
                    assert!(Instant::now() < deadline, "{id} read but never deleted");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    println!(
        "{doubled} message(s) sent twice, each by a retried attempt; {redelivered} extra \
         cop(ies) delivered by Postfix after the restart"
    );
    private_testbed("stop");
}
