//! What every scenario uses: the in-process worker against the test gateway, timing, and the
//! memory of a process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use email_connector::gateway::{GatewayClient, GatewayConfig};
use email_connector::registry::{OperationSettings, Registry};
use email_connector::worker::{Worker, WorkerSettings};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::support::gateway::{DEFAULT_TENANT, Outcome, TestGateway};

/// A benchmark result row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub measure: String,
    pub ours: f64,
    pub baseline: Option<f64>,
    pub unit: String,
    /// ours / baseline, oriented so that the goal reads naturally (see `goal`).
    pub ratio: Option<f64>,
    pub goal: String,
    pub met: Option<bool>,
    pub note: String,
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        0.0
    } else {
        values[values.len() / 2]
    }
}

/// The worker running in this process against `gateway`.
pub struct InProcessWorker {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcessWorker {
    pub fn start(
        gateway: &TestGateway,
        registry: Registry,
        max_jobs_active: usize,
    ) -> InProcessWorker {
        InProcessWorker::start_at(&gateway.url(), registry, max_jobs_active)
    }

    /// The worker against a gateway at `url`, which may be served by another process.
    pub fn start_at(url: &str, registry: Registry, max_jobs_active: usize) -> InProcessWorker {
        let config = GatewayConfig {
            address: url.to_string(),
            insecure: None,
            ..GatewayConfig::default()
        };
        let client = GatewayClient::connect_lazy(&config).expect("gateway client");
        let settings = WorkerSettings {
            max_jobs_active,
            poll_request_timeout: Duration::from_millis(500),
            ..WorkerSettings::default()
        };
        let worker = Worker::new(client, Arc::new(registry), settings);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        InProcessWorker {
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

pub fn standard_registry(pooling: bool) -> Registry {
    let settings = OperationSettings {
        session_pooling: pooling,
        ..OperationSettings::default()
    };
    Registry::standard("email", None, &settings).expect("registry")
}

/// Creates `count` jobs at once and waits for all results; returns the elapsed time.
pub async fn run_jobs(
    gateway: &TestGateway,
    job_type: &str,
    variables: &Value,
    count: usize,
) -> Duration {
    run_jobs_with(gateway, job_type, variables, &serde_json::json!({}), count).await
}

/// [`run_jobs`] with task headers.
pub async fn run_jobs_with(
    gateway: &TestGateway,
    job_type: &str,
    variables: &Value,
    headers: &Value,
    count: usize,
) -> Duration {
    let started = Instant::now();
    let keys: Vec<i64> = (0..count)
        .map(|_| gateway.create_job(job_type, variables.clone(), headers.clone(), 3))
        .collect();
    for key in keys {
        match gateway.wait_outcome(key, Duration::from_secs(300)).await {
            Outcome::Completed { .. } => {}
            other => panic!("{job_type}: a benchmark job did not complete: {other:?}"),
        }
    }
    started.elapsed()
}

/// Runs `count` jobs arriving as a process engine in steady state hands them out: at most
/// `window` created and not yet finished at any time, each new one created as an earlier one
/// finishes. Every job then reaches the worker on its job stream, as new jobs do; creating
/// thousands at once would leave most of them queued for polling, the path a backlog takes.
pub async fn run_jobs_fed(
    gateway: &TestGateway,
    job_type: &str,
    variables: &Value,
    headers: &Value,
    count: usize,
    window: usize,
) -> Duration {
    let started = Instant::now();
    let (variables, headers) = (variables.to_string(), headers.to_string());
    let create = || {
        gateway.create_job_from_json(
            DEFAULT_TENANT,
            job_type,
            variables.clone(),
            headers.clone(),
            3,
        )
    };
    let mut pending: std::collections::VecDeque<i64> =
        (0..count.min(window)).map(|_| create()).collect();
    let mut created = pending.len();
    while let Some(key) = pending.pop_front() {
        match gateway.wait_outcome(key, Duration::from_secs(300)).await {
            Outcome::Completed { .. } => {}
            other => panic!("{job_type}: a benchmark job did not complete: {other:?}"),
        }
        if created < count {
            pending.push_back(create());
            created += 1;
        }
    }
    started.elapsed()
}

/// Runs one job and returns its elapsed time and response.
pub async fn one_job(
    gateway: &TestGateway,
    job_type: &str,
    variables: &Value,
) -> (Duration, Value) {
    let started = Instant::now();
    let key = gateway.create_job(
        job_type,
        variables.clone(),
        serde_json::json!({ "resultVariable": "r" }),
        3,
    );
    match gateway.wait_outcome(key, Duration::from_secs(300)).await {
        Outcome::Completed { variables } => (started.elapsed(), variables["r"].clone()),
        other => panic!("{job_type}: the benchmark job did not complete: {other:?}"),
    }
}

/// A `/proc/<pid>/status` field in kB (VmRSS, VmHWM).
pub fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

// One argument per column of the printed table: a builder would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn row(
    scenario: &str,
    measure: &str,
    ours: f64,
    baseline: Option<f64>,
    unit: &str,
    ratio: Option<f64>,
    goal: &str,
    met: Option<bool>,
    note: &str,
) -> Row {
    Row {
        scenario: scenario.into(),
        measure: measure.into(),
        ours,
        baseline,
        unit: unit.into(),
        ratio,
        goal: goal.into(),
        met,
        note: note.into(),
    }
}
