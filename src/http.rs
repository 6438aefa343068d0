//! `/healthz`, `/readyz` and `/metrics` for Kubernetes probes and Prometheus.
//!
//! Health says the process runs. Readiness says it can do work: the gateway answers, a job
//! stream is open for every job type (when streaming is on), and the worker is not draining
//! for shutdown.

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
use crate::operations::Registry;
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
    /// Ready, or the reason why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.status.draining.load(Ordering::SeqCst) {
            return Err("draining for shutdown".into());
        }
        if !self.status.gateway_reachable.load(Ordering::SeqCst) {
            return Err("the Zeebe gateway is not reachable".into());
        }
        let open = self.status.streams_open.load(Ordering::SeqCst);
        if open < self.expected_streams {
            return Err(format!(
                "{open} of {} job streams open",
                self.expected_streams
            ));
        }
        Ok(())
    }

    fn respond(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match path {
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            "/readyz" => match self.readiness() {
                Ok(()) => (
                    StatusCode::OK,
                    "text/plain",
                    format!("ready\n{}", self.inbound.lines()),
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
