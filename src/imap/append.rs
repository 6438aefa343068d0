//! `imap:append`: stores a message in a folder, byte for byte as given (`raw`, base64), with
//! optional flags, and returns its UID: from APPENDUID where the server has UIDPLUS, else
//! found by its Message-ID.
//!
//! A retried append whose first attempt went through (its reply lost) must not store the mail
//! twice: when the folder already holds a mail with the message's Message-ID, that one is
//! the answer. The folder (and the levels above it) is created when missing.

use std::sync::Arc;

use base64::Engine;
use futures_util::future::BoxFuture;
use mail_parser::MessageParser;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::flags::Flags;
use super::folder::Mailbox;
use super::guard::Allowance;
use super::move_::already_moved;
use super::pool::ImapPool;
use super::read::fetch;
use super::session::ImapSession;
use crate::error::{EmailError, Result};
use crate::imap::error::ImapErrorKind;
use crate::mail::inputs::{Folder, Imap, Login, Server};
use crate::mail::message::message_id;
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

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
        description = "The whole message (RFC 5322 bytes) in base64, e.g. an export's content.",
        extend("examples" = ["=exported.content"], "x-template" = { "feel": "optional" })
    )]
    pub raw: String,
    #[serde(default)]
    #[schemars(
        title = "Flags",
        description = "Flags to store it with, e.g. [\"\\\\Seen\"]."
    )]
    pub flags: Flags,
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

/// Stores `raw` in `mailbox` (created when missing) with `flags`, once: a mail already there
/// with the same Message-ID and the same size is taken for this one (any sender can reuse a
/// Message-ID, so the id alone would let a delivered mail stand in for ours). Returns its UID
/// when known.
pub async fn store(
    session: &mut ImapSession,
    mailbox: &Mailbox,
    raw: &[u8],
    flags: &str,
) -> Result<Option<u32>> {
    let id = message_id_of(raw);
    if let Some(id) = &id
        && let Some((uid, _)) = already_moved(session, &mailbox.name, id).await?
        && same_size(session, uid, raw.len()).await?
    {
        return Ok(Some(uid));
    }
    session.create_levels(mailbox).await?;
    let uid = session
        .append(&mailbox.name, flags, raw, ImapErrorKind::FolderMissing)
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
async fn same_size(session: &mut ImapSession, uid: u32, size: usize) -> Result<bool> {
    let stored = fetch(
        session,
        uid,
        "(UID RFC822.SIZE)",
        Allowance::CONTROL,
        &format!("UID {uid}"),
    )
    .await?
    .size;
    Ok(stored.is_some_and(|s| s as usize == size))
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
            let mut compact = input.raw.into_bytes();
            compact.retain(|b| !b.is_ascii_whitespace());
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .map_err(|e| EmailError::invalid_input(format!("/raw: is not base64 ({e})")))?;
            drop(compact);
            if raw.is_empty() {
                return Err(EmailError::invalid_input("/raw: the message is empty"));
            }
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
            let uid = store(&mut session, &mailbox, &raw, &flags).await?;
            Ok(Outcome::respond(to_json(&AppendResult {
                folder: mailbox.shown,
                uid,
                message_id: message_id_of(&raw),
            })))
        })
    }
}
