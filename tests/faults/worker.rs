//! The worker's own faults, against the test gateway with operations made for the purpose: a
//! "send" that is provably stopped when its job is handed back at shutdown, and activation that
//! never takes more jobs than there are slots, however many job types poll at once.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use email_connector::error::Result;
use email_connector::gateway::{GatewayClient, GatewayConfig};
use email_connector::mail::server::Protocol;
use email_connector::registry::{JobContext, Operation, Outcome, Registry};
use email_connector::worker::{Worker, WorkerSettings};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use support::gateway::{Outcome as Reported, TestGateway};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(30);

/// Sleeps `sleepMs`, then counts one "sent" message: what an SMTP send does when its server
/// answers the final dot late.
struct SlowSend {
    name: &'static str,
    started: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
}

impl Operation for SlowSend {
    fn name(&self) -> &'static str {
        self.name
    }
    fn protocol(&self) -> Protocol {
        Protocol::Smtp
    }
    fn schema(&self) -> Value {
        json!({ "type": "object", "properties": { "sleepMs": { "type": "integer" }, "server": { "type": "object" } } })
    }
    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            let ms = variables["sleepMs"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.sent.fetch_add(1, Ordering::SeqCst);
            Ok(Outcome::respond(json!({ "sent": true })))
        })
    }
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("worker stopped")
            .expect("worker task");
    }
}

fn start(
    gateway: &TestGateway,
    names: &[&'static str],
    settings: WorkerSettings,
) -> (Running, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let started = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let operations: Vec<Arc<dyn Operation>> = names
        .iter()
        .map(|name| {
            Arc::new(SlowSend {
                name,
                started: started.clone(),
                sent: sent.clone(),
            }) as Arc<dyn Operation>
        })
        .collect();
    let registry = Arc::new(Registry::from_operations("email", operations).expect("registry"));
    let client = GatewayClient::connect_lazy(&GatewayConfig {
        address: gateway.url(),
        ..GatewayConfig::default()
    })
    .expect("client");
    let worker = Worker::new(client, registry, settings);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    (
        Running {
            stop: Some(stop),
            task,
        },
        started,
        sent,
    )
}

fn headers() -> Value {
    json!({ "resultVariable": "r", "retryBackoff": "PT1S" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_handed_back_at_shutdown_never_sends_afterwards() {
    let gateway = TestGateway::start().await;
    let settings = WorkerSettings {
        max_jobs_active: 2,
        poll_request_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_millis(300),
        ..WorkerSettings::default()
    };
    let (worker, started, sent) = start(&gateway, &["test:send"], settings);
    let key = gateway.create_job(
        "email:test:send:1",
        json!({ "sleepMs": 1500, "server": { "timeoutSeconds": 30 } }),
        headers(),
        3,
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while started.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown().await;
    match gateway.wait_outcome(key, WAIT).await {
        Reported::Failed {
            retries,
            backoff_ms,
            ..
        } => assert_eq!((retries, backoff_ms), (3, 0), "handed back unchanged"),
        other => panic!("expected the job handed back, got {other:?}"),
    }
    // Well past the moment the operation would have finished had it kept running.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        sent.load(Ordering::SeqCst),
        0,
        "the operation sent after its job was handed back: another worker would send it again"
    );
}

/// Jobs activated and not yet reported, sampled from what the gateway handed out.
fn activated_now(gateway: &TestGateway, keys: &[i64]) -> usize {
    keys.iter()
        .map(|k| {
            gateway
                .deliveries(*k)
                .len()
                .saturating_sub(gateway.outcomes(*k).len())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_many_job_types_never_activates_more_jobs_than_slots() {
    let gateway = TestGateway::start().await;
    let types = ["test:a", "test:b", "test:c", "test:d", "test:e"];
    let mut keys = Vec::new();
    // A backlog for every type before the worker starts: each poll finds jobs at once.
    for t in types {
        for _ in 0..6 {
            keys.push(gateway.create_job(
                &format!("email:{t}:1"),
                json!({ "sleepMs": 150 }),
                headers(),
                3,
            ));
        }
    }
    let slots = 3;
    let settings = WorkerSettings {
        max_jobs_active: slots,
        streaming: false,
        poll_request_timeout: Duration::from_millis(500),
        ..WorkerSettings::default()
    };
    let (worker, _, sent) = start(&gateway, &types, settings);
    let mut peak = 0;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while sent.load(Ordering::SeqCst) < keys.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} jobs ran",
            sent.load(Ordering::SeqCst),
            keys.len()
        );
        peak = peak.max(activated_now(&gateway, &keys));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for key in &keys {
        assert!(matches!(
            gateway.wait_outcome(*key, WAIT).await,
            Reported::Completed { .. }
        ));
    }
    let once: HashSet<usize> = keys.iter().map(|k| gateway.deliveries(*k).len()).collect();
    assert_eq!(once, HashSet::from([1]), "every job activated exactly once");
    assert!(
        peak <= slots,
        "{peak} jobs activated at once with {slots} slots: their job timeouts run while they wait"
    );
    worker.shutdown().await;
}
