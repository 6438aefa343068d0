//! SMTP: our worker against Postfix's own load generator, `smtp-source`, with the same message
//! size and concurrency, into `smtp-sink` and through the real Postfix into Dovecot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{InProcessWorker, Row, median, row, run_jobs, run_jobs_fed, standard_registry};
use crate::support::WorkerProcess;
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
    smtp_source_with(port, sessions, messages, to, &[])
}

/// [`smtp_source`] with more options (`-d`: keep each session for the next message).
fn smtp_source_with(
    port: u16,
    sessions: usize,
    messages: usize,
    to: &str,
    options: &[&str],
) -> Duration {
    let started = Instant::now();
    let status = Command::new("/usr/sbin/smtp-source")
        .args(options)
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

/// The body `smtp-source -l 1000` sends: 12 lines of 78 characters (a digit and 77 `X`), then
/// 40 `X`, 1,000 bytes with CRLF line ends, so both sides send the same message.
pub(crate) fn body() -> String {
    let mut body: String = (1..=12)
        .map(|i| format!("{}{}\n", i % 10, "X".repeat(77)))
        .collect();
    body.push_str(&"X".repeat(BODY_BYTES - body.len() - 12));
    body
}

fn job(port: u16, security: &str, auth: Value, to: &str) -> Value {
    // A CA only where TLS is spoken, as a model would give it.
    let mut server = json!({ "host": "127.0.0.1", "port": port, "security": security });
    if security != "none" {
        server["serverCertificate"] = json!(testbed().ca_pem());
    }
    json!({
        "authentication": auth,
        "server": server,
        "from": "bench@example.test", "to": to, "subject": "benchmark", "body": body()
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

/// The worker as it is deployed, the release binary in a process of its own, serving
/// `concurrency` jobs at once, with extra environment.
fn worker_process(
    gateway: &TestGateway,
    concurrency: usize,
    env: &[(&str, &str)],
) -> WorkerProcess {
    let jobs = concurrency.to_string();
    // Logs as deployed: info (a job's line only when it fails).
    let mut all = vec![
        ("EMAIL_MAX_JOBS_ACTIVE", jobs.as_str()),
        ("RUST_LOG", "info"),
    ];
    all.extend_from_slice(env);
    WorkerProcess::start(&gateway.url(), &all)
}

/// A row against smtp-sink: sessions, the row's label, the worker's extra environment, whether
/// the jobs are created at once (a backlog) rather than fed, and smtp-source's extra options.
type SinkCase = (
    usize,
    &'static str,
    &'static [(&'static str, &'static str)],
    bool,
    &'static [&'static str],
);

/// Jobs created and not yet finished at any time in the steady-state runs: below the test
/// gateway's stream buffer, so every job reaches the worker on its stream.
const WINDOW: usize = 512;

/// The send every smtp-sink row runs: no login, plaintext, to a discarded address.
fn sink_job(sink: &Sink) -> Value {
    job(
        sink.port,
        "none",
        json!({ "type": "none" }),
        "x@discard.test",
    )
}

/// Sends to smtp-sink by the worker process and by smtp-source, pair by pair (alternating
/// which goes first); returns the median rates and the pairs' ratios, sorted.
async fn sink_pairs(
    gateway: &TestGateway,
    sink: &Sink,
    concurrency: usize,
    n: usize,
    pairs: usize,
    backlog: bool,
    options: &[&str],
) -> (f64, f64, Vec<f64>) {
    let vars = sink_job(sink);
    let (mut ours, mut base, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        let run_ours = || async {
            let took = if backlog {
                run_jobs(gateway, SEND, &vars, n).await
            } else {
                run_jobs_fed(gateway, SEND, &vars, &json!({}), n, WINDOW).await
            };
            n as f64 / took.as_secs_f64()
        };
        let run_base = || {
            n as f64
                / smtp_source_with(sink.port, concurrency, n, "x@discard.test", options)
                    .as_secs_f64()
        };
        let (o, b) = if pair % 2 == 0 {
            let o = run_ours().await;
            (o, run_base())
        } else {
            let b = run_base();
            (run_ours().await, b)
        };
        ours.push(o);
        base.push(b);
        ratios.push(o / b);
    }
    ratios.sort_by(f64::total_cmp);
    (median(ours), median(base), ratios)
}

fn range(ratios: &[f64]) -> String {
    match (ratios.first(), ratios.last()) {
        (Some(low), Some(high)) => format!("{low:.2}x-{high:.2}x"),
        _ => "—".into(),
    }
}

pub async fn scenarios(quick: bool, runs: usize, rows: &mut Vec<Row>) {
    let tb = testbed();
    let sink = Sink::start();
    // The worker process against smtp-sink: one session, then 16, with a thread per core (the
    // default) and with one thread; jobs arrive on the stream as a process engine hands them
    // out, and once more all created at once, a backlog the worker drains by polling.
    let pairs = if quick { 1 } else { 7 };
    // smtp-source opens a connection per message; with -d it keeps its sessions, as we do.
    let cases: [SinkCase; 5] = [
        (1, "", &[], false, &[]),
        (16, "", &[], false, &[]),
        (
            16,
            ", one worker thread",
            &[("EMAIL_WORKER_THREADS", "1")],
            false,
            &[],
        ),
        (16, ", a backlog of jobs created at once", &[], true, &[]),
        (
            16,
            ", vs smtp-source -d (sessions kept)",
            &[],
            false,
            &["-d"],
        ),
    ];
    for (concurrency, label, env, backlog, options) in cases {
        let n = match (quick, concurrency) {
            (true, _) => 200,
            (false, 1) => 1000,
            (false, _) => 4000,
        };
        let gateway = TestGateway::start().await;
        let worker = worker_process(&gateway, concurrency, env);
        gateway.wait_for_stream(SEND, Duration::from_secs(30)).await;
        let vars = sink_job(&sink);
        run_jobs_fed(&gateway, SEND, &vars, &json!({}), 200, WINDOW).await;
        let (ours, base, ratios) =
            sink_pairs(&gateway, &sink, concurrency, n, pairs, backlog, options).await;
        let ratio = median(ratios.clone());
        let (goal, met) = match (concurrency, backlog, label.is_empty()) {
            (1, _, _) => (">= 0.8x", Some(ratio >= 0.8)),
            (16, false, true) => (">= 1.0x", Some(ratio >= 1.0)),
            _ => ("report", None),
        };
        let how = if backlog {
            format!("{n} jobs created at once (all but the stream's buffer queued for polling)")
        } else {
            format!("jobs arriving on the stream, at most {WINDOW} unfinished")
        };
        rows.push(row(
            &format!("SMTP send to smtp-sink, {concurrency} concurrent{label}"),
            "jobs/s end to end, worker process",
            ours,
            Some(base),
            "msg/s",
            Some(ratio),
            goal,
            met,
            &format!(
                "{n} messages of {BODY_BYTES} bytes (smtp-source's body), {how}; baseline \
                 smtp-source -s {concurrency}{}; median of {pairs} pair ratios, range {}",
                options.iter().map(|o| format!(" {o}")).collect::<String>(),
                range(&ratios)
            ),
        ));
        drop(worker);
    }

    // A result expression against a result variable, both in the worker in this process,
    // interleaved run by run.
    let n = if quick { 100 } else { 4000 };
    let gateway = TestGateway::start().await;
    let worker = InProcessWorker::start(&gateway, standard_registry(true), 16);
    let vars = sink_job(&sink);
    run_jobs(&gateway, SEND, &vars, 16).await;
    let whole = json!({ "resultVariable": "r" });
    let shaped = json!({ "resultExpression": "= { id: response.messageId, sent: sent }" });
    let (mut whole_rates, mut shaped_rates) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (headers, into) in [(&whole, &mut whole_rates), (&shaped, &mut shaped_rates)] {
            let took = run_jobs_fed(&gateway, SEND, &vars, headers, n, WINDOW).await;
            into.push(n as f64 / took.as_secs_f64());
        }
    }
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
    worker.stop().await;
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
