//! `imap:append`: stores a message in a folder, byte for byte as given (`raw`, base64) or
//! composed from smtp:send's fields as send composes it, with optional flags, and returns its UID: from APPENDUID where the server has UIDPLUS, else
//! found by its Message-ID.
//!
//! A retried append whose first attempt went through (its reply lost) must not store the mail
//! twice: when the folder already holds a mail with the message's Message-ID, that one is
//! the answer. The folder (and the levels above it) is created when missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use futures_util::future::BoxFuture;
use mail_parser::MessageParser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::flags::Flags;
use super::folder::Mailbox;
use super::guard::Allowance;
use super::move_::already_moved;
use super::pool::ImapPool;
use super::read::fetch;
use super::session::{ImapSession, Literal};
use crate::error::{EmailError, Result};
use crate::imap::error::ImapErrorKind;
use crate::mail::inputs::{Folder, Imap, Login, Server};
use crate::mail::message::message_id;
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};
use crate::smtp::send::compose;

/// What `imap:append` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Store an email",
    description = "Stores a raw message (RFC 5322, base64) in a folder, byte for byte, with optional flags."
)]
pub struct AppendInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[schemars(
        title = "Raw message",
        description = "The whole message (RFC 5322 bytes) in base64, e.g. an export's content. \
                       Or leave it empty and give the message fields (from, to, subject, body, \
                       ...) to compose it as smtp:send does.",
        extend("examples" = ["=exported.content"], "x-template" = { "feel": "optional" })
    )]
    pub raw: Option<String>,
    #[serde(flatten)]
    pub message: MessageFields,
    #[serde(default)]
    #[schemars(
        title = "Flags",
        description = "Flags to store it with, e.g. [\"\\\\Seen\"]."
    )]
    pub flags: Flags,
}

/// smtp:send's message fields, for a message composed as send composes it (with send's
/// checks, each problem named by its pointer).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageFields {
    #[schemars(
        title = "From",
        description = "The sender: an address or \"Name <address>\". Empty: the IMAP username.",
        extend("x-template" = { "feel": "optional" })
    )]
    pub from: Option<String>,
    #[schemars(
        title = "To",
        description = "Comma-separated addresses, or a FEEL list of them.",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub to: Option<Value>,
    #[schemars(
        title = "Cc",
        description = "Comma-separated addresses, or a FEEL list.",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub cc: Option<Value>,
    #[schemars(
        title = "Bcc",
        description = "Comma-separated addresses, or a FEEL list.",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub bcc: Option<Value>,
    #[schemars(
        title = "Reply to",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub reply_to: Option<Value>,
    #[schemars(title = "Subject", extend("x-template" = { "feel": "optional" }))]
    pub subject: Option<String>,
    #[schemars(
        title = "Text body",
        description = "The text/plain part; in a reply or forward, the new text above the original.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    pub body: Option<String>,
    #[schemars(
        title = "HTML body",
        description = "The text/html part; in a reply or forward, the new text above the original.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    pub html_body: Option<String>,
    #[schemars(
        title = "Attachments",
        description = "As smtp:send's attachments.",
        with = "Option<Vec<Value>>",
        extend("x-template" = { "feel": "required" })
    )]
    pub attachments: Option<Value>,
    #[schemars(
        title = "Extra headers",
        description = "As smtp:send's headers.",
        extend("x-template" = { "feel": "required" })
    )]
    pub headers: Option<BTreeMap<String, String>>,
    #[schemars(title = "In reply to", extend("x-template" = { "feel": "optional" }))]
    pub in_reply_to: Option<String>,
    #[schemars(
        title = "References",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub references: Option<Value>,
}

impl MessageFields {
    fn given(&self) -> bool {
        to_json(self)
            .as_object()
            .is_some_and(|fields| fields.values().any(|v| !v.is_null()))
    }
}

/// The message to store: `raw` decoded, or the fields composed.
async fn message(input: &AppendInput, job: &JobContext) -> Result<Vec<u8>> {
    match (&input.raw, input.message.given()) {
        (Some(_), true) => Err(EmailError::invalid_input(
            "/raw: give either raw or the message fields (from, to, subject, body, ...), not both",
        )),
        (None, false) => Err(EmailError::invalid_input(
            "/: raw (a base64 message) or the message fields (from, to, body, ...) are required",
        )),
        (Some(raw), false) => {
            let mut compact = raw.clone().into_bytes();
            compact.retain(|b| !b.is_ascii_whitespace());
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .map_err(|e| EmailError::invalid_input(format!("/raw: is not base64 ({e})")))?;
            if raw.is_empty() {
                return Err(EmailError::invalid_input("/raw: the message is empty"));
            }
            Ok(raw)
        }
        (None, true) => {
            let mut fields = to_json(&input.message);
            if input
                .message
                .from
                .as_deref()
                .is_none_or(|f| f.trim().is_empty())
            {
                fields["from"] = input.authentication.username().unwrap_or_default().into();
            }
            let composed = compose(job.services(), fields, job, None).await?;
            Ok(composed.message.bytes().await?)
        }
    }
}

/// What `imap:append` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppendResult {
    /// The folder, as the process names it.
    pub folder: String,
    /// The stored mail's UID; null when the server does not say it and the message has no
    /// Message-ID to find it by.
    pub uid: Option<u32>,
    /// The stored mail's Message-ID; null when it has none.
    pub message_id: Option<String>,
}

pub struct AppendOperation {
    pub pool: Arc<ImapPool>,
}

/// The message's Message-ID as its header says, if any.
pub fn message_id_of(raw: &[u8]) -> Option<String> {
    MessageParser::default()
        .parse_headers(raw)
        .as_ref()
        .and_then(message_id)
}

/// Stores `message` in `mailbox` (created when missing) with `flags`, once: a mail already
/// there with the same Message-ID and the same size is taken for this one (any sender can
/// reuse a Message-ID, so the id alone would let a delivered mail stand in for ours). Returns
/// its UID when known.
pub async fn store(
    session: &mut ImapSession,
    mailbox: &Mailbox,
    message: Literal<'_>,
    flags: &str,
) -> Result<Option<u32>> {
    let id = message_id_of(message.head());
    if let Some(id) = &id
        && let Some((uid, _)) = already_moved(session, &mailbox.name, id).await?
        && same_size(session, uid, message.size()).await?
    {
        return Ok(Some(uid));
    }
    session.create_levels(mailbox).await?;
    let uid = session
        .append(&mailbox.name, flags, message, ImapErrorKind::FolderMissing)
        .await?;
    match (uid, &id) {
        (Some(uid), _) => Ok(Some(uid)),
        (None, Some(id)) => Ok(already_moved(session, &mailbox.name, id)
            .await?
            .map(|(uid, _)| uid)),
        (None, None) => Ok(None),
    }
}

/// Whether `uid` of the selected folder has `size` bytes.
async fn same_size(session: &mut ImapSession, uid: u32, size: u64) -> Result<bool> {
    let stored = fetch(
        session,
        uid,
        "(UID RFC822.SIZE)",
        Allowance::CONTROL,
        &format!("UID {uid}"),
    )
    .await?
    .size;
    Ok(stored.is_some_and(|s| u64::from(s) == size))
}

impl MailOperation for AppendOperation {
    type Input = AppendInput;
    const NAME: &'static str = "imap:append";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: AppendInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let raw = message(&input, job).await?;
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let mailbox = session.mailbox(input.folder.path(), "/folder").await?;
            let flags = if input.flags.is_empty() {
                String::new()
            } else {
                input.flags.list()
            };
            let uid = store(&mut session, &mailbox, Literal::Bytes(&raw), &flags).await?;
            Ok(Outcome::respond(to_json(&AppendResult {
                folder: mailbox.shown,
                uid,
                message_id: message_id_of(&raw),
            })))
        })
    }
}
