//! Camunda Modeler element templates, generated from the operations' input definitions.
//!
//! One template per protocol. Its first property, the operation, is bound to the task's job
//! type, and every other property is shown only for the operations whose schema declares it, so
//! the modeler sees exactly the fields the worker validates. Adding an operation to the
//! [`Registry`] adds it to its protocol's template; adding a field to a schema adds it to the
//! template. Nothing here names a field of an operation.
//!
//! What a field's schema says, and what it becomes:
//! - `title` → label; `description` → tooltip; `default` → initial value; `examples[0]` →
//!   placeholder; required (by the parent, or by an `allOf`/`then` branch) → `notEmpty`.
//! - `enum` → Dropdown (`null` in the enum only means "may be unset"); `boolean` → Boolean;
//!   `integer` → Number; `string` → String; anything else (lists, objects, either) must say how it
//!   is entered through `x-template.feel`.
//! - An object with `properties` (`server`, `authentication`) is a group of its own whose
//!   fields bind to `block.field`.
//!
//! `x-template` keys: `feel` (`optional` | `required`), `multiline` (a Text area), `choices`
//! (enum value → label), `hint` (text shown under the field), `when` (`{ sibling: [values] }`:
//! shown only while a field of the same block has one of the values) and `defaultBy`
//! (`{ sibling: { value: default } }`: one variant of the field per value of the sibling, each
//! with its own default, such as the port by security).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ErrorCode;
use crate::mail::server::Protocol;
use crate::registry::{Registered, Registry};

mod fields;
pub mod inbound;
use fields::{condition, walk};

/// Bumped whenever a template changes in a way a modeler should be offered to upgrade to.
pub const TEMPLATE_VERSION: u32 = 1;

/// Camunda versions the templates are for. 8.8 is the first that maps an input left empty to
/// null, which the worker reads as "not set"; older engines would need `optional` inputs.
pub const ENGINES_CAMUNDA: &str = "^8.8";

const SCHEMA_URL: &str =
    "https://unpkg.com/@camunda/zeebe-element-templates-json-schema/resources/schema.json";

const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="18" height="18" viewBox="0 0 18 18"><rect x="1.5" y="3.5" width="15" height="11" rx="1.5" fill="#ffffff" stroke="#1f5fbf" stroke-width="1.5"/><path d="M2.2 4.6 9 9.8l6.8-5.2" fill="none" stroke="#1f5fbf" stroke-width="1.5" stroke-linejoin="round"/></svg>"##;

/// A generated template and the file name it is kept under in `element-templates/`.
pub struct Template {
    pub file_name: String,
    pub content: Value,
}

impl Template {
    /// The file's bytes: pretty JSON with a final newline, stable from run to run.
    pub fn text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.content).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The templates for every protocol the registry serves, in protocol order, then the inbound
/// templates (see [`inbound`]).
pub fn generate(registry: &Registry) -> Result<Vec<Template>, String> {
    let mut templates = job_templates(registry)?;
    templates.extend(inbound::generate()?);
    Ok(templates)
}

fn job_templates(registry: &Registry) -> Result<Vec<Template>, String> {
    [Protocol::Smtp, Protocol::Imap, Protocol::Pop3]
        .into_iter()
        .filter_map(|protocol| {
            let entries: Vec<&Registered> = registry
                .entries()
                .iter()
                .filter(|e| e.operation.protocol() == protocol)
                .collect();
            (!entries.is_empty()).then(|| template(protocol, &offered(&entries)?))
        })
        .collect()
}

/// The template id of a protocol's template, as the `elementTemplateId` header carries it.
pub fn template_id(protocol: Protocol) -> String {
    format!("email-connector.{}", protocol.name())
}

/// An operation as its template offers it: job type, schema (built once) and title.
struct Offered<'a> {
    job_type: &'a str,
    schema: Value,
    title: String,
}

fn offered<'a>(entries: &[&'a Registered]) -> Result<Vec<Offered<'a>>, String> {
    entries
        .iter()
        .map(|e| {
            let schema = e.operation.schema();
            let title = schema["title"]
                .as_str()
                .ok_or_else(|| format!("the schema of {} has no title", e.job_type))?
                .to_string();
            Ok(Offered {
                job_type: &e.job_type,
                schema,
                title,
            })
        })
        .collect()
}

fn template(protocol: Protocol, operations: &[Offered]) -> Result<Template, String> {
    let upper = protocol.name().to_uppercase();
    let (work_group, work_label, description) = match protocol {
        Protocol::Smtp => ("message", "Message", "Send email over SMTP".to_string()),
        _ => (
            "mailbox",
            "Mailbox",
            format!("Read and manage a mailbox over {upper}"),
        ),
    };
    let mut properties = vec![operation_property(operations)];
    let all_types: Vec<&str> = operations.iter().map(|o| o.job_type).collect();
    for field in merged_fields(operations, work_group)? {
        properties.push(field.into_property(&all_types));
    }
    properties.extend(standard_tail(protocol));
    let icon = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(ICON_SVG)
    );
    let mut keywords = vec!["email".to_string(), "mail".to_string(), upper.clone()];
    keywords.extend(operations.iter().map(|o| o.title.to_lowercase()));
    let content = json!({
        "$schema": SCHEMA_URL,
        "name": format!("Email ({upper})"),
        "id": template_id(protocol),
        "description": description,
        "version": TEMPLATE_VERSION,
        "keywords": keywords,
        "category": { "id": "connectors", "name": "Connectors" },
        "appliesTo": ["bpmn:Task"],
        "elementType": { "value": "bpmn:ServiceTask" },
        "engines": { "camunda": ENGINES_CAMUNDA },
        "icon": { "contents": icon },
        "groups": [
            { "id": "operation", "label": "Operation" },
            { "id": "authentication", "label": "Authentication" },
            { "id": "server", "label": "Server" },
            { "id": work_group, "label": work_label },
            { "id": "output", "label": "Output mapping" },
            { "id": "error", "label": "Error handling" },
            { "id": "retries", "label": "Retries" }
        ],
        "properties": properties
    });
    Ok(Template {
        file_name: format!("email-{}.json", protocol.name()),
        content,
    })
}

/// The operation picker: its value is the task's job type.
fn operation_property(operations: &[Offered]) -> Value {
    let choices: Vec<Value> = operations
        .iter()
        .map(|o| json!({ "name": o.title, "value": o.job_type }))
        .collect();
    json!({
        "id": "operation",
        "label": "Operation",
        "tooltip": "What the task does. It sets the task's job type, to which the worker \
                    subscribes, and shows the operation's fields.",
        "type": "Dropdown",
        "value": operations.first().map(|o| o.job_type),
        "choices": choices,
        "group": "operation",
        "binding": { "type": "zeebe:taskDefinition", "property": "type" }
    })
}

/// One template property before it learns which operations show it.
struct Field {
    id: String,
    property: Map<String, Value>,
    /// Conditions on sibling fields (`when`, `defaultBy`), already in template form.
    siblings: Vec<Value>,
    job_types: Vec<String>,
}

impl Field {
    fn into_property(self, all_types: &[&str]) -> Value {
        let mut conditions = Vec::new();
        if self.job_types.len() < all_types.len() {
            conditions.push(condition("operation", &self.job_types));
        }
        conditions.extend(self.siblings);
        let mut property = Map::new();
        property.insert("id".into(), json!(self.id));
        property.extend(self.property);
        match conditions.len() {
            0 => {}
            1 => {
                property.insert("condition".into(), conditions.remove(0));
            }
            _ => {
                property.insert("condition".into(), json!({ "allMatch": conditions }));
            }
        }
        Value::Object(property)
    }
}

/// Every operation's fields, with fields that are the same in several operations shown once
/// (so switching between them keeps what the user typed). Order: first appearance.
fn merged_fields(operations: &[Offered], work_group: &str) -> Result<Vec<Field>, String> {
    let mut fields: Vec<Field> = Vec::new();
    for operation in operations {
        let mut own = Vec::new();
        walk(&operation.schema, "", work_group, &mut own)
            .map_err(|e| format!("{}: {e}", operation.job_type))?;
        for (id, property, siblings) in own {
            let same = fields
                .iter_mut()
                .find(|f| f.id == id && f.property == property && f.siblings == siblings);
            match same {
                Some(field) => field.job_types.push(operation.job_type.to_string()),
                None => fields.push(Field {
                    id,
                    property,
                    siblings,
                    job_types: vec![operation.job_type.to_string()],
                }),
            }
        }
    }
    // A path shown differently by two operations needs two ids; the later ones get the
    // operation's action as a suffix.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for field in &mut fields {
        let count = seen.entry(field.id.clone()).or_default();
        if *count > 0 {
            let action = field.job_types[0].split(':').nth(2).unwrap_or("variant");
            field.id = format!("{}-{action}", field.id);
        }
        *count += 1;
    }
    Ok(fields)
}

/// What every Camunda connector template ends with: output, error handling, retries, and the
/// headers that tell which template (and version) made the task.
fn standard_tail(protocol: Protocol) -> Vec<Value> {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    vec![
        json!({
            "id": "resultVariable",
            "label": "Result variable",
            "tooltip": "The process variable the response is stored in. Empty: the job \
                        completes without variables.",
            "placeholder": format!("{}Result", protocol.name()),
            "type": "String",
            "group": "output",
            "binding": { "type": "zeebe:taskHeader", "key": "resultVariable" }
        }),
        json!({
            "id": "resultExpression",
            "label": "Result expression",
            "tooltip": "FEEL context whose entries become process variables. The response is \
                        in scope as response, and its fields by name: = { subject: \
                        response.subject }. With a result variable as well, both are set and \
                        the expression's entries win.",
            "feel": "required",
            "type": "Text",
            "group": "output",
            "binding": { "type": "zeebe:taskHeader", "key": "resultExpression" }
        }),
        json!({
            "id": "errorExpression",
            "label": "Error expression",
            "tooltip": "FEEL, evaluated after every run: error (code, message, type) is in \
                        scope on failure, response on success, and job.retries. \
                        bpmnError(code, message[, variables]) throws a BPMN error; \
                        jobError(message[, variables, retries, retryBackoff]) fails the job \
                        (retries 0 unless given); ignoreError([variables]) completes it; null \
                        keeps the outcome. Decides before the codes below.",
            "feel": "required",
            "type": "Text",
            "group": "error",
            "binding": { "type": "zeebe:taskHeader", "key": "errorExpression" }
        }),
        json!({
            "id": "bpmnErrors",
            "label": "Throw as BPMN errors",
            "tooltip": format!(
                "Comma-separated error codes to throw as BPMN errors with that code, so an \
                 error boundary event can catch them; * for every code. Other failures become \
                 retries or incidents. Codes: {}.",
                codes.join(", ")
            ),
            "placeholder": "EMAIL_NOT_FOUND, FOLDER_NOT_FOUND",
            "type": "String",
            "group": "error",
            "binding": { "type": "zeebe:taskHeader", "key": "bpmnErrors" }
        }),
        json!({
            "id": "retries",
            "label": "Retries",
            "tooltip": "Attempts for temporary failures (connection, timeout, server busy). \
                        Invalid input, rejected logins and missing mail fail at once.",
            "value": "3",
            "type": "String",
            "group": "retries",
            "binding": { "type": "zeebe:taskDefinition", "property": "retries" }
        }),
        json!({
            "id": "retryBackoff",
            "label": "Retry backoff",
            "tooltip": "ISO-8601 duration to wait before the next attempt.",
            "value": "PT30S",
            "type": "String",
            "group": "retries",
            "binding": { "type": "zeebe:taskHeader", "key": "retryBackoff" }
        }),
        json!({
            "id": "jobTimeout",
            "label": "Job timeout",
            "tooltip": "ISO-8601 duration after which Zeebe hands the job to another worker. \
                        Empty: the worker's default.",
            "placeholder": "PT5M",
            "type": "String",
            "group": "retries",
            "binding": { "type": "zeebe:taskHeader", "key": "jobTimeout" }
        }),
        json!({
            "id": "elementTemplateId",
            "type": "Hidden",
            "value": template_id(protocol),
            "binding": { "type": "zeebe:taskHeader", "key": "elementTemplateId" }
        }),
        json!({
            "id": "elementTemplateVersion",
            "type": "Hidden",
            "value": TEMPLATE_VERSION.to_string(),
            "binding": { "type": "zeebe:taskHeader", "key": "elementTemplateVersion" }
        }),
    ]
}
