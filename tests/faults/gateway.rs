//! The gateway restarted mid-run: jobs whose operations finish while it is away have their
//! completions retried until it is back (not dropped, which would leave each job to Zeebe's
//! timeout and a second run elsewhere), the worker reconnects by itself, and every job is
//! handled exactly once.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::WorkerProcess;
use support::gateway::{Outcome, TestGateway};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// An SMTP server that takes `delay` to answer RCPT TO and counts the messages it accepts.
async fn counting_smtp(delay: Duration) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 count.test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            counter.fetch_add(1, Ordering::SeqCst);
                            let _ = write.write_all(b"250 2.0.0 queued\r\n").await;
                        }
                        continue;
                    }
                    let verb = line.to_ascii_uppercase();
                    let reply: &[u8] = if verb.starts_with("EHLO") {
                        b"250-count.test\r\n250 8BITMIME\r\n"
                    } else if verb.starts_with("RCPT") {
                        tokio::time::sleep(delay).await;
                        b"250 2.1.5 ok\r\n"
                    } else if verb.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if verb.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restart_loses_no_completion_and_runs_nothing_twice() {
    let mut gateway = TestGateway::start().await;
    let _worker = WorkerProcess::start(
        &gateway.url(),
        &[
            ("EMAIL_POLL_REQUEST_TIMEOUT", "PT1S"),
            ("EMAIL_MAX_JOBS_ACTIVE", "8"),
        ],
    );
    let (port, accepted) = counting_smtp(Duration::from_millis(1500)).await;
    let job = |n: usize| {
        json!({
            "authentication": { "type": "none" },
            "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 30 },
            "from": "fault1@example.test",
            "to": "someone@example.test",
            "subject": format!("restart {n}"),
            "body": "hello"
        })
    };
    let headers = json!({ "resultVariable": "r", "retryBackoff": "PT1S" });
    let mut keys: Vec<i64> = (0..8)
        .map(|n| gateway.create_job("email:smtp:send:1", job(n), headers.clone(), 3))
        .collect();
    // Every job running, its send waiting for the slow server: now the gateway goes away,
    // and each job finishes while it is away.
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys.iter().any(|k| gateway.deliveries(*k).is_empty()) {
        assert!(Instant::now() < deadline, "not every job was activated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.pause().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        8,
        "every send finished during the outage"
    );
    gateway.resume().await;
    // The worker is back by itself: new jobs run too.
    keys.extend(
        (8..12).map(|n| gateway.create_job("email:smtp:send:1", job(n), headers.clone(), 3)),
    );
    for key in &keys {
        let outcome = gateway.wait_outcome(*key, Duration::from_secs(60)).await;
        assert!(
            matches!(outcome, Outcome::Completed { .. }),
            "job {key}: {outcome:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for key in &keys {
        assert_eq!(gateway.outcomes(*key).len(), 1, "job {key} reported twice");
        assert_eq!(
            gateway.deliveries(*key).len(),
            1,
            "job {key} activated twice"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        keys.len(),
        "a message sent twice"
    );
}
