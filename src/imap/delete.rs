//! `imap:delete`: removes one message from a folder, named by UID or Message-ID (see
//! [`super::identity`]), and only it.
//!
//! Camunda's connector expunges the whole folder, taking along every message anyone else had
//! flagged `\Deleted`. Here only our UID is expunged (UID EXPUNGE, RFC 4315). A message that
//! is not there is `deleted: false`, so a retried delete is not an error.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::common::expunge_only;
use super::identity::{Lookup, fields, resolve};
use super::pool::ImapPool;
use crate::error::Result;
use crate::mail::inputs::{Folder, Imap, ImapMailInput, Login, Server};
use crate::mail::response::{DeleteResult, to_json};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `imap:delete` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Delete an email",
    description = "Deletes one message and expunges only that message; deleting it twice is no error."
)]
pub struct DeleteInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(flatten)]
    pub mail: ImapMailInput,
}

pub struct DeleteOperation {
    pub pool: Arc<ImapPool>,
}

impl MailOperation for DeleteOperation {
    type Input = DeleteInput;
    const NAME: &'static str = "imap:delete";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: DeleteInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
            let folder = input.folder.name();
            let mut session = self
                .pool
                .acquire(
                    job.services(),
                    &input.server.endpoint(),
                    &input.authentication,
                )
                .await?;
            let (validity, _) = session.open(&input.folder, true).await?;
            let given = wanted.message_id.as_ref().map(|m| m.as_given().to_string());
            match resolve(&mut session, folder, validity, &wanted).await? {
                Lookup::Missing(why) | Lookup::Other(why) => {
                    tracing::debug!("imap:delete: {why}");
                    Ok(Outcome::respond(to_json(&DeleteResult {
                        deleted: false,
                        message_id: given,
                        identity: fields(wanted.uid, validity),
                    })))
                }
                Lookup::Found { uid, message_id } => {
                    expunge_only(&mut session, &[uid]).await?;
                    Ok(Outcome::respond(to_json(&DeleteResult {
                        deleted: true,
                        message_id: message_id.or(given),
                        identity: fields(uid, validity),
                    })))
                }
            }
        })
    }
}
