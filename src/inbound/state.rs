//! What each watcher is doing, for `/readyz`, and its counters, for `/metrics`.

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::{Metrics, WatcherCode, WatcherEvent};

/// One watcher's state and counters.
pub struct WatcherState {
    pub name: String,
    state: Mutex<String>,
    events: Family<WatcherEvent, Counter>,
    errors: Family<WatcherCode, Counter>,
}

impl WatcherState {
    pub fn new(name: &str, metrics: &Metrics) -> Arc<WatcherState> {
        Arc::new(WatcherState {
            name: name.to_string(),
            state: Mutex::new("starting".into()),
            events: metrics.inbound_mails.clone(),
            errors: metrics.inbound_errors.clone(),
        })
    }

    pub fn set(&self, state: impl Into<String>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state.into();
    }

    pub fn get(&self) -> String {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Counts `seen`, `handed_over`, `duplicate` or `after_processed`.
    pub fn count(&self, event: &str) {
        self.events
            .get_or_create(&WatcherEvent {
                watcher: self.name.clone(),
                event: event.to_string(),
            })
            .inc();
    }

    pub fn error(&self, code: &str) {
        self.errors
            .get_or_create(&WatcherCode {
                watcher: self.name.clone(),
                code: code.to_string(),
            })
            .inc();
    }
}

/// Every watcher's state, one line each, for `/readyz`.
#[derive(Clone, Default)]
pub struct InboundStatus {
    pub watchers: Vec<Arc<WatcherState>>,
}

impl InboundStatus {
    pub fn lines(&self) -> String {
        self.watchers
            .iter()
            .map(|w| format!("watcher {}: {}\n", w.name, w.get()))
            .collect()
    }
}
