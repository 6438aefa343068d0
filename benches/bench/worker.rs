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
    // Interleaved, so that whatever else the machine does weighs on both alike.
    // Each run takes the three kinds in another order, so that none always follows the same
    // one: which kind came second moved the figures by a quarter on an idle machine.
    let kinds = [&plain, &shaped, &whole];
    let mut taken: [Vec<f64>; 3] = Default::default();
    for run in 0..runs.max(3) {
        for k in 0..kinds.len() {
            let kind = (run + k) % kinds.len();
            let took = run_jobs_with(&gateway, job_type, &vars, kinds[kind], n).await;
            taken[kind].push(n as f64 / took.as_secs_f64());
        }
    }
    let [rates, shaped_rates, whole_rates] = taken;
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
    let ratio = shaped_rate / whole_rate;
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
            "{n} jobs per run, {runs} runs (at least 3), the three kinds in a rotating order; \
             resultExpression `= {{ id: response.messageId, sent: sent }}` against \
             resultVariable `r` (both complete with variables)"
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
