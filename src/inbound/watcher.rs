//! One watcher as the worker runs it, checked and with every default applied, built from what
//! the watchers file says (see [`super::config`] for reading the file itself).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::config::{AfterProcessingChoice, PublishInput, StartInput};
use super::correlation::{KeyRule, KeySource};
use crate::job::parse_iso8601_duration;
use crate::mail::criteria::Criterion;
use crate::mail::inputs::{AttachmentsAs, Criteria, Folder, FolderPath};
use crate::mail::server::{Protocol, Target};
use crate::secrets::SecretMask;

/// What happens to a mail once Zeebe has accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterProcessing {
    MarkRead,
    Move(FolderPath),
    Delete,
    None,
}

/// Where a publish's message id (Zeebe's duplicate check) comes from. (Plain comments on the
/// variants: a documented variant would make its schema a `oneOf`, whose violation message
/// names no allowed value.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageIdFrom {
    // The mail's Message-ID header: the same mail delivered twice is one message, but any
    // sender can reuse a Message-ID (see README "Email-triggered processes").
    Header,
    // A digest of where the mail is stored (account, folder, UIDVALIDITY and UID, or UIDL):
    // no sender can choose it, and every replica computes the same.
    Stored,
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
    /// The elements of deployed processes that share this mailbox (inbound from the model);
    /// the discovery changes them as processes are deployed and deleted.
    Model(std::sync::Arc<super::model::Elements>),
}

impl Watcher {
    /// Changes whenever the elements a discovered watcher serves change (0 for a watcher of
    /// the file): a mail no element took is tried again under new elements.
    pub fn generation(&self) -> u64 {
        match &self.hand_over {
            HandOver::Model(elements) => elements.generation(),
            _ => 0,
        }
    }
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
    /// Ours (README "Email-triggered processes"): the tenant the message or instance belongs
    /// to, when set.
    pub tenant_id: Option<String>,
    /// Where the PublishMessage's message id comes from (see [`MessageIdFrom`]).
    pub message_id_from: MessageIdFrom,
    /// `attachmentsAs: document` (README "Camunda 8.8 and newer"): attachments go to Camunda's
    /// document store and the mail carries references, as `imap:read` does.
    pub as_documents: bool,
    /// Only mail these search criteria find (IMAP, searched by the server with the round's
    /// own keys).
    pub criteria: Option<Criterion>,
    /// The watcher's resolved secrets, to mask in what it logs.
    pub mask: SecretMask,
}

/// What both protocols' inputs hold once their connection blocks are read.
pub(super) struct Common {
    pub(super) name: String,
    pub(super) folder: Option<Folder>,
    pub(super) unseen_only: Option<bool>,
    pub(super) max_per_poll: Option<i64>,
    pub(super) idle: Option<bool>,
    pub(super) poll_interval: Option<String>,
    pub(super) after_processing: Option<AfterProcessingChoice>,
    pub(super) move_to: Option<Value>,
    pub(super) result_variable: Option<String>,
    pub(super) publish_message: Option<PublishInput>,
    pub(super) start_process: Option<StartInput>,
    pub(super) tenant_id: Option<String>,
    pub(super) attachments_as: Option<AttachmentsAs>,
    pub(super) message_id_from: Option<MessageIdFrom>,
    pub(super) criteria: Option<Criteria>,
}

const DEFAULT_POLL: Duration = Duration::from_secs(5);
pub(super) const DEFAULT_TTL: Duration = Duration::from_secs(3600);

pub(super) fn check(
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
            ("criteria", input.criteria.is_some()),
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
    let after = match (input.after_processing, imap) {
        (None, true) => AfterProcessing::MarkRead,
        (None, false) => AfterProcessing::Delete,
        (Some(AfterProcessingChoice::MarkRead), true) => AfterProcessing::MarkRead,
        (Some(AfterProcessingChoice::Move), true) => match &input.move_to {
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
        (Some(AfterProcessingChoice::Delete), _) => AfterProcessing::Delete,
        (Some(AfterProcessingChoice::None), _) => AfterProcessing::None,
        (Some(AfterProcessingChoice::MarkRead | AfterProcessingChoice::Move), false) => {
            problems.push("/afterProcessing: IMAP only; POP3 allows delete, none".into());
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
    let as_documents = input.attachments_as == Some(AttachmentsAs::Document);
    let message_id_from = input.message_id_from.unwrap_or(MessageIdFrom::Header);
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
    if input.message_id_from.is_some() && matches!(hand_over, HandOver::Start { .. }) {
        problems.push("/messageIdFrom: only used with publishMessage".into());
    }
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
        message_id_from,
        criteria: input.criteria.map(|c| c.0),
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
            HandOver::Start { .. } | HandOver::Model(_) => None,
        }
    }
}
