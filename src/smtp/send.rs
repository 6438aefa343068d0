//! `smtp:send`: its input, and the operation that composes the message
//! ([`super::compose`]) and submits it on a pooled transport (docs/operations.md,
//! `email:smtp:send:1`).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

pub(super) use super::attachment::AttachmentInput;
use super::compose::prepare;
use super::data::Outgoing;
use super::save::{self, SaveCopyTo};
use super::transport::SmtpTransports;
use crate::documents::disk::SpoolDir;
use crate::documents::store::{DocumentReference, too_large};
use crate::error::{EmailError, Result};
use crate::imap::pool::ImapPool;
use crate::mail::auth::Authentication;
use crate::mail::inputs::{Login, Server, Smtp, decode};
use crate::mail::response::{SendResult, to_json};
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};
use crate::services::Services;

pub struct SendOperation {
    transports: Arc<SmtpTransports>,
    imap: Option<Arc<ImapPool>>,
}

impl SendOperation {
    pub fn new(transports: Arc<SmtpTransports>) -> Self {
        SendOperation {
            transports,
            imap: None,
        }
    }

    /// Saves copies (`saveCopyTo`) with sessions of `pool`.
    pub fn saving_with(mut self, pool: Arc<ImapPool>) -> Self {
        self.imap = Some(pool);
        self
    }
}

// A comma-separated string or a list of strings: FEEL gives either. (A plain comment: a doc
// comment would become the schema's description of every address field.)
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    pub(super) fn items(&self) -> Vec<&str> {
        match self {
            StringOrList::One(s) => vec![s.as_str()],
            StringOrList::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// What `smtp:send` takes (docs/operations.md, `email:smtp:send:1`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Send an email",
    description = "Sends one message; a retried job sends the same Message-ID."
)]
pub struct SendInput {
    pub(super) authentication: Login<Smtp>,
    pub(super) server: Server<Smtp>,
    #[schemars(
        title = "From",
        description = "The sender: an address or \"Name <address>\".",
        length(min = 1),
        extend("examples" = ["Support <support@example.com>"], "x-template" = { "feel": "optional" })
    )]
    pub(super) from: String,
    #[schemars(
        title = "To",
        description = "Comma-separated addresses, or a FEEL list of them. At least one of To, Cc \
                       and Bcc is needed.",
        extend("examples" = ["a@example.com, B <b@example.com>"], "x-template" = { "feel": "optional" })
    )]
    pub(super) to: Option<StringOrList>,
    #[schemars(
        title = "Cc",
        description = "Comma-separated addresses, or a FEEL list.",
        extend("examples" = ["=[manager.email]"], "x-template" = { "feel": "optional" })
    )]
    pub(super) cc: Option<StringOrList>,
    #[schemars(
        title = "Bcc",
        description = "Comma-separated addresses, or a FEEL list.",
        extend("examples" = ["archive@example.com"], "x-template" = { "feel": "optional" })
    )]
    pub(super) bcc: Option<StringOrList>,
    #[schemars(
        title = "Reply to",
        description = "Where replies should go, if not to From.",
        extend("examples" = ["help@example.com"], "x-template" = { "feel": "optional" })
    )]
    pub(super) reply_to: Option<StringOrList>,
    #[schemars(
        title = "Subject",
        description = "Non-ASCII text is encoded for you.",
        extend("x-template" = { "feel": "optional", "multiline": false })
    )]
    pub(super) subject: Option<String>,
    #[schemars(
        title = "Text body",
        description = "The text/plain body. With an HTML body as well, the message is \
                       multipart/alternative.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    pub(super) body: Option<String>,
    #[schemars(
        title = "HTML body",
        description = "The text/html body.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    pub(super) html_body: Option<String>,
    #[schemars(
        title = "Attachments",
        description = "A FEEL list of attachments: { fileName, contentType, content } with the \
                       content base64-encoded (contentType defaults to \
                       application/octet-stream), or Camunda document references (from a \
                       form's file picker, a user task, or a read with attachments as \
                       documents), fetched from the document store when sending.",
        extend(
            "examples" = ["=[{fileName: \"report.pdf\", contentType: \"application/pdf\", content: reportBase64}]", "=documents", "=mail.attachments"],
            "x-template" = { "feel": "required" }
        )
    )]
    pub(super) attachments: Option<Vec<AttachmentInput>>,
    #[schemars(
        title = "Extra headers",
        description = "A FEEL context of header name to value. Headers that would replace From, \
                       To, Cc, Bcc, Subject, Message-ID, Date or the MIME structure are refused.",
        extend("examples" = ["={\"X-Ticket\": ticket.id}"], "x-template" = { "feel": "required" })
    )]
    pub(super) headers: Option<BTreeMap<String, String>>,
    #[schemars(
        title = "In reply to",
        description = "The Message-ID this message answers, for threading.",
        extend("examples" = ["=mail.messageId"], "x-template" = { "feel": "optional" })
    )]
    pub(super) in_reply_to: Option<String>,
    #[schemars(
        title = "References",
        description = "Message-IDs of the thread, oldest first (a string or a FEEL list).",
        extend("examples" = ["=[mail.messageId]"], "x-template" = { "feel": "optional" })
    )]
    pub(super) references: Option<StringOrList>,
    #[schemars(
        title = "Save a copy to",
        description = "A FEEL context { folder, server, authentication? } of an IMAP account: \
                       after the server accepted the message, the same bytes are stored there \
                       with \\Seen (e.g. in Sent). A failed save does not fail the job: the \
                       response says savedTo: null and saveError.",
        extend("examples" = ["={folder: \"Sent\", server: {host: \"imap.example.com\"}}"])
    )]
    pub(super) save_copy_to: Option<SaveCopyTo>,
    /// A forward's original, attached as it is after the attachments (see
    /// [`super::forwarded`]); never from a job's variables.
    #[serde(skip)]
    #[schemars(skip)]
    pub(super) forwarded: Option<Vec<u8>>,
}

impl MailOperation for SendOperation {
    type Input = SendInput;
    const NAME: &'static str = "smtp:send";
    const PROTOCOL: Protocol = Protocol::Smtp;

    fn apply<'a>(
        &'a self,
        input: SendInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mut input = input;
            // The downloaded documents stay on disk until the message has gone.
            let _documents = fetch_documents(job.services(), &mut input).await?;
            let save_copy_to = input.save_copy_to.take();
            let prepared = prepare(input, job)?;
            let envelope = prepared.message.envelope().clone();
            let message = Outgoing::assemble(prepared.message.formatted(), prepared.contents)
                .ok_or_else(|| EmailError::internal("an attachment placeholder went missing"))?;
            self.transports
                .send(
                    job.services(),
                    &prepared.endpoint,
                    &prepared.authentication,
                    &envelope,
                    &message,
                )
                .await?;
            let (saved_to, save_error) = match save_copy_to {
                None => (None, None),
                Some(save) => save::outcome(
                    self.save(job, &save, &prepared.authentication, &message)
                        .await,
                ),
            };
            Ok(Outcome::respond(to_json(&SendResult {
                subject: prepared.subject,
                sent: true,
                message_id: prepared.message_id,
                saved_to,
                save_error,
            })))
        })
    }
}

/// A message composed from `smtp:send`'s message fields, as reply and forward build them, for
/// whichever SMTP server they name. The referenced documents it carries stay on disk as long
/// as it lives.
pub struct Composed {
    pub message: Outgoing,
    pub envelope: lettre::address::Envelope,
    pub subject: String,
    pub message_id: String,
    _documents: Option<SpoolDir>,
}

/// Composes `fields` (send's message fields: `from`, `to`, `subject`, `body`, `attachments`,
/// ...) exactly as `smtp:send` would, with the same checks (header injection, reserved
/// headers), each problem named by its field's pointer; a forward's `original` goes last,
/// its bytes unchanged.
pub async fn compose(
    services: &Services,
    mut fields: Value,
    job: &JobContext,
    original: Option<Vec<u8>>,
) -> Result<Composed> {
    // The composer reads a whole send input; the connection it would name is the caller's
    // business, so a placeholder stands for it and is never used.
    fields["authentication"] = json!({ "type": "none" });
    fields["server"] = json!({ "host": "localhost" });
    let mut input: SendInput = decode(fields)?;
    input.forwarded = original;
    let documents = fetch_documents(services, &mut input).await?;
    let prepared = prepare(input, job)?;
    let envelope = prepared.message.envelope().clone();
    let message = Outgoing::assemble(prepared.message.formatted(), prepared.contents)
        .ok_or_else(|| EmailError::internal("an attachment placeholder went missing"))?;
    Ok(Composed {
        message,
        envelope,
        subject: prepared.subject,
        message_id: prepared.message_id,
        _documents: documents,
    })
}

impl SendOperation {
    async fn save(
        &self,
        job: &JobContext,
        save: &SaveCopyTo,
        fallback: &Authentication,
        message: &Outgoing,
    ) -> Result<save::SavedTo> {
        let Some(pool) = &self.imap else {
            return Err(EmailError::internal("no IMAP sessions to save a copy with"));
        };
        save::save_copy(pool, job, save, fallback, message).await
    }
}

/// More attachments than this in one send are refused: no mail needs them, and each costs a
/// download and a part.
pub const MAX_ATTACHMENTS: usize = 100;

/// Downloads every referenced document to a file of the job's spool, before the message is
/// built. Their sizes as the references give them are checked against the job's allowance
/// (`EMAIL_MAX_DOCUMENT_BYTES`) before anything is downloaded, and the bytes as they come.
async fn fetch_documents(services: &Services, input: &mut SendInput) -> Result<Option<SpoolDir>> {
    let Some(attachments) = input.attachments.as_mut() else {
        return Ok(None);
    };
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(EmailError::invalid_input(format!(
            "/attachments: {} attachments; one send takes at most {MAX_ATTACHMENTS}",
            attachments.len()
        )));
    }
    let references: Vec<(usize, DocumentReference)> = attachments
        .iter()
        .enumerate()
        .filter(|(_, a)| a.content.is_none())
        .filter_map(|(i, a)| a.reference().map(|r| (i, r)))
        .collect();
    if references.is_empty() {
        return Ok(None);
    }
    let mut declared = services.document_allowance();
    for (index, reference) in &references {
        if !declared.take(reference.metadata.size.unwrap_or(0)) {
            return Err(too_large(&format!("/attachments/{index}"), &declared));
        }
    }
    let dir = SpoolDir::create()?;
    let mut allowance = services.document_allowance();
    for (index, reference) in references {
        let pointer = format!("/attachments/{index}");
        let documents = services.documents(&pointer)?;
        let path = dir.path().join(format!("{index}.document"));
        documents
            .store
            .download(&reference, &pointer, &path, &mut allowance)
            .await?;
        if let Some(attachment) = attachments.get_mut(index) {
            attachment.downloaded = Some(path);
        }
    }
    Ok(Some(dir))
}

#[cfg(test)]
mod tests;
