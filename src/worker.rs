//! The job loop: activation, one slot per running job, the operation under its timeout, and the
//! job's result reported back to the gateway.
//!
//! Jobs arrive two ways, as Camunda recommends: a job stream per job type pushes new jobs the
//! moment they are created, and long polling drains the backlog that existed before the stream
//! opened (streams never see it). A semaphore of `maxJobsActive` permits bounds how many jobs
//! run at once across both; the stream takes a permit before it reads the next job, so a busy
//! worker pushes back through HTTP/2 flow control instead of buffering jobs.
//!
//! Each job runs in a task of its own that owns its permit: whether the operation returns,
//! fails, hangs past its timeout or panics, the permit comes back when the task ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};

use crate::error::{EmailError, ErrorCode, truncate_message};
use crate::gateway::GatewayClient;
use crate::gateway::proto::{ActivateJobsRequest, ActivatedJob, StreamActivatedJobsRequest};
use crate::job::JobHeaders;
use crate::mail::server::{DEFAULT_TIMEOUT_SECONDS, describe_server};
use crate::metrics::{Metrics, job_type as job_label, job_type_and_code};
use crate::operations::{JobContext, Outcome, Registered, Registry};
use crate::secrets::{SecretMask, SecretProvider};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The name the gateway records as the job's worker.
    pub worker_name: String,
    /// How long the gateway waits for a result before handing the job to another worker.
    pub job_timeout: Duration,
    pub max_jobs_active: usize,
    pub streaming: bool,
    /// How long one ActivateJobs call may wait for jobs (long polling).
    pub poll_request_timeout: Duration,
    /// The pause between polls that found nothing, should the gateway answer at once.
    pub poll_interval: Duration,
    /// How long shutdown waits for running jobs before failing them back to Zeebe.
    pub shutdown_grace: Duration,
    pub secrets: SecretProvider,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            worker_name: "email-connector".into(),
            job_timeout: Duration::from_secs(300),
            max_jobs_active: 32,
            streaming: true,
            poll_request_timeout: Duration::from_secs(20),
            poll_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(30),
            secrets: SecretProvider::new("EMAIL_SECRET_", None),
        }
    }
}

/// Flags the health endpoints read.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    pub gateway_reachable: AtomicBool,
    pub draining: AtomicBool,
    pub streams_open: AtomicUsize,
}

/// How a job ended, before it is reported.
enum Verdict {
    Complete {
        variables: String,
        after: Option<Box<dyn crate::operations::AfterCompletion>>,
        /// What the job becomes if the gateway refuses the completion as too large: the
        /// headers (bpmnErrors may catch the code) and where it ran, for the message.
        headers: JobHeaders,
        context: String,
    },
    Fail {
        code: ErrorCode,
        message: String,
        retries: i32,
        backoff: Duration,
    },
    Throw {
        code: ErrorCode,
        message: String,
    },
}

struct Shared {
    gateway: GatewayClient,
    registry: Arc<Registry>,
    settings: WorkerSettings,
    slots: Arc<Semaphore>,
    status: Arc<WorkerStatus>,
    metrics: Arc<Metrics>,
    /// Running jobs, so shutdown can hand back those that outlive the grace period.
    in_flight: Mutex<HashMap<i64, (i32, AbortHandle)>>,
}

pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(
        gateway: GatewayClient,
        registry: Arc<Registry>,
        settings: WorkerSettings,
    ) -> Worker {
        let slots = Arc::new(Semaphore::new(settings.max_jobs_active.max(1)));
        Worker {
            shared: Arc::new(Shared {
                gateway,
                registry,
                settings,
                slots,
                status: Arc::new(WorkerStatus::default()),
                metrics: Metrics::new(),
                in_flight: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn status(&self) -> Arc<WorkerStatus> {
        self.shared.status.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Runs until `shutdown` resolves, then stops activating, waits up to the grace period for
    /// running jobs, and fails the rest back to Zeebe so another worker takes them at once.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loops = Vec::new();
        loops.push(tokio::spawn(watch_gateway(
            self.shared.clone(),
            stop_rx.clone(),
        )));
        for entry in self.shared.registry.entries() {
            let job_type = entry.job_type.clone();
            info!(job_type = %job_type, "serving job type");
            if self.shared.settings.streaming {
                loops.push(tokio::spawn(stream_loop(
                    self.shared.clone(),
                    job_type.clone(),
                    stop_rx.clone(),
                )));
            }
            loops.push(tokio::spawn(poll_loop(
                self.shared.clone(),
                job_type,
                stop_rx.clone(),
            )));
        }
        shutdown.await;
        info!("shutting down: no new jobs are activated");
        self.shared.status.draining.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
        for handle in loops {
            let _ = handle.await;
        }
        let all = u32::try_from(self.shared.settings.max_jobs_active.max(1)).unwrap_or(u32::MAX);
        let grace = self.shared.settings.shutdown_grace;
        match tokio::time::timeout(grace, self.shared.slots.acquire_many(all)).await {
            Ok(_) => info!("all running jobs finished"),
            Err(_) => self.hand_back_running_jobs().await,
        }
    }

    async fn hand_back_running_jobs(&self) {
        let running: Vec<(i64, i32, AbortHandle)> = self
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(k, (r, h))| (k, r, h))
            .collect();
        warn!(
            count = running.len(),
            "grace period over: handing running jobs back to Zeebe"
        );
        for (key, retries, handle) in running {
            handle.abort();
            let job = ActivatedJob {
                key,
                retries,
                ..Default::default()
            };
            hand_back(&self.shared, &job).await;
        }
    }
}

/// Capped exponential backoff with jitter, for reconnecting to the gateway.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // Up to 20% jitter so that many replicas do not reconnect in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64(f64::from(nanos % 1000) / 5000.0)
    }
}

/// Sleeps for `delay`, or less if the worker is stopping. Returns whether it is stopping.
async fn pause(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Watches the gateway's topology: the one place that says, clearly and repeatedly, when the
/// gateway cannot be reached (the job loops stay quiet about it).
async fn watch_gateway(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let delay = match shared.gateway.topology().await {
            Ok(topology) => {
                if !shared.status.gateway_reachable.swap(true, Ordering::SeqCst) {
                    info!(
                        address = shared.gateway.address(),
                        gateway_version = %topology.gateway_version,
                        brokers = topology.brokers.len(),
                        "connected to the Zeebe gateway"
                    );
                }
                backoff.reset();
                // Often enough for readiness to follow the gateway within seconds.
                Duration::from_secs(3)
            }
            Err(status) => {
                shared
                    .status
                    .gateway_reachable
                    .store(false, Ordering::SeqCst);
                let delay = backoff.next_delay();
                warn!(
                    "cannot reach the Zeebe gateway at {}: {} ({:?}); retrying in {:.1} s",
                    shared.gateway.address(),
                    status.message(),
                    status.code(),
                    delay.as_secs_f64()
                );
                delay
            }
        };
        if pause(delay, &mut stop).await {
            return;
        }
    }
}

async fn stream_loop(shared: Arc<Shared>, job_type: String, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    let fetch_variable = fetch_variables(&shared, &job_type);
    let mut opened_before = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let request = StreamActivatedJobsRequest {
            r#type: job_type.clone(),
            worker: shared.settings.worker_name.clone(),
            timeout: millis(shared.settings.job_timeout),
            fetch_variable: fetch_variable.clone(),
            tenant_ids: Vec::new(),
        };
        let opened = tokio::select! {
            r = shared.gateway.stream_activated_jobs(request) => r,
            _ = stop.changed() => return,
        };
        match opened {
            Ok(mut stream) => {
                debug!(job_type = %job_type, "job stream open");
                backoff.reset();
                if opened_before {
                    shared.metrics.reconnects.inc();
                }
                opened_before = true;
                let _open = StreamGuard::open(&shared.status);
                loop {
                    let next = tokio::select! {
                        m = stream.message() => m,
                        _ = stop.changed() => return,
                    };
                    match next {
                        // Until this job has a slot the stream is not read again, so a busy
                        // worker pushes back through HTTP/2 flow control. The slot is taken
                        // after the job arrives, never while waiting for one: an idle stream
                        // of one job type must not hold a slot another type needs.
                        Ok(Some(job)) => {
                            if !admit(&shared, job, &mut stop).await {
                                return;
                            }
                        }
                        Ok(None) => {
                            debug!(job_type = %job_type, "the gateway closed the job stream");
                            break;
                        }
                        Err(status) => {
                            debug!(job_type = %job_type, "job stream broke: {}", status.message());
                            break;
                        }
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                warn!(job_type = %job_type, "the gateway does not support job streaming; polling only");
                return;
            }
            Err(status) => {
                debug!(job_type = %job_type, "cannot open a job stream: {}", status.message())
            }
        }
        if pause(backoff.next_delay(), &mut stop).await {
            return;
        }
    }
}

/// Counts a job stream as open for as long as it lives.
struct StreamGuard<'a>(&'a WorkerStatus);

impl<'a> StreamGuard<'a> {
    fn open(status: &'a WorkerStatus) -> Self {
        status.streams_open.fetch_add(1, Ordering::SeqCst);
        StreamGuard(status)
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn poll_loop(shared: Arc<Shared>, job_type: String, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    let fetch_variable = fetch_variables(&shared, &job_type);
    loop {
        // Ask only when a slot is free, and only for as many jobs as there are free slots.
        let probe = tokio::select! {
            p = shared.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let free = shared.slots.available_permits() + 1;
        drop(probe);
        if *stop.borrow() {
            return;
        }
        let request = ActivateJobsRequest {
            r#type: job_type.clone(),
            worker: shared.settings.worker_name.clone(),
            timeout: millis(shared.settings.job_timeout),
            max_jobs_to_activate: i32::try_from(free).unwrap_or(i32::MAX),
            fetch_variable: fetch_variable.clone(),
            request_timeout: millis(shared.settings.poll_request_timeout),
            tenant_ids: Vec::new(),
        };
        let started = Instant::now();
        let opened = tokio::select! {
            r = shared.gateway.activate_jobs(request) => r,
            _ = stop.changed() => return,
        };
        let mut received = 0usize;
        let mut failure = None;
        match opened {
            Ok(mut responses) => loop {
                let next = tokio::select! {
                    m = responses.message() => m,
                    _ = stop.changed() => return,
                };
                match next {
                    Ok(Some(batch)) => {
                        let mut jobs = batch.jobs.into_iter();
                        while let Some(job) = jobs.next() {
                            received += 1;
                            if !admit(&shared, job, &mut stop).await {
                                for job in jobs {
                                    hand_back(&shared, &job).await;
                                }
                                return;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        failure = Some(status);
                        break;
                    }
                }
            },
            Err(status) => failure = Some(status),
        }
        let delay = match failure {
            Some(status) => {
                debug!(job_type = %job_type, "polling failed: {}", status.message());
                backoff.next_delay()
            }
            None => {
                backoff.reset();
                if received == 0 && started.elapsed() < shared.settings.poll_interval {
                    shared.settings.poll_interval
                } else {
                    Duration::ZERO
                }
            }
        };
        if !delay.is_zero() && pause(delay, &mut stop).await {
            return;
        }
    }
}

/// Only the variables the operation reads: a job otherwise carries every variable in scope.
fn fetch_variables(shared: &Shared, job_type: &str) -> Vec<String> {
    shared
        .registry
        .get(job_type)
        .and_then(|entry| {
            entry
                .operation
                .schema()
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
        })
        .unwrap_or_default()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Waits for a free slot and starts the job in it. A job still waiting when the worker stops
/// is handed back to Zeebe at once. Returns false when the worker is stopping.
async fn admit(shared: &Arc<Shared>, job: ActivatedJob, stop: &mut watch::Receiver<bool>) -> bool {
    let permit = tokio::select! {
        p = shared.slots.clone().acquire_owned() => p.ok(),
        _ = stop.changed() => None,
    };
    match permit {
        Some(permit) if !*stop.borrow() => {
            dispatch(shared, job, permit);
            true
        }
        _ => {
            hand_back(shared, &job).await;
            false
        }
    }
}

/// Fails a job without using up a retry, so another worker takes it without delay.
async fn hand_back(shared: &Shared, job: &ActivatedJob) {
    let message = format!(
        "{}: the worker shut down before the operation finished; the job is handed back unchanged",
        ErrorCode::Internal
    );
    if let Err(status) = shared
        .gateway
        .fail_job(job.key, job.retries, message, Duration::ZERO)
        .await
    {
        warn!(
            job_key = job.key,
            "could not hand the job back: {}",
            status.message()
        );
    }
}

/// Counts a job in the in-flight gauge until dropped, however its task ends.
struct InFlightGauge(prometheus_client::metrics::gauge::Gauge);

impl InFlightGauge {
    fn enter(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        InFlightGauge(gauge.clone())
    }
}

impl Drop for InFlightGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn dispatch(shared: &Arc<Shared>, job: ActivatedJob, permit: OwnedSemaphorePermit) {
    shared
        .metrics
        .activated
        .get_or_create(&job_label(&job.r#type))
        .inc();
    let key = job.key;
    let retries = job.retries;
    let task_shared = shared.clone();
    // The entry is written while the lock is held, so the task cannot remove it before it
    // exists (the task takes the same lock when it ends).
    let mut in_flight = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    let gauge = InFlightGauge::enter(&shared.metrics.in_flight);
    let handle = tokio::spawn(async move {
        let _permit = permit;
        let _gauge = gauge;
        handle_job(&task_shared, job).await;
        task_shared
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    });
    in_flight.insert(key, (retries, handle.abort_handle()));
}

async fn handle_job(shared: &Shared, job: ActivatedJob) {
    let started = Instant::now();
    let verdict = decide(shared, &job).await;
    shared
        .metrics
        .duration
        .get_or_create(&job_label(&job.r#type))
        .observe(started.elapsed().as_secs_f64());
    let key = job.key;
    let mut verdict = verdict;
    // A completion the gateway refuses as too large turns into a failure, reported below.
    while let Verdict::Complete {
        variables,
        after,
        headers,
        context,
    } = verdict
    {
        match retry_call(|| shared.gateway.complete_job(key, variables.clone())).await {
            Ok(()) => {
                shared
                    .metrics
                    .completed
                    .get_or_create(&job_label(&job.r#type))
                    .inc();
                info!(job_key = key, job_type = %job.r#type, elapsed_ms = started.elapsed().as_millis() as u64, "job completed");
                if let Some(after) = after {
                    after.commit().await;
                }
                return;
            }
            Err(status) if is_too_large(&status) => {
                if let Some(after) = after {
                    after.rollback().await;
                }
                let error = too_large_error(variables.len(), &status);
                verdict = fail_verdict(
                    error,
                    &job,
                    Some(&headers),
                    &context,
                    &SecretMask::default(),
                );
            }
            Err(status) => {
                warn!(job_key = key, job_type = %job.r#type, "the gateway did not accept the completion: {}", status.message());
                if let Some(after) = after {
                    after.rollback().await;
                }
                return;
            }
        }
    }
    match verdict {
        Verdict::Complete { .. } => {}
        Verdict::Fail {
            code,
            message,
            retries,
            backoff,
        } => {
            shared
                .metrics
                .failed
                .get_or_create(&job_type_and_code(&job.r#type, code.as_str()))
                .inc();
            warn!(job_key = key, job_type = %job.r#type, code = code.as_str(), retries, "job failed: {message}");
            if let Err(status) = retry_call(|| {
                shared
                    .gateway
                    .fail_job(key, retries, message.clone(), backoff)
            })
            .await
            {
                warn!(
                    job_key = key,
                    "could not report the failure: {}",
                    status.message()
                );
            }
        }
        Verdict::Throw { code, message } => {
            shared
                .metrics
                .errored
                .get_or_create(&job_type_and_code(&job.r#type, code.as_str()))
                .inc();
            info!(job_key = key, job_type = %job.r#type, code = code.as_str(), "BPMN error thrown: {message}");
            if let Err(status) = retry_call(|| {
                shared
                    .gateway
                    .throw_error(key, code.as_str().to_string(), message.clone())
            })
            .await
            {
                warn!(
                    job_key = key,
                    "could not throw the BPMN error: {}",
                    status.message()
                );
            }
        }
    }
}

/// Whether the gateway refused a request for its size: grpc-java (Zeebe's gateway) answers
/// RESOURCE_EXHAUSTED "gRPC message exceeds maximum size", tonic-based gateways OUT_OF_RANGE
/// "decoded message length too large", and the broker RESOURCE_EXHAUSTED for a record batch
/// over its limit. A busy gateway's RESOURCE_EXHAUSTED (backpressure) says nothing of size.
fn is_too_large(status: &tonic::Status) -> bool {
    if !matches!(
        status.code(),
        tonic::Code::ResourceExhausted | tonic::Code::OutOfRange | tonic::Code::InvalidArgument
    ) {
        return false;
    }
    let text = status.message().to_ascii_lowercase();
    [
        "maximum size",
        "too large",
        "max message size",
        "exceeds",
        "larger than",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The failure for a refused completion: which limits to change, never the response itself.
fn too_large_error(bytes: usize, status: &tonic::Status) -> EmailError {
    let mut reason: String = status.message().chars().take(300).collect();
    if reason.is_empty() {
        reason = format!("{:?}", status.code());
    }
    EmailError::new(
        ErrorCode::ResponseTooLarge,
        format!(
            "the gateway refused the job's completion ({bytes} bytes of variables) as too large \
             ({reason}); lower EMAIL_MAX_RESPONSE_BYTES on the worker (or EMAIL_MAX_ATTACHMENT_BYTES), \
             or raise the gateway's and broker's maximum message size \
             (zeebe.gateway.network.maxMessageSize, zeebe.broker.network.maxMessageSize)"
        ),
    )
}

/// Calls the gateway again after a short pause when the failure is one a second try can fix.
async fn retry_call<F, Fut>(mut call: F) -> Result<(), tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(()) => return Ok(()),
            Err(status)
                if attempt < 3
                    && !is_too_large(&status)
                    && matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::ResourceExhausted
                    ) =>
            {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(status) => return Err(status),
        }
    }
}

/// Everything between "job received" and "result known".
async fn decide(shared: &Shared, job: &ActivatedJob) -> Verdict {
    let Some(entry) = shared.registry.get(&job.r#type) else {
        let error = EmailError::invalid_input(format!(
            "this worker has no operation for job type '{}'",
            job.r#type
        ));
        return fail_verdict(error, job, None, "", &SecretMask::default());
    };
    let headers = match JobHeaders::parse(&job.custom_headers) {
        Ok(h) => h,
        Err(e) => {
            return fail_verdict(e, job, None, entry.operation.name(), &SecretMask::default());
        }
    };
    if let Some(timeout) = headers.job_timeout
        && let Err(status) = shared.gateway.update_job_timeout(job.key, timeout).await
    {
        warn!(
            job_key = job.key,
            "could not apply the jobTimeout header: {}",
            status.message()
        );
    }
    let variables: Value = match serde_json::from_str(if job.variables.trim().is_empty() {
        "{}"
    } else {
        &job.variables
    }) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let e = EmailError::invalid_input("the job's variables are not a JSON object");
            return fail_verdict(
                e,
                job,
                Some(&headers),
                entry.operation.name(),
                &SecretMask::default(),
            );
        }
    };
    let context = JobContext {
        job_key: job.key,
        process_instance_key: job.process_instance_key,
        retries: job.retries,
    };
    let server = describe_server(&variables, entry.operation.protocol());
    let (result, mask) = execute(entry, variables, context, &shared.settings.secrets).await;
    match result {
        Ok(outcome) => match completion_variables(&headers, outcome.response) {
            Ok(variables) => Verdict::Complete {
                variables,
                after: outcome.after_completion,
                context: format!("{} on {server}", entry.operation.name()),
                headers,
            },
            Err(e) => {
                if let Some(after) = outcome.after_completion {
                    after.rollback().await;
                }
                fail_verdict(
                    e,
                    job,
                    Some(&headers),
                    &format!("{} on {server}", entry.operation.name()),
                    &mask,
                )
            }
        },
        Err(e) => fail_verdict(
            e,
            job,
            Some(&headers),
            &format!("{} on {server}", entry.operation.name()),
            &mask,
        ),
    }
}

fn completion_variables(headers: &JobHeaders, response: Value) -> Result<String, EmailError> {
    match &headers.result_variable {
        None => Ok(String::new()),
        Some(name) => serde_json::to_string(&json!({ name.as_str(): response }))
            .map_err(|e| EmailError::internal(format!("cannot serialize the response: {e}"))),
    }
}

/// The final error message: code first, then where it happened, secrets masked, length capped.
pub fn error_message(error: &EmailError, context: &str, mask: &SecretMask) -> String {
    let text = if context.is_empty() {
        format!("{}: {}", error.code, error.message)
    } else {
        format!("{}: {context}: {}", error.code, error.message)
    };
    truncate_message(&mask.apply(&text))
}

fn fail_verdict(
    error: EmailError,
    job: &ActivatedJob,
    headers: Option<&JobHeaders>,
    context: &str,
    mask: &SecretMask,
) -> Verdict {
    let message = error_message(&error, context, mask);
    if headers.is_some_and(|h| h.bpmn_errors.throws(error.code)) {
        return Verdict::Throw {
            code: error.code,
            message,
        };
    }
    let (retries, backoff) = if error.code.is_retryable() {
        (
            (job.retries - 1).max(0),
            headers.map_or(crate::job::DEFAULT_RETRY_BACKOFF, |h| h.retry_backoff),
        )
    } else {
        (0, Duration::ZERO)
    };
    Verdict::Fail {
        code: error.code,
        message,
        retries,
        backoff,
    }
}

/// Resolves secrets, validates and runs one operation under its timeout, isolated in a task of
/// its own so that a panic becomes an error instead of taking the worker down. Shared by the
/// worker and the `invoke` subcommand. The mask it returns hides the secrets it resolved.
pub async fn execute(
    entry: &Registered,
    mut variables: Value,
    job: JobContext,
    secrets: &SecretProvider,
) -> (Result<Outcome, EmailError>, SecretMask) {
    let mask = match secrets.resolve(&mut variables) {
        Ok(mask) => mask,
        Err(e) => return (Err(e), SecretMask::default()),
    };
    entry.schema.unset_nulls(&mut variables);
    if let Err(e) = entry.schema.validate(&variables) {
        return (Err(e), mask);
    }
    let timeout = Duration::from_secs(
        variables
            .pointer("/server/timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
    );
    let operation = entry.operation.clone();
    let task = tokio::spawn(async move { operation.run(variables, &job).await });
    let abort = task.abort_handle();
    let result = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result.map(|mut outcome| {
            mask.apply_to_value(&mut outcome.response);
            outcome
        }),
        Ok(Err(join_error)) => {
            let reason = if join_error.is_panic() {
                let payload = join_error.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into())
            } else {
                "the operation was cancelled".into()
            };
            error!(
                "operation {} panicked: {}",
                entry.operation.name(),
                mask.apply(&reason)
            );
            Err(EmailError::internal(format!(
                "the operation failed unexpectedly: {reason}"
            )))
        }
        Err(_) => {
            abort.abort();
            Err(EmailError::new(
                ErrorCode::Timeout,
                format!(
                    "no result within {} s (server.timeoutSeconds)",
                    timeout.as_secs()
                ),
            ))
        }
    };
    (result, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(retries: i32) -> ActivatedJob {
        ActivatedJob {
            key: 1,
            retries,
            ..Default::default()
        }
    }

    #[test]
    fn retryable_errors_decrement_and_back_off() {
        let headers = JobHeaders::parse(r#"{"retryBackoff":"PT7S"}"#).unwrap();
        let v = fail_verdict(
            EmailError::new(ErrorCode::ConnectionFailed, "refused"),
            &job(3),
            Some(&headers),
            "smtp:send on h:1",
            &SecretMask::default(),
        );
        match v {
            Verdict::Fail {
                retries,
                backoff,
                message,
                ..
            } => {
                assert_eq!(retries, 2);
                assert_eq!(backoff, Duration::from_secs(7));
                assert_eq!(message, "CONNECTION_FAILED: smtp:send on h:1: refused");
            }
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn terminal_errors_raise_an_incident_and_bpmn_errors_throw() {
        let v = fail_verdict(
            EmailError::invalid_input("/x: bad"),
            &job(3),
            None,
            "",
            &SecretMask::default(),
        );
        assert!(matches!(v, Verdict::Fail { retries: 0, .. }));
        let headers = JobHeaders::parse(r#"{"bpmnErrors":"AUTHENTICATION_FAILED"}"#).unwrap();
        let v = fail_verdict(
            EmailError::new(ErrorCode::AuthenticationFailed, "no"),
            &job(3),
            Some(&headers),
            "",
            &SecretMask::default(),
        );
        assert!(matches!(
            v,
            Verdict::Throw {
                code: ErrorCode::AuthenticationFailed,
                ..
            }
        ));
    }

    #[test]
    fn completion_uses_the_result_variable() {
        let with = JobHeaders::parse(r#"{"resultVariable":"r"}"#).unwrap();
        assert_eq!(
            completion_variables(&with, json!({"sent": true})).unwrap(),
            r#"{"r":{"sent":true}}"#
        );
        assert_eq!(
            completion_variables(&JobHeaders::default(), json!(1)).unwrap(),
            ""
        );
    }

    #[test]
    fn backoff_grows_to_a_cap() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first >= Backoff::FIRST && first <= Backoff::FIRST.mul_f64(1.2));
        for _ in 0..20 {
            b.next_delay();
        }
        assert!(b.next_delay() <= Backoff::MAX.mul_f64(1.2));
    }
}
