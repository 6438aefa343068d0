//! `pop3:read`: one message by UIDL or Message-ID. With `deleteAfterRead` (the default, as POP3 users
//! expect) the message is deleted only after Zeebe has accepted the job's completion: the
//! session stays open, and DELE + QUIT follow the accepted completion, while a rejected one
//! (or a shutdown) ends with RSET + QUIT. A lost completion never loses mail.

use std::time::Duration;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::Pop3Client;
use super::common::{Maildrop, identity, resolve};
use super::error::{Pop3Error, Pop3ErrorKind};
use crate::documents::Documents;
use crate::documents::spool::Spool;
use crate::error::Result;
use crate::mail::inputs::{AttachmentsAs, Login, Pop3, Pop3MailInput, Server};
use crate::mail::message::{Envelope, read_message};
use crate::mail::prune::{Limits, Pruner};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{AfterCompletion, JobContext, MailOperation, Outcome};

/// How long the open session may wait for its commit or rollback to finish.
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// What `pop3:read` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Read an email",
    description = "Reads one message; deletes it only after the process has received it."
)]
pub struct ReadInput {
    pub authentication: Login<Pop3>,
    pub server: Server<Pop3>,
    #[serde(flatten)]
    pub mail: Pop3MailInput,
    /// POP3 users expect a maildrop to be emptied as it is read (the seed's warning).
    #[serde(default = "delete_after_read_by_default")]
    #[schemars(
        title = "Delete after reading",
        description = "POP3 mailboxes are usually emptied as they are read. The message is \
                       deleted only once Zeebe has accepted the job's result, so no mail is lost."
    )]
    pub delete_after_read: bool,
    #[serde(default)]
    pub attachments_as: AttachmentsAs,
}

fn delete_after_read_by_default() -> bool {
    true
}

pub struct ReadOperation {
    /// What a response may hold (the attachment limit and the response budget).
    pub limits: Limits,
}

/// Deletes the read message once the completion is accepted.
struct DeleteAfterCompletion {
    client: Pop3Client,
    number: u32,
}

impl AfterCompletion for DeleteAfterCompletion {
    fn commit(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let DeleteAfterCompletion { mut client, number } = *self;
            let done = tokio::time::timeout(FINISH_TIMEOUT, async {
                client.dele(number).await?;
                client.quit().await
            })
            .await;
            match done {
                Ok(Ok(())) => {
                    tracing::debug!(message = number, "read message deleted after completion")
                }
                Ok(Err(e)) => tracing::warn!(
                    "the read message could not be deleted and stays on the server: {e}"
                ),
                Err(_) => {
                    tracing::warn!("deleting the read message timed out; it stays on the server")
                }
            }
        })
    }

    fn rollback(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let DeleteAfterCompletion { mut client, .. } = *self;
            let _ = tokio::time::timeout(FINISH_TIMEOUT, async {
                client.rset().await?;
                client.quit().await
            })
            .await;
            tracing::info!("completion not accepted: the message stays on the server");
        })
    }
}

/// The read response of message `number` (of `size` bytes by LIST, unique id `uidl`) under
/// `limits`: what `pop3:read` returns and what an inbound watcher hands over. POP3 cannot
/// fetch parts, so the message streams through the pruner, which keeps only what the response
/// could return.
pub async fn read_number(
    client: &mut Pop3Client,
    (number, uidl): (u32, Option<&str>),
    size: u64,
    mut limits: Limits,
    documents: Option<Documents<'_>>,
) -> Result<serde_json::Value> {
    // With documents, attachments go to the spool (on disk) and then the store; the response
    // keeps the bodies.
    let mut spool = match &documents {
        Some(documents) => {
            limits.max_attachment_bytes = 0;
            Some(Spool::with_allowance(documents.allowance())?)
        }
        None => None,
    };
    let mut pruner = Pruner::new(limits);
    client
        .retr_each(number, size, |piece, complete| {
            pruner.feed(piece, complete);
            if let Some(spool) = spool.as_mut() {
                spool.feed(piece);
                if complete {
                    spool.feed(b"\r\n");
                }
            }
        })
        .await?;
    let mut response = read_message(
        pruner.finish(),
        &Envelope {
            size,
            received: None,
            identity: [("uidl".to_string(), identity(uidl))].into_iter().collect(),
        },
        limits,
    );
    if let (Some(documents), Some(spool)) = (documents, spool) {
        let (attachments, _dir) = spool.finish()?;
        crate::documents::attach_documents(&mut response, &attachments, documents.store).await?;
    }
    Ok(to_json(&response))
}

impl MailOperation for ReadOperation {
    type Input = ReadInput;
    const NAME: &'static str = "pop3:read";
    const PROTOCOL: Protocol = Protocol::Pop3;

    fn apply<'a>(
        &'a self,
        input: ReadInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let maildrop = Maildrop::of(&input.server, &input.authentication);
            let wanted = input.mail.named()?;
            let delete_after_read = input.delete_after_read;
            let mut client = maildrop.connect(job.services()).await?;
            let listed = match resolve(&mut client, &wanted).await {
                Ok(Ok(listed)) => listed,
                Ok(Err(why)) => {
                    client.quit().await?;
                    return Err(Pop3Error::new(Pop3ErrorKind::MessageMissing, why).into());
                }
                Err(e) => {
                    let _ = client.quit().await;
                    return Err(e);
                }
            };
            let documents = match input.attachments_as {
                AttachmentsAs::Document => Some(job.services().documents("/attachmentsAs")?),
                AttachmentsAs::Inline => None,
            };
            let response = read_number(
                &mut client,
                (listed.number, listed.uidl.as_deref()),
                listed.size,
                self.limits,
                documents,
            )
            .await?;
            if delete_after_read {
                Ok(Outcome {
                    response,
                    after_completion: Some(Box::new(DeleteAfterCompletion {
                        client,
                        number: listed.number,
                    })),
                })
            } else {
                client.quit().await?;
                Ok(Outcome::respond(response))
            }
        })
    }
}
