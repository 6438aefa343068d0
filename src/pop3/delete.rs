//! `pop3:delete`: deletes a message by Message-ID (DELE, committed by QUIT). A message that is
//! not there is `deleted: false`, so a retried delete is not an error.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::common::{Maildrop, find_by_message_id};
use crate::error::Result;
use crate::imap::common::message_id_input;
use crate::mail::inputs::{message_id_field, operation_schema};
use crate::mail::server::Protocol;
use crate::operations::{JobContext, Operation, Outcome};

pub struct DeleteOperation;

impl Operation for DeleteOperation {
    fn name(&self) -> &'static str {
        "pop3:delete"
    }

    fn protocol(&self) -> Protocol {
        Protocol::Pop3
    }

    fn schema(&self) -> Value {
        operation_schema(
            Protocol::Pop3,
            "Delete an email",
            "Deletes one message; deleting it twice is no error.",
            json!({ "messageId": message_id_field() }),
            &["messageId"],
        )
    }

    fn run<'a>(&'a self, variables: Value, _job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let maildrop = Maildrop::from_variables(&variables)?;
            let id = message_id_input(&variables)?;
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
