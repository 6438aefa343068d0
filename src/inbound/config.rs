//! The watchers file (`EMAIL_INBOUND_CONFIG`, SPEC §9): YAML or JSON, read once at start.
//!
//! Every problem is reported at once, each named by its watcher and field the way an operator
//! finds it in the file (`watchers[1].server.port: ...`), and the worker refuses to start on any
//! of them: a watcher silently left out would lose mail nobody knows about.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::correlation::{KeyRule, KeySource};
use crate::job::parse_iso8601_duration;
use crate::mail::inputs::{Folder, FolderPath, Imap, Login, Pop3, Server, decode, input_schema};
use crate::mail::server::{Protocol, Target};
use crate::schema::InputSchema;
use crate::secrets::{SecretMask, SecretProvider};

/// What happens to a mail once Zeebe has accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterProcessing {
    MarkRead,
    Move(FolderPath),
    Delete,
    None,
}

/// How a mail is handed to Zeebe.
#[derive(Debug, Clone)]
pub enum HandOver {
    Publish {
        name: String,
        key: KeyRule,
        time_to_live: Duration,
    },
    Start {
        bpmn_process_id: String,
        version: i32,
    },
}

/// One watcher, validated, every default applied, secrets resolved.
pub struct Watcher {
    pub name: String,
    pub protocol: Protocol,
    pub target: Target,
    pub folder: String,
    /// The same folder as an input path, resolved on each connection like every folder input.
    pub folder_path: Folder,
    pub unseen_only: bool,
    /// `None`: every waiting mail in one round.
    pub max_per_poll: Option<usize>,
    pub idle: bool,
    pub poll_interval: Duration,
    pub after: AfterProcessing,
    pub result_variable: String,
    pub hand_over: HandOver,
    /// Not in SPEC §9: the tenant the message or instance belongs to, when set.
    pub tenant_id: Option<String>,
    /// `attachmentsAs: document` (SPEC §4.1): attachments go to Camunda's document store and
    /// the mail carries references, as `imap:read` does.
    pub as_documents: bool,
    /// The watcher's resolved secrets, to mask in what it logs.
    pub mask: SecretMask,
}

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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PublishInput {
    name: String,
    #[serde(default)]
    correlation_key: Option<KeyInput>,
    #[serde(default)]
    time_to_live: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyInput {
    from: String,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartInput {
    bpmn_process_id: String,
    #[serde(default)]
    version: Option<i32>,
}

const DEFAULT_POLL: Duration = Duration::from_secs(5);
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

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

/// What both protocols' inputs hold once their connection blocks are read.
struct Common {
    name: String,
    folder: Option<Folder>,
    unseen_only: Option<bool>,
    max_per_poll: Option<i64>,
    idle: Option<bool>,
    poll_interval: Option<String>,
    after_processing: Option<String>,
    move_to: Option<Value>,
    result_variable: Option<String>,
    publish_message: Option<PublishInput>,
    start_process: Option<StartInput>,
    tenant_id: Option<String>,
    attachments_as: Option<String>,
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
            },
            target,
        )
    }
}

fn check(
    input: Common,
    target: Target,
    protocol: Protocol,
    mask: SecretMask,
) -> Result<Watcher, Vec<String>> {
    let mut problems = Vec::new();
    let imap = protocol == Protocol::Imap;
    let name_ok = !input.name.is_empty()
        && input.name.len() <= 63
        && input
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        problems.push(format!(
            "/name: '{}' must be 1 to 63 of a-z, 0-9 and -",
            input.name.escape_debug()
        ));
    }
    if !imap {
        for (field, given) in [
            ("folder", input.folder.is_some()),
            ("unseenOnly", input.unseen_only.is_some()),
            ("idle", input.idle.is_some()),
            ("moveTo", input.move_to.is_some()),
        ] {
            if given {
                problems.push(format!("/{field}: IMAP only; POP3 has one maildrop"));
            }
        }
    }
    let max_per_poll = match input.max_per_poll.unwrap_or(5) {
        -1 => None,
        n if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        n => {
            problems.push(format!("/maxPerPoll: {n} is neither -1 (all) nor >= 1"));
            Some(5)
        }
    };
    let poll_interval = match input.poll_interval.as_deref() {
        None => DEFAULT_POLL,
        Some(text) => match parse_iso8601_duration(text) {
            Ok(d) if d >= Duration::from_millis(100) => d,
            Ok(_) => {
                problems.push("/pollInterval: at least PT0.1S".into());
                DEFAULT_POLL
            }
            Err(e) => {
                problems.push(format!("/pollInterval: {e}"));
                DEFAULT_POLL
            }
        },
    };
    let after = match (input.after_processing.as_deref(), imap) {
        (None, _) => {
            if imap {
                AfterProcessing::MarkRead
            } else {
                AfterProcessing::Delete
            }
        }
        (Some("markRead"), true) => AfterProcessing::MarkRead,
        (Some("move"), true) => match &input.move_to {
            Some(path) => match FolderPath::parse(path, "/moveTo") {
                Ok(path) => AfterProcessing::Move(path),
                Err(e) => {
                    problems.push(e);
                    AfterProcessing::None
                }
            },
            None => {
                problems.push("/moveTo: required when afterProcessing is move".into());
                AfterProcessing::None
            }
        },
        (Some("delete"), _) => AfterProcessing::Delete,
        (Some("none"), _) => AfterProcessing::None,
        (Some(other), true) => {
            problems.push(format!(
                "/afterProcessing: '{other}' is not one of markRead, move, delete, none"
            ));
            AfterProcessing::None
        }
        (Some(other), false) => {
            problems.push(format!(
                "/afterProcessing: '{other}' is not one of delete, none (POP3)"
            ));
            AfterProcessing::None
        }
    };
    if input.move_to.is_some() && !matches!(after, AfterProcessing::Move(_)) && imap {
        problems.push("/moveTo: only used with afterProcessing: move".into());
    }
    let result_variable = input.result_variable.unwrap_or_else(|| "email".into());
    if result_variable.trim().is_empty() {
        problems.push("/resultVariable: empty".into());
    }
    let as_documents = match input.attachments_as.as_deref() {
        None | Some("inline") => false,
        Some("document") => true,
        Some(other) => {
            problems.push(format!(
                "/attachmentsAs: '{other}' is not one of inline, document"
            ));
            false
        }
    };
    let hand_over = match (input.publish_message, input.start_process) {
        (Some(publish), None) => {
            if publish.name.trim().is_empty() {
                problems.push("/publishMessage/name: empty".into());
            }
            let key = match publish.correlation_key {
                None => KeyRule::default(),
                Some(key) => match KeyRule::new(&key.from, key.header, key.pattern.as_deref()) {
                    Ok(rule) => rule,
                    Err(e) => {
                        problems.push(format!("/publishMessage/correlationKey/{e}"));
                        KeyRule::default()
                    }
                },
            };
            let time_to_live = match publish.time_to_live.as_deref() {
                None => DEFAULT_TTL,
                Some(text) => parse_iso8601_duration(text).unwrap_or_else(|e| {
                    problems.push(format!("/publishMessage/timeToLive: {e}"));
                    DEFAULT_TTL
                }),
            };
            HandOver::Publish {
                name: publish.name,
                key,
                time_to_live,
            }
        }
        (None, Some(start)) => {
            if start.bpmn_process_id.trim().is_empty() {
                problems.push("/startProcess/bpmnProcessId: empty".into());
            }
            let version = start.version.unwrap_or(-1);
            if version < -1 || version == 0 {
                problems.push(format!(
                    "/startProcess/version: {version} is neither -1 (latest) nor >= 1"
                ));
            }
            HandOver::Start {
                bpmn_process_id: start.bpmn_process_id,
                version,
            }
        }
        (Some(_), Some(_)) => {
            problems.push("/: either publishMessage or startProcess, not both".into());
            return Err(problems);
        }
        (None, None) => {
            problems.push("/: one of publishMessage or startProcess is required".into());
            return Err(problems);
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Watcher {
        name: input.name,
        protocol,
        target,
        folder: input
            .folder
            .as_ref()
            .map_or_else(|| "INBOX".to_string(), |f| f.name().to_string()),
        folder_path: input.folder.unwrap_or_default(),
        unseen_only: input.unseen_only.unwrap_or(true),
        max_per_poll,
        idle: input.idle.unwrap_or(true),
        poll_interval,
        after,
        result_variable,
        hand_over,
        tenant_id: input.tenant_id.filter(|t| !t.trim().is_empty()),
        as_documents,
        mask,
    })
}

impl std::fmt::Debug for Watcher {
    /// The name only: the rest holds credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("name", &self.name).finish()
    }
}

impl Watcher {
    /// Whether the key comes from a source the mail may lack (then `""` is used).
    pub fn key_source(&self) -> Option<&KeySource> {
        match &self.hand_over {
            HandOver::Publish { key, .. } => Some(&key.source),
            HandOver::Start { .. } => None,
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
