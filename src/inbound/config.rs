//! The watchers file (`EMAIL_INBOUND_CONFIG`, docs/inbound.md): YAML or JSON, read once at start.
//!
//! Every problem is reported at once, each named by its watcher and field the way an operator
//! finds it in the file (`watchers[1].server.port: ...`), and the worker refuses to start on any
//! of them: a watcher silently left out would lose mail nobody knows about.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub use super::watcher::{AfterProcessing, HandOver, MessageIdFrom, Watcher};
use super::watcher::{Common, check};
use crate::mail::inputs::{
    AttachmentsAs, Criteria, Folder, Imap, Login, Pop3, ProtocolKind, Server, decode, input_schema,
    token_endpoint_refusal,
};
use crate::mail::policy::HostPolicy;
use crate::mail::server::{Protocol, Target};
use crate::schema::InputSchema;
use crate::secrets::SecretProvider;

/// The file as written: each watcher is read by its protocol afterwards.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    watchers: Vec<Value>,
}

/// Which mail server a watcher watches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolChoice {
    #[default]
    Imap,
    Pop3,
}

/// What happens to a mail once Zeebe has accepted it, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AfterProcessingChoice {
    // Set \Seen (IMAP; the default there).
    MarkRead,
    // Move to `moveTo` (IMAP).
    Move,
    // Delete (the default for POP3).
    Delete,
    // Leave it; the ledger alone keeps it from being handed over twice.
    None,
}

/// One entry of the watchers file: the single definition of what a watcher may say. Its JSON
/// Schema validates the file (each problem named by watcher and field) and documents it
/// (docs/inbound.md); what a schema cannot say (POP3 has no folders, the duration texts) is
/// checked by [`super::watcher`].
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, bound = "")]
#[schemars(bound = "P: ProtocolKind")]
pub struct WatcherInput<P> {
    /// Names the watcher in logs, metrics and its ledger: 1 to 63 of a-z, 0-9 and -.
    pub name: String,
    /// `imap` (the default) or `pop3`.
    #[serde(default)]
    #[schemars(with = "ProtocolChoice")]
    pub protocol: Option<ProtocolChoice>,
    /// The login, as a job's `authentication` block.
    pub authentication: Login<P>,
    /// The server, as a job's `server` block.
    pub server: Server<P>,
    /// The folder to watch (IMAP; INBOX when absent).
    #[serde(default)]
    #[schemars(
        with = "Folder",
        title = "Folder",
        extend("x-template" = { "feel": "optional", "when": { "protocol": ["imap"] } })
    )]
    pub folder: Option<Folder>,
    /// Only mail without \Seen (IMAP; default true).
    #[serde(default)]
    #[schemars(
        title = "Unseen mail only",
        extend("default" = true, "x-template" = { "when": { "protocol": ["imap"] } })
    )]
    pub unseen_only: Option<bool>,
    /// Mails handed over per round: -1 for all, else at least 1 (default 5).
    #[serde(default)]
    #[schemars(title = "Mails per poll", extend("default" = 5))]
    pub max_per_poll: Option<i64>,
    /// Wait with IMAP IDLE where the server offers it (default true).
    #[serde(default)]
    #[schemars(
        title = "IMAP IDLE",
        extend("default" = true, "x-template" = { "when": { "protocol": ["imap"] } })
    )]
    pub idle: Option<bool>,
    /// ISO-8601 duration between rounds when not idling, at least PT0.1S (default PT5S).
    #[serde(default)]
    #[schemars(title = "Poll interval", extend("default" = "PT5S"))]
    pub poll_interval: Option<String>,
    /// What happens to a mail once Zeebe has accepted it: `markRead` (IMAP's default), `move`
    /// (to `moveTo`, IMAP), `delete` (POP3's default) or `none`.
    #[serde(default)]
    #[schemars(
        with = "AfterProcessingChoice",
        title = "After processing",
        extend("x-template" = { "when": { "protocol": ["imap"] } })
    )]
    pub after_processing: Option<AfterProcessingChoice>,
    /// The folder for `afterProcessing: move`: a path such as `Processed` or `Archive.2026`,
    /// or the list of its levels.
    #[serde(default)]
    #[schemars(
        with = "Option<Value>",
        title = "Move to folder",
        extend("x-template" = {
            "feel": "optional",
            "when": { "afterProcessing": ["move"], "protocol": ["imap"] }
        })
    )]
    pub move_to: Option<Value>,
    /// The variable the mail is handed over in (default `email`).
    #[serde(default)]
    pub result_variable: Option<String>,
    /// Correlate each mail to a waiting instance (exactly one of this and startProcess).
    #[serde(default)]
    pub publish_message: Option<PublishInput>,
    /// Start an instance per mail (exactly one of this and publishMessage).
    #[serde(default)]
    pub start_process: Option<StartInput>,
    /// The tenant the message or instance belongs to.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// How attachments are handed over (default inline).
    #[serde(default)]
    #[schemars(
        with = "AttachmentsAs",
        title = "Attachments as",
        extend("default" = "inline")
    )]
    pub attachments_as: Option<AttachmentsAs>,
    /// Only mail these search criteria find (IMAP): the tree of `email:imap:search:1`,
    /// searched by the server together with the watcher's own keys.
    #[serde(default)]
    #[schemars(
        with = "Option<Criteria>",
        title = "Filter (search criteria)",
        extend("x-template" = { "feel": "optional", "multiline": true, "when": { "protocol": ["imap"] } })
    )]
    pub criteria: Option<Criteria>,
    /// Where the publish's message id comes from (publishMessage only): `header` (the
    /// default; the Message-ID header) or `stored` (a digest of where the mail is stored,
    /// which no sender can choose).
    #[serde(default)]
    #[schemars(with = "MessageIdFrom")]
    pub message_id_from: Option<MessageIdFrom>,
}

/// Correlating each mail as a message.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishInput {
    /// The message name the model catches.
    pub name: String,
    /// Where the correlation key comes from (default: the Message-ID header).
    #[serde(default)]
    pub correlation_key: Option<KeyInput>,
    /// ISO-8601 duration the message is buffered (default PT1H).
    #[serde(default)]
    pub time_to_live: Option<String>,
}

/// The rule for a message's correlation key.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyInput {
    /// messageId, inReplyTo, references, subject, or header (with `header`).
    pub from: String,
    /// The header to read when `from` is header.
    #[serde(default)]
    pub header: Option<String>,
    /// A regular expression whose first group (or whole match) is the key.
    #[serde(default)]
    pub pattern: Option<String>,
}

/// Starting an instance per mail.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartInput {
    /// The process to start.
    pub bpmn_process_id: String,
    /// Its version: -1 (the latest, the default) or at least 1.
    #[serde(default)]
    pub version: Option<i32>,
}

/// The JSON Schema of one watcher of `P`'s protocol, which the file is validated with.
pub fn watcher_schema<P: ProtocolKind>() -> Value {
    input_schema::<WatcherInput<P>>()
}

/// Reads the file at `path`; OAuth2 token endpoints are checked against `policy`, the
/// process's host policy.
pub fn load(
    path: &str,
    secrets: &SecretProvider,
    policy: &HostPolicy,
) -> Result<Vec<Watcher>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("EMAIL_INBOUND_CONFIG: cannot read {path}: {e}"))?;
    parse(&text, secrets, policy).map_err(|e| format!("EMAIL_INBOUND_CONFIG {path}: {e}"))
}

/// Reads watchers from YAML (JSON is YAML too); every problem is listed, `; `-separated.
pub fn parse(
    text: &str,
    secrets: &SecretProvider,
    policy: &HostPolicy,
) -> Result<Vec<Watcher>, String> {
    let value: Value =
        serde_norway::from_str(text).map_err(|e| format!("not valid YAML or JSON: {e}"))?;
    let file: File = decode(value).map_err(|e| field_path("", &e.message))?;
    let mut problems = Vec::new();
    let mut watchers = Vec::new();
    let mut names = HashSet::new();
    for (index, raw) in file.watchers.into_iter().enumerate() {
        let at = format!("watchers[{index}]");
        match watcher(raw, secrets, policy) {
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

/// One watcher from its entry: checked against its protocol's schema, secrets resolved; the
/// problems found, each with the JSON pointer of its field. Discovered elements come here too.
pub(crate) fn watcher(
    mut raw: Value,
    secrets: &SecretProvider,
    policy: &HostPolicy,
) -> Result<Watcher, Vec<String>> {
    if !raw.is_object() {
        return Err(vec!["/: a watcher is an object".into()]);
    }
    let protocol = match raw.get("protocol") {
        Some(Value::String(p)) if p == "pop3" => Protocol::Pop3,
        _ => Protocol::Imap,
    };
    let mask = secrets.resolve(&mut raw).map_err(|e| vec![e.message])?;
    let schema = match protocol {
        Protocol::Pop3 => InputSchema::compile(&watcher_schema::<Pop3>()),
        _ => InputSchema::compile(&watcher_schema::<Imap>()),
    };
    if let Err(e) = schema.and_then(|s| s.validate(&raw).map_err(|e| e.message)) {
        return Err(split_violations(&mask.apply(&e)));
    }
    // The token endpoint's refusal goes with the login's own problems, as a job's does.
    let refusal = token_endpoint_refusal(&raw, policy);
    let read = match protocol {
        Protocol::Pop3 => decode::<WatcherInput<Pop3>>(raw).map(|w| w.common()),
        _ => decode::<WatcherInput<Imap>>(raw).map(|w| w.common()),
    };
    let problems = match (read, refusal) {
        (Ok((input, target)), None) => return check(input, target, protocol, mask),
        (Ok(_), Some(refused)) => vec![refused],
        (Err(e), Some(refused)) if e.message.starts_with("/authentication") => {
            vec![format!("{}; {refused}", e.message)]
        }
        (Err(e), refused) => std::iter::once(e.message).chain(refused).collect(),
    };
    Err(problems.iter().map(|p| mask.apply(p)).collect())
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

impl<P: ProtocolKind> WatcherInput<P> {
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
                criteria: self.criteria,
            },
            target,
        )
    }
}

#[cfg(test)]
mod tests;
