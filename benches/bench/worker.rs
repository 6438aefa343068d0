//! The worker core alone: dispatch throughput with an operation that does nothing, and the
//! memory of an idle worker process.

use std::sync::Arc;
use std::time::Duration;

use email_connector::error::Result;
use email_connector::mail::server::Protocol;
use email_connector::operations::{JobContext, Operation, Outcome, Registry};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::common::{InProcessWorker, Row, median, proc_kb, row, run_jobs};
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
        Box::pin(async { Ok(Outcome::respond(json!({}))) })
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
    run_jobs(&gateway, "email:bench:noop:1", &vars, 100).await;
    let mut rates = Vec::new();
    for _ in 0..runs {
        rates.push(
            n as f64
                / run_jobs(&gateway, "email:bench:noop:1", &vars, n)
                    .await
                    .as_secs_f64(),
        );
    }
    worker.stop().await;
    let rate = median(rates);
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
