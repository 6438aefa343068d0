//! One discovery round: from the deployed definitions to the elements to serve.
//!
//! A definition never changes, so its BPMN is read once and kept by key, and one that cannot
//! be read (too large, not XML) is kept as read with its reason. What the round cannot know for
//! now (a BPMN not fetched, whether a listed definition still exists) freezes only that
//! process: its elements stay as the last round had them, and every other process goes on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::bpmn::{self, Element};
use super::rest::{Definition, Discovery, Xml};
use super::{Found, OUR_INBOUND_TYPE, Settings};

/// What a definition's BPMN gave.
struct Read {
    elements: Arc<Vec<Element>>,
    /// Why it could not be read, if it could not.
    problem: Option<String>,
}

/// The definitions read so far, by key.
#[derive(Default)]
pub struct Cache {
    read: HashMap<i64, Read>,
}

/// What a round found.
pub struct Round {
    pub found: Vec<Found>,
    /// `/readyz` lines about definitions that could not be read.
    pub lines: Vec<String>,
}

type ProcessKey = (String, String);

fn process_of(definition: &Definition) -> ProcessKey {
    (definition.tenant_id.clone(), definition.process_id.clone())
}

/// The round; an error only when the definitions cannot be listed (then nothing changes).
pub async fn discover(
    discovery: &Discovery,
    settings: &Settings,
    cache: &mut Cache,
    previous: &[Found],
) -> Result<Round, String> {
    let mut definitions = discovery.definitions().await?;
    definitions.sort_by_key(|d| d.key);
    definitions.dedup_by_key(|d| d.key);
    if !settings.tenants.is_empty() {
        definitions.retain(|d| settings.tenants.contains(&d.tenant_id));
    }
    let present: HashSet<i64> = definitions.iter().map(|d| d.key).collect();
    cache.read.retain(|key, _| present.contains(key));
    // Processes this round cannot see whole: they keep the last round's elements.
    let mut frozen: HashSet<ProcessKey> = HashSet::new();
    let mut gone: HashSet<i64> = HashSet::new();
    for definition in &definitions {
        if cache.read.contains_key(&definition.key) {
            continue;
        }
        let read = match discovery.xml(definition.key).await {
            Ok(Xml::Found(xml)) => match bpmn::inbound_elements(&xml, &definition.process_id) {
                Ok(elements) => Read {
                    elements: Arc::new(elements),
                    problem: None,
                },
                Err(problem) => unreadable(definition, problem),
            },
            Ok(Xml::Unreadable(problem)) => unreadable(definition, problem),
            Ok(Xml::Gone) => {
                gone.insert(definition.key);
                continue;
            }
            Err(reason) => {
                tracing::debug!(
                    process = %definition.process_id,
                    version = definition.version,
                    "the BPMN is not fetched this round: {reason}"
                );
                frozen.insert(process_of(definition));
                continue;
            }
        };
        cache.read.insert(definition.key, read);
    }
    definitions.retain(|d| !gone.contains(&d.key));
    let served = |key: i64| {
        cache.read.get(&key).is_some_and(|read| {
            read.elements.iter().any(|e| {
                e.properties
                    .get("inbound.type")
                    .is_some_and(|t| settings.types.iter().any(|s| s == t.trim()))
            })
        })
    };
    // Older clusters list deleted definitions: for processes with email elements, each
    // version is asked for by key, so a deleted one neither stays served nor counts as latest.
    let email_processes: HashSet<ProcessKey> = definitions
        .iter()
        .filter(|d| served(d.key))
        .map(process_of)
        .collect();
    let mut deleted = HashSet::new();
    for definition in &definitions {
        let process = process_of(definition);
        if !email_processes.contains(&process) || frozen.contains(&process) {
            continue;
        }
        match discovery.exists(definition.key).await {
            Ok(true) => {}
            Ok(false) => {
                deleted.insert(definition.key);
            }
            Err(_) => {
                frozen.insert(process);
            }
        }
    }
    definitions.retain(|d| !deleted.contains(&d.key));
    let mut latest: HashMap<ProcessKey, i32> = HashMap::new();
    for d in &definitions {
        let version = latest.entry(process_of(d)).or_insert(d.version);
        *version = (*version).max(d.version);
    }
    let mut found: Vec<Found> = previous
        .iter()
        .filter(|f| frozen.contains(&process_of(&f.definition)))
        .cloned()
        .collect();
    let mut lines = Vec::new();
    for definition in &definitions {
        if frozen.contains(&process_of(definition)) {
            continue;
        }
        let Some(read) = cache.read.get(&definition.key) else {
            continue;
        };
        if let Some(problem) = &read.problem {
            lines.push(format!(
                "definition {} v{}: not read: {problem}",
                definition.process_id, definition.version
            ));
        }
        let newest = latest.get(&process_of(definition)) == Some(&definition.version);
        for element in read.elements.iter() {
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
    Ok(Round { found, lines })
}

fn unreadable(definition: &Definition, problem: String) -> Read {
    tracing::warn!(
        process = %definition.process_id,
        version = definition.version,
        "the deployed BPMN is not read: {problem}"
    );
    Read {
        elements: Arc::new(Vec::new()),
        problem: Some(problem),
    }
}
