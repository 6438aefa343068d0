//! The worker core against the test gateway, with operations made for the purpose: a panic, a
//! hang, slow jobs for the concurrency bound, after-completion steps; plus reconnecting,
//! shutdown and OAuth.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use email_connector::error::Result;
use email_connector::gateway::oauth::OAuthConfig;
use email_connector::gateway::{GatewayClient, GatewayConfig};
use email_connector::mail::server::Protocol;
use email_connector::registry::{AfterCompletion, JobContext, Operation, Outcome, Registry};
use email_connector::worker::{Worker, WorkerSettings};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use support::WorkerProcess;
use support::gateway::{Delivery, Outcome as Reported, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(15);

#[derive(Default)]
struct Probe {
    running: AtomicUsize,
    peak: AtomicUsize,
    events: Mutex<Vec<String>>,
}

struct TestOperation {
    name: &'static str,
    probe: Arc<Probe>,
}

struct Recorder(Arc<Probe>);

impl AfterCompletion for Recorder {
    fn commit(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.0.events.lock().unwrap().push("commit".into()) })
    }
    fn rollback(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.0.events.lock().unwrap().push("rollback".into()) })
    }
}

impl Operation for TestOperation {
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
            match self.name {
                "test:panic" => panic!("deliberate panic in an operation"),
                "test:hang" => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                "test:after" => Ok(Outcome {
                    response: json!({ "done": true }),
                    after_completion: Some(Box::new(Recorder(self.probe.clone()))),
                }),
                _ => {
                    let now = self.probe.running.fetch_add(1, Ordering::SeqCst) + 1;
                    self.probe.peak.fetch_max(now, Ordering::SeqCst);
                    let ms = variables["sleepMs"].as_u64().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    self.probe.running.fetch_sub(1, Ordering::SeqCst);
                    Ok(Outcome::respond(json!({ "slept": ms })))
                }
            }
        })
    }
}

fn registry(probe: &Arc<Probe>) -> Arc<Registry> {
    let operations: Vec<Arc<dyn Operation>> =
        ["test:panic", "test:hang", "test:after", "test:sleep"]
            .into_iter()
            .map(|name| {
                Arc::new(TestOperation {
                    name,
                    probe: probe.clone(),
                }) as Arc<dyn Operation>
            })
            .collect();
    Arc::new(Registry::from_operations("email", operations).expect("registry"))
}

fn gateway_config(url: &str) -> GatewayConfig {
    GatewayConfig {
        address: url.to_string(),
        insecure: None,
        ..GatewayConfig::default()
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

fn start_worker(config: GatewayConfig, probe: &Arc<Probe>, settings: WorkerSettings) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let client = GatewayClient::connect_lazy(&config).expect("client");
    let worker = Worker::new(client, registry(probe), settings);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    Running {
        stop: Some(stop),
        task,
    }
}

fn settings(max_jobs_active: usize) -> WorkerSettings {
    WorkerSettings {
        max_jobs_active,
        poll_request_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerSettings::default()
    }
}

fn headers() -> Value {
    json!({ "resultVariable": "r", "retryBackoff": "PT1S" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_operation_fails_its_job_and_gives_its_slot_back() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    let worker = start_worker(gateway_config(&gateway.url()), &probe, settings(1));
    let panicking = gateway.create_job("email:test:panic:1", json!({}), headers(), 3);
    match gateway.wait_outcome(panicking, WAIT).await {
        Reported::Failed {
            retries,
            message,
            backoff_ms,
        } => {
            assert_eq!((retries, backoff_ms), (2, 1000));
            assert!(
                message.starts_with("INTERNAL_ERROR: test:panic"),
                "{message}"
            );
            assert!(message.contains("deliberate panic"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    // With one slot, this job runs only if the panicking one gave its slot back.
    let next = gateway.create_job("email:test:sleep:1", json!({ "sleepMs": 1 }), headers(), 3);
    assert_eq!(
        gateway.wait_outcome(next, WAIT).await,
        Reported::Completed {
            variables: json!({ "r": { "slept": 1 } })
        }
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_operation_times_out_and_gives_its_slot_back() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    let worker = start_worker(gateway_config(&gateway.url()), &probe, settings(1));
    let hanging = gateway.create_job(
        "email:test:hang:1",
        json!({ "server": { "timeoutSeconds": 1 } }),
        headers(),
        2,
    );
    match gateway.wait_outcome(hanging, WAIT).await {
        Reported::Failed {
            retries, message, ..
        } => {
            assert_eq!(retries, 1);
            assert!(message.starts_with("TIMEOUT: "), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let next = gateway.create_job("email:test:sleep:1", json!({}), headers(), 3);
    assert!(matches!(
        gateway.wait_outcome(next, WAIT).await,
        Reported::Completed { .. }
    ));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_jobs_active_bounds_running_jobs_across_stream_and_backlog() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    // A backlog before the worker starts (only polling drains it) ...
    let mut keys: Vec<i64> = (0..6)
        .map(|_| {
            gateway.create_job(
                "email:test:sleep:1",
                json!({ "sleepMs": 150 }),
                headers(),
                3,
            )
        })
        .collect();
    let worker = start_worker(gateway_config(&gateway.url()), &probe, settings(3));
    gateway.wait_for_stream("email:test:sleep:1", WAIT).await;
    // ... and new jobs once the stream is open (the gateway pushes them).
    keys.extend((0..6).map(|_| {
        gateway.create_job(
            "email:test:sleep:1",
            json!({ "sleepMs": 150 }),
            headers(),
            3,
        )
    }));
    for key in &keys {
        assert!(matches!(
            gateway.wait_outcome(*key, WAIT).await,
            Reported::Completed { .. }
        ));
    }
    let peak = probe.peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "peak concurrency {peak}");
    let deliveries: Vec<Delivery> = keys.iter().flat_map(|k| gateway.deliveries(*k)).collect();
    assert!(deliveries.contains(&Delivery::Polled), "{deliveries:?}");
    assert!(deliveries.contains(&Delivery::Streamed), "{deliveries:?}");
    worker.shutdown().await;
}

/// Jobs that wait on I/O (a slow mail server) must fill every slot at once, whatever other job
/// types sit idle in long polls: 16 jobs of 400 ms with 16 slots take about one job's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_fills_every_slot_while_other_job_types_wait_idle() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    let keys: Vec<i64> = (0..16)
        .map(|_| {
            gateway.create_job(
                "email:test:sleep:1",
                json!({ "sleepMs": 400 }),
                headers(),
                3,
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let mut slow = settings(16);
    // Idle types' long polls last as long as in production.
    slow.poll_request_timeout = Duration::from_secs(20);
    let worker = start_worker(gateway_config(&gateway.url()), &probe, slow);
    for key in &keys {
        assert!(matches!(
            gateway.wait_outcome(*key, WAIT).await,
            Reported::Completed { .. }
        ));
    }
    let elapsed = started.elapsed();
    let peak = probe.peak.load(Ordering::SeqCst);
    assert!(
        peak >= 15 && elapsed < Duration::from_millis(1100),
        "16 jobs of 400 ms on 16 slots: peak concurrency {peak}, {elapsed:?} in all"
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_completion_commits_only_when_the_gateway_accepts() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    let worker = start_worker(gateway_config(&gateway.url()), &probe, settings(4));
    let accepted = gateway.create_job("email:test:after:1", json!({}), headers(), 3);
    gateway.wait_outcome(accepted, WAIT).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*probe.events.lock().unwrap(), ["commit"]);

    gateway.set_reject_complete(true);
    gateway.create_job("email:test:after:1", json!({}), headers(), 3);
    let deadline = tokio::time::Instant::now() + WAIT;
    while probe.events.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no rollback");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*probe.events.lock().unwrap(), ["commit", "rollback"]);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_waits_for_a_late_gateway_and_survives_it_going_away() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let probe = Arc::new(Probe::default());
    let worker = start_worker(
        gateway_config(&format!("http://{address}")),
        &probe,
        settings(2),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    let gateway = TestGateway::start_on(address).await;
    let first = gateway.create_job("email:test:sleep:1", json!({}), headers(), 3);
    assert!(matches!(
        gateway.wait_outcome(first, WAIT).await,
        Reported::Completed { .. }
    ));
    gateway.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let gateway = TestGateway::start_on(address).await;
    let second = gateway.create_job("email:test:sleep:1", json!({}), headers(), 3);
    assert!(matches!(
        gateway.wait_outcome(second, Duration::from_secs(40)).await,
        Reported::Completed { .. }
    ));
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_running_jobs_and_hands_back_those_past_the_grace_period() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    let worker = start_worker(gateway_config(&gateway.url()), &probe, settings(2));
    let quick = gateway.create_job(
        "email:test:sleep:1",
        json!({ "sleepMs": 400 }),
        headers(),
        3,
    );
    while probe.running.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown().await;
    assert!(matches!(
        gateway.outcomes(quick).as_slice(),
        [Reported::Completed { .. }]
    ));

    let short_grace = WorkerSettings {
        shutdown_grace: Duration::from_millis(300),
        ..settings(2)
    };
    let probe = Arc::new(Probe::default());
    let worker = start_worker(gateway_config(&gateway.url()), &probe, short_grace);
    let slow = gateway.create_job(
        "email:test:sleep:1",
        json!({ "sleepMs": 30_000 }),
        headers(),
        3,
    );
    while probe.running.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown().await;
    match gateway.outcomes(slow).as_slice() {
        [
            Reported::Failed {
                retries,
                message,
                backoff_ms,
            },
        ] => {
            assert_eq!((*retries, *backoff_ms), (3, 0), "handed back unchanged");
            assert!(message.contains("shut down"), "{message}");
        }
        other => panic!("expected the job handed back, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_task_headers_are_invalid_input_without_retries() {
    let gateway = TestGateway::start().await;
    let probe = Arc::new(Probe::default());
    let worker = start_worker(gateway_config(&gateway.url()), &probe, settings(2));
    let key = gateway.create_job(
        "email:test:sleep:1",
        json!({}),
        json!({ "retryBackoff": "soon", "bpmnErrors": "NO_SUCH_CODE" }),
        3,
    );
    match gateway.wait_outcome(key, WAIT).await {
        Reported::Failed {
            retries, message, ..
        } => {
            assert_eq!(retries, 0);
            assert!(
                message.starts_with("INVALID_INPUT: ")
                    && message.contains("retryBackoff")
                    && message.contains("NO_SUCH_CODE"),
                "{message}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        probe.peak.load(Ordering::SeqCst),
        0,
        "the operation must not run"
    );
    worker.shutdown().await;
}

/// A one-endpoint OAuth server: counts token requests and keeps the last request body.
async fn token_server(token: &'static str) -> (String, Arc<AtomicUsize>, Arc<Mutex<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(Mutex::new(String::new()));
    let (h, b) = (hits.clone(), body.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            loop {
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        *b.lock().unwrap() = rest.to_string();
                        break;
                    }
                }
            }
            h.fetch_add(1, Ordering::SeqCst);
            let json =
                format!(r#"{{"access_token":"{token}","expires_in":3600,"token_type":"Bearer"}}"#);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                json.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, hits, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_tokens_are_fetched_once_cached_and_sent_on_every_call() {
    let (url, hits, body) = token_server("tok-123").await;
    let gateway = TestGateway::start().await;
    gateway.require_token("tok-123");
    let probe = Arc::new(Probe::default());
    let config = GatewayConfig {
        address: gateway.url(),
        insecure: None,
        oauth: Some(OAuthConfig {
            authorization_server_url: url,
            client_id: "worker-client".into(),
            client_secret: "s3cret&=".to_string().into(),
            audience: Some("zeebe-api".into()),
            scope: None,
        }),
        ..GatewayConfig::default()
    };
    let worker = start_worker(config, &probe, settings(2));
    for _ in 0..3 {
        let key = gateway.create_job("email:test:sleep:1", json!({}), headers(), 3);
        assert!(matches!(
            gateway.wait_outcome(key, WAIT).await,
            Reported::Completed { .. }
        ));
    }
    worker.shutdown().await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "one token request, then the cache"
    );
    let form = body.lock().unwrap().clone();
    for part in [
        "grant_type=client_credentials",
        "client_id=worker-client",
        "client_secret=s3cret%26%3D",
        "audience=zeebe-api",
    ] {
        assert!(form.contains(part), "{part} in {form}");
    }
    let seen = gateway.seen_authorization();
    assert!(
        !seen.is_empty() && seen.iter().all(|h| h == "Bearer tok-123"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_says_when_no_gateway_answers_keeps_trying_and_stops_on_sigterm() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{address}");
    let mut worker = WorkerProcess::start(&url, &[]);
    let expected = format!("cannot reach the Zeebe gateway at {url}");
    let deadline = std::time::Instant::now() + WAIT;
    while !worker.logs().contains(&expected) {
        assert!(
            std::time::Instant::now() < deadline,
            "no clear log line; logs:\n{}",
            worker.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then the gateway appears and work flows without a restart.
    let gateway = TestGateway::start_on(address).await;
    let vars = json!({ "authentication": { "type": "none" }, "server": { "host": "127.0.0.1", "port": 1, "security": "none" }, "from": "a@example.test", "to": "b@example.test", "body": "x" });
    let key = gateway.create_job("email:smtp:send:1", vars, headers(), 3);
    assert!(matches!(
        gateway.wait_outcome(key, Duration::from_secs(40)).await,
        Reported::Failed { retries: 2, .. }
    ));
    let status = worker
        .terminate(WAIT)
        .expect("the worker exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}
