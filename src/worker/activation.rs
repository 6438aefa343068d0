//! Activation: a job stream per job type for new jobs, long polling for the backlog, and the
//! gateway watch that says clearly when the gateway cannot be reached. Each arriving job goes
//! to [`super::slots::admit`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use super::slots::{Claim, admit, hand_back};
use super::{Shared, WorkerStatus};
use crate::gateway::proto::{ActivateJobsRequest, StreamActivatedJobsRequest};

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
        base + base.mul_f64(fastrand::f64() * 0.2)
    }
}

/// The longest pause between two looks for a backlog while a job type's stream is open: jobs
/// the gateway could not push wait at most this long (less once the stream delivers again).
const BACKLOG_LOOK_MAX: Duration = Duration::from_secs(5);

/// What a job type's stream tells the poll loop of the same type.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    open: AtomicBool,
    /// Signalled when the stream delivers a job: the type is busy, and jobs the gateway could
    /// not push to a full worker wait for a poll.
    delivered: Notify,
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
pub(super) async fn watch_gateway(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new();
    loop {
        if *stop.borrow() {
            return;
        }
        let delay = match shared.gateway.topology().await {
            Ok(topology) => {
                shared.status.gateway_answered.store(true, Ordering::SeqCst);
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
                if status.code() == tonic::Code::Unauthenticated {
                    // Not a network problem: say so, and which identity was refused, so the
                    // operator looks at the credentials rather than the network.
                    warn!(
                        "the Zeebe gateway at {} refused the worker's credentials ({}): {}; check CAMUNDA_AUTH_STRATEGY and its credentials; retrying in {:.1} s",
                        shared.gateway.address(),
                        shared.gateway.credentials().describe(),
                        status.message(),
                        delay.as_secs_f64()
                    );
                } else {
                    warn!(
                        "cannot reach the Zeebe gateway at {}: {} ({:?}); retrying in {:.1} s",
                        shared.gateway.address(),
                        status.message(),
                        status.code(),
                        delay.as_secs_f64()
                    );
                }
                delay
            }
        };
        if pause(delay, &mut stop).await {
            return;
        }
    }
}

pub(super) async fn stream_loop(
    shared: Arc<Shared>,
    job_type: String,
    state: Arc<StreamState>,
    mut stop: watch::Receiver<bool>,
) {
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
            tenant_ids: shared.settings.tenant_ids.clone(),
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
                let _open = StreamGuard::open(&shared.status, &state);
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
                            state.delivered.notify_one();
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
struct StreamGuard<'a>(&'a WorkerStatus, &'a StreamState);

impl<'a> StreamGuard<'a> {
    fn open(status: &'a WorkerStatus, state: &'a StreamState) -> Self {
        status.streams_open.fetch_add(1, Ordering::SeqCst);
        state.open.store(true, Ordering::SeqCst);
        StreamGuard(status, state)
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.1.open.store(false, Ordering::SeqCst);
        self.0.streams_open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Polls for jobs. A type that found jobs last time asks again at once, without waiting at
/// the gateway, for every free slot no other poll has claimed. An idle type waits at the
/// gateway (long polling) for one job only, so the slot it holds meanwhile is all that idle
/// types keep from a busy one; while its job stream is open it does not wait there at all
/// (the stream brings new jobs) and only looks for a backlog now and then, or as soon as the
/// stream delivers.
pub(super) async fn poll_loop(
    shared: Arc<Shared>,
    job_type: String,
    stream: Arc<StreamState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new();
    let fetch_variable = fetch_variables(&shared, &job_type);
    // The first poll looks for a backlog at once.
    let mut busy = true;
    let mut backlog_look = shared.settings.poll_interval;
    loop {
        let streamed = stream.open.load(Ordering::SeqCst);
        let long_poll = !busy && !streamed;
        // Ask only for free slots no other poll has asked for. Polls take turns (the turn is
        // a FIFO lock), so a job type that just polled queues behind those waiting.
        let mut claim = {
            let _turn = tokio::select! {
                t = shared.turn.lock() => t,
                _ = stop.changed() => return,
            };
            loop {
                let probe = tokio::select! {
                    p = shared.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                    _ = stop.changed() => return,
                };
                let released = shared.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                if let Some(claim) =
                    Claim::take(&shared, probe, if long_poll { 1 } else { usize::MAX })
                {
                    break claim;
                }
                // Every free slot is promised to another poll: wait for one to be settled
                // (or a slot to come back, which nothing signals: hence the timer).
                tokio::select! {
                    _ = released => {}
                    _ = tokio::time::sleep(shared.settings.poll_interval) => {}
                    _ = stop.changed() => return,
                }
            }
        };
        if *stop.borrow() {
            return;
        }
        let request = ActivateJobsRequest {
            r#type: job_type.clone(),
            worker: shared.settings.worker_name.clone(),
            timeout: millis(shared.settings.job_timeout),
            max_jobs_to_activate: i32::try_from(claim.asked).unwrap_or(i32::MAX),
            fetch_variable: fetch_variable.clone(),
            // Negative: the gateway answers at once, jobs or none.
            request_timeout: if long_poll {
                millis(shared.settings.poll_request_timeout)
            } else {
                -1
            },
            tenant_ids: shared.settings.tenant_ids.clone(),
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
                            let admitted = admit(&shared, job, &mut stop).await;
                            // The job holds a slot of its own now (or was handed back).
                            claim.settle_one();
                            if !admitted {
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
        // What the gateway did not fill is free for other polls again, also while this one
        // backs off.
        drop(claim);
        busy = received > 0;
        if busy {
            backlog_look = shared.settings.poll_interval;
        }
        let look_for_backlog = !long_poll && failure.is_none();
        let delay = match failure {
            Some(status) => {
                debug!(job_type = %job_type, "polling failed: {}", status.message());
                backoff.next_delay()
            }
            None => {
                backoff.reset();
                if busy {
                    Duration::ZERO
                } else if !long_poll {
                    let look = backlog_look;
                    backlog_look = (backlog_look * 2).min(BACKLOG_LOOK_MAX);
                    look
                } else if started.elapsed() < shared.settings.poll_interval {
                    shared.settings.poll_interval
                } else {
                    Duration::ZERO
                }
            }
        };
        let stopping = if look_for_backlog {
            // A delivery on the stream means a busy type, whose backlog (jobs the gateway could
            // not push) is looked for soon, though no more often than every poll interval.
            tokio::select! {
                s = pause(delay, &mut stop) => s,
                _ = stream.delivered.notified() => {
                    let soon = shared.settings.poll_interval.saturating_sub(started.elapsed());
                    pause(soon, &mut stop).await
                }
            }
        } else {
            !delay.is_zero() && pause(delay, &mut stop).await
        };
        if stopping {
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

#[cfg(test)]
mod tests {
    use super::*;

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
