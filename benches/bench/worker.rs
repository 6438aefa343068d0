//! The worker core alone: dispatch throughput with an operation that does nothing (and what a
//! result expression adds to it), and the memory of an idle worker process.

use std::sync::Arc;
use std::time::Duration;

use email_connector::error::Result;
use email_connector::mail::server::Protocol;
use email_connector::operations::{JobContext, Operation, Outcome, Registry};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::common::{InProcessWorker, Row, median, proc_kb, row, run_jobs, run_jobs_with};
use crate::support::WorkerProcess;
use crate::support::gateway::TestGateway;

struct Noop;

impl Operation for Noop {
    fn name(&self) -> &'static str {
        "bench:noop"
    }
    fn protocol(&self) -> Protocol {
        Protocol::Smtp
    }
    fn schema(&self) -> Value {
        json!({ "type": "object", "properties": { "n": { "type": "integer" } } })
    }
    fn run<'a>(
        &'a self,
        _variables: Value,
        _job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async {
            Ok(Outcome::respond(
                json!({ "messageId": "<1@bench.test>", "sent": true }),
            ))
        })
    }
}

pub async fn scenarios(quick: bool, runs: usize, rows: &mut Vec<Row>) {
    let n = if quick { 2000 } else { 30_000 };
    let gateway = TestGateway::start().await;
    let registry = Registry::from_operations("email", vec![Arc::new(Noop) as Arc<dyn Operation>])
        .expect("registry");
    let worker = InProcessWorker::start(&gateway, registry, 32);
    gateway
        .wait_for_stream("email:bench:noop:1", Duration::from_secs(10))
        .await;
    let vars = json!({ "n": 1 });
    let plain = json!({});
    // A job's output either way: the whole response under a result variable, or what a model
    // typically writes instead, fields picked by a result expression.
    let whole = json!({ "resultVariable": "r" });
    let shaped = json!({ "resultExpression": "= { id: response.messageId, sent: sent }" });
    let job_type = "email:bench:noop:1";
    run_jobs(&gateway, job_type, &vars, 100).await;
    run_jobs_with(&gateway, job_type, &vars, &shaped, 100).await;
    run_jobs_with(&gateway, job_type, &vars, &whole, 100).await;
    let mut rates = Vec::new();
    for _ in 0..runs.max(3) {
        let took = run_jobs_with(&gateway, job_type, &vars, &plain, n).await;
        rates.push(n as f64 / took.as_secs_f64());
    }
    // The expression's cost is a few percent, less than what the machine's other work moves a
    // run of 30,000 jobs: so it is measured in pairs of shorter runs back to back, each pair in
    // the other order than the last (which kind came second moved the figures by a quarter),
    // and the ratio is the median of the pairs' ratios, not of two medians taken apart.
    let (pairs, per_run) = if quick { (3, 1000) } else { (21, 5000) };
    let (mut shaped_rates, mut whole_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..pairs {
        let rate_of = |took: Duration| per_run as f64 / took.as_secs_f64();
        let (shaped_rate, whole_rate) = if pair % 2 == 0 {
            let s = rate_of(run_jobs_with(&gateway, job_type, &vars, &shaped, per_run).await);
            let w = rate_of(run_jobs_with(&gateway, job_type, &vars, &whole, per_run).await);
            (s, w)
        } else {
            let w = rate_of(run_jobs_with(&gateway, job_type, &vars, &whole, per_run).await);
            let s = rate_of(run_jobs_with(&gateway, job_type, &vars, &shaped, per_run).await);
            (s, w)
        };
        shaped_rates.push(shaped_rate);
        whole_rates.push(whole_rate);
        ratios.push(shaped_rate / whole_rate);
    }
    worker.stop().await;
    let rate = median(rates);
    let shaped_rate = median(shaped_rates);
    let whole_rate = median(whole_rates);
    rows.push(row(
        "dispatch, no-op operation",
        "jobs/s through the test gateway",
        rate,
        None,
        "jobs/s",
        None,
        ">= 10,000 jobs/s",
        Some(rate >= 10_000.0),
        &format!("{n} jobs, maxJobsActive 32; gateway and worker share this process's 2 cores"),
    ));
    let ratio = median(ratios);
    rows.push(row(
        "dispatch, no-op operation, with a result expression",
        "jobs/s, vs the same jobs with resultVariable instead",
        shaped_rate,
        Some(whole_rate),
        "jobs/s",
        Some(ratio),
        ">= 0.95x (under 5% slower)",
        Some(ratio >= 0.95),
        &format!(
            "{pairs} pairs of runs of {per_run} jobs, back to back in alternating order; the \
             median of the pairs' ratios; resultExpression \
             `= {{ id: response.messageId, sent: sent }}` against resultVariable `r` (both \
             complete with variables)"
        ),
    ));

    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(&gateway.url(), &[("RUST_LOG", "info")]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_mb = proc_kb(worker.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0;
    rows.push(row(
        "worker idle",
        "RSS after start",
        rss_mb,
        None,
        "MB",
        None,
        "<= 20 MB",
        Some(rss_mb <= 20.0),
        "release binary, every job type streamed and polled",
    ));
}
