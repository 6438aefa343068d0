//! Inbound from the model (docs/inbound.md, "Email triggers in the model"): with
//! `EMAIL_INBOUND_FROM_MODELS=true` the worker finds the inbound email elements of the
//! processes deployed to the cluster (Camunda's inbound Email connector templates and ours)
//! through Camunda's REST API, and keeps watchers in step with the deployments.
//!
//! Every `EMAIL_INBOUND_DISCOVERY_INTERVAL` one round:
//! 1. [`rest`] lists the deployed definitions (all versions) and fetches the BPMN of each new
//!    one (a definition never changes, so its elements are kept by key);
//! 2. [`bpmn`] finds its inbound elements; start events count for the latest version of their
//!    process only, the others for every version deployed (a waiting instance of an older
//!    version still gets its mail);
//! 3. [`element`] reads each into a watchers-file entry (its mailbox) and a target;
//! 4. [`group`] puts elements with the same mailbox under one watcher (or with the same
//!    `deduplicationId`), starts the watchers that are new, gives running ones their new
//!    elements, and stops those no deployed element needs any more.
//!
//! The watchers are those of the watchers file, with [`deliver`] handing each mail to the
//! elements whose activation condition holds; every rule of the file's watchers holds (after-
//! processing only after Zeebe accepted, nothing lost, nothing twice). A round that cannot
//! see the whole deployment (the REST API away, one BPMN unreadable for now) changes nothing.

pub mod bpmn;
pub mod deliver;
mod discover;
pub mod element;
mod group;
pub mod rest;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::watch;

use crate::gateway::GatewayClient;
use crate::inbound::handover::Place;
use crate::mail::cut::Limits;
use crate::mail::policy::HostPolicy;
use crate::metrics::{ElementEvent, Metrics};
use crate::secrets::SecretProvider;
use crate::services::Services;
use bpmn::Element;
pub use element::{CAMUNDA_INBOUND_TYPE, ElementTarget, OUR_INBOUND_TYPE};
use rest::{Definition, Discovery};

use super::InboundStatus;

/// The default of `EMAIL_INBOUND_DISCOVERY_INTERVAL`, Camunda's runtime's own polling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Mails remembered with the elements that accepted them, at most: a mail is remembered only
/// between a refusal and the retry that completes it.
const MAX_PARTLY_HANDED: usize = 10_000;

/// The elements one discovered watcher serves, replaced as deployments change.
pub struct Elements {
    current: RwLock<(u64, Arc<Vec<Arc<ElementTarget>>>)>,
    events: Family<ElementEvent, Counter>,
    /// Mails some but not all of whose elements accepted them: place → element identities.
    partly: std::sync::Mutex<HashMap<Place, HashSet<String>>>,
}

impl std::fmt::Debug for Elements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self.current().iter().map(|t| t.label()).collect();
        f.debug_tuple("Elements").field(&labels).finish()
    }
}

impl Elements {
    fn new(targets: Vec<Arc<ElementTarget>>, events: Family<ElementEvent, Counter>) -> Arc<Self> {
        Arc::new(Elements {
            current: RwLock::new((1, Arc::new(targets))),
            events,
            partly: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn current(&self) -> Arc<Vec<Arc<ElementTarget>>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Grows by one whenever the elements change.
    pub fn generation(&self) -> u64 {
        self.current.read().unwrap_or_else(|p| p.into_inner()).0
    }

    fn replace(&self, targets: Vec<Arc<ElementTarget>>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let labels = |list: &[Arc<ElementTarget>]| -> Vec<String> {
            list.iter().map(|t| t.label()).collect()
        };
        if labels(&current.1) != labels(&targets) {
            *current = (current.0 + 1, Arc::new(targets));
        }
    }

    /// The elements (by [`ElementTarget::identity`]) that already accepted the mail at `place`.
    pub fn accepted(&self, place: &Place) -> HashSet<String> {
        self.partly
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(place)
            .cloned()
            .unwrap_or_default()
    }

    /// Notes that `target` accepted the mail at `place`.
    pub fn note_accepted(&self, place: &Place, target: &ElementTarget) {
        let mut partly = self.partly.lock().unwrap_or_else(|p| p.into_inner());
        if partly.len() >= MAX_PARTLY_HANDED && !partly.contains_key(place) {
            tracing::warn!(
                "{MAX_PARTLY_HANDED} mails wait for some of their elements; the oldest notes \
                 are dropped, and a retry may hand those mails to an element again"
            );
            partly.clear();
        }
        partly
            .entry(place.clone())
            .or_default()
            .insert(target.identity());
    }

    /// Forgets the mail at `place`: every element has it.
    pub fn forget(&self, place: &Place) {
        self.partly
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(place);
    }

    /// Counts `event` for `target` in `/metrics`.
    pub fn count(&self, target: &ElementTarget, event: &str) {
        self.events
            .get_or_create(&ElementEvent {
                process: target.definition.process_id.clone(),
                element: target.element_id.clone(),
                event: event.to_string(),
            })
            .inc();
    }
}

/// What the discovery is configured with.
pub struct Settings {
    pub interval: Duration,
    /// The inbound types served: Camunda's, ours, and a hybrid template's own.
    pub types: Vec<String>,
    /// The tenants the worker serves (`CAMUNDA_TENANT_IDS`); empty: every tenant the REST API
    /// shows.
    pub tenants: Vec<String>,
}

/// What the watchers the discovery starts run with: the same as the file's watchers.
pub struct Shared {
    pub gateway: GatewayClient,
    pub services: Arc<Services>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub status: InboundStatus,
    pub secrets: SecretProvider,
    pub policy: HostPolicy,
}

/// Runs the discovery until `stop` turns true, then stops its watchers.
pub async fn run(
    discovery: Discovery,
    settings: Settings,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
) {
    let mut cache = discover::Cache::default();
    let mut groups = group::Groups::default();
    let mut previous: Vec<Found> = Vec::new();
    let mut failing = false;
    tracing::info!(
        endpoint = discovery.endpoint(),
        interval_ms = settings.interval.as_millis() as u64,
        types = %settings.types.join(","),
        "discovering inbound email elements in deployed processes"
    );
    while !*stop.borrow() {
        // A round of many slow answers must not hold up the shutdown.
        let round = tokio::select! {
            round = discover::discover(&discovery, &settings, &mut cache, &previous) => round,
            _ = stop.changed() => break,
        };
        match round {
            Ok(round) => {
                if failing {
                    tracing::info!("Camunda's REST API answers again; discovery goes on");
                    failing = false;
                }
                if round.found.is_empty() && !previous.is_empty() {
                    tracing::warn!(
                        "the deployed processes have no inbound email element any more (or the \
                         REST API no longer shows them to {}): every discovered watcher stops",
                        discovery.identity()
                    );
                }
                groups
                    .apply(round.found.clone(), round.lines, &shared)
                    .await;
                previous = round.found;
            }
            Err(reason) => {
                // Logged once per outage: the round repeats every few seconds.
                if !failing {
                    tracing::warn!(
                        "discovery of deployed processes failed, the watchers stay as they are: {reason}"
                    );
                    failing = true;
                } else {
                    tracing::debug!("discovery failed again: {reason}");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = stop.changed() => {}
        }
    }
    groups.stop_all(&shared).await;
}

/// An element found in a definition, with the definition.
#[derive(Clone)]
pub struct Found {
    pub definition: Definition,
    pub element: Element,
    pub camunda_type: bool,
}
