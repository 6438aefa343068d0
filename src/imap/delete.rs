//! `imap:delete`: removes the messages with one Message-ID from a folder, and only them.
//!
//! Camunda's connector expunges the whole folder, taking along every message anyone else had
//! flagged `\Deleted`. Here only our UIDs are expunged (UID EXPUNGE, RFC 4315). A message that
//! is not there is `deleted: false`, so a retried delete is not an error.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::common::{expunge_only, find_by_message_id, folder, message_id_input, target};
use super::pool::ImapPool;
use crate::error::Result;
use crate::mail::inputs::{folder_field, message_id_field, operation_schema};
use crate::mail::server::Protocol;
use crate::operations::{JobContext, Operation, Outcome};

pub struct DeleteOperation {
    pub pool: Arc<ImapPool>,
}

impl Operation for DeleteOperation {
    fn name(&self) -> &'static str {
        "imap:delete"
    }

    fn protocol(&self) -> Protocol {
        Protocol::Imap
    }

    fn schema(&self) -> Value {
        operation_schema(
            Protocol::Imap,
            "Delete an email",
            "Deletes one message and expunges only that message; deleting it twice is no error.",
            json!({
                "folder": folder_field("Folder"),
                "messageId": message_id_field()
            }),
            &["messageId"],
        )
    }

    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mailbox = target(&variables)?;
            let id = message_id_input(&variables)?;
            let folder = folder(&variables, "folder");
            let mut session = self
                .pool
                .acquire(&mailbox.endpoint, &mailbox.authentication)
                .await?;
            session.select(&folder, true).await?;
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
