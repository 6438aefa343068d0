//! `imap:move`: moves a message to a folder, creating the missing folders along the path.
//!
//! The target is a dot-separated path (`Projects.2023.January`) or a list of segments for names
//! that contain dots (`["Reports", "v1.2"]`), resolved like every folder input
//! ([`crate::imap::folder`]). MOVE (RFC 6851) when the server has it, else COPY, flag and UID
//! EXPUNGE of exactly the moved message.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Map;

use super::common::{expunge_only, find_by_message_id, only_ours_deleted, uid_sets};
use super::identity::{Lookup, fields, resolve};
use super::pool::ImapPool;
use super::session::ImapSession;
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::{ImapError, ImapErrorKind};
use crate::mail::inputs::{Folder, FolderPath, Imap, ImapMailInput, Login, Server};
use crate::mail::response::{MoveResult, to_json};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:move` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Move an email",
    description = "Moves one message to another folder, creating missing folders along the path."
)]
pub struct MoveInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(default)]
    #[schemars(title = "Source folder")]
    pub source_folder: Folder,
    #[schemars(title = "Target folder")]
    pub target_folder: FolderPath,
}

pub struct MoveOperation {
    pub pool: Arc<ImapPool>,
}

/// Moves `uids` of the selected folder to `target` (which exists): UID MOVE, or UID COPY and
/// an expunge of exactly those UIDs. Without MOVE or UIDPLUS that expunge is a plain EXPUNGE,
/// safe only when no other mail is flagged \Deleted: that is checked before anything is
/// copied, so a move that cannot finish leaves no copy behind (and a retry no second one).
/// Returns the first UID in `target` when the server says it (COPYUID).
pub async fn transfer(
    session: &mut ImapSession,
    uids: &[u32],
    target: &str,
) -> Result<Option<u32>> {
    let moves = session.has("MOVE");
    if !moves && !session.has("UIDPLUS") && !only_ours_deleted(session, uids).await? {
        return Err(ImapError::new(
            ImapErrorKind::Busy,
            "the server lacks MOVE and UIDPLUS and other messages in the folder are flagged \\Deleted; expunging after a copy would remove them too, so nothing was copied",
        ).into());
    }
    // Copies of one Message-ID are few, but a hostile folder may hold thousands.
    let mut target_uid = None;
    for set in uid_sets(uids) {
        let verb = if moves { "UID MOVE" } else { "UID COPY" };
        let done = session
            .execute(
                &Command::new(verb).raw(set).mailbox(target),
                ImapErrorKind::FolderMissing,
            )
            .await?;
        target_uid = target_uid.or(done.copy_uid());
    }
    if !moves {
        expunge_only(session, uids).await?;
    }
    Ok(target_uid)
}

/// The UID and Message-ID of the message with `id` in `target`, if that folder exists and
/// holds it (the last, when several do). Leaves `target` selected (read-only).
pub async fn already_moved(
    session: &mut ImapSession,
    target: &str,
    id: &str,
) -> Result<Option<(u32, String)>> {
    if !session.folder_exists(target).await? {
        return Ok(None);
    }
    session.select(target, false).await?;
    let (uids, as_found) = find_by_message_id(session, id).await?;
    Ok(uids
        .last()
        .map(|uid| (*uid, as_found.unwrap_or_else(|| id.to_string()))))
}

impl MailOperation for MoveOperation {
    type Input = MoveInput;
    const NAME: &'static str = "imap:move";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: MoveInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
            let id = wanted.describe();
            let given = wanted.message_id.as_ref().map(|m| m.as_given().to_string());
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let source = session
                .mailbox(input.source_folder.path(), "/sourceFolder")
                .await?;
            let target = session
                .mailbox(&input.target_folder, "/targetFolder")
                .await?;
            let (validity, _) = session.select_mailbox(&source, true).await?;
            let (uid, as_found) =
                match resolve(&mut session, &source.shown, validity, &wanted).await? {
                    Lookup::Found { uid, message_id } => (uid, message_id),
                    Lookup::Other(why) => {
                        return Err(ImapError::new(ImapErrorKind::MessageMissing, why).into());
                    }
                    Lookup::Missing(why) => {
                        // A retry whose first MOVE went through but whose reply was lost: the
                        // message is where it was asked to go, which is the success the first
                        // attempt missed. Only a Message-ID can find it there.
                        let Some(given) = given else {
                            return Err(ImapError::new(ImapErrorKind::MessageMissing, why).into());
                        };
                        return match already_moved(&mut session, &target.name, &given).await? {
                            Some((uid, as_found)) => Ok(Outcome::respond(to_json(&MoveResult {
                                message_id: Some(as_found),
                                from: source.shown,
                                to: target.shown,
                                target_uid: Some(uid),
                                identity: Map::new(),
                            }))),
                            None => Err(ImapError::new(
                                ImapErrorKind::MessageMissing,
                                format!(
                                    "no message {id} in folder '{}' nor in '{}'",
                                    source.shown, target.shown
                                ),
                            )
                            .into()),
                        };
                    }
                };
            session.create_levels(&target).await?;
            // CREATE may leave the session without a selected folder on some servers.
            session.select_mailbox(&source, true).await?;
            let target_uid = transfer(&mut session, &[uid], &target.name).await?;
            Ok(Outcome::respond(to_json(&MoveResult {
                message_id: as_found.or(given),
                from: source.shown,
                to: target.shown,
                target_uid,
                identity: fields(uid, validity),
            })))
        })
    }
}
