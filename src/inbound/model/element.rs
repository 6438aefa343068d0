//! One discovered element in our terms: the mailbox it watches, as an entry of the watchers
//! file (so it is checked, defaulted and secret-resolved by the very code the file goes
//! through), and what it does with a mail ([`ElementTarget`]).
//!
//! Camunda's inbound Email connector (`io.camunda:connector-email-inbound:1`, also under a
//! hybrid template's own type) keeps Camunda's meaning, property for property; our own type
//! (`email:inbound:1`) takes the watchers file's fields as dotted property names
//! (`server.host`, `authentication.username`, `maxPerPoll`, ...), so everything a watcher can
//! do (IDLE, `maxPerPoll`, POP3, OAuth2, documents, `criteria`) can be modelled.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::bpmn::{Element, Kind};
use super::rest::Definition;
use crate::job::{FeelHeader, parse_iso8601_duration};

/// The inbound type of Camunda's Email connector templates.
pub const CAMUNDA_INBOUND_TYPE: &str = "io.camunda:connector-email-inbound:1";
/// The inbound type of our own templates.
pub const OUR_INBOUND_TYPE: &str = "email:inbound:1";

/// Levels of a dotted property name of our type (`server.oauth.tokenEndpoint` has three).
const MAX_LEVELS: usize = 6;

/// Camunda's default message TTL (`camunda.connector.inbound.message.ttl`).
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The properties that say what an element does with a mail rather than which mailbox it
/// watches: they never separate two elements that could share a watcher.
const ELEMENT_PROPERTIES: &[&str] = &[
    "inbound.type",
    "activationCondition",
    "inbound.activationCondition",
    "consumeUnmatchedEvents",
    "correlationKeyExpression",
    "correlationRequired",
    "messageIdExpression",
    "messageTtl",
    "deduplicationMode",
    "deduplicationModeManualFlag",
    "deduplicationId",
    "resultVariable",
    "resultExpression",
    "synchronousResponse",
];

/// What one element does with each mail of its watcher.
#[derive(Debug, Clone)]
pub struct ElementTarget {
    pub definition: Definition,
    pub element_id: String,
    pub kind: Kind,
    pub message_name: String,
    pub activation: Option<FeelHeader>,
    pub consume_unmatched: bool,
    pub correlation_key: Option<FeelHeader>,
    pub message_id: Option<FeelHeader>,
    pub time_to_live: Duration,
    pub result_variable: Option<String>,
    pub result_expression: Option<FeelHeader>,
    /// The mail in Camunda's read shape (Camunda's type) or in ours (our type).
    pub camunda_payload: bool,
}

impl ElementTarget {
    /// Names the element for good: its definition's key and its id.
    pub fn identity(&self) -> String {
        format!("{}/{}", self.definition.key, self.element_id)
    }

    /// `process v3 element`, as logs and `/readyz` name it.
    pub fn label(&self) -> String {
        format!(
            "{} v{} {}",
            self.definition.process_id, self.definition.version, self.element_id
        )
    }
}

/// The element's mailbox as a watchers-file entry (without name and hand-over) and its target.
pub struct Resolved {
    pub mailbox: Value,
    /// `deduplicationId` of MANUAL deduplication: elements with the same id share a watcher.
    pub manual_group: Option<String>,
    pub target: ElementTarget,
}

/// Reads `element` of `definition`; `camunda_type` says whose property layout it has.
pub fn resolve(
    element: &Element,
    definition: &Definition,
    camunda_type: bool,
) -> Result<Resolved, String> {
    let properties = &element.properties;
    let text = |name: &str| {
        properties
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let feel = |name: &str| -> Result<Option<FeelHeader>, String> {
        text(name)
            .map(|t| FeelHeader::parse(name, t).map_err(|e| e.message))
            .transpose()
    };
    let activation = match feel("activationCondition")? {
        Some(found) => Some(found),
        None => feel("inbound.activationCondition")?,
    };
    let correlation_key = feel("correlationKeyExpression")?;
    if element.kind.needs_key() && correlation_key.is_none() {
        return Err(
            "correlationKeyExpression is required for a message that reaches a running instance"
                .into(),
        );
    }
    let message_name = match (element.kind.is_message(), &element.message_name) {
        (false, _) => String::new(),
        (true, Some(name)) if !name.trim().is_empty() => name.clone(),
        (true, _) => return Err("the element refers to no bpmn:message with a name".into()),
    };
    let time_to_live = match text("messageTtl") {
        Some(ttl) => parse_iso8601_duration(ttl).map_err(|e| format!("messageTtl: {e}"))?,
        None => DEFAULT_TTL,
    };
    let mailbox = if camunda_type {
        camunda_mailbox(properties)?
    } else {
        our_mailbox(properties)?
    };
    let manual_group = match text("deduplicationMode") {
        Some("MANUAL") => Some(
            text("deduplicationId")
                .ok_or("deduplicationMode MANUAL needs a deduplicationId")?
                .to_string(),
        ),
        _ => None,
    };
    Ok(Resolved {
        mailbox,
        manual_group,
        target: ElementTarget {
            definition: definition.clone(),
            element_id: element.element_id.clone(),
            kind: element.kind,
            message_name,
            activation,
            consume_unmatched: text("consumeUnmatchedEvents") == Some("true"),
            correlation_key,
            message_id: feel("messageIdExpression")?,
            time_to_live,
            result_variable: text("resultVariable").map(str::to_string),
            result_expression: feel("resultExpression")?,
            camunda_payload: camunda_type,
        },
    })
}

/// Camunda's properties as a watcher: `data.imapConfig.*`, `authentication.*`,
/// `data.folderToListen`, `data.pollingWaitTime`, unseen/all polling and the handling
/// strategy. Attachments go to the document store, as Camunda's runtime uploads them.
fn camunda_mailbox(properties: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut values = BTreeMap::new();
    for (name, value) in properties {
        if name.starts_with("data.") || name.starts_with("authentication.") {
            values.insert(name.as_str(), literal(name, value.trim())?);
        }
    }
    let get = |name: &str| values.get(name).cloned().filter(|v| !v.is_empty());
    let port = match get("data.imapConfig.imapPort") {
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("data.imapConfig.imapPort: '{port}' is not a port"))?,
        ),
        None => None,
    };
    let security = match get("data.imapConfig.imapCryptographicProtocol").as_deref() {
        None | Some("TLS") | Some("SSL") => "tls",
        Some("NONE") => "none",
        Some(other) => {
            return Err(format!(
                "data.imapConfig.imapCryptographicProtocol: '{other}' is none of TLS, SSL, NONE"
            ));
        }
    };
    let mut server = json!({ "host": get("data.imapConfig.imapHost"), "security": security });
    if let Some(port) = port {
        server["port"] = json!(port);
    }
    let all = get("data.pollingConfigDiscriminator").as_deref() == Some("allPollingConfig");
    let strategy = get("data.pollingConfig.handlingStrategy")
        .unwrap_or_else(|| if all { "DELETE" } else { "READ" }.to_string());
    let mut mailbox = json!({
        "authentication": {
            "type": "simple",
            "username": get("authentication.username"),
            "password": get("authentication.password"),
        },
        "server": server,
        "folder": get("data.folderToListen").unwrap_or_else(|| "INBOX".into()),
        "unseenOnly": !all,
        "maxPerPoll": -1,
        "pollInterval": get("data.pollingWaitTime").unwrap_or_else(|| "PT20S".into()),
        "attachmentsAs": "document",
    });
    mailbox["afterProcessing"] = json!(match strategy.as_str() {
        "READ" if !all => "markRead",
        "DELETE" => "delete",
        "MOVE" => {
            let target = get("data.pollingConfig.targetFolder")
                .ok_or("data.pollingConfig.targetFolder is required for MOVE")?;
            // Camunda splits the target at dots and slashes and joins the levels with the
            // server's delimiter; our segments list says the same.
            let segments: Vec<&str> = target.split(['.', '/']).filter(|s| !s.is_empty()).collect();
            mailbox["moveTo"] = json!(segments);
            "move"
        }
        other => {
            return Err(format!(
                "data.pollingConfig.handlingStrategy: '{other}' is not allowed here"
            ));
        }
    });
    Ok(mailbox)
}

/// A property's value: as written, or, when it is a FEEL expression (`=993`, `="INBOX"`, as
/// Camunda's templates allow for host, port and folder), its value with nothing in scope.
fn literal(name: &str, value: &str) -> Result<String, String> {
    if !value.starts_with('=') {
        return Ok(value.to_string());
    }
    let expression = FeelHeader::parse(name, value).map_err(|e| e.message)?;
    let evaluated = expression
        .expression
        .evaluate_in(&[], &[], expression.expression.limits())
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(text_of(&evaluated.value).unwrap_or_default())
}

/// A FEEL value as Camunda's runtime writes a key, an id or a property: text as it is, numbers
/// and booleans as their JSON; null (or nothing) is no value.
pub(super) fn text_of(value: &feel::Value) -> Option<String> {
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

/// Our own properties as a watcher: the dotted names nest, and values that are not text in the
/// watchers file (numbers, booleans, lists, objects) are read as JSON.
fn our_mailbox(properties: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut mailbox = Map::new();
    for (name, value) in properties {
        if ELEMENT_PROPERTIES.contains(&name.as_str())
            || matches!(name.as_str(), "name" | "publishMessage" | "startProcess")
        {
            continue;
        }
        // Each dot is a level of nesting: a name with hundreds is no field of ours, and reading
        // it level by level must not run deep.
        if name.matches('.').count() > MAX_LEVELS {
            return Err(format!("{name}: no field of ours is nested this deep"));
        }
        let value = typed(name, value)?;
        insert(&mut mailbox, name, value)?;
    }
    Ok(Value::Object(mailbox))
}

/// Properties are text in BPMN; the watchers file's non-text fields are read as JSON.
fn typed(name: &str, value: &str) -> Result<Value, String> {
    const NOT_TEXT: &[&str] = &[
        "unseenOnly",
        "maxPerPoll",
        "idle",
        "criteria",
        "server.port",
        "server.timeoutSeconds",
        "server.acceptInvalidCertificates",
    ];
    let trimmed = value.trim();
    if NOT_TEXT.contains(&name) || (name == "moveTo" && trimmed.starts_with('[')) {
        if trimmed.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(trimmed).map_err(|e| format!("{name}: not JSON ({e})"))
    } else {
        Ok(Value::String(value.to_string()))
    }
}

fn insert(into: &mut Map<String, Value>, name: &str, value: Value) -> Result<(), String> {
    if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Ok(());
    }
    match name.split_once('.') {
        None => {
            into.insert(name.to_string(), value);
            Ok(())
        }
        Some((head, rest)) => {
            let inner = into
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            match inner {
                Value::Object(map) => insert(map, rest, value),
                _ => Err(format!("{name}: '{head}' is set as a value and as a block")),
            }
        }
    }
}

#[cfg(test)]
mod tests;
