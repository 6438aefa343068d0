//! SIGTERM with jobs in flight, as Kubernetes stops a pod: the worker process drains what
//! finishes within the grace period, hands the rest back with retries unchanged, and what it
//! handed back is provably stopped: a slow SMTP server that would take the message after the
//! hand-back receives none, and a POP3 read in flight deletes nothing.

use crate::support;

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

/// A POP3 server of a single mailbox holding `message`, that records every command line and
/// stops answering half-way through RETR. It only finishes the RETR (and answers what came
/// after it, in order) once the client has sent QUIT, as a real server would process
/// pipelined commands.
struct StallingPop3 {
    port: u16,
    commands: Arc<std::sync::Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

async fn stalling_pop3(message: String) -> StallingPop3 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let commands = Arc::new(std::sync::Mutex::new(Vec::new()));
    let closed = Arc::new(AtomicBool::new(false));
    let (seen, gone) = (commands.clone(), closed.clone());
    tokio::spawn(async move {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let _ = write.write_all(b"+OK stalling POP3 ready\r\n").await;
        let size = message.len();
        let headers = message.split("\r\n\r\n").next().unwrap_or("").to_string();
        let mut in_retr = false;
        let mut owed = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            seen.lock().expect("commands").push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let reply = match verb.as_str() {
                "CAPA" => "+OK\r\nUSER\r\nTOP\r\nUIDL\r\n.\r\n".to_string(),
                "STAT" => format!("+OK 1 {size}\r\n"),
                "LIST" if line.contains(' ') => format!("+OK 1 {size}\r\n"),
                "LIST" => format!("+OK\r\n1 {size}\r\n.\r\n"),
                "UIDL" if line.contains(' ') => "+OK 1 only-one\r\n".to_string(),
                "UIDL" => "+OK\r\n1 only-one\r\n.\r\n".to_string(),
                "TOP" => format!("+OK\r\n{headers}\r\n\r\n.\r\n"),
                "RETR" => {
                    in_retr = true;
                    // The header and a first line, then nothing.
                    format!("+OK {size} octets\r\n{headers}\r\n\r\nfirst line\r\n")
                }
                "RSET" if in_retr => {
                    owed.push_str("+OK reset\r\n");
                    String::new()
                }
                "QUIT" if in_retr => {
                    let reply = format!("rest\r\n.\r\n{owed}+OK bye\r\n");
                    let _ = write.write_all(reply.as_bytes()).await;
                    break;
                }
                "QUIT" => {
                    let _ = write.write_all(b"+OK bye\r\n").await;
                    break;
                }
                _ if in_retr => {
                    owed.push_str("+OK\r\n");
                    String::new()
                }
                _ => "+OK\r\n".to_string(),
            };
            if write.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        gone.store(true, Ordering::SeqCst);
    });
    StallingPop3 {
        port,
        commands,
        closed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_read_handed_back_at_sigterm_says_rset_then_quit_before_the_worker_exits() {
    let gateway = TestGateway::start().await;
    let grace = format!("PT{}S", GRACE.as_secs_f64());
    let mut worker = WorkerProcess::start(&gateway.url(), &[("EMAIL_SHUTDOWN_GRACE", &grace)]);
    let id = format!("{}@example.test", unique("farewell"));
    let server = stalling_pop3(format!(
        "Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: farewell\r\n\r\nfirst line\r\nrest\r\n"
    ))
    .await;
    let key = gateway.create_job(
        "email:pop3:read:1",
        json!({
            "authentication": { "type": "simple", "username": "someone", "password": "pw" },
            "server": { "host": "127.0.0.1", "port": server.port, "security": "none", "timeoutSeconds": 30 },
            "messageId": id
        }),
        headers(),
        3,
    );
    let commands = server.commands.clone();
    until("the read sent RETR", || {
        commands
            .lock()
            .expect("commands")
            .iter()
            .any(|c| c.starts_with("RETR"))
    })
    .await;

    let stopping = Instant::now();
    let status = worker
        .terminate(GRACE + Duration::from_secs(10))
        .expect("the worker exits after its grace period");
    assert!(status.success(), "{status:?}\n{}", worker.logs());
    assert!(
        stopping.elapsed() < GRACE + Duration::from_secs(5),
        "took {:?} to stop",
        stopping.elapsed()
    );
    match gateway.wait_outcome(key, Duration::from_secs(5)).await {
        Outcome::Failed {
            retries, message, ..
        } => {
            assert_eq!(retries, 3, "{message}");
            assert!(message.contains("handed back"), "{message}");
        }
        other => panic!("expected a hand-back, got {other:?}"),
    }
    // Before the process was gone, the session said RSET and then QUIT, and nothing else.
    let commands = server.commands.lock().expect("commands").clone();
    let retr = commands
        .iter()
        .position(|c| c.starts_with("RETR"))
        .expect("RETR");
    assert_eq!(
        commands[retr + 1..],
        ["RSET".to_string(), "QUIT".to_string()],
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.starts_with("DELE")),
        "{commands:?}"
    );
    until("the session closed", || {
        server.closed.load(Ordering::SeqCst)
    })
    .await;
}
