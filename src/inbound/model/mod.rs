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

/// The elements one discovered watcher serves, replaced as deployments change.
pub struct Elements {
    current: RwLock<(u64, Arc<Vec<Arc<ElementTarget>>>)>,
    events: Family<ElementEvent, Counter>,
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
    let mut cache: HashMap<i64, Arc<Vec<Element>>> = HashMap::new();
    let mut groups = group::Groups::default();
    let mut failing = false;
    tracing::info!(
        endpoint = discovery.endpoint(),
        interval_ms = settings.interval.as_millis() as u64,
        types = %settings.types.join(","),
        "discovering inbound email elements in deployed processes"
    );
    while !*stop.borrow() {
        match discover(&discovery, &settings, &mut cache).await {
            Ok(found) => {
                if failing {
                    tracing::info!("Camunda's REST API answers again; discovery goes on");
                    failing = false;
                }
                groups.apply(found, &shared).await;
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
pub struct Found {
    pub definition: Definition,
    pub element: Element,
    pub camunda_type: bool,
}

/// The elements to serve now: the whole deployment or an error (then nothing changes).
async fn discover(
    discovery: &Discovery,
    settings: &Settings,
    cache: &mut HashMap<i64, Arc<Vec<Element>>>,
) -> Result<Vec<Found>, String> {
    let mut definitions = discovery.definitions().await?;
    if !settings.tenants.is_empty() {
        definitions.retain(|d| settings.tenants.contains(&d.tenant_id));
    }
    let mut latest: HashMap<(&str, &str), i32> = HashMap::new();
    for d in &definitions {
        let version = latest
            .entry((d.tenant_id.as_str(), d.process_id.as_str()))
            .or_insert(d.version);
        *version = (*version).max(d.version);
    }
    let present: HashSet<i64> = definitions.iter().map(|d| d.key).collect();
    cache.retain(|key, _| present.contains(key));
    let mut found = Vec::new();
    for definition in &definitions {
        let elements = match cache.get(&definition.key) {
            Some(elements) => elements.clone(),
            None => {
                let Some(xml) = discovery.xml(definition.key).await? else {
                    // Deleted between the search and now: the next round will not list it.
                    continue;
                };
                let elements = match bpmn::inbound_elements(&xml, &definition.process_id) {
                    Ok(elements) => elements,
                    Err(problem) => {
                        tracing::warn!(
                            process = %definition.process_id,
                            version = definition.version,
                            "the deployed BPMN is not read: {problem}"
                        );
                        Vec::new()
                    }
                };
                let elements = Arc::new(elements);
                cache.insert(definition.key, elements.clone());
                elements
            }
        };
        let newest = latest
            .get(&(
                definition.tenant_id.as_str(),
                definition.process_id.as_str(),
            ))
            .copied()
            == Some(definition.version);
        for element in elements.iter() {
            let Some(kind) = element.properties.get("inbound.type") else {
                continue;
            };
            if !settings.types.iter().any(|t| t == kind.trim()) {
                continue;
            }
            if element.kind.is_start() && !newest {
                continue;
            }
            found.push(Found {
                definition: definition.clone(),
                element: element.clone(),
                camunda_type: kind.trim() != OUR_INBOUND_TYPE,
            });
        }
    }
    found.sort_by(|a, b| {
        (a.definition.key, &a.element.element_id).cmp(&(b.definition.key, &b.element.element_id))
    });
    Ok(found)
}
