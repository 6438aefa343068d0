//! `imap:forward`: sends one mail (found as read finds it) on to new recipients, `Fwd:` once:
//! by default the original, bytes unchanged, as a `message/rfc822` attachment under a note;
//! with `asAttachment: false`, quoted inline under a block of its headers, its attachments
//! carried over. Sent as `imap:reply` sends; a copy may be saved on the same account.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use mail_parser::Message;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::answer::{
    AnswerFields, addresses, attachments_of, composed, escape_html, one_line, open, prefixed, send,
    sender,
};
use super::pool::ImapPool;
use super::reply::after_sending;
use crate::error::Result;
use crate::mail::inputs::{Folder, Imap, ImapMailInput, Login, Server};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};
use crate::smtp::save::{SaveError, SavedTo};
use crate::smtp::transport::SmtpTransports;

fn yes() -> bool {
    true
}

/// What `imap:forward` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Forward an email",
    description = "Forwards one message, as an attachment (bytes unchanged) or quoted inline, with a note above."
)]
pub struct ForwardInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(flatten)]
    pub answer: AnswerFields,
    #[schemars(
        title = "To",
        description = "Comma-separated addresses, or a FEEL list of them.",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub to: Option<Value>,
    #[schemars(
        title = "Cc",
        description = "Comma-separated addresses, or a FEEL list.",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub cc: Option<Value>,
    #[schemars(
        title = "Bcc",
        description = "Comma-separated addresses, or a FEEL list.",
        with = "Option<Value>",
        extend("x-template" = { "feel": "optional" })
    )]
    pub bcc: Option<Value>,
    #[serde(default = "yes")]
    #[schemars(
        title = "As attachment",
        description = "The original, bytes unchanged, as a message/rfc822 attachment; off: quoted inline with its attachments."
    )]
    pub as_attachment: bool,
}

/// What `imap:forward` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardResult {
    pub sent: bool,
    /// The forward's Message-ID (the same when a retried job sends again).
    pub message_id: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_to: Option<Option<SavedTo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_error: Option<SaveError>,
}

pub struct ForwardOperation {
    pub pool: Arc<ImapPool>,
    pub transports: Arc<SmtpTransports>,
}

/// The original's headers as a forward shows them above its text.
fn headers_block(message: &Message<'_>) -> Vec<(&'static str, String)> {
    let list = |a| addresses(a).join(", ");
    let mut block = vec![("From", list(message.from()))];
    if let Some(date) = message.date().filter(|d| d.is_valid()) {
        block.push(("Date", date.to_string()));
    }
    block.push(("Subject", one_line(message.subject().unwrap_or_default())));
    block.push(("To", list(message.to())));
    let cc = list(message.cc());
    if !cc.is_empty() {
        block.push(("Cc", cc));
    }
    block
}

const SEPARATOR: &str = "---------- Forwarded message ----------";

/// The text and HTML of an inline forward: the note, the block of the original's headers, and
/// its text (in HTML, quoted in a blockquote; only when the forward has an HTML note).
fn inline(
    message: &Message<'_>,
    note: Option<String>,
    html_note: Option<String>,
) -> (Option<String>, Option<String>) {
    let block = headers_block(message);
    let text_block: String = block
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect();
    let text = message.body_text(0).unwrap_or_default();
    let body = (note.is_some() || html_note.is_none()).then(|| {
        format!(
            "{}\n\n{SEPARATOR}\n{text_block}\n{text}\n",
            note.unwrap_or_default()
        )
    });
    let html_body = html_note.map(|html| {
        let html_block: String = block
            .iter()
            .map(|(name, value)| format!("{name}: {}<br>\n", escape_html(value)))
            .collect();
        let original_html = message.body_html(0).unwrap_or_default();
        format!(
            "{html}\n<p>{SEPARATOR}<br>\n{html_block}</p>\n<blockquote type=\"cite\">{original_html}</blockquote>\n"
        )
    });
    (body, html_body)
}

impl MailOperation for ForwardOperation {
    type Input = ForwardInput;
    const NAME: &'static str = "imap:forward";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: ForwardInput,
        job: &'a JobContext,
    ) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let wanted = input.mail.named()?;
            let from = sender(input.answer.from.as_deref(), &input.authentication);
            let (mut session, original) = open(
                &self.pool,
                job,
                &input.server,
                &input.authentication,
                &input.folder,
                &wanted,
            )
            .await?;
            // The parsed original borrows its bytes; what the forward takes from it is copied
            // out, so that the bytes themselves can go into the message without a copy.
            let (subject, body, html_body, attachments) = {
                let message = original.parsed()?;
                let subject = prefixed("Fwd:", message.subject());
                let note = input.answer.body.clone().filter(|b| !b.is_empty());
                let html_note = input.answer.html_body.clone().filter(|b| !b.is_empty());
                if input.as_attachment {
                    let body = match (&note, &html_note) {
                        (None, None) => Some("The forwarded message is attached.".to_string()),
                        _ => note,
                    };
                    (subject, body, html_note, Vec::new())
                } else {
                    let (body, html_body) = inline(&message, note, html_note);
                    (subject, body, html_body, attachments_of(&message))
                }
            };
            let fields = json!({
                "from": from,
                "to": input.to,
                "cc": input.cc,
                "bcc": input.bcc,
                "subject": subject,
                "body": body,
                "htmlBody": html_body,
                "attachments": attachments,
            });
            let attached = input.as_attachment.then_some(original.raw);
            let composed = composed(job, fields, attached).await?;
            send(
                &self.transports,
                job,
                &input.answer.smtp,
                &input.authentication,
                &composed,
            )
            .await?;
            let (saved_to, save_error) = after_sending(
                &mut session,
                None,
                input.answer.save_copy_to.as_ref(),
                &composed,
            )
            .await;
            Ok(Outcome::respond(to_json(&ForwardResult {
                sent: true,
                message_id: composed.message_id.clone(),
                subject: composed.subject.clone(),
                saved_to,
                save_error,
            })))
        })
    }
}
