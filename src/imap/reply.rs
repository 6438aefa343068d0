//! `imap:reply`: answers one mail (found as read finds it) in its thread: to its Reply-To or
//! From (with `replyAll`, its To and Cc on Cc, never ourselves), `Re:` once, `In-Reply-To` and
//! `References`, the original quoted below the new text. Sent by the job's SMTP server through
//! the pooled transports, composed as `smtp:send` composes. Afterwards the original gets
//! `\Answered` and a copy may be saved on the same account; the mail is out by then, so
//! neither can fail the job (a retry would send it twice).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::answer::{
    AnswerFields, addresses, attribution, composed, escape_html, one_line, open, prefixed,
    quoted_text, send, sender, thread,
};
use super::append::store;
use super::flags::{Flags, store_flags};
use super::pool::ImapPool;
use super::session::{ImapSession, Literal};
use crate::error::{EmailError, Result};
use crate::mail::inputs::{Folder, FolderPath, Imap, ImapMailInput, Login, Server};
use crate::mail::response::to_json;
use crate::mail::server::Protocol;
use crate::operation::{JobContext, MailOperation, Outcome};
use crate::smtp::save::{SaveError, SavedTo, outcome};
use crate::smtp::send::Composed;
use crate::smtp::transport::SmtpTransports;

fn yes() -> bool {
    true
}

/// What `imap:reply` takes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Reply to an email",
    description = "Answers one message in its thread (In-Reply-To, References, Re:), quoting it, and marks it \\Answered."
)]
pub struct ReplyInput {
    pub authentication: Login<Imap>,
    pub server: Server<Imap>,
    #[serde(default)]
    #[schemars(title = "Folder")]
    pub folder: Folder,
    #[serde(flatten)]
    pub mail: ImapMailInput,
    #[serde(flatten)]
    pub answer: AnswerFields,
    #[serde(default)]
    #[schemars(
        title = "Reply to all",
        description = "Also to the original's To and Cc (on Cc), without yourself."
    )]
    pub reply_all: bool,
    #[serde(default = "yes")]
    #[schemars(
        title = "Quote the original",
        description = "The original below the new text: lines prefixed '> ', HTML in a blockquote."
    )]
    pub quote: bool,
    #[schemars(
        title = "Attachments",
        description = "As smtp:send's attachments.",
        with = "Option<Vec<Value>>",
        extend("x-template" = { "feel": "required" })
    )]
    pub attachments: Option<Value>,
    #[schemars(
        title = "Extra headers",
        description = "As smtp:send's headers.",
        extend("x-template" = { "feel": "required" })
    )]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default = "yes")]
    #[schemars(
        title = "Mark as answered",
        description = "Sets \\Answered on the original once the reply is sent."
    )]
    pub mark_answered: bool,
}

/// What `imap:reply` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplyResult {
    pub sent: bool,
    /// The reply's Message-ID (the same when a retried job sends again): a watcher correlating
    /// on `inReplyTo` finds the answer to it.
    pub message_id: String,
    /// The original's Message-ID.
    pub in_reply_to: Option<String>,
    pub subject: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// With `saveCopyTo`: where the copy was stored, or null when saving it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_to: Option<Option<SavedTo>>,
    /// With `saveCopyTo`, when saving failed: its code and message (the reply was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_error: Option<SaveError>,
}

pub struct ReplyOperation {
    pub pool: Arc<ImapPool>,
    pub transports: Arc<SmtpTransports>,
}

/// The bare address of `Name <address>` or `address`.
pub fn bare_address(from: &str) -> String {
    let from = from.trim();
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => from[open + 1..close].trim().to_string(),
        _ => from.to_string(),
    }
}

/// `list` without `ours` and without repeats (addresses compared in any case).
fn without(list: Vec<String>, ours: &[String]) -> Vec<String> {
    let mut seen: Vec<String> = ours.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mut kept = Vec::new();
    for address in list {
        let key = address.to_ascii_lowercase();
        if !seen.contains(&key) {
            seen.push(key);
            kept.push(address);
        }
    }
    kept
}

/// After the send: `\Answered` on the original, and the saved copy. Neither fails the job.
pub async fn after_sending(
    session: &mut ImapSession,
    uid: Option<u32>,
    save_copy_to: Option<&FolderPath>,
    composed: &Composed,
) -> (Option<Option<SavedTo>>, Option<SaveError>) {
    if let Some(uid) = uid
        && let Err(e) = store_flags(session, uid, &Flags::answered(), &Flags::default()).await
    {
        tracing::warn!("the mail was sent, but the original could not be marked \\Answered: {e}");
    }
    let Some(folder) = save_copy_to else {
        return (None, None);
    };
    let saved = async {
        let sent = Literal::sent(&composed.message).await?;
        let mailbox = session.mailbox(folder, "/saveCopyTo").await?;
        let uid = store(session, &mailbox, sent, "(\\Seen)").await?;
        Ok::<_, EmailError>(SavedTo {
            folder: mailbox.shown,
            uid,
        })
    };
    outcome(saved.await)
}

impl MailOperation for ReplyOperation {
    type Input = ReplyInput;
    const NAME: &'static str = "imap:reply";
    const PROTOCOL: Protocol = Protocol::Imap;

    fn apply<'a>(
        &'a self,
        input: ReplyInput,
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
            let message = original.parsed()?;
            let mut to = addresses(message.reply_to());
            if to.is_empty() {
                to = addresses(message.from());
            }
            if to.is_empty() {
                return Err(EmailError::invalid_input(format!(
                    "/messageId: {} has no Reply-To or From address to answer",
                    wanted.describe()
                )));
            }
            let ours = vec![bare_address(&from)];
            let cc = if input.reply_all {
                let mut others = addresses(message.to());
                others.extend(addresses(message.cc()));
                let mut taken = ours.clone();
                taken.extend(to.iter().cloned());
                without(others, &taken)
            } else {
                Vec::new()
            };
            let subject = prefixed("Re:", message.subject());
            let (in_reply_to, references) = thread(&message);
            let mut body = input.answer.body.clone().filter(|b| !b.is_empty());
            let mut html_body = input.answer.html_body.clone().filter(|b| !b.is_empty());
            if input.quote {
                let said = attribution(&message);
                if body.is_some() || html_body.is_none() {
                    let text = message.body_text(0).unwrap_or_default();
                    body = Some(format!(
                        "{}\n\n{said}\n{}\n",
                        body.unwrap_or_default(),
                        quoted_text(&text)
                    ));
                }
                if let Some(html) = html_body {
                    let original_html = message.body_html(0).unwrap_or_default();
                    html_body = Some(format!(
                        "{html}\n<p>{}</p>\n<blockquote type=\"cite\">{original_html}</blockquote>\n",
                        escape_html(&said)
                    ));
                }
            }
            let fields = json!({
                "from": from,
                "to": to,
                "cc": cc,
                "subject": one_line(&subject),
                "body": body,
                "htmlBody": html_body,
                "inReplyTo": in_reply_to,
                "references": references,
                "headers": input.headers,
                "attachments": input.attachments,
            });
            let composed = composed(job, fields, None).await?;
            send(
                &self.transports,
                job,
                &input.answer.smtp,
                &input.authentication,
                &composed,
            )
            .await?;
            let answered = input.mark_answered.then_some(original.uid);
            let (saved_to, save_error) = after_sending(
                &mut session,
                answered,
                input.answer.save_copy_to.as_ref(),
                &composed,
            )
            .await;
            Ok(Outcome::respond(to_json(&ReplyResult {
                sent: true,
                message_id: composed.message_id.clone(),
                in_reply_to,
                subject: composed.subject.clone(),
                to,
                cc,
                saved_to,
                save_error,
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ourselves_and_repeats_leave_the_cc() {
        assert_eq!(
            bare_address("Support <Help@Example.test>"),
            "Help@Example.test"
        );
        assert_eq!(bare_address(" a@b "), "a@b");
        let kept = without(
            vec![
                "help@example.test".into(),
                "x@example.test".into(),
                "X@example.test".into(),
                "y@example.test".into(),
            ],
            &["Help@Example.test".into(), "y@example.test".into()],
        );
        assert_eq!(kept, ["x@example.test"]);
    }
}
