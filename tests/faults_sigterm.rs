//! SIGTERM with jobs in flight, as Kubernetes stops a pod: the worker process drains what
//! finishes within the grace period, hands the rest back with retries unchanged, and what it
//! handed back is provably stopped: a slow SMTP server that would take the message after the
//! hand-back receives none, and a POP3 read in flight deletes nothing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::census::copies;
use support::fault::{Fault, FaultProxy};
use support::gateway::{Outcome, TestGateway};
use support::mailbox::append;
use support::{WorkerProcess, testbed, unique};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const GRACE: Duration = Duration::from_millis(1500);

/// An SMTP server that answers RCPT TO only after `delay`, recording whether it got to RCPT
/// and whether any message data (DATA) arrived.
struct SlowSmtp {
    port: u16,
    at_rcpt: Arc<AtomicUsize>,
    data: Arc<AtomicBool>,
}

async fn slow_smtp(delay: Duration) -> SlowSmtp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let at_rcpt = Arc::new(AtomicUsize::new(0));
    let data = Arc::new(AtomicBool::new(false));
    let (r, d) = (at_rcpt.clone(), data.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (r, d) = (r.clone(), d.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 slow.test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        d.store(true, Ordering::SeqCst);
                        if line == "." {
                            in_data = false;
                            let _ = write.write_all(b"250 2.0.0 queued\r\n").await;
                        }
                        continue;
                    }
                    let verb = line.to_ascii_uppercase();
                    let reply: &[u8] = if verb.starts_with("EHLO") {
                        b"250-slow.test\r\n250 8BITMIME\r\n"
                    } else if verb.starts_with("RCPT") {
                        r.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        b"250 2.1.5 ok\r\n"
                    } else if verb.starts_with("DATA") {
                        d.store(true, Ordering::SeqCst);
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
    SlowSmtp {
        port,
        at_rcpt,
        data,
    }
}

fn send_to(port: u16, subject: &str) -> Value {
    json!({
        "authentication": { "type": "none" },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 30 },
        "from": "fault1@example.test",
        "to": "someone@example.test",
        "subject": subject,
        "body": "hello"
    })
}

fn headers() -> Value {
    json!({ "resultVariable": "r", "retryBackoff": "PT1S" })
}

async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_grace_hands_back_the_rest_and_nothing_happens_after() {
    let tb = testbed();
    let gateway = TestGateway::start().await;
    let grace = format!("PT{}S", GRACE.as_secs_f64());
    let mut worker = WorkerProcess::start(&gateway.url(), &[("EMAIL_SHUTDOWN_GRACE", &grace)]);

    // Finishes within the grace period.
    let quick = slow_smtp(Duration::from_millis(400)).await;
    // Would take the message long after the grace period.
    let slow = slow_smtp(Duration::from_secs(6)).await;
    // A POP3 read (delete after read) whose server has stopped answering.
    let pop3 = FaultProxy::start(tb.port("PORT_POP3")).await;
    let id = format!("{}@example.test", unique("sigterm"));
    let raw =
        format!("Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: {id}\r\n\r\nbody\r\n");
    append("fault2", "INBOX", &[(raw.as_bytes(), "")]).await;

    let slow_key = gateway.create_job(
        "email:smtp:send:1",
        send_to(slow.port, "slow"),
        headers(),
        3,
    );
    pop3.set(Fault::Stall);
    let pop3_key = gateway.create_job(
        "email:pop3:read:1",
        json!({
            "authentication": { "type": "simple", "username": "fault2@example.test", "password": "fault2-pw" },
            "server": { "host": "127.0.0.1", "port": pop3.port, "security": "none", "timeoutSeconds": 30 },
            "messageId": id
        }),
        headers(),
        3,
    );
    until("the slow send reached RCPT", || {
        slow.at_rcpt.load(Ordering::SeqCst) > 0
    })
    .await;
    until("the POP3 read connected", || pop3.accepted() > 0).await;
    let quick_key = gateway.create_job(
        "email:smtp:send:1",
        send_to(quick.port, "quick"),
        headers(),
        3,
    );
    until("the quick send reached RCPT", || {
        quick.at_rcpt.load(Ordering::SeqCst) > 0
    })
    .await;

    let stopping = Instant::now();
    let status = worker
        .terminate(GRACE + Duration::from_secs(10))
        .expect("the worker exits after its grace period");
    let took = stopping.elapsed();
    assert!(status.success(), "{status:?}\n{}", worker.logs());
    assert!(
        took < GRACE + Duration::from_secs(5),
        "took {took:?} to stop with a {GRACE:?} grace period"
    );

    // Drained: the quick job finished within the grace period.
    assert!(
        matches!(
            gateway
                .wait_outcome(quick_key, Duration::from_secs(5))
                .await,
            Outcome::Completed { .. }
        ),
        "{:?}",
        gateway.outcomes(quick_key)
    );
    assert!(quick.data.load(Ordering::SeqCst));
    // Handed back unchanged: another worker takes them at once.
    for key in [slow_key, pop3_key] {
        match gateway.wait_outcome(key, Duration::from_secs(5)).await {
            Outcome::Failed {
                retries,
                backoff_ms,
                message,
            } => {
                assert_eq!((retries, backoff_ms), (3, 0), "{message}");
                assert!(message.contains("handed back"), "{message}");
            }
            other => panic!("expected a hand-back, got {other:?}"),
        }
    }
    // Provably stopped: past the moment the slow server answers RCPT, no message data came.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        !slow.data.load(Ordering::SeqCst),
        "the slow server received the message after its job was handed back"
    );
    assert_eq!(
        gateway.outcomes(slow_key).len(),
        1,
        "nothing reported after the hand-back"
    );
    // The POP3 read deleted nothing, and its connection is gone.
    assert_eq!(pop3.open(), 0, "the POP3 session was left open");
    assert_eq!(
        copies(tb.port("PORT_IMAP"), "fault2", "INBOX", &id).await,
        1,
        "the message a handed-back POP3 read was reading is still there"
    );
}
