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

/// Every watcher's state, one line each, for `/readyz`, and the elements of deployed processes
/// the watchers serve (inbound from the model). Watchers come and go with deployments, so the
/// lists are shared and locked rather than fixed at start.
#[derive(Clone, Default)]
pub struct InboundStatus {
    watchers: Arc<Mutex<Vec<Arc<WatcherState>>>>,
    elements: Arc<Mutex<Vec<String>>>,
}

impl InboundStatus {
    pub fn add(&self, watcher: Arc<WatcherState>) {
        lock(&self.watchers).push(watcher);
    }

    pub fn remove(&self, name: &str) {
        lock(&self.watchers).retain(|w| w.name != name);
    }

    /// Replaces the element lines (one per served or refused element of a deployed process).
    pub fn set_elements(&self, lines: Vec<String>) {
        *lock(&self.elements) = lines;
    }

    pub fn watcher_names(&self) -> Vec<String> {
        lock(&self.watchers)
            .iter()
            .map(|w| w.name.clone())
            .collect()
    }

    pub fn lines(&self) -> String {
        let mut text: String = lock(&self.watchers)
            .iter()
            .map(|w| format!("watcher {}: {}\n", w.name, w.get()))
            .collect();
        for line in lock(&self.elements).iter() {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
