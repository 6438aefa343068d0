//! Our inbound element templates: a message start event, an intermediate catch event, a
//! boundary event and a receive task that the worker's discovery serves (docs/inbound.md,
//! "Email triggers in the model").
//!
//! The mailbox fields come from the watchers file's own types (the IMAP and the POP3 watcher's
//! schemas, merged, each field shown for the protocols that have it), bound as `zeebe:property`
//! under the names the discovery reads back (`server.host`, `maxPerPoll`, ...). The element's
//! own part (activation, correlation, deduplication, output) binds the properties Camunda's
//! inbound runtime defines, with the same meaning, so a model moves between the two.

use serde_json::{Map, Value, json};

use super::{ENGINES_CAMUNDA, Offered, SCHEMA_URL, TEMPLATE_VERSION, Template, merged_fields};
use crate::inbound::config::watcher_schema;
use crate::inbound::model::OUR_INBOUND_TYPE;
use crate::mail::inputs::{Imap, Pop3};

/// Watchers-file fields the element itself supplies (its name, how it is handed over).
const FROM_THE_ELEMENT: &[&str] = &[
    "name",
    "protocol",
    "publishMessage",
    "startProcess",
    "resultVariable",
    "tenantId",
    "messageIdFrom",
];

/// The four element kinds: file suffix, label, BPMN element, and whether a key is required.
const KINDS: &[(&str, &str, &str, &[&str], bool)] = &[
    (
        "start",
        "Email Message Start Event",
        "bpmn:StartEvent",
        &["bpmn:StartEvent"],
        false,
    ),
    (
        "intermediate",
        "Email Intermediate Catch Event",
        "bpmn:IntermediateCatchEvent",
        &["bpmn:IntermediateCatchEvent", "bpmn:IntermediateThrowEvent"],
        true,
    ),
    (
        "boundary",
        "Email Boundary Event",
        "bpmn:BoundaryEvent",
        &["bpmn:BoundaryEvent"],
        true,
    ),
    (
        "receive",
        "Email Receive Task",
        "bpmn:ReceiveTask",
        &["bpmn:ReceiveTask"],
        true,
    ),
];

/// The template id of one kind.
pub fn inbound_template_id(kind: &str) -> String {
    format!("email-connector.inbound.{kind}")
}

/// The four templates.
pub fn generate() -> Result<Vec<Template>, String> {
    let mailbox = mailbox_properties()?;
    KINDS
        .iter()
        .map(|(kind, name, element, applies, keyed)| {
            let mut properties = vec![
                json!({
                    "id": "inboundType",
                    "type": "Hidden",
                    "value": OUR_INBOUND_TYPE,
                    "binding": { "type": "zeebe:property", "name": "inbound.type" }
                }),
                json!({
                    "id": "protocol",
                    "label": "Protocol",
                    "type": "Dropdown",
                    "value": "imap",
                    "choices": [
                        { "name": "IMAP (IDLE or polling)", "value": "imap" },
                        { "name": "POP3 (polling)", "value": "pop3" }
                    ],
                    "group": "server",
                    "binding": { "type": "zeebe:property", "name": "protocol" }
                }),
            ];
            properties.extend(mailbox.iter().cloned());
            properties.extend(element_properties(*keyed));
            let mut element_type = json!({ "value": element });
            if *element != "bpmn:ReceiveTask" {
                element_type["eventDefinition"] = json!("bpmn:MessageEventDefinition");
            }
            Ok(Template {
                file_name: format!("email-inbound-{kind}.json"),
                content: json!({
                    "$schema": SCHEMA_URL,
                    "name": format!("{name} (email connector)"),
                    "id": inbound_template_id(kind),
                    "description": "Hands each new mail of a mailbox to the process, once; \
                                    served by the email connector's worker with \
                                    EMAIL_INBOUND_FROM_MODELS=true",
                    "version": TEMPLATE_VERSION,
                    "keywords": ["email", "mail", "inbound", "IMAP", "POP3", "IDLE"],
                    "category": { "id": "connectors", "name": "Connectors" },
                    "appliesTo": applies,
                    "elementType": element_type,
                    "engines": { "camunda": ENGINES_CAMUNDA },
                    "groups": [
                        { "id": "authentication", "label": "Authentication" },
                        { "id": "server", "label": "Server" },
                        { "id": "mailbox", "label": "Mailbox" },
                        { "id": "activation", "label": "Activation" },
                        { "id": "correlation", "label": "Correlation" },
                        { "id": "deduplication", "label": "Deduplication" },
                        { "id": "output", "label": "Output mapping" }
                    ],
                    "properties": properties
                }),
            })
        })
        .collect()
}

/// The watcher's fields as `zeebe:property` bindings, each shown for the protocols that have
/// it. Properties are text to the engine and never evaluated by it, so no field is FEEL here.
fn mailbox_properties() -> Result<Vec<Value>, String> {
    let offered = [
        Offered {
            job_type: "imap",
            schema: mailbox_schema(watcher_schema::<Imap>()),
            title: "IMAP".into(),
        },
        Offered {
            job_type: "pop3",
            schema: mailbox_schema(watcher_schema::<Pop3>()),
            title: "POP3".into(),
        },
    ];
    let fields = merged_fields(&offered, "mailbox")?;
    let mut properties = Vec::new();
    for field in fields {
        let mut property = field.into_property(&["imap", "pop3"]);
        let Some(object) = property.as_object_mut() else {
            continue;
        };
        object.remove("feel");
        if object.get("value").is_some_and(Value::is_null) {
            object.remove("value");
        }
        if let Some(binding) = object.get_mut("binding")
            && let Some(name) = binding.get("name").cloned()
        {
            *binding = json!({ "type": "zeebe:property", "name": name });
        }
        // Numbers are text in a property; the discovery reads them back as numbers.
        if object.get("type") == Some(&json!("Number")) {
            object.insert("type".into(), json!("String"));
            if let Some(value) = object.get("value").cloned()
                && !value.is_string()
            {
                object.insert("value".into(), json!(value.to_string()));
            }
        }
        rename_condition(object);
        properties.push(property);
    }
    Ok(properties)
}

/// A watcher's schema without the fields the element supplies.
fn mailbox_schema(mut schema: Value) -> Value {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.retain(|name, _| !FROM_THE_ELEMENT.contains(&name.as_str()));
    }
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|name| {
            name.as_str()
                .is_some_and(|n| !FROM_THE_ELEMENT.contains(&n))
        });
    }
    schema
}

/// The operation picker's condition becomes the protocol dropdown's.
fn rename_condition(object: &mut Map<String, Value>) {
    fn visit(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if map.get("property") == Some(&json!("operation")) {
                    map.insert("property".into(), json!("protocol"));
                }
                map.values_mut().for_each(visit);
            }
            Value::Array(items) => items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    if let Some(condition) = object.get_mut("condition") {
        visit(condition);
    }
}

/// Activation, correlation, deduplication and output: Camunda's inbound properties.
fn element_properties(keyed: bool) -> Vec<Value> {
    let mut properties = vec![
        json!({
            "id": "activationCondition",
            "label": "Activation condition",
            "tooltip": "FEEL over the mail (subject, fromAddress, plainTextBody, headers, ...): \
                        the element gets the mail only when it is true. Empty: every mail.",
            "optional": true,
            "feel": "required",
            "type": "String",
            "group": "activation",
            "binding": { "type": "zeebe:property", "name": "activationCondition" }
        }),
        json!({
            "id": "consumeUnmatchedEvents",
            "label": "Consume unmatched mail",
            "tooltip": "When no element on this mailbox takes a mail, handle it anyway (mark, \
                        move or delete it). Off: it stays as it is.",
            "value": true,
            "type": "Boolean",
            "group": "activation",
            "binding": { "type": "zeebe:property", "name": "consumeUnmatchedEvents" }
        }),
    ];
    if keyed {
        properties.push(json!({
            "id": "correlationKeyProcess",
            "label": "Correlation key (process)",
            "tooltip": "FEEL over the process variables: the value a mail's key must equal.",
            "constraints": { "notEmpty": true },
            "feel": "required",
            "type": "String",
            "group": "correlation",
            "binding": { "type": "bpmn:Message#zeebe:subscription#property", "name": "correlationKey" }
        }));
    }
    let mut key = json!({
        "id": "correlationKeyPayload",
        "label": "Correlation key (mail)",
        "tooltip": "FEEL over the mail giving its key, e.g. =inReplyTo or =subject.",
        "feel": "required",
        "type": "String",
        "group": "correlation",
        "binding": { "type": "zeebe:property", "name": "correlationKeyExpression" }
    });
    if keyed {
        key["constraints"] = json!({ "notEmpty": true });
    } else {
        key["optional"] = json!(true);
    }
    properties.push(key);
    properties.extend([
        json!({
            "id": "messageIdExpression",
            "label": "Message ID expression",
            "tooltip": "FEEL over the mail giving Zeebe's message id (a second publish with the \
                        same id is dropped). Empty: the Message-ID header.",
            "optional": true,
            "feel": "required",
            "type": "String",
            "group": "correlation",
            "binding": { "type": "zeebe:property", "name": "messageIdExpression" }
        }),
        json!({
            "id": "messageTtl",
            "label": "Message TTL",
            "tooltip": "ISO-8601 duration the message is buffered. Empty: PT1H.",
            "optional": true,
            "constraints": {
                "notEmpty": false,
                "pattern": { "value": "^(P.*|)$", "message": "must be an ISO-8601 duration" }
            },
            "type": "String",
            "group": "correlation",
            "binding": { "type": "zeebe:property", "name": "messageTtl" }
        }),
        json!({
            "id": "messageNameUuid",
            "label": "Message name",
            "generatedValue": { "type": "uuid" },
            "type": "String",
            "group": "correlation",
            "binding": { "type": "bpmn:Message#property", "name": "name" }
        }),
        json!({
            "id": "deduplicationModeManualFlag",
            "label": "Manual deduplication",
            "tooltip": "Elements on the same mailbox share one watcher by themselves; with an \
                        id, elements with the same id share one.",
            "value": false,
            "type": "Boolean",
            "group": "deduplication",
            "binding": { "type": "zeebe:property", "name": "deduplicationModeManualFlag" }
        }),
        json!({
            "id": "deduplicationId",
            "label": "Deduplication ID",
            "constraints": {
                "notEmpty": true,
                "pattern": { "value": "^[a-zA-Z0-9_-]+$", "message": "letters, digits, - and _ only" }
            },
            "type": "String",
            "group": "deduplication",
            "binding": { "type": "zeebe:property", "name": "deduplicationId" },
            "condition": { "property": "deduplicationModeManualFlag", "equals": true }
        }),
        json!({
            "id": "deduplicationModeManual",
            "type": "Hidden",
            "value": "MANUAL",
            "group": "deduplication",
            "binding": { "type": "zeebe:property", "name": "deduplicationMode" },
            "condition": { "property": "deduplicationId", "isActive": true }
        }),
        json!({
            "id": "deduplicationModeAuto",
            "type": "Hidden",
            "value": "AUTO",
            "group": "deduplication",
            "binding": { "type": "zeebe:property", "name": "deduplicationMode" },
            "condition": { "property": "deduplicationId", "isActive": false }
        }),
        json!({
            "id": "resultVariable",
            "label": "Result variable",
            "tooltip": "The process variable the mail is stored in (our read response's shape).",
            "value": "email",
            "type": "String",
            "group": "output",
            "binding": { "type": "zeebe:property", "name": "resultVariable" }
        }),
        json!({
            "id": "resultExpression",
            "label": "Result expression",
            "tooltip": "FEEL context whose entries become process variables; the mail's fields \
                        are in scope by name and as response.",
            "feel": "required",
            "type": "Text",
            "group": "output",
            "binding": { "type": "zeebe:property", "name": "resultExpression" }
        }),
    ]);
    properties
}
