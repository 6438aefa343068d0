//! `saveCopyTo` of `smtp:send`: after the server accepted a message, the same bytes (the same
//! Message-ID) are stored with `\Seen` in a folder of an IMAP account, such as `Sent`.
//!
//! The mail is out by then, so a save that fails does not fail the job (a retry would send it
//! again): the response says `savedTo: null` and why, with the error's code.

use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::imap::append::store;
use crate::imap::pool::ImapPool;
use crate::imap::session::Literal;
use crate::mail::auth::Authentication;
use crate::mail::inputs::{FolderPath, Imap, Login, Server};
use crate::operation::JobContext;
use crate::smtp::data::Outgoing;

/// Where a sent message is saved: `{ folder, server, authentication? }` of an IMAP account.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaveCopyTo {
    /// The folder, as every folder input (e.g. `Sent`); created when missing.
    pub folder: FolderPath,
    pub server: Server<Imap>,
    /// The IMAP login; the SMTP one when absent.
    pub authentication: Option<Login<Imap>>,
}

/// One FEEL context in a model, its fields read (and each problem named by its pointer)
/// as the job is decoded: a template has no nested groups for a second connection.
impl JsonSchema for SaveCopyTo {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SaveCopyTo".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-template": { "feel": "required" }
        })
    }
}

/// Where the copy went.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SavedTo {
    /// The folder, as the process names it.
    pub folder: String,
    /// The copy's UID; null when the server does not say it and it cannot be found.
    pub uid: Option<u32>,
}

/// Why no copy was saved.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SaveError {
    /// The error code (docs/processes.md, "Errors").
    pub code: String,
    pub message: String,
}

/// Stores `message` as it was sent, as `save` says, logging in with `fallback` when it names
/// no login. The copy is written from the message's pieces, as the send wrote them, so it
/// holds no second copy of the message.
pub async fn save_copy(
    pool: &Arc<ImapPool>,
    job: &JobContext,
    save: &SaveCopyTo,
    fallback: &Authentication,
    message: &Outgoing,
) -> Result<SavedTo> {
    let authentication = save.authentication.as_deref().unwrap_or(fallback);
    let mut session = pool
        .acquire(job.services(), &save.server.endpoint(), authentication)
        .await?;
    let mailbox = session.mailbox(&save.folder, "/saveCopyTo/folder").await?;
    let sent = Literal::sent(message).await?;
    let uid = store(&mut session, &mailbox, sent, "(\\Seen)").await?;
    Ok(SavedTo {
        folder: mailbox.shown,
        uid,
    })
}

/// The response's `savedTo` and `saveError` for a save's outcome.
pub fn outcome(result: Result<SavedTo>) -> (Option<Option<SavedTo>>, Option<SaveError>) {
    match result {
        Ok(saved) => (Some(Some(saved)), None),
        Err(e) => {
            tracing::warn!("smtp:send: the message was sent, but saving a copy failed: {e}");
            (
                Some(None),
                Some(SaveError {
                    code: e.code.as_str().to_string(),
                    message: e.to_string(),
                }),
            )
        }
    }
}
