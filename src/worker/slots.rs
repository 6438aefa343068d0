//! Slots: a job runs only while it holds one of `maxJobsActive` permits, in a task of its own
//! that owns the permit and is recorded in flight, so shutdown can find it and the permit
//! comes back however the task ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, watch};
use tracing::warn;

use super::Shared;
use super::pipeline::handle_job;
use crate::error::ErrorCode;
use crate::gateway::proto::ActivatedJob;
use crate::metrics::job_type as job_label;

/// Waits for a free slot and starts the job in it. A job still waiting when the worker stops
/// is handed back to Zeebe at once. Returns false when the worker is stopping.
pub(super) async fn admit(
    shared: &Arc<Shared>,
    job: ActivatedJob,
    stop: &mut watch::Receiver<bool>,
) -> bool {
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
pub(super) async fn hand_back(shared: &Shared, job: &ActivatedJob) {
    let message = format!(
        "{}: the worker shut down before the operation finished; the job is handed back unchanged",
        ErrorCode::Internal
    );
    if let Err(status) = shared
        .gateway
        .fail_job(job.key, job.retries, message, Duration::ZERO, String::new())
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

/// Slots one poll has asked the gateway to fill. Every poll loop asks only for free slots that
/// no other poll has claimed, so however many job types poll at once, the jobs activated never
/// outnumber the slots (a job's timeout runs from its activation, not from when it gets a slot).
/// A long poll claims one slot, so idle job types waiting at the gateway keep few from the
/// others. The claim is released as its jobs take their slots and, for what the gateway did
/// not fill, when the call ends.
pub(super) struct Claim<'a> {
    shared: &'a Shared,
    pub(super) asked: usize,
    open: usize,
}

impl<'a> Claim<'a> {
    /// Claims up to `most` of the unclaimed free slots (the probe's included), or none.
    pub(super) fn take(
        shared: &'a Shared,
        probe: tokio::sync::OwnedSemaphorePermit,
        most: usize,
    ) -> Option<Claim<'a>> {
        let mut claimed = shared.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let free = shared.slots.available_permits() + 1;
        drop(probe);
        let asked = free.saturating_sub(*claimed).min(most);
        if asked == 0 {
            return None;
        }
        *claimed += asked;
        Some(Claim {
            shared,
            asked,
            open: asked,
        })
    }

    pub(super) fn settle_one(&mut self) {
        if self.open > 0 {
            self.open -= 1;
            self.release(1);
        }
    }

    /// Gives `count` claimed slots back and wakes whoever waits for one.
    fn release(&self, count: usize) {
        let mut claimed = self
            .shared
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *claimed = claimed.saturating_sub(count);
        drop(claimed);
        self.shared.released.notify_waiters();
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.release(self.open);
    }
}
