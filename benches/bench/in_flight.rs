//! Many jobs at once against one IMAP server and one login: the worker takes a thousand list
//! jobs together (`EMAIL_MAX_JOBS_ACTIVE=1000`), holds no more sessions than one login may
//! (`EMAIL_IMAP_SESSIONS_PER_LOGIN`, 8), and its memory stays small. A fault proxy in pass mode
//! between the worker and Dovecot counts the sessions open at once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Row, one_job, proc_kb, row};
use crate::imap::{ensure_folder, vars};
use crate::support::fault::FaultProxy;
use crate::support::gateway::{Outcome, TestGateway};
use crate::support::{WorkerProcess, testbed};

const SESSIONS_PER_LOGIN: usize = 8;

pub async fn scenario(quick: bool, rows: &mut Vec<Row>) {
    let jobs = if quick { 200 } else { 1000 };
    let folder = ensure_folder(1000);
    let proxy = FaultProxy::start(testbed().port("PORT_IMAP")).await;
    let mut variables = vars(&folder, json!({ "maxToBeRead": 10, "sortOrder": "DESC" }));
    variables["server"]["port"] = json!(proxy.port);
    variables["server"]["timeoutSeconds"] = json!(120);
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(
        &gateway.url(),
        &[
            ("RUST_LOG", "info"),
            ("EMAIL_MAX_JOBS_ACTIVE", "1000"),
            (
                "EMAIL_IMAP_SESSIONS_PER_LOGIN",
                &SESSIONS_PER_LOGIN.to_string(),
            ),
        ],
    );
    let (alone, _) = one_job(&gateway, "email:imap:list:1", &variables).await;
    let before_mb = proc_kb(worker.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;

    let started = Instant::now();
    let keys: Vec<i64> = (0..jobs)
        .map(|_| {
            gateway.create_job(
                "email:imap:list:1",
                variables.clone(),
                json!({ "resultVariable": "r" }),
                3,
            )
        })
        .collect();
    let waits = keys.iter().map(|&key| {
        let gateway = &gateway;
        async move {
            match gateway.wait_outcome(key, Duration::from_secs(600)).await {
                Outcome::Completed { .. } => started.elapsed().as_secs_f64() * 1000.0,
                other => panic!("a job in flight did not complete: {other:?}"),
            }
        }
    });
    let all = futures_util::future::join_all(waits);
    tokio::pin!(all);
    let mut most_sessions = 0;
    let mut times = loop {
        most_sessions = most_sessions.max(proxy.open());
        tokio::select! {
            times = &mut all => break times,
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
    };
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_mb = proc_kb(worker.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
    drop(worker);
    times.sort_by(f64::total_cmp);
    let p99 = times[((times.len() as f64 - 1.0) * 0.99).round() as usize];
    let scenario = format!("{jobs} IMAP list jobs in flight, one login, one server");
    let note = format!(
        "EMAIL_MAX_JOBS_ACTIVE=1000, {SESSIONS_PER_LOGIN} sessions per login; all done in \
         {total_ms:.0} ms; a job alone takes {:.1} ms",
        alone.as_secs_f64() * 1000.0
    );
    rows.push(row(
        &scenario,
        "p99 time from creation to completion",
        p99,
        None,
        "ms",
        None,
        "report",
        None,
        &note,
    ));
    rows.push(row(
        &scenario,
        "IMAP sessions open at once",
        most_sessions as f64,
        Some(SESSIONS_PER_LOGIN as f64),
        "sessions",
        None,
        &format!("<= {SESSIONS_PER_LOGIN}"),
        Some(most_sessions <= SESSIONS_PER_LOGIN),
        "counted by a pass-through proxy in front of Dovecot",
    ));
    rows.push(row(
        &scenario,
        "peak RSS of the worker process",
        peak_mb,
        Some(before_mb),
        "MB",
        Some(peak_mb / before_mb.max(0.001)),
        "< 64 MB",
        Some(peak_mb < 64.0),
        "baseline: the same process after one job",
    ));
}
