//! Elements to watchers: elements that watch the same mailbox the same way (connection,
//! folder, polling and handling, after secrets are resolved) share one watcher, as do
//! elements with the same `deduplicationId`; a watcher starts when its first element is
//! deployed, gets the new list when elements come and go, and stops when none is left.
//!
//! A watcher's name is `model-` and 12 hex digits of a digest of its mailbox without its
//! secrets: every replica names it alike (a mail without a Message-ID is published under an
//! id made from the name), and no secret can be guessed from it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::element::{ElementTarget, resolve};
use super::{Elements, Found, Shared};
use crate::inbound::config::{HandOver, watcher as read_watcher};
use crate::inbound::handover::hex_sha256;
use crate::inbound::{Context, state};
use crate::mail::server::Protocol;

/// Fields of a mailbox that hold secrets: kept out of the watcher's name.
const SECRET_FIELDS: &[&str] = &["password", "accessToken", "clientSecret", "refreshToken"];
/// Problems remembered as logged, at most.
const MAX_REPORTED: usize = 10_000;
/// How long a stopped watcher may take to finish its round.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Running {
    name: String,
    elements: Arc<Elements>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The mailbox and elements of one watcher to be.
struct Wanted {
    name: String,
    mailbox: Value,
    targets: Vec<Arc<ElementTarget>>,
}

#[derive(Default)]
pub struct Groups {
    running: HashMap<String, Running>,
    /// Problems already logged, so a round every few seconds does not repeat them.
    reported: HashSet<String>,
}

impl Groups {
    /// Makes the running watchers those `found` needs.
    pub async fn apply(&mut self, found: Vec<Found>, notes: Vec<String>, shared: &Shared) {
        let mut lines = notes;
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for Found {
            definition,
            element,
            camunda_type,
        } in found
        {
            let resolved = match resolve(&element, &definition, camunda_type) {
                Ok(resolved) => resolved,
                Err(problem) => {
                    let label = format!(
                        "{} v{} {}",
                        definition.process_id, definition.version, element.element_id
                    );
                    self.refused(&label, &problem, &mut lines);
                    continue;
                }
            };
            let target = Arc::new(resolved.target);
            let tenant = &definition.tenant_id;
            let (key, name) = match &resolved.manual_group {
                // As Camunda's runtime: an id shares within one process, never across.
                Some(id) => {
                    let process = &definition.process_id;
                    (
                        format!("{tenant}\u{0}{process}\u{0}manual\u{0}{id}"),
                        name_of(&json!([tenant, process, "manual", id])),
                    )
                }
                None => (
                    format!("{tenant}\u{0}{}", resolved.mailbox),
                    name_of(&json!([tenant, without_secrets(&resolved.mailbox)])),
                ),
            };
            let entry = wanted.entry(key).or_insert_with(|| Wanted {
                name,
                mailbox: resolved.mailbox.clone(),
                targets: Vec::new(),
            });
            if entry.mailbox != resolved.mailbox {
                self.refused(
                    &target.label(),
                    "its deduplicationId is used by an element that watches another mailbox",
                    &mut lines,
                );
                continue;
            }
            entry.targets.push(target);
        }
        // Two mailboxes that differ only in their secrets digest alike: the later ones get a
        // suffix, in an order every replica sees alike.
        let mut names: HashSet<String> = HashSet::new();
        for group in wanted.values_mut() {
            let base = group.name.clone();
            let mut n = 1;
            while !names.insert(group.name.clone()) {
                n += 1;
                group.name = format!("{base}-{n}");
            }
        }
        let keys: Vec<String> = self.running.keys().cloned().collect();
        let mut leaving = Vec::new();
        for key in keys {
            if !wanted.contains_key(&key)
                && let Some(running) = self.running.remove(&key)
            {
                leaving.push(running);
            }
        }
        stop_together(leaving, shared).await;
        for (key, group) in wanted {
            if let Some(running) = self.running.get(&key) {
                running.elements.replace(group.targets.clone());
                served(&group, &running.name, &mut lines);
                continue;
            }
            match start(&group, shared) {
                Ok(running) => {
                    served(&group, &running.name, &mut lines);
                    self.running.insert(key, running);
                }
                Err(problem) => {
                    for target in &group.targets {
                        self.refused(&target.label(), &problem, &mut lines);
                    }
                }
            }
        }
        shared.status.set_elements(lines);
    }

    pub async fn stop_all(&mut self, shared: &Shared) {
        let all = self.running.drain().map(|(_, running)| running).collect();
        stop_together(all, shared).await;
        shared.status.set_elements(Vec::new());
    }

    fn refused(&mut self, label: &str, problem: &str, lines: &mut Vec<String>) {
        // Bounded: a cluster that keeps deploying broken elements repeats a warning at worst.
        if self.reported.len() >= MAX_REPORTED {
            self.reported.clear();
        }
        if self.reported.insert(format!("{label}\u{0}{problem}")) {
            tracing::warn!(element = %label, "the element is not served: {problem}");
        }
        lines.push(format!("element {label}: not served: {problem}"));
    }
}

fn served(group: &Wanted, name: &str, lines: &mut Vec<String>) {
    for target in &group.targets {
        lines.push(format!("element {}: watcher {name}", target.label()));
    }
}

/// Starts the watcher of `group`, as the watchers file's are started.
fn start(group: &Wanted, shared: &Shared) -> Result<Running, String> {
    let mut entry = group.mailbox.clone();
    entry["name"] = json!(group.name);
    // The file's reading wants a hand-over; the elements replace it below.
    entry["publishMessage"] = json!({ "name": "model" });
    let mut watcher =
        read_watcher(entry, &shared.secrets, &shared.policy).map_err(|p| p.join("; "))?;
    if watcher.as_documents && !shared.services.has_document_store() {
        return Err("attachments as documents need CAMUNDA_REST_ADDRESS".into());
    }
    let elements = Elements::new(
        group.targets.clone(),
        shared.metrics.inbound_elements.clone(),
    );
    watcher.hand_over = HandOver::Model(elements.clone());
    let state = state::WatcherState::new(&watcher.name, &shared.metrics);
    shared.status.add(state.clone());
    let context = Arc::new(Context {
        gateway: shared.gateway.clone(),
        services: shared.services.clone(),
        limits: shared.limits,
        state,
    });
    let (stop, stopped) = watch::channel(false);
    let watcher = Arc::new(watcher);
    tracing::info!(
        watcher = %watcher.name,
        protocol = watcher.protocol.name(),
        elements = %group.targets.iter().map(|t| t.label()).collect::<Vec<_>>().join(", "),
        "starting watcher for deployed elements"
    );
    let task = match watcher.protocol {
        Protocol::Pop3 => tokio::spawn(crate::inbound::pop3::run(watcher, context, stopped)),
        _ => tokio::spawn(crate::inbound::imap::run(watcher, context, stopped)),
    };
    Ok(Running {
        name: group.name.clone(),
        elements,
        stop,
        task,
    })
}

/// Stops `watchers` at once, each given [`STOP_GRACE`] to end its round, all within it.
async fn stop_together(watchers: Vec<Running>, shared: &Shared) {
    for running in &watchers {
        tracing::info!(watcher = %running.name, "stopping watcher: no deployed element needs it");
        let _ = running.stop.send(true);
    }
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for running in watchers {
        let mut task = running.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
        }
        shared.status.remove(&running.name);
    }
}

/// `model-` and 12 hex digits of the SHA-256 of `value`.
fn name_of(value: &Value) -> String {
    let hex = hex_sha256(value.to_string().as_bytes());
    format!("model-{}", &hex[..12])
}

fn without_secrets(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !SECRET_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without_secrets(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
