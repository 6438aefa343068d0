//! `pop3:delete`: deletes a message named by UIDL or Message-ID (DELE, committed by QUIT). A
//! message that is not there is `deleted: false`, so a retried delete is not an error.

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Map;

use super::common::{Maildrop, identity, resolve};
use crate::error::Result;
use crate::mail::inputs::{Login, Pop3, Pop3MailInput, Server};
use crate::mail::response::{DeleteResult, to_json};
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
    #[serde(flatten)]
    pub mail: Pop3MailInput,
}

pub struct DeleteOperation;

impl MailOperation for DeleteOperation {
    type Input = DeleteInput;
    const NAME: &'static str = "pop3:delete";
    const PROTOCOL: Protocol = Protocol::Pop3;

    fn apply<'a>(
        &'a self,
        input: DeleteInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let wanted = input.mail.named()?;
            let given = wanted.message_id.as_ref().map(|m| m.as_given().to_string());
            let mut client = maildrop.connect(job.services()).await?;
            let response = match resolve(&mut client, &wanted).await? {
                Ok(listed) => {
                    client.dele(listed.number).await?;
                    DeleteResult {
                        deleted: true,
                        message_id: listed.message_id().or(given),
                        identity: Map::from_iter([(
                            "uidl".to_string(),
                            identity(listed.uidl.as_deref()),
                        )]),
                    }
                }
                Err(why) => {
                    tracing::debug!("pop3:delete: {why}");
                    DeleteResult {
                        deleted: false,
                        message_id: given,
                        identity: Map::from_iter([(
                            "uidl".to_string(),
                            identity(wanted.uidl.as_deref()),
                        )]),
                    }
                }
            };
            client.quit().await?;
            Ok(Outcome::respond(to_json(&response)))
        })
    }
}
