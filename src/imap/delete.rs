//! `imap:delete`: removes the messages with one Message-ID from a folder, and only them.
//!
//! Camunda's connector expunges the whole folder, taking along every message anyone else had
//! flagged `\Deleted`. Here only our UIDs are expunged (UID EXPUNGE, RFC 4315). A message that
//! is not there is `deleted: false`, so a retried delete is not an error.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::common::{expunge_only, find_by_message_id};
use super::pool::ImapPool;
use crate::error::Result;
use crate::mail::inputs::{Folder, Imap, Login, MessageId, Server};
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
    pub message_id: MessageId,
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
        _job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let id = input.message_id.as_given().to_string();
            let mut session = self
                .pool
                .acquire(&input.server.endpoint(), &input.authentication)
                .await?;
            session.open(&input.folder, true).await?;
            let (uids, as_found) = find_by_message_id(&mut session, &id).await?;
            if uids.is_empty() {
                return Ok(Outcome::respond(
                    json!({ "deleted": false, "messageId": id }),
                ));
            }
            expunge_only(&mut session, &uids).await?;
            Ok(Outcome::respond(
                json!({ "deleted": true, "messageId": as_found.unwrap_or(id) }),
            ))
        })
    }
}
