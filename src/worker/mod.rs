//! The job loop: activation, one slot per running job, the operation under its timeout, and the
//! job's result reported back to the gateway. One job travels through these rooms in order:
//!
//! 1. `activation`: a job stream per job type pushes new jobs the moment they are created, and
//!    long polling drains the backlog that existed before the stream opened (streams never see
//!    it), both with capped backoff while the gateway is away;
//! 2. `slots`: a semaphore of `maxJobsActive` permits bounds how many jobs run at once across
//!    both. A job takes a permit only once it has arrived (an idle stream never holds one), and
//!    until it has one its stream is not read again, so a busy worker pushes back through
//!    HTTP/2 flow control instead of buffering jobs. Polls ask only for free slots that no
//!    other poll has claimed, taking turns, so the jobs activated never outnumber the slots
//!    however many job types poll; an idle type's long poll claims one slot only, so idle types
//!    do not keep a busy one from filling the rest. Each job runs in a task of its own that owns its permit, so
//!    the permit comes back however the task ends;
//! 3. [`execute`]: secrets, schema, the operation under its timeout, a panic isolated (shared
//!    with the `invoke` subcommand);
//! 4. `pipeline`: the job's steps from its arrival (headers, variables, [`execute`]) to its
//!    `verdict` at the gateway: complete, fail (retries and backoff by error code) or throw a
//!    BPMN error, then the operation's after-completion step.
//!
//! On shutdown ([`Worker::run`]) activation stops, running jobs get a grace period, and the
//! rest are handed back to Zeebe with their retries unchanged; their operations are aborted
//! with them, so none sends after its job was handed back.

mod activation;
mod execute;
mod pipeline;
mod report;
pub(crate) mod shape;
mod slots;
mod verdict;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::gateway::GatewayClient;
use crate::gateway::proto::ActivatedJob;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::secrets::SecretProvider;

pub use execute::execute;
pub use verdict::error_message;

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
    /// Tenants whose jobs are activated (sent on every activation and stream); empty = the
    /// default tenant only, as Zeebe reads an empty list.
    pub tenant_ids: Vec<String>,
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
            tenant_ids: Vec::new(),
        }
    }
}

/// Flags the health endpoints read.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    pub gateway_reachable: AtomicBool,
    /// The gateway has answered at least once since start: address and credentials work.
    pub gateway_answered: AtomicBool,
    pub draining: AtomicBool,
    pub streams_open: AtomicUsize,
}

/// What every loop and job task of one worker shares.
pub(crate) struct Shared {
    pub(crate) gateway: GatewayClient,
    pub(crate) registry: Arc<Registry>,
    pub(crate) settings: WorkerSettings,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) status: Arc<WorkerStatus>,
    pub(crate) metrics: Arc<Metrics>,
    /// Running jobs, so shutdown can hand back those that outlive the grace period.
    pub(crate) in_flight: Mutex<HashMap<i64, (i32, AbortHandle)>>,
    /// Free slots that polls have asked the gateway to fill and that no job holds yet.
    pub(crate) claimed: Mutex<usize>,
    /// Polls take turns to claim slots, first come first served.
    pub(crate) turn: tokio::sync::Mutex<()>,
    /// Signalled whenever claimed slots are settled or released.
    pub(crate) released: tokio::sync::Notify,
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
                claimed: Mutex::new(0),
                turn: tokio::sync::Mutex::new(()),
                released: tokio::sync::Notify::new(),
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
        loops.push(tokio::spawn(activation::watch_gateway(
            self.shared.clone(),
            stop_rx.clone(),
        )));
        for entry in self.shared.registry.entries() {
            let job_type = entry.job_type.clone();
            info!(job_type = %job_type, "serving job type");
            let stream = Arc::new(activation::StreamState::default());
            if self.shared.settings.streaming {
                loops.push(tokio::spawn(activation::stream_loop(
                    self.shared.clone(),
                    job_type.clone(),
                    stream.clone(),
                    stop_rx.clone(),
                )));
            }
            loops.push(tokio::spawn(activation::poll_loop(
                self.shared.clone(),
                job_type,
                stream,
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
        // What the operations still owe (a handed-back POP3 session rolling back) is settled
        // by whoever ends the process, once the watchers are done too: `Registry::shut_down`.
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
            slots::hand_back(&self.shared, &job).await;
        }
    }
}
