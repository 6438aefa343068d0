//! `/healthz`, `/readyz` and `/metrics` for Kubernetes probes and Prometheus.
//!
//! Health says the process runs. Readiness says this pod is set up to do work: its gateway
//! address and credentials have worked (the gateway answered at least once since start), and
//! it is not draining for shutdown. Nothing routes traffic to a worker, so readiness gates only
//! rollouts and disruption budgets: a pod that never reached the gateway (a wrong address or
//! secret) stops a rollout, while a gateway outage that every pod shares makes none unready,
//! since that would block node drains and help nothing (the job loops reconnect on their own).
//! Job streams are not required either: against a gateway without streaming the worker polls.
//! The body says what is missing: the gateway away right now, streams not open.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::worker::WorkerStatus;

#[derive(Clone)]
pub struct HttpState {
    pub status: Arc<WorkerStatus>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    /// Job streams that must be open to be ready (0 with streaming off).
    pub expected_streams: usize,
    /// The inbound watchers, each listed with its state (a failing watcher does not make the
    /// worker unready: the other watchers and the job types still work).
    pub inbound: crate::inbound::InboundStatus,
}

impl HttpState {
    /// Ready (with notes on what is degraded), or the reason why not.
    pub fn readiness(&self) -> Result<Vec<String>, String> {
        if self.status.draining.load(Ordering::SeqCst) {
            return Err("draining for shutdown".into());
        }
        if !self.status.gateway_answered.load(Ordering::SeqCst) {
            return Err("the Zeebe gateway has not answered yet".into());
        }
        let mut notes = Vec::new();
        if !self.status.gateway_reachable.load(Ordering::SeqCst) {
            notes.push("the Zeebe gateway is not reachable right now; reconnecting".into());
        }
        let open = self.status.streams_open.load(Ordering::SeqCst);
        if open < self.expected_streams {
            notes.push(format!(
                "{open} of {} job streams open; polling",
                self.expected_streams
            ));
        }
        Ok(notes)
    }

    fn respond(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match path {
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            "/readyz" => match self.readiness() {
                Ok(notes) if notes.is_empty() => (
                    StatusCode::OK,
                    "text/plain",
                    format!("ready\n{}", self.inbound.lines()),
                ),
                Ok(notes) => (
                    StatusCode::OK,
                    "text/plain",
                    format!("ready ({})\n{}", notes.join("; "), self.inbound.lines()),
                ),
                Err(reason) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {reason}\n{}", self.inbound.lines()),
                ),
            },
            "/metrics" => {
                for (protocol, count) in self.registry.session_counts() {
                    self.metrics
                        .sessions
                        .get_or_create(&crate::metrics::Protocol {
                            protocol: protocol.to_string(),
                        })
                        .set(i64::try_from(count).unwrap_or(i64::MAX));
                }
                (
                    StatusCode::OK,
                    crate::metrics::CONTENT_TYPE,
                    self.metrics.encode(),
                )
            }
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_string(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    }
}

/// Serves until `stop` turns true.
pub async fn serve(listener: TcpListener, state: HttpState, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = state.respond(request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(expected_streams: usize) -> HttpState {
        HttpState {
            status: Arc::new(WorkerStatus::default()),
            metrics: crate::metrics::Metrics::new(),
            registry: Arc::new(Registry::from_operations("email", Vec::new()).expect("registry")),
            expected_streams,
            inbound: Default::default(),
        }
    }

    #[test]
    fn ready_once_the_gateway_answered_whatever_the_streams_and_later_outages() {
        let s = state(3);
        assert!(s.readiness().is_err(), "not before the gateway answered");
        s.status.gateway_answered.store(true, Ordering::SeqCst);
        s.status.gateway_reachable.store(true, Ordering::SeqCst);
        // A gateway without job streaming: the worker polls and is ready.
        let notes = s.readiness().expect("ready without streams");
        assert_eq!(notes, ["0 of 3 job streams open; polling"]);
        // A gateway outage every pod shares: still ready, so node drains are not blocked.
        s.status.gateway_reachable.store(false, Ordering::SeqCst);
        s.status.streams_open.store(3, Ordering::SeqCst);
        let notes = s.readiness().expect("ready through an outage");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("not reachable"), "{notes:?}");
        s.status.draining.store(true, Ordering::SeqCst);
        assert_eq!(s.readiness().unwrap_err(), "draining for shutdown");
    }
}
