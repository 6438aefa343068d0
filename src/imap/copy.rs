//! `imap:copy`: copies a message to a folder, creating the missing folders along the path, and
//! leaves the original where it was. The target is named as `imap:move`'s.
//!
//! A retried copy whose first attempt went through (its reply lost) must not leave a second
//! copy: when the target already holds a mail with the same Message-ID, that one is the copy.
//! A mail without a Message-ID cannot be recognised and is copied again.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::identity::{fields, found};
use super::move_::already_moved;
use super::pool::ImapPool;
use super::wire::Command;
use crate::error::Result;
use crate::imap::error::ImapErrorKind;
use crate::mail::inputs::{Folder, FolderPath, Imap, ImapMailInput, Login, Server};
use crate::mail::response::{MoveResult, to_json};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:copy` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Copy an email",
    description = "Copies one message to another folder, creating missing folders along the path; the original stays."
)]
pub struct CopyInput {
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

pub struct CopyOperation {
    pub pool: Arc<ImapPool>,
}

impl MailOperation for CopyOperation {
    type Input = CopyInput;
    const NAME: &'static str = "imap:copy";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: CopyInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
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
            let (validity, _) = session.select_mailbox(&source, false).await?;
            let (uid, as_found) = found(&mut session, &source.shown, validity, &wanted).await?;
            let message_id = as_found.or(given);
            let respond = |target_uid| {
                Ok(Outcome::respond(to_json(&MoveResult {
                    message_id: message_id.clone(),
                    from: source.shown.clone(),
                    to: target.shown.clone(),
                    target_uid,
                    identity: fields(uid, validity),
                })))
            };
            if let Some(id) = &message_id
                && let Some((copied, _)) = already_moved(&mut session, &target.name, id).await?
            {
                return respond(Some(copied));
            }
            session.create_levels(&target).await?;
            session.select_mailbox(&source, false).await?;
            let done = session
                .execute(
                    &Command::new("UID COPY")
                        .raw(uid.to_string())
                        .mailbox(&target.name),
                    ImapErrorKind::FolderMissing,
                )
                .await?;
            let mut target_uid = done.copy_uid();
            // Without UIDPLUS the server does not say where the copy went: find it by its id.
            if target_uid.is_none()
                && let Some(id) = &message_id
            {
                target_uid = already_moved(&mut session, &target.name, id)
                    .await?
                    .map(|(uid, _)| uid);
            }
            respond(target_uid)
        })
    }
}
