//! An in-process Zeebe gateway for tests, generated from the same proto as the worker's
//! client. It queues jobs, hands them out by ActivateJobs (long polling) or StreamActivatedJobs,
//! and records what the worker reports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use email_connector::gateway::proto::gateway_server::{Gateway, GatewayServer};
use email_connector::gateway::proto::*;
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What the worker reported for a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed {
        variables: Value,
    },
    Failed {
        retries: i32,
        message: String,
        backoff_ms: i64,
    },
    Thrown {
        code: String,
        message: String,
    },
}

/// How a job reached the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Polled,
    Streamed,
}

#[derive(Clone)]
struct Job {
    job: ActivatedJob,
    activated: bool,
}

#[derive(Default)]
struct Inner {
    next_key: i64,
    jobs: HashMap<i64, Job>,
    /// Activatable jobs by type, oldest first.
    queues: HashMap<String, std::collections::VecDeque<i64>>,
    streams: Vec<(String, mpsc::Sender<Result<ActivatedJob, Status>>)>,
    outcomes: HashMap<i64, Vec<Outcome>>,
    deliveries: HashMap<i64, Vec<Delivery>>,
    timeout_updates: Vec<(i64, i64)>,
    reject_complete: bool,
    required_token: Option<String>,
    seen_authorization: Vec<String>,
    activate_calls: usize,
}

#[derive(Default)]
struct State {
    inner: Mutex<Inner>,
    changed: Notify,
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_auth<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut inner = self.lock();
        if let Some(h) = &header {
            inner.seen_authorization.push(h.clone());
        }
        match &inner.required_token {
            Some(token) if header.as_deref() != Some(&format!("Bearer {token}")) => {
                Err(Status::unauthenticated("missing or wrong bearer token"))
            }
            _ => Ok(()),
        }
    }

    /// Offers a queued job to an open stream of its type; returns whether one took it.
    fn push_to_stream(inner: &mut Inner, key: i64) -> bool {
        let Some(job) = inner.jobs.get(&key).cloned() else {
            return false;
        };
        let mut index = 0;
        while index < inner.streams.len() {
            let (job_type, sender) = &inner.streams[index];
            if *job_type == job.job.r#type {
                if sender.try_send(Ok(job.job.clone())).is_ok() {
                    if let Some(j) = inner.jobs.get_mut(&key) {
                        j.activated = true;
                    }
                    inner
                        .deliveries
                        .entry(key)
                        .or_default()
                        .push(Delivery::Streamed);
                    // Rotate so the next job goes to another stream of this type.
                    let stream = inner.streams.remove(index);
                    inner.streams.push(stream);
                    return true;
                }
                if sender.is_closed() {
                    inner.streams.remove(index);
                    continue;
                }
            }
            index += 1;
        }
        false
    }

    fn make_activatable(&self, key: i64) {
        let mut inner = self.lock();
        if let Some(job) = inner.jobs.get_mut(&key) {
            job.activated = false;
        }
        if !State::push_to_stream(&mut inner, key) {
            let job_type = inner
                .jobs
                .get(&key)
                .map(|j| j.job.r#type.clone())
                .unwrap_or_default();
            inner.queues.entry(job_type).or_default().push_back(key);
        }
        drop(inner);
        self.changed.notify_waiters();
    }
}

pub struct TestGateway {
    pub address: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The default maximum message size of Zeebe's gateway and broker.
pub const ZEEBE_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

struct Service {
    state: Arc<State>,
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(listener, Arc::new(State::default())).await
    }

    /// Starts on a given port (a worker may already be trying to reach it).
    pub async fn start_on(address: SocketAddr) -> TestGateway {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(address).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("bind {address}: {e}"),
            }
        };
        Self::serve(listener, Arc::new(State::default())).await
    }

    async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) -> TestGateway {
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let service = Service {
            state: state.clone(),
        };
        let server = tokio::spawn(async move {
            // Small gRPC frames must go out at once, as a real gateway sends them; with Nagle's
            // algorithm on, each waits for the peer's delayed ACK (about 40 ms).
            let incoming = TcpListenerStream::new(listener).map(|stream| {
                if let Ok(stream) = &stream {
                    let _ = stream.set_nodelay(true);
                }
                stream
            });
            let _ = tonic::transport::Server::builder()
                .add_service(
                    GatewayServer::new(service).max_decoding_message_size(64 * 1024 * 1024),
                )
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        TestGateway {
            address,
            state,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops serving and closes every open stream.
    pub async fn shutdown(mut self) {
        self.state.lock().streams.clear();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        }
    }

    /// Creates a job and makes it activatable; returns its key.
    pub fn create_job(
        &self,
        job_type: &str,
        variables: Value,
        headers: Value,
        retries: i32,
    ) -> i64 {
        let key = {
            let mut inner = self.state.lock();
            inner.next_key += 1;
            let key = 2_251_799_813_685_248 + inner.next_key;
            let job = ActivatedJob {
                key,
                r#type: job_type.to_string(),
                process_instance_key: 4_503_599_627_370_496 + inner.next_key,
                bpmn_process_id: "test-process".into(),
                process_definition_version: 1,
                process_definition_key: 1,
                element_id: "task".into(),
                element_instance_key: key + 1,
                custom_headers: headers.to_string(),
                worker: String::new(),
                retries,
                deadline: 0,
                variables: variables.to_string(),
                tenant_id: "<default>".into(),
            };
            inner.jobs.insert(
                key,
                Job {
                    job,
                    activated: false,
                },
            );
            key
        };
        self.state.make_activatable(key);
        key
    }

    /// Makes a job activatable again, as Zeebe does when its deadline passes.
    pub fn requeue(&self, key: i64) {
        self.state.make_activatable(key);
    }

    pub async fn wait_outcomes(&self, key: i64, count: usize, timeout: Duration) -> Vec<Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.state.lock();
                let outcomes = inner.outcomes.get(&key).cloned().unwrap_or_default();
                if outcomes.len() >= count {
                    return outcomes;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let inner = self.state.lock();
                panic!(
                    "job {key}: expected {count} outcome(s) within {timeout:?}, got {:?}",
                    inner.outcomes.get(&key)
                );
            }
        }
    }

    pub async fn wait_outcome(&self, key: i64, timeout: Duration) -> Outcome {
        self.wait_outcomes(key, 1, timeout).await.remove(0)
    }

    pub fn outcomes(&self, key: i64) -> Vec<Outcome> {
        self.state
            .lock()
            .outcomes
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn deliveries(&self, key: i64) -> Vec<Delivery> {
        self.state
            .lock()
            .deliveries
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn timeout_updates(&self) -> Vec<(i64, i64)> {
        self.state.lock().timeout_updates.clone()
    }

    pub fn set_reject_complete(&self, reject: bool) {
        self.state.lock().reject_complete = reject;
    }

    pub fn require_token(&self, token: &str) {
        self.state.lock().required_token = Some(token.to_string());
    }

    pub fn seen_authorization(&self) -> Vec<String> {
        self.state.lock().seen_authorization.clone()
    }

    pub fn open_streams(&self, job_type: &str) -> usize {
        self.state
            .lock()
            .streams
            .iter()
            .filter(|(t, s)| t == job_type && !s.is_closed())
            .count()
    }

    pub fn activate_calls(&self) -> usize {
        self.state.lock().activate_calls
    }

    /// Waits until the worker has a job stream open for `job_type`.
    pub async fn wait_for_stream(&self, job_type: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.open_streams(job_type) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no job stream for {job_type} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn record(&self, key: i64, outcome: Outcome) {
        self.state
            .lock()
            .outcomes
            .entry(key)
            .or_default()
            .push(outcome);
        self.state.changed.notify_waiters();
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Service {
    fn finish(&self, key: i64, outcome: Outcome) -> Result<(), Status> {
        let mut inner = self.state.lock();
        match inner.jobs.get(&key) {
            Some(job) if job.activated => {}
            Some(_) => {
                return Err(Status::failed_precondition(format!(
                    "job {key} is not activated"
                )));
            }
            None => return Err(Status::not_found(format!("no job {key}"))),
        }
        if let Some(job) = inner.jobs.get_mut(&key) {
            job.activated = false;
        }
        inner.outcomes.entry(key).or_default().push(outcome);
        drop(inner);
        self.state.changed.notify_waiters();
        Ok(())
    }
}

#[tonic::async_trait]
impl Gateway for Service {
    type ActivateJobsStream = BoxStream<ActivateJobsResponse>;
    type StreamActivatedJobsStream = BoxStream<ActivatedJob>;

    async fn activate_jobs(
        &self,
        request: Request<ActivateJobsRequest>,
    ) -> Result<Response<Self::ActivateJobsStream>, Status> {
        self.state.check_auth(&request)?;
        let request = request.into_inner();
        if request.max_jobs_to_activate < 1 || request.r#type.is_empty() || request.timeout < 1 {
            return Err(Status::invalid_argument(
                "type, timeout and maxJobsToActivate are required",
            ));
        }
        self.state.lock().activate_calls += 1;
        let wait = Duration::from_millis(match request.request_timeout {
            t if t < 0 => 0,
            0 => 10_000,
            t => t.min(10_000) as u64,
        });
        let deadline = tokio::time::Instant::now() + wait;
        let jobs = loop {
            let notified = self.state.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let taken = {
                let mut inner = self.state.lock();
                let mut taken = Vec::new();
                while taken.len() < request.max_jobs_to_activate as usize {
                    let Some(key) = inner
                        .queues
                        .get_mut(&request.r#type)
                        .and_then(|q| q.pop_front())
                    else {
                        break;
                    };
                    if let Some(job) = inner.jobs.get_mut(&key) {
                        job.activated = true;
                        job.job.worker = request.worker.clone();
                        taken.push(job.job.clone());
                    }
                    inner
                        .deliveries
                        .entry(key)
                        .or_default()
                        .push(Delivery::Polled);
                }
                taken
            };
            if !taken.is_empty() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                break taken;
            }
        };
        let stream = futures_util::stream::iter(if jobs.is_empty() {
            Vec::new()
        } else {
            vec![Ok(ActivateJobsResponse { jobs })]
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stream_activated_jobs(
        &self,
        request: Request<StreamActivatedJobsRequest>,
    ) -> Result<Response<Self::StreamActivatedJobsStream>, Status> {
        self.state.check_auth(&request)?;
        let request = request.into_inner();
        let (sender, receiver) = mpsc::channel(1024);
        {
            let mut inner = self.state.lock();
            inner.streams.push((request.r#type.clone(), sender));
            // Jobs already queued stay for polling, as on a real gateway.
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn complete_job(
        &self,
        request: Request<CompleteJobRequest>,
    ) -> Result<Response<CompleteJobResponse>, Status> {
        self.state.check_auth(&request)?;
        let request = request.into_inner();
        // Zeebe's gateway (grpc-java) refuses a request above its message limit, 4 MiB by
        // default, with these words; tonic's own limit is lifted below so this one applies.
        if request.variables.len() > ZEEBE_MAX_MESSAGE_BYTES {
            return Err(Status::resource_exhausted(format!(
                "gRPC message exceeds maximum size {ZEEBE_MAX_MESSAGE_BYTES}: {}",
                request.variables.len()
            )));
        }
        if self.state.lock().reject_complete {
            return Err(Status::not_found(
                "the test gateway was told to reject completions",
            ));
        }
        let variables = if request.variables.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&request.variables)
                .map_err(|e| Status::invalid_argument(format!("variables are not JSON: {e}")))?
        };
        self.finish(request.job_key, Outcome::Completed { variables })?;
        Ok(Response::new(CompleteJobResponse {}))
    }

    async fn fail_job(
        &self,
        request: Request<FailJobRequest>,
    ) -> Result<Response<FailJobResponse>, Status> {
        self.state.check_auth(&request)?;
        let r = request.into_inner();
        self.finish(
            r.job_key,
            Outcome::Failed {
                retries: r.retries,
                message: r.error_message,
                backoff_ms: r.retry_back_off,
            },
        )?;
        Ok(Response::new(FailJobResponse {}))
    }

    async fn throw_error(
        &self,
        request: Request<ThrowErrorRequest>,
    ) -> Result<Response<ThrowErrorResponse>, Status> {
        self.state.check_auth(&request)?;
        let r = request.into_inner();
        self.finish(
            r.job_key,
            Outcome::Thrown {
                code: r.error_code,
                message: r.error_message,
            },
        )?;
        Ok(Response::new(ThrowErrorResponse {}))
    }

    async fn topology(
        &self,
        request: Request<TopologyRequest>,
    ) -> Result<Response<TopologyResponse>, Status> {
        self.state.check_auth(&request)?;
        Ok(Response::new(TopologyResponse {
            brokers: vec![BrokerInfo {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: 26501,
                partitions: vec![Partition {
                    partition_id: 1,
                    role: 0,
                    health: 0,
                }],
                version: "8.8.0-test".into(),
            }],
            cluster_size: 1,
            partitions_count: 1,
            replication_factor: 1,
            gateway_version: "8.8.0-test".into(),
            cluster_id: "test".into(),
        }))
    }

    async fn update_job_timeout(
        &self,
        request: Request<UpdateJobTimeoutRequest>,
    ) -> Result<Response<UpdateJobTimeoutResponse>, Status> {
        self.state.check_auth(&request)?;
        let r = request.into_inner();
        let mut inner = self.state.lock();
        if !inner.jobs.get(&r.job_key).is_some_and(|j| j.activated) {
            return Err(Status::not_found(format!("no activated job {}", r.job_key)));
        }
        inner.timeout_updates.push((r.job_key, r.timeout));
        Ok(Response::new(UpdateJobTimeoutResponse {}))
    }
}
