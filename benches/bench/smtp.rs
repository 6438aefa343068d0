//! SMTP: our worker against Postfix's own load generator, `smtp-source`, with the same message
//! size and concurrency, into `smtp-sink` and through the real Postfix into Dovecot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    InProcessWorker, Row, median, row, run_jobs, run_jobs_with, standard_registry,
};
use crate::support::gateway::TestGateway;
use crate::support::testbed;

const SEND: &str = "email:smtp:send:1";
const BODY_BYTES: usize = 1000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port()
}

/// `smtp-sink` on a free port, stopped (by its PID) when dropped.
struct Sink {
    port: u16,
    child: Child,
}

impl Sink {
    fn start() -> Sink {
        let port = free_port();
        let child = Command::new("/usr/sbin/smtp-sink")
            .args(["-u", "postfix", &format!("127.0.0.1:{port}"), "256"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink (from the postfix package)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { port, child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn smtp_source(port: u16, sessions: usize, messages: usize, to: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new("/usr/sbin/smtp-source")
        .args([
            "-s",
            &sessions.to_string(),
            "-m",
            &messages.to_string(),
            "-l",
            &BODY_BYTES.to_string(),
        ])
        .args([
            "-f",
            "bench@example.test",
            "-t",
            to,
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("smtp-source (from the postfix package)");
    assert!(status.success(), "smtp-source failed");
    started.elapsed()
}

fn job(port: u16, security: &str, auth: Value, to: &str) -> Value {
    json!({
        "authentication": auth,
        "server": { "host": "127.0.0.1", "port": port, "security": security, "serverCertificate": testbed().ca_pem() },
        "from": "bench@example.test", "to": to, "subject": "benchmark", "body": "x".repeat(BODY_BYTES)
    })
}

/// Messages delivered to `user`'s INBOX so far (files in the Maildir).
pub(crate) fn delivered(user: &str) -> usize {
    let base = std::path::PathBuf::from(testbed().dir())
        .join("mail/example.test")
        .join(user)
        .join("Maildir");
    ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(base.join(d)).map_or(0, |r| r.count()))
        .sum()
}

pub(crate) async fn wait_delivered(user: &str, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while delivered(user) < target {
        assert!(
            Instant::now() < deadline,
            "delivery to {user} stalled at {} of {target}",
            delivered(user)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn scenarios(quick: bool, runs: usize, rows: &mut Vec<Row>) {
    let tb = testbed();
    let sink = Sink::start();
    for concurrency in [1usize, 16] {
        let n = if quick {
            100
        } else if concurrency == 1 {
            1000
        } else {
            4000
        };
        let gateway = TestGateway::start().await;
        let worker = InProcessWorker::start(&gateway, standard_registry(true), concurrency);
        let vars = job(
            sink.port,
            "none",
            json!({ "type": "none" }),
            "x@discard.test",
        );
        run_jobs(&gateway, SEND, &vars, concurrency).await;
        let mut ours_rates = Vec::new();
        let mut base_rates = Vec::new();
        // With 16 at a time, also the same sends shaped by a result expression against the same
        // sends with a result variable (a job's output either way), interleaved run by run.
        let shaping = concurrency == 16;
        let whole = json!({ "resultVariable": "r" });
        let shaped = json!({ "resultExpression": "= { id: response.messageId, sent: sent }" });
        let (mut whole_rates, mut shaped_rates) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ours_rates.push(n as f64 / run_jobs(&gateway, SEND, &vars, n).await.as_secs_f64());
            base_rates.push(
                n as f64 / smtp_source(sink.port, concurrency, n, "x@discard.test").as_secs_f64(),
            );
            if shaping {
                for (headers, into) in [(&whole, &mut whole_rates), (&shaped, &mut shaped_rates)] {
                    let took = run_jobs_with(&gateway, SEND, &vars, headers, n).await;
                    into.push(n as f64 / took.as_secs_f64());
                }
            }
        }
        if shaping {
            let (shaped, whole) = (median(shaped_rates), median(whole_rates));
            rows.push(row(
                "SMTP send to smtp-sink, 16 concurrent, with a result expression",
                "jobs/s, vs the same sends with resultVariable instead",
                shaped,
                Some(whole),
                "msg/s",
                Some(shaped / whole),
                // Informational, as the no-op row: wall-clock runs move more than the
                // expression costs; the worker's instructions per job hold the goal.
                "— (the instructions row holds the goal)",
                None,
                &format!(
                    "{n} messages per run, {runs} runs interleaved; resultExpression \
                     `= {{ id: response.messageId, sent: sent }}` against resultVariable `r`"
                ),
            ));
        }
        let (ours, base) = (median(ours_rates), median(base_rates));
        let ratio = ours / base;
        rows.push(row(
            &format!("SMTP send to smtp-sink, {concurrency} concurrent"),
            "jobs/s end to end",
            ours,
            Some(base),
            "msg/s",
            Some(ratio),
            ">= 0.8x",
            Some(ratio >= 0.8),
            &format!("{n} messages of {BODY_BYTES} bytes; baseline smtp-source -s {concurrency}"),
        ));
        worker.stop().await;
    }
    drop(sink);

    // Through the real Postfix (queue, LMTP) into Dovecot's Maildir, counted when delivered.
    let n = if quick { 50 } else { 1000 };
    let gateway = TestGateway::start().await;
    let worker = InProcessWorker::start(&gateway, standard_registry(true), 16);
    let vars = job(
        tb.port("PORT_SMTP"),
        "none",
        json!({ "type": "none" }),
        "bench@example.test",
    );
    let mut ours_rates = Vec::new();
    let mut base_rates = Vec::new();
    for _ in 0..runs {
        let before = delivered("bench");
        let started = Instant::now();
        run_jobs(&gateway, SEND, &vars, n).await;
        wait_delivered("bench", before + n).await;
        ours_rates.push(n as f64 / started.elapsed().as_secs_f64());
        let before = delivered("bench");
        let started = Instant::now();
        smtp_source(tb.port("PORT_SMTP"), 16, n, "bench@example.test");
        wait_delivered("bench", before + n).await;
        base_rates.push(n as f64 / started.elapsed().as_secs_f64());
    }
    worker.stop().await;
    let (ours, base) = (median(ours_rates), median(base_rates));
    rows.push(row(
        "SMTP send to Postfix -> Dovecot",
        "jobs/s until all delivered",
        ours,
        Some(base),
        "msg/s",
        Some(ours / base),
        ">= 0.8x",
        Some(ours / base >= 0.8),
        &format!("{n} messages, 16 concurrent, port 10025 into LMTP"),
    ));

    // Session reuse: STARTTLS + AUTH on every job, or once.
    let n = if quick { 20 } else { 300 };
    let auth =
        json!({ "type": "simple", "username": "bench@example.test", "password": "bench-pw" });
    let vars = job(
        tb.port("PORT_SUBMISSION"),
        "starttls",
        auth,
        "x@discard.test",
    );
    let mut rates = Vec::new();
    for pooling in [true, false] {
        let gateway = TestGateway::start().await;
        let worker = InProcessWorker::start(&gateway, standard_registry(pooling), 1);
        run_jobs(&gateway, SEND, &vars, 1).await;
        let samples: Vec<f64> = {
            let mut v = Vec::new();
            for _ in 0..runs {
                v.push(n as f64 / run_jobs(&gateway, SEND, &vars, n).await.as_secs_f64());
            }
            v
        };
        rates.push(median(samples));
        worker.stop().await;
    }
    rows.push(row(
        "SMTP session reuse (STARTTLS + AUTH), sequential",
        "jobs/s pooling on vs off",
        rates[0],
        Some(rates[1]),
        "msg/s",
        Some(rates[0] / rates[1]),
        "report",
        None,
        &format!("{n} messages on port 10587"),
    ));
}
