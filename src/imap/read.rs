//! `imap:read`: one message by Message-ID, parsed into the read response. The message is
//! fetched with BODY.PEEK, so it stays unread unless `markAsRead` is set.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::common::{find_by_message_id, folder, internal_date_iso, message_id_input, target};
use super::pool::ImapPool;
use super::wire::Command;
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::inputs::{folder_field, message_id_field, operation_schema};
use crate::mail::message::{Envelope, read_response};
use crate::mail::server::Protocol;
use crate::operations::{JobContext, Operation, Outcome};

pub struct ReadOperation {
    pub pool: Arc<ImapPool>,
    pub max_attachment_bytes: usize,
    pub max_response_bytes: usize,
}

impl Operation for ReadOperation {
    fn name(&self) -> &'static str {
        "imap:read"
    }

    fn protocol(&self) -> Protocol {
        Protocol::Imap
    }

    fn schema(&self) -> Value {
        operation_schema(
            Protocol::Imap,
            "Read an email",
            "Reads one message: bodies decoded to UTF-8, headers and attachments.",
            json!({
                "folder": folder_field("Folder"),
                "messageId": message_id_field(),
                "markAsRead": {
                    "title": "Mark as read",
                    "description": "Sets \\Seen; otherwise the message stays as it was.",
                    "default": false,
                    "type": ["boolean", "null"]
                }
            }),
            &["messageId"],
        )
    }

    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mailbox = target(&variables)?;
            let id = message_id_input(&variables)?;
            let folder = folder(&variables, "folder");
            let mark_as_read = variables["markAsRead"].as_bool().unwrap_or(false);
            let mut session = self
                .pool
                .acquire(&mailbox.endpoint, &mailbox.authentication)
                .await?;
            session.select(&folder, mark_as_read).await?;
            let (uids, _) = find_by_message_id(&mut session, &id).await?;
            let Some(uid) = uids.first().copied() else {
                return Err(EmailError::new(
                    ErrorCode::EmailNotFound,
                    format!("no message {id} in folder '{folder}'"),
                ));
            };
            let fetch = Command::new("UID FETCH")
                .raw(uid.to_string())
                .raw("(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])");
            let item = session
                .execute(&fetch, ErrorCode::ConnectionFailed)
                .await?
                .fetches()
                .find(|item| item.uid == Some(uid))
                .ok_or_else(|| {
                    EmailError::new(
                        ErrorCode::EmailNotFound,
                        format!("message {id} vanished while being read"),
                    )
                })?;
            if mark_as_read {
                session
                    .execute(
                        &Command::new("UID STORE")
                            .raw(uid.to_string())
                            .raw("+FLAGS.SILENT (\\Seen)"),
                        ErrorCode::ConnectionFailed,
                    )
                    .await?;
            }
            let raw = item.body.unwrap_or_default();
            let envelope = Envelope {
                size: item.size.map_or(raw.len() as u64, u64::from),
                received: item.internal_date.as_deref().and_then(internal_date_iso),
            };
            Ok(Outcome::respond(read_response(
                &raw,
                &envelope,
                self.max_attachment_bytes,
            )))
        })
    }
}
