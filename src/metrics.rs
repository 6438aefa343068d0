//! Prometheus metrics of the worker, exposed at `/metrics` in the OpenMetrics text format
//! (what prometheus-client writes; Prometheus reads it by its content type).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobType {
    pub job_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobTypeAndCode {
    pub job_type: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Protocol {
    pub protocol: String,
}

/// An inbound watcher's event: `seen`, `handed_over`, `duplicate`, `after_processed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatcherEvent {
    pub watcher: String,
    pub event: String,
}

/// What became of a mail at one element of a deployed process (inbound from the model):
/// `handed_over`, `duplicate`, `not_activated`, `rejected`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ElementEvent {
    pub process: String,
    pub element: String,
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatcherCode {
    pub watcher: String,
    pub code: String,
}

pub struct Metrics {
    registry: Registry,
    pub inbound_mails: Family<WatcherEvent, Counter>,
    pub inbound_errors: Family<WatcherCode, Counter>,
    pub inbound_elements: Family<ElementEvent, Counter>,
    pub activated: Family<JobType, Counter>,
    pub completed: Family<JobType, Counter>,
    pub failed: Family<JobTypeAndCode, Counter>,
    pub errored: Family<JobTypeAndCode, Counter>,
    pub duration: Family<JobType, Histogram>,
    pub in_flight: Gauge,
    pub reconnects: Counter,
    /// Sessions idle in the pools (a session in use is not counted).
    pub sessions: Family<Protocol, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("email_connector");
        let activated = Family::<JobType, Counter>::default();
        let completed = Family::<JobType, Counter>::default();
        let failed = Family::<JobTypeAndCode, Counter>::default();
        let errored = Family::<JobTypeAndCode, Counter>::default();
        // 5 ms to about 80 s: a NOOP-fast pooled send up to a slow search on a huge folder.
        let duration = Family::<JobType, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 15))
        });
        let in_flight = Gauge::default();
        let reconnects = Counter::default();
        let sessions = Family::<Protocol, Gauge>::default();
        registry.register(
            "jobs_activated",
            "Jobs received from the gateway",
            activated.clone(),
        );
        registry.register("jobs_completed", "Jobs completed", completed.clone());
        registry.register(
            "jobs_failed",
            "Jobs failed (FailJob), by error code",
            failed.clone(),
        );
        registry.register(
            "jobs_errored",
            "Jobs ended with a BPMN error (ThrowError), by error code",
            errored.clone(),
        );
        registry.register(
            "operation_duration_seconds",
            "Time from activation to result, per job type",
            duration.clone(),
        );
        registry.register("jobs_in_flight", "Jobs running now", in_flight.clone());
        registry.register(
            "gateway_reconnects",
            "Job streams reopened after the gateway was lost",
            reconnects.clone(),
        );
        registry.register(
            "mail_sessions_idle",
            "Mail sessions or transports idle in the pool, kept open for reuse",
            sessions.clone(),
        );
        let inbound_mails = Family::<WatcherEvent, Counter>::default();
        let inbound_errors = Family::<WatcherCode, Counter>::default();
        let inbound_elements = Family::<ElementEvent, Counter>::default();
        registry.register(
            "inbound_element_mails",
            "Mails at each element of a deployed process: handed_over, duplicate, \
             not_activated, rejected",
            inbound_elements.clone(),
        );
        registry.register(
            "inbound_mails",
            "Mails of each inbound watcher: seen, handed_over, duplicate, after_processed",
            inbound_mails.clone(),
        );
        registry.register(
            "inbound_errors",
            "Errors of each inbound watcher, by error code",
            inbound_errors.clone(),
        );
        // Exposed as `email_connector_build_info{version="…"} 1`.
        registry.register(
            "build",
            "The worker's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Arc::new(Metrics {
            registry,
            inbound_mails,
            inbound_errors,
            inbound_elements,
            activated,
            completed,
            failed,
            errored,
            duration,
            in_flight,
            reconnects,
            sessions,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

pub fn job_type(job_type: &str) -> JobType {
    JobType {
        job_type: job_type.to_string(),
    }
}

pub fn job_type_and_code(job_type: &str, code: &str) -> JobTypeAndCode {
    JobTypeAndCode {
        job_type: job_type.to_string(),
        code: code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let metrics = Metrics::new();
        metrics
            .completed
            .get_or_create(&job_type("email:smtp:send:1"))
            .inc();
        metrics
            .failed
            .get_or_create(&job_type_and_code("email:smtp:send:1", "TIMEOUT"))
            .inc_by(2);
        metrics
            .duration
            .get_or_create(&job_type("email:smtp:send:1"))
            .observe(0.02);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"email_connector_jobs_completed_total{job_type="email:smtp:send:1"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"email_connector_jobs_failed_total{job_type="email:smtp:send:1",code="TIMEOUT"} 2"#), "{text}");
        assert!(
            text.contains("email_connector_operation_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("email_connector_jobs_in_flight 0"), "{text}");
        assert!(
            text.contains(&format!(
                "email_connector_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
    }
}
