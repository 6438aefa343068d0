//! The watchers file (`EMAIL_INBOUND_CONFIG`, docs/inbound.md): YAML or JSON, read once at start.
//!
//! Every problem is reported at once, each named by its watcher and field the way an operator
//! finds it in the file (`watchers[1].server.port: ...`), and the worker refuses to start on any
//! of them: a watcher silently left out would lose mail nobody knows about.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

pub use super::watcher::{AfterProcessing, HandOver, MessageIdFrom, Watcher};
use super::watcher::{Common, check};
use crate::mail::inputs::{Folder, Imap, Login, Pop3, Server, decode, input_schema};
use crate::mail::server::{Protocol, Target};
use crate::schema::InputSchema;
use crate::secrets::SecretProvider;

/// The file as written: connection blocks are read by protocol afterwards.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    watchers: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, bound = "")]
struct WatcherInput<P> {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    protocol: Option<String>,
    authentication: Login<P>,
    server: Server<P>,
    #[serde(default)]
    folder: Option<Folder>,
    #[serde(default)]
    unseen_only: Option<bool>,
    #[serde(default)]
    max_per_poll: Option<i64>,
    #[serde(default)]
    idle: Option<bool>,
    #[serde(default)]
    poll_interval: Option<String>,
    #[serde(default)]
    after_processing: Option<String>,
    #[serde(default)]
    move_to: Option<Value>,
    #[serde(default)]
    result_variable: Option<String>,
    #[serde(default)]
    publish_message: Option<PublishInput>,
    #[serde(default)]
    start_process: Option<StartInput>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    attachments_as: Option<String>,
    #[serde(default)]
    message_id_from: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PublishInput {
    pub(super) name: String,
    #[serde(default)]
    pub(super) correlation_key: Option<KeyInput>,
    #[serde(default)]
    pub(super) time_to_live: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct KeyInput {
    pub(super) from: String,
    #[serde(default)]
    pub(super) header: Option<String>,
    #[serde(default)]
    pub(super) pattern: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct StartInput {
    pub(super) bpmn_process_id: String,
    #[serde(default)]
    pub(super) version: Option<i32>,
}

/// Reads the file at `path`.
pub fn load(path: &str, secrets: &SecretProvider) -> Result<Vec<Watcher>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("EMAIL_INBOUND_CONFIG: cannot read {path}: {e}"))?;
    parse(&text, secrets).map_err(|e| format!("EMAIL_INBOUND_CONFIG {path}: {e}"))
}

/// Reads watchers from YAML (JSON is YAML too); every problem is listed, `; `-separated.
pub fn parse(text: &str, secrets: &SecretProvider) -> Result<Vec<Watcher>, String> {
    let value: Value =
        serde_norway::from_str(text).map_err(|e| format!("not valid YAML or JSON: {e}"))?;
    let file: File = decode(value).map_err(|e| field_path("", &e.message))?;
    let mut problems = Vec::new();
    let mut watchers = Vec::new();
    let mut names = HashSet::new();
    for (index, raw) in file.watchers.into_iter().enumerate() {
        let at = format!("watchers[{index}]");
        match watcher(raw, secrets) {
            Ok(w) => {
                if !names.insert(w.name.clone()) {
                    problems.push(format!("{at}.name: '{}' is used twice", w.name));
                }
                watchers.push(w);
            }
            Err(found) => problems.extend(found.iter().map(|p| field_path(&at, p))),
        }
    }
    if watchers.is_empty() && problems.is_empty() {
        problems.push("watchers: the list is empty".into());
    }
    if problems.is_empty() {
        Ok(watchers)
    } else {
        Err(problems.join("; "))
    }
}

/// `/server/port: text` under `watchers[1]` as `watchers[1].server.port: text`.
fn field_path(prefix: &str, problem: &str) -> String {
    let (pointer, text) = match problem.split_once(": ") {
        Some((p, t)) if p.starts_with('/') => (p, t),
        _ => ("", problem),
    };
    let mut path = prefix.to_string();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment.replace("~1", "/").replace("~0", "~"));
        }
    }
    if path.is_empty() {
        text.to_string()
    } else {
        format!("{path}: {text}")
    }
}

fn watcher(mut raw: Value, secrets: &SecretProvider) -> Result<Watcher, Vec<String>> {
    if !raw.is_object() {
        return Err(vec!["/: a watcher is an object".into()]);
    }
    let protocol = match raw.get("protocol") {
        None | Some(Value::Null) => Protocol::Imap,
        Some(Value::String(p)) if p == "imap" => Protocol::Imap,
        Some(Value::String(p)) if p == "pop3" => Protocol::Pop3,
        Some(other) => {
            return Err(vec![format!(
                "/protocol: {other} is not one of \"imap\", \"pop3\""
            )]);
        }
    };
    let mask = secrets.resolve(&mut raw).map_err(|e| vec![e.message])?;
    // The connection blocks' schemas say what their types cannot (port 1..65535, ...).
    let schema = match protocol {
        Protocol::Pop3 => connection_schema::<Pop3>(),
        _ => connection_schema::<Imap>(),
    };
    if let Err(e) = schema.and_then(|s| s.validate(&raw).map_err(|e| e.message)) {
        return Err(split_violations(&mask.apply(&e)));
    }
    let read = match protocol {
        Protocol::Pop3 => decode::<WatcherInput<Pop3>>(raw).map(|w| w.common()),
        _ => decode::<WatcherInput<Imap>>(raw).map(|w| w.common()),
    };
    let (input, target) = read.map_err(|e| vec![mask.apply(&e.message)])?;
    check(input, target, protocol, mask)
}

/// The schema of a watcher's `server` and `authentication` blocks, as jobs validate them.
fn connection_schema<P: crate::mail::inputs::ProtocolKind>() -> Result<InputSchema, String> {
    InputSchema::compile(&serde_json::json!({
        "type": "object",
        "properties": {
            "server": input_schema::<Server<P>>(),
            "authentication": input_schema::<Login<P>>(),
        }
    }))
}

/// `"/a: x; /b: y"` as `["/a: x", "/b: y"]`.
fn split_violations(text: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for piece in text.split("; /") {
        if parts.is_empty() {
            parts.push(piece.to_string());
        } else {
            parts.push(format!("/{piece}"));
        }
    }
    parts
}

impl<P: crate::mail::inputs::ProtocolKind> WatcherInput<P> {
    fn common(self) -> (Common, Target) {
        let target = Target {
            endpoint: self.server.endpoint(),
            authentication: self.authentication.authentication.clone(),
        };
        (
            Common {
                name: self.name,
                folder: self.folder,
                unseen_only: self.unseen_only,
                max_per_poll: self.max_per_poll,
                idle: self.idle,
                poll_interval: self.poll_interval,
                after_processing: self.after_processing,
                move_to: self.move_to,
                result_variable: self.result_variable,
                publish_message: self.publish_message,
                start_process: self.start_process,
                tenant_id: self.tenant_id,
                attachments_as: self.attachments_as,
                message_id_from: self.message_id_from,
            },
            target,
        )
    }
}

#[cfg(test)]
mod tests;
