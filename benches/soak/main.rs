//! The soak: `cargo bench --bench soak -- [--minutes 20] [--rate 5] [--json PATH]`. Not part of
//! CI. Runs the worker binary (release build) against the test gateway and the mail testbed
//! with a steady mix of jobs for the given time, samples the worker's resident memory and open
//! file descriptors every 10 s, and reports their growth after warm-up, p50/p99 latency per job
//! type and the outcomes by error code, as a Markdown table on stdout and JSON
//! (`target/soak-results.json` unless `--json` says otherwise).
//!
//! The mix keeps the mailboxes steady: every message sent is later taken away again (deleted
//! over IMAP from soak1, read-and-deleted over POP3 from soak2); one message moves back and
//! forth between two folders; list, search and read work on what is there. Loopback only.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway};
use support::mailbox::{append, clear_inbox, create_folder};
use support::{WorkerProcess, testbed, unique};

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Sent messages are taken away only after this long, once delivery has surely happened.
const DELIVERY_DELAY: Duration = Duration::from_secs(10);

struct Args {
    minutes: f64,
    rate: f64,
    json: String,
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        raw.iter()
            .position(|a| a == name)
            .and_then(|i| raw.get(i + 1).cloned())
    };
    Args {
        minutes: value("--minutes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(20.0),
        rate: value("--rate").and_then(|v| v.parse().ok()).unwrap_or(5.0),
        json: value("--json").unwrap_or_else(|| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/target/soak-results.json").to_string()
        }),
    }
}

fn connection(protocol: &str, user: &str) -> Value {
    let tb = testbed();
    let port = match protocol {
        "imap" => tb.port("PORT_IMAPS"),
        "pop3" => tb.port("PORT_POP3S"),
        _ => tb.port("PORT_SUBMISSION"),
    };
    let security = if protocol == "smtp" {
        "starttls"
    } else {
        "tls"
    };
    json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": port, "security": security, "serverCertificate": tb.ca_pem(), "timeoutSeconds": 20 }
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// What one job ended in: `ok`, or the error code its failure or BPMN error named.
fn verdict(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed { .. } => "ok".into(),
        Outcome::Failed { message, .. } => message
            .split(':')
            .next()
            .unwrap_or("UNKNOWN")
            .trim()
            .to_string(),
        Outcome::Thrown { code, .. } => format!("bpmn:{code}"),
    }
}

#[derive(Default)]
struct Record {
    /// Job type → (latency in ms, verdict).
    jobs: BTreeMap<String, Vec<(f64, String)>>,
    /// Sent messages waiting to be taken away: (when sent, Message-ID), per mailbox.
    to_delete_imap: VecDeque<(Instant, String)>,
    to_read_pop3: VecDeque<(Instant, String)>,
    /// Which folder the moving message is in, and whether a move is under way.
    move_in_a: bool,
    moving: bool,
}

struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32, started: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at_s: started.elapsed().as_secs_f64(),
        rss_kib,
        fds,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(soak(args));
}

async fn soak(args: Args) {
    testbed();
    let run = unique("soak");
    // The static fixtures: a message to read, one to move back and forth, a clean INBOX each.
    clear_inbox("soak1").await;
    clear_inbox("soak2").await;
    let folder_a = format!("SoakA{}", std::process::id());
    let folder_b = format!("SoakB{}", std::process::id());
    let static_id = format!("static-{run}@example.test");
    let moving_id = format!("moving-{run}@example.test");
    let fixture = |id: &str| {
        format!(
            "Message-ID: <{id}>\r\nFrom: soak@example.test\r\nTo: soak1@example.test\r\nSubject: soak fixture {id}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            "A line of body text for the soak.\r\n".repeat(200)
        )
        .into_bytes()
    };
    append("soak1", "INBOX", &[(&fixture(&static_id), "")]).await;
    append("soak1", &folder_a, &[(&fixture(&moving_id), "")]).await;
    create_folder("soak1", &folder_b).await;

    let gateway = Arc::new(TestGateway::start().await);
    let worker = WorkerProcess::start(
        &gateway.url(),
        &[("RUST_LOG", "warn"), ("EMAIL_MAX_JOBS_ACTIVE", "16")],
    );
    let pid = worker.pid();
    let started = Instant::now();
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let record = Arc::new(Mutex::new(Record {
        move_in_a: true,
        ..Record::default()
    }));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                match sample(pid, started) {
                    Some(s) => samples.lock().unwrap_or_else(|p| p.into_inner()).push(s),
                    None => return,
                }
            }
        })
    };

    let mix = [
        "smtp:send:imap",
        "imap:list",
        "smtp:send:pop3",
        "imap:search",
        "imap:read",
        "imap:delete",
        "pop3:list",
        "pop3:read",
        "imap:move",
    ];
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let mut waiting = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < duration {
        tick.tick().await;
        let kind = mix[n % mix.len()];
        n += 1;
        let Some((job_type, variables, after)) =
            next_job(kind, n, &record, &folder_a, &folder_b, &static_id, &run)
        else {
            continue;
        };
        let gateway = gateway.clone();
        let record = record.clone();
        waiting.push(tokio::spawn(async move {
            let begun = Instant::now();
            let key = gateway.create_job(
                &format!("email:{job_type}:1"),
                variables,
                json!({ "resultVariable": "r" }),
                3,
            );
            let outcome = tokio::time::timeout(Duration::from_secs(120), async {
                loop {
                    if let Some(o) = gateway.outcomes(key).into_iter().next() {
                        return o;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            let ms = begun.elapsed().as_secs_f64() * 1000.0;
            let verdict = outcome.as_ref().map_or("NO_OUTCOME".into(), verdict);
            let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(o) = &outcome {
                after(&mut r, o);
            }
            r.jobs
                .entry(kind.to_string())
                .or_default()
                .push((ms, verdict));
        }));
        waiting.retain(|h| !h.is_finished());
    }
    for handle in waiting {
        let _ = handle.await;
    }
    sampler.abort();
    if let Some(s) = sample(pid, started) {
        samples.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }
    drop(worker);
    report(&args, &record, &samples, started.elapsed());
}

type After = Box<dyn FnOnce(&mut Record, &Outcome) + Send>;

/// The next job of `kind`, or none when it has nothing to work on yet.
fn next_job(
    kind: &str,
    n: usize,
    record: &Arc<Mutex<Record>>,
    folder_a: &str,
    folder_b: &str,
    static_id: &str,
    run: &str,
) -> Option<(String, Value, After)> {
    let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
    let nothing: After = Box::new(|_, _| {});
    let ready = |queue: &mut VecDeque<(Instant, String)>| {
        if queue
            .front()
            .is_some_and(|(at, _)| at.elapsed() >= DELIVERY_DELAY)
        {
            queue.pop_front().map(|(_, id)| id)
        } else {
            None
        }
    };
    Some(match kind {
        "smtp:send:imap" | "smtp:send:pop3" => {
            let to_pop3 = kind.ends_with("pop3");
            let to = if to_pop3 { "soak2" } else { "soak1" };
            let vars = with(
                connection("smtp", "soak1"),
                json!({ "from": "soak1@example.test", "to": format!("{to}@example.test"),
                        "subject": format!("{run} message {n}"), "body": "soak body\r\n".repeat(50) }),
            );
            let after: After = Box::new(move |r, o| {
                if let Outcome::Completed { variables } = o
                    && let Some(id) = variables["r"]["messageId"].as_str()
                {
                    let queue = if to_pop3 {
                        &mut r.to_read_pop3
                    } else {
                        &mut r.to_delete_imap
                    };
                    queue.push_back((Instant::now(), id.to_string()));
                }
            });
            ("smtp:send".into(), vars, after)
        }
        "imap:list" => (
            kind.into(),
            with(
                connection("imap", "soak1"),
                json!({ "folder": "INBOX", "maxToBeRead": 20 }),
            ),
            nothing,
        ),
        "imap:search" => (
            kind.into(),
            with(
                connection("imap", "soak1"),
                json!({ "criteria": { "field": "SUBJECT", "value": run } }),
            ),
            nothing,
        ),
        "imap:read" => (
            kind.into(),
            with(
                connection("imap", "soak1"),
                json!({ "messageId": static_id }),
            ),
            nothing,
        ),
        "imap:delete" => {
            let id = ready(&mut r.to_delete_imap)?;
            (
                kind.into(),
                with(connection("imap", "soak1"), json!({ "messageId": id })),
                nothing,
            )
        }
        "pop3:list" => (
            kind.into(),
            with(connection("pop3", "soak2"), json!({ "maxToBeRead": 20 })),
            nothing,
        ),
        "pop3:read" => {
            let id = ready(&mut r.to_read_pop3)?;
            (
                kind.into(),
                with(connection("pop3", "soak2"), json!({ "messageId": id })),
                nothing,
            )
        }
        "imap:move" => {
            if r.moving {
                return None;
            }
            r.moving = true;
            let (from, to) = if r.move_in_a {
                (folder_a, folder_b)
            } else {
                (folder_b, folder_a)
            };
            let vars = with(
                connection("imap", "soak1"),
                json!({ "messageId": format!("moving-{run}@example.test"), "sourceFolder": from, "targetFolder": to }),
            );
            let after: After = Box::new(|r, o| {
                r.moving = false;
                if matches!(o, Outcome::Completed { .. }) {
                    r.move_in_a = !r.move_in_a;
                }
            });
            (kind.into(), vars, after)
        }
        _ => return None,
    })
}

fn report(
    args: &Args,
    record: &Arc<Mutex<Record>>,
    samples: &Arc<Mutex<Vec<Sample>>>,
    elapsed: Duration,
) {
    let r = record.lock().unwrap_or_else(|p| p.into_inner());
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner());
    // Warm-up: the first fifth of the run, at most two minutes.
    let warm_up = (elapsed.as_secs_f64() / 5.0).min(120.0);
    let after_warm_up: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= warm_up).collect();
    let first = after_warm_up.first();
    let last = samples.last();
    let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let peak_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    println!(
        "## Soak: {:.1} min at {} jobs/s\n",
        elapsed.as_secs_f64() / 60.0,
        args.rate
    );
    println!("| measure | after warm-up ({warm_up:.0} s) | end | growth | peak |");
    println!("|---|---|---|---|---|");
    if let (Some(f), Some(l)) = (first, last) {
        println!(
            "| RSS (KiB) | {} | {} | {:+} | {peak_rss} |",
            f.rss_kib,
            l.rss_kib,
            l.rss_kib as i64 - f.rss_kib as i64
        );
        println!(
            "| open fds | {} | {} | {:+} | {peak_fds} |",
            f.fds,
            l.fds,
            l.fds as i64 - f.fds as i64
        );
    }
    println!("\n| job type | jobs | p50 ms | p99 ms | max ms | outcomes |");
    println!("|---|---|---|---|---|---|");
    let mut by_type = serde_json::Map::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, jobs) in &r.jobs {
        let mut ms: Vec<f64> = jobs.iter().map(|(m, _)| *m).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for (_, v) in jobs {
            *outcomes.entry(v.clone()).or_default() += 1;
            *codes.entry(v.clone()).or_default() += 1;
        }
        let (p50, p99, max) = (
            percentile(&ms, 50.0),
            percentile(&ms, 99.0),
            ms.last().copied().unwrap_or(0.0),
        );
        println!(
            "| {kind} | {} | {p50:.0} | {p99:.0} | {max:.0} | {} |",
            jobs.len(),
            outcomes
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        by_type.insert(
            kind.clone(),
            json!({ "jobs": jobs.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max, "outcomes": outcomes }),
        );
    }
    println!(
        "\noutcomes: {}",
        codes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("\nsamples (s, RSS KiB, fds):");
    for s in samples.iter() {
        println!("  {:.0} {} {}", s.at_s, s.rss_kib, s.fds);
    }
    let report = json!({
        "minutes": elapsed.as_secs_f64() / 60.0,
        "rate_per_s": args.rate,
        "warm_up_s": warm_up,
        "samples": samples.iter().map(|s| json!([s.at_s, s.rss_kib, s.fds])).collect::<Vec<_>>(),
        "by_type": by_type,
        "outcomes": codes,
    });
    if let Ok(text) = serde_json::to_string_pretty(&report) {
        let _ = std::fs::write(&args.json, text);
        println!("\nJSON written to {}", args.json);
    }
}
