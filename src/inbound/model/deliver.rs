//! One mail to the elements of a discovered watcher, by Camunda's inbound rules: each element's
//! activation condition over the mail decides whether it gets the mail; every element that
//! matches gets it (a message start, intermediate, boundary or receive element by
//! PublishMessage, a plain start event by CreateProcessInstance of its version); when none
//! matches, the mail is consumed if an element says `consumeUnmatchedEvents`, and else left as
//! it was.
//!
//! Nothing twice, nothing lost, with several elements:
//! - the mail counts as accepted only when every matching element's command was; the elements
//!   that accepted are remembered by the watcher (see [`Elements::accepted`]), so a retry
//!   after a refusal sends only what is missing, never a second CreateProcessInstance;
//! - two elements that catch the same message name with the same key share one publish; with
//!   different keys, the second gets a message id of its own (the id and a digest of the key),
//!   so Zeebe does not drop it as a duplicate of the first;
//! - an `ALREADY_EXISTS` is taken as "Zeebe has it" only when this watcher did not publish that
//!   name and id for another mail (the watcher's ledger): a sender cannot make a mail vanish by
//!   copying another's Message-ID.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tonic::Code;

use super::Elements;
use super::element::{ElementTarget, text_of};
use crate::dropin::mapping::Action;
use crate::dropin::responses::camunda_response;
use crate::gateway::GatewayClient;
use crate::gateway::proto::{CreateProcessInstanceRequest, PublishMessageRequest};
use crate::inbound::config::Watcher;
use crate::inbound::handover::{Mail, Verdict, hex_sha256, verdict};
use crate::inbound::ledger::Ledger;
use crate::job::FeelHeader;

/// Hands `mail` to those of the watcher's elements whose activation condition holds.
pub async fn hand_over(
    gateway: &GatewayClient,
    watcher: &Watcher,
    mail: &Mail,
    elements: &Elements,
    ledger: &mut Ledger,
) -> Verdict {
    let targets = elements.current();
    let camunda = Arc::new(camunda_response(
        Action::ImapRead,
        &mail.response,
        &Map::new(),
    ));
    let ours = Arc::new(mail.described(watcher));
    let mut matched = Vec::new();
    let mut failed = false;
    for target in targets.iter() {
        let payload = if target.camunda_payload {
            &camunda
        } else {
            &ours
        };
        match activated(target, payload).await {
            Ok(true) => matched.push((target, payload)),
            Ok(false) => elements.count(target, "not_activated"),
            // One element's broken condition must not keep the mail from the others.
            Err(reason) => {
                failed = true;
                elements.count(target, "rejected");
                tracing::warn!(
                    watcher = %watcher.name,
                    element = %target.label(),
                    mail = %mail.place,
                    "activationCondition failed, the element does not get the mail: {}",
                    watcher.mask.apply(&reason)
                );
            }
        }
    }
    if matched.is_empty() {
        return if !failed && targets.iter().any(|t| t.consume_unmatched) {
            Verdict::Consumed
        } else {
            Verdict::Unmatched
        };
    }
    let header_id = mail.message_id(watcher);
    let content = mail.content_digest();
    let done = elements.accepted(&mail.place);
    // (message name, message id) → the key already published under it for this mail.
    let mut published: HashMap<(String, String), String> = HashMap::new();
    let mut all_duplicates = true;
    let mut rejected = None;
    for (target, payload) in matched {
        if done.contains(&target.identity()) {
            continue;
        }
        let command = match command(watcher, target, payload, &header_id).await {
            Ok(command) => command,
            Err(reason) => {
                elements.count(target, "rejected");
                rejected = Some(Verdict::Rejected(reason));
                continue;
            }
        };
        let outcome = match command {
            Command::Create(request) => match gateway.create_process_instance(request).await {
                Ok(_) => Verdict::Accepted { duplicate: false },
                Err(status) => verdict(&status),
            },
            Command::Publish(mut request) => {
                let slot = (request.name.clone(), request.message_id.clone());
                match published.get(&slot) {
                    Some(key) if *key == request.correlation_key => {
                        // The same message serves both elements.
                        elements.note_accepted(&mail.place, target);
                        continue;
                    }
                    Some(_) => request.message_id = keyed_id(&request),
                    None => {}
                }
                published.insert(
                    (request.name.clone(), request.message_id.clone()),
                    request.correlation_key.clone(),
                );
                publish(gateway, request, mail, &content, ledger).await
            }
        };
        match outcome {
            Verdict::Accepted { duplicate } => {
                all_duplicates &= duplicate;
                elements.note_accepted(&mail.place, target);
                elements.count(
                    target,
                    if duplicate {
                        "duplicate"
                    } else {
                        "handed_over"
                    },
                );
                tracing::info!(
                    watcher = %watcher.name,
                    element = %target.label(),
                    mail = %mail.place,
                    duplicate,
                    "mail handed to element"
                );
            }
            Verdict::Rejected(reason) => {
                elements.count(target, "rejected");
                rejected = Some(Verdict::Rejected(format!("{}: {reason}", target.label())));
            }
            // Refused or held: the mail stays; what was accepted is remembered.
            other => return other,
        }
    }
    if let Some(rejected) = rejected {
        return rejected;
    }
    elements.forget(&mail.place);
    Verdict::Accepted {
        duplicate: all_duplicates,
    }
}

enum Command {
    Publish(PublishMessageRequest),
    Create(CreateProcessInstanceRequest),
}

async fn activated(target: &ElementTarget, payload: &Arc<Value>) -> Result<bool, String> {
    let Some(condition) = &target.activation else {
        return Ok(true);
    };
    Ok(matches!(
        evaluate(condition, payload).await?,
        feel::Value::Bool(true)
    ))
}

/// The command of one element, or why this mail cannot reach it (masked, naming the element).
async fn command(
    watcher: &Watcher,
    target: &ElementTarget,
    payload: &Arc<Value>,
    header_id: &str,
) -> Result<Command, String> {
    let label = target.label();
    let problem = |what: String| watcher.mask.apply(&format!("{label}: {what}"));
    let variables = crate::worker::shape::inbound_variables(
        target.result_variable.as_deref(),
        target.result_expression.as_ref(),
        (**payload).clone(),
        &watcher.mask,
    )
    .await
    .map_err(|e| problem(e.message))?;
    let variables = Value::Object(variables).to_string();
    // The definition's own tenant, `<default>` included: a gateway accepts it with and
    // without multi-tenancy, where an empty one is refused when multi-tenancy is on.
    let tenant_id = target.definition.tenant_id.clone();
    if !target.kind.is_message() {
        return Ok(Command::Create(CreateProcessInstanceRequest {
            process_definition_key: target.definition.key,
            bpmn_process_id: target.definition.process_id.clone(),
            version: target.definition.version,
            variables,
            tenant_id,
        }));
    }
    let correlation_key = match &target.correlation_key {
        None => String::new(),
        Some(expression) => match evaluate(expression, payload).await {
            Ok(value) => match text_of(&value) {
                Some(key) => key,
                None if !target.kind.needs_key() => String::new(),
                None => return Err(problem("correlationKeyExpression gave no key".into())),
            },
            Err(reason) => return Err(problem(format!("correlationKeyExpression: {reason}"))),
        },
    };
    let message_id = match &target.message_id {
        Some(expression) => match evaluate(expression, payload).await {
            Ok(value) => text_of(&value).unwrap_or_else(|| header_id.to_string()),
            Err(reason) => return Err(problem(format!("messageIdExpression: {reason}"))),
        },
        None => header_id.to_string(),
    };
    Ok(Command::Publish(PublishMessageRequest {
        name: target.message_name.clone(),
        correlation_key,
        time_to_live: i64::try_from(target.time_to_live.as_millis()).unwrap_or(i64::MAX),
        message_id,
        variables,
        tenant_id,
    }))
}

/// Publishes; an `ALREADY_EXISTS` counts as accepted unless this watcher published that name
/// and id for another mail, which holds this one back.
async fn publish(
    gateway: &GatewayClient,
    request: PublishMessageRequest,
    mail: &Mail,
    content: &str,
    ledger: &mut Ledger,
) -> Verdict {
    let entry = format!("{}\u{0}{}", request.name, request.message_id);
    let ttl = std::time::Duration::from_millis(u64::try_from(request.time_to_live).unwrap_or(0));
    let guarded = !request.message_id.is_empty() && !ttl.is_zero();
    match gateway.publish_message(request).await {
        Ok(_) => {
            if guarded {
                ledger.record(&entry, &mail.place, content, ttl);
            }
            Verdict::Accepted { duplicate: false }
        }
        Err(status) if status.code() == Code::AlreadyExists => {
            if guarded && ledger.collision(&entry, &mail.place, content).is_some() {
                Verdict::Held
            } else {
                Verdict::Accepted { duplicate: true }
            }
        }
        Err(status) => verdict(&status),
    }
}

/// A message id of its own for a second key under one name and id: the id and 16 hex digits
/// of a digest of the key, the same on every replica.
fn keyed_id(request: &PublishMessageRequest) -> String {
    let hex = hex_sha256(request.correlation_key.as_bytes());
    format!("{}#{}", request.message_id, &hex[..16])
}

/// Evaluates `expression` with the payload's fields at the top level, off the runtime's
/// threads (a model's expression may use its whole step and time budget).
async fn evaluate(expression: &FeelHeader, payload: &Arc<Value>) -> Result<feel::Value, String> {
    let parsed = expression.expression.clone();
    let payload = payload.clone();
    tokio::task::spawn_blocking(move || {
        parsed
            .evaluate_in(&[], &[&payload], parsed.limits())
            .map(|evaluation| evaluation.value)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the evaluation stopped unexpectedly: {e}"))?
}
