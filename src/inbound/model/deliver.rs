//! One mail to the elements of a discovered watcher, by Camunda's inbound rules: each element's
//! activation condition over the mail decides whether it gets the mail; every element that
//! matches gets it (a message start, intermediate, boundary or receive element by
//! PublishMessage, a plain start event by CreateProcessInstance of its version); when none
//! matches, the mail is consumed if an element says `consumeUnmatchedEvents`, and else left as
//! it was.
//!
//! The mail counts as accepted only when every matching element's command was; a refusal
//! leaves it for the next round, where a message already published is refused by Zeebe as a
//! duplicate (same name and message id) and counts as accepted.

use std::sync::Arc;

use serde_json::{Map, Value};
use tonic::Code;

use super::Elements;
use super::element::ElementTarget;
use crate::dropin::mapping::Action;
use crate::dropin::responses::camunda_response;
use crate::gateway::GatewayClient;
use crate::gateway::proto::{CreateProcessInstanceRequest, PublishMessageRequest};
use crate::inbound::config::Watcher;
use crate::inbound::handover::{Mail, Verdict, verdict};
use crate::job::FeelHeader;

/// Zeebe's name of the default tenant, which a gateway without multi-tenancy knows as "".
const DEFAULT_TENANT: &str = "<default>";

/// Hands `mail` to those of `targets` whose activation condition holds.
pub async fn hand_over(
    gateway: &GatewayClient,
    watcher: &Watcher,
    mail: &Mail,
    elements: &Elements,
) -> Verdict {
    let targets = elements.current();
    let camunda = Arc::new(camunda_response(
        Action::ImapRead,
        &mail.response,
        &Map::new(),
    ));
    let ours = Arc::new(mail.described(watcher));
    let mut matched = Vec::new();
    for target in targets.iter() {
        let payload = if target.camunda_payload {
            &camunda
        } else {
            &ours
        };
        match activated(target, payload).await {
            Ok(true) => matched.push((target, payload)),
            Ok(false) => elements.count(target, "not_activated"),
            Err(reason) => {
                elements.count(target, "rejected");
                return Verdict::Rejected(watcher.mask.apply(&format!(
                    "{}: activationCondition: {reason}",
                    target.label()
                )));
            }
        }
    }
    if matched.is_empty() {
        return if targets.iter().any(|t| t.consume_unmatched) {
            Verdict::Consumed
        } else {
            Verdict::Unmatched
        };
    }
    let mut all_duplicates = true;
    let mut rejected = None;
    for (target, payload) in matched {
        match one(gateway, watcher, mail, target, payload).await {
            Verdict::Accepted { duplicate } => {
                all_duplicates &= duplicate;
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
            Verdict::Refused(reason) => return Verdict::Refused(reason),
            other => {
                elements.count(target, "rejected");
                rejected = Some(other);
            }
        }
    }
    rejected.unwrap_or(Verdict::Accepted {
        duplicate: all_duplicates,
    })
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

/// The command of one element, sent.
async fn one(
    gateway: &GatewayClient,
    watcher: &Watcher,
    mail: &Mail,
    target: &ElementTarget,
    payload: &Arc<Value>,
) -> Verdict {
    let label = target.label();
    let rejected =
        |what: String| Verdict::Rejected(watcher.mask.apply(&format!("{label}: {what}")));
    let variables = match crate::worker::shape::inbound_variables(
        target.result_variable.as_deref(),
        target.result_expression.as_ref(),
        (**payload).clone(),
        &watcher.mask,
    )
    .await
    {
        Ok(variables) => Value::Object(variables).to_string(),
        Err(e) => return rejected(e.message),
    };
    let tenant_id = match target.definition.tenant_id.as_str() {
        DEFAULT_TENANT => String::new(),
        other => other.to_string(),
    };
    if !target.kind.is_message() {
        let request = CreateProcessInstanceRequest {
            process_definition_key: target.definition.key,
            bpmn_process_id: target.definition.process_id.clone(),
            version: target.definition.version,
            variables,
            tenant_id,
        };
        return match gateway.create_process_instance(request).await {
            Ok(_) => Verdict::Accepted { duplicate: false },
            Err(status) => verdict(&status),
        };
    }
    let correlation_key = match &target.correlation_key {
        None => String::new(),
        Some(expression) => match evaluate(expression, payload).await {
            Ok(value) => match text_of(&value) {
                Some(key) => key,
                None if !target.kind.needs_key() => String::new(),
                None => return rejected("correlationKeyExpression gave no key".into()),
            },
            Err(reason) => return rejected(format!("correlationKeyExpression: {reason}")),
        },
    };
    let message_id = match &target.message_id {
        Some(expression) => match evaluate(expression, payload).await {
            Ok(value) => text_of(&value).unwrap_or_else(|| mail.message_id(watcher)),
            Err(reason) => return rejected(format!("messageIdExpression: {reason}")),
        },
        None => mail.message_id(watcher),
    };
    let request = PublishMessageRequest {
        name: target.message_name.clone(),
        correlation_key,
        time_to_live: i64::try_from(target.time_to_live.as_millis()).unwrap_or(i64::MAX),
        message_id,
        variables,
        tenant_id,
    };
    match gateway.publish_message(request).await {
        Ok(_) => Verdict::Accepted { duplicate: false },
        Err(status) if status.code() == Code::AlreadyExists => {
            Verdict::Accepted { duplicate: true }
        }
        Err(status) => verdict(&status),
    }
}

/// A key or id as Camunda's runtime writes it: text as it is, numbers and booleans as their
/// JSON; null (or nothing) is no value.
fn text_of(value: &feel::Value) -> Option<String> {
    match value {
        feel::Value::Null => None,
        feel::Value::String(text) => Some(text.to_string()),
        other => match other.to_json() {
            Value::Null => None,
            Value::String(text) => Some(text),
            json => Some(json.to_string()),
        },
    }
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
