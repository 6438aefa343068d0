//! `imap:read`: one message by UID or Message-ID (see [`super::identity`]), parsed into the
//! read response. The message is fetched with BODY.PEEK, so it stays unread unless
//! `markAsRead` is set.
//!
//! A message within the response budget is fetched whole, as a prefix one byte longer than
//! the budget (so a size the server lies about costs no more). A larger one is read by its
//! BODYSTRUCTURE (see [`super::structure`]): the server sends only what can be returned.
//! Without a BODYSTRUCTURE, the prefix is all that is read, and the response is truncated.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::common::internal_date_iso;
use super::guard::Allowance;
use super::identity::{Lookup, fields, resolve};
use super::pool::ImapPool;
use super::response::FetchItem;
use super::session::ImapSession;
use super::sizes::exact_sizes;
use super::skeleton::Assembly;
use super::structure::{Structure, fetch_items, plan};
use super::wire::Command;
use crate::documents::Documents;
use crate::documents::spool::Spool;
use crate::error::Result;
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::mail::cut::Limits;
use crate::mail::inputs::{AttachmentsAs, Folder, Imap, ImapMailInput, Login, Server};
use crate::mail::message::{Envelope, read_message};
use crate::mail::prune::{Pruned, prune};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:read` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Read an email",
    description = "Reads one message: bodies decoded to UTF-8, headers and attachments."
)]
pub struct ReadInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(default)]
    #[schemars(
        title = "Mark as read",
        description = "Sets \\Seen; otherwise the message stays as it was."
    )]
    pub mark_as_read: bool,
    #[serde(default)]
    pub attachments_as: AttachmentsAs,
}

pub struct ReadOperation {
    pub pool: Arc<ImapPool>,
    /// What a response may hold (the attachment limit and the response budget).
    pub limits: Limits,
}

impl MailOperation for ReadOperation {
    type Input = ReadInput;
    const NAME: &'static str = "imap:read";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: ReadInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
            let id = wanted.describe();
            let folder = input.folder.name();
            let mark_as_read = input.mark_as_read;
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let (validity, _) = session.open(&input.folder, mark_as_read).await?;
            let uid = match resolve(&mut session, folder, validity, &wanted).await? {
                Lookup::Found { uid, .. } => uid,
                Lookup::Missing(why) | Lookup::Other(why) => {
                    return Err(ImapError::new(ImapErrorKind::MessageMissing, why).into());
                }
            };
            let documents = match input.attachments_as {
                AttachmentsAs::Document => Some(job.services().documents("/attachmentsAs")?),
                AttachmentsAs::Inline => None,
            };
            let response =
                read_uid(&mut session, (uid, validity), self.limits, &id, documents).await?;
            if mark_as_read {
                session
                    .execute(
                        &Command::new("UID STORE")
                            .raw(uid.to_string())
                            .raw("+FLAGS.SILENT (\\Seen)"),
                        ImapErrorKind::Refused,
                    )
                    .await?;
            }
            Ok(Outcome::respond(response))
        })
    }
}

/// The read response of message `uid` in the selected folder (whose UIDVALIDITY is
/// `validity`), under `limits` (the attachment limit and the response budget): what
/// `imap:read` returns and what an inbound watcher hands over, built in this one place. Flags
/// are left as they are (BODY.PEEK); `id` names the message in errors.
pub async fn read_uid(
    session: &mut ImapSession,
    (uid, validity): (u32, u32),
    mut limits: Limits,
    id: &str,
    documents: Option<Documents<'_>>,
) -> Result<serde_json::Value> {
    if documents.is_some() {
        // The attachments go to the store below; the response keeps the bodies.
        limits.max_attachment_bytes = 0;
    }
    let meta = fetch(
        session,
        uid,
        "(UID RFC822.SIZE INTERNALDATE BODYSTRUCTURE)",
        Allowance::CONTROL,
        id,
    )
    .await?;
    let budget = limits.max_response_bytes;
    let pruned = match &meta.structure {
        Some(structure) if meta.size.is_some_and(|s| s as usize > budget) => {
            by_structure(session, uid, structure, limits, id).await?
        }
        _ => {
            // RFC822.SIZE may be missing or a lie: a prefix one byte past the budget
            // tells whether the message really fits, and never costs more.
            let asked = u32::try_from(budget.saturating_add(1)).unwrap_or(u32::MAX);
            let item = fetch(
                session,
                uid,
                &format!("(UID BODY.PEEK[]<0.{asked}>)"),
                Allowance::fetching(1, u64::from(asked)),
                id,
            )
            .await?;
            let body = item.body.unwrap_or_default();
            match &meta.structure {
                _ if body.len() <= budget => prune(&body, limits),
                Some(structure) => {
                    drop(body);
                    by_structure(session, uid, structure, limits, id).await?
                }
                None => {
                    // No structure to read it by: what came is all there is.
                    let mut pruned = prune(&body, limits);
                    pruned.budget_cut = true;
                    pruned
                }
            }
        }
    };
    let envelope = Envelope {
        size: meta.size.map_or(0, u64::from),
        received: meta.internal_date.as_deref().and_then(internal_date_iso),
        identity: fields(uid, validity),
    };
    let mut response = read_message(pruned, &envelope, limits);
    if let Some(documents) = documents {
        let spool = stream_message(session, uid, id, &documents).await?;
        let (attachments, _dir) = spool.finish()?;
        crate::documents::attach_documents(&mut response, &attachments, documents.store).await?;
    }
    Ok(to_json(&response))
}

/// Reads a message by its BODYSTRUCTURE: only the sections the response can return.
async fn by_structure(
    session: &mut ImapSession,
    uid: u32,
    structure: &Structure,
    limits: Limits,
    id: &str,
) -> Result<Pruned> {
    let mut plan = plan(structure, limits);
    exact_sizes(session, uid, structure, &mut plan).await?;
    let mut sections = Vec::new();
    for (items, allowance) in fetch_items(&plan, limits) {
        let mut item = fetch(session, uid, &items, allowance, id).await?;
        if let (Some(section), Some(body)) = (item.body_section.take(), item.body.take()) {
            sections.push((section, body));
        }
        sections.append(&mut item.sections);
    }
    let header = sections
        .iter()
        .position(|(s, _)| s == "HEADER")
        .map(|i| sections.swap_remove(i).1)
        .unwrap_or_default();
    let (skeleton, cut) =
        Assembly::new(&plan, &sections).build(structure, &header, limits.header_allowance());
    drop(sections);
    let mut pruned = prune(&skeleton, limits);
    pruned.budget_cut |= cut;
    Ok(pruned)
}

/// How much of a message one partial fetch asks for when streaming it to the spool.
const STREAM_CHUNK: u32 = 1024 * 1024;

/// Streams the whole message through a [`Spool`], a partial fetch at a time, so memory holds
/// one chunk whatever the message's size, and the disk holds what `documents` allows a job.
async fn stream_message(
    session: &mut ImapSession,
    uid: u32,
    id: &str,
    documents: &Documents<'_>,
) -> Result<Spool> {
    let mut spool = Spool::with_allowance(documents.allowance())?;
    each_chunk(session, uid, id, |chunk| {
        spool.feed(chunk);
        Ok(())
    })
    .await?;
    Ok(spool)
}

/// Calls `take` with each chunk of the whole message `uid`, in order, a partial fetch of
/// [`STREAM_CHUNK`] at a time (without setting `\Seen`); returns the message's size. An error
/// from `take` stops the fetching.
pub(super) async fn each_chunk(
    session: &mut ImapSession,
    uid: u32,
    id: &str,
    mut take: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut offset: u32 = 0;
    loop {
        let item = fetch(
            session,
            uid,
            &format!("(UID BODY.PEEK[]<{offset}.{STREAM_CHUNK}>)"),
            Allowance::fetching(1, u64::from(STREAM_CHUNK)),
            id,
        )
        .await?;
        let chunk = item.body.unwrap_or_default();
        take(&chunk)?;
        let got = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        offset = offset.checked_add(got).ok_or_else(|| {
            ImapError::new(
                ImapErrorKind::Protocol,
                format!("message {id} is larger than IMAP can address"),
            )
        })?;
        if got < STREAM_CHUNK {
            return Ok(u64::from(offset));
        }
    }
}

/// One UID FETCH whose answer must be there, and within `allowance`.
pub(super) async fn fetch(
    session: &mut ImapSession,
    uid: u32,
    items: &str,
    allowance: Allowance,
    id: &str,
) -> Result<FetchItem, ImapError> {
    let command = Command::new("UID FETCH").raw(uid.to_string()).raw(items);
    session
        .execute_within(&command, ImapErrorKind::Refused, allowance)
        .await?
        .fetches()
        .find(|item| item.uid == Some(uid))
        .ok_or_else(|| {
            ImapError::new(
                ImapErrorKind::MessageMissing,
                format!("message {id} vanished while being read"),
            )
        })
}
