//! `pop3:delete`: deletes a message by Message-ID (DELE, committed by QUIT). A message that is
//! not there is `deleted: false`, so a retried delete is not an error.

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::common::{Maildrop, find_by_message_id};
use crate::error::Result;
use crate::mail::inputs::{Login, MessageId, Pop3, Server};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};

/// What `pop3:delete` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Delete an email",
    description = "Deletes one message; deleting it twice is no error."
)]
pub struct DeleteInput {
    pub authentication: Login<Pop3>,
    pub server: Server<Pop3>,
    pub message_id: MessageId,
}

pub struct DeleteOperation;

impl MailOperation for DeleteOperation {
    type Input = DeleteInput;
    const NAME: &'static str = "pop3:delete";
    const PROTOCOL: Protocol = Protocol::Pop3;

    fn apply<'a>(
        &'a self,
        input: DeleteInput,
        _job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let id = input.message_id.as_given().to_string();
            let mut client = maildrop.connect().await?;
            let response = match find_by_message_id(&mut client, &id).await? {
                Some((listed, found)) => {
                    client.dele(listed.number).await?;
                    json!({ "deleted": true, "messageId": found })
                }
                None => json!({ "deleted": false, "messageId": id }),
            };
            client.quit().await?;
            Ok(Outcome::respond(response))
        })
    }
}
