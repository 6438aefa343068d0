//! What `imap:reply` and `imap:forward` share: the SMTP server they send with, the original
//! mail (found as read finds it, fetched whole within a bound), and the text they take from
//! it.
//!
//! Everything taken from the original is a sender's text: its subject and addresses go into
//! the new message's headers only as one line of printable text (control characters become
//! spaces) and as addresses that parse, and its Message-IDs only when they are one token. So a
//! subject or Reply-To with an encoded line break cannot add a header or a recipient.

use std::sync::Arc;

use base64::Engine;
use mail_parser::{Address, HeaderValue, Message, MessageParser};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::Value;

use super::guard::Allowance;
use super::identity::found;
use super::pool::{ImapPool, Lease};
use super::read::{each_chunk, fetch};
use super::session::ImapSession;
use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::auth::Authentication;
use crate::mail::inputs::{Folder, FolderPath, Imap, ImapMail, Login, Server, Smtp};
use crate::operation::JobContext;
use crate::smtp::send::{Composed, compose};
use crate::smtp::transport::SmtpTransports;

/// The SMTP server a reply or forward goes out by: `{ server, authentication? }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmtpTarget {
    pub server: Server<Smtp>,
    pub authentication: Option<Login<Smtp>>,
}

/// One FEEL context in a model, its fields read (and each problem named by its pointer) as
/// the job is decoded: a template has no nested groups for a second connection.
impl JsonSchema for SmtpTarget {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SmtpTarget".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "SMTP server",
            "description": "A FEEL context { server, authentication? } for sending: server as \
                            smtp:send's; authentication defaults to the IMAP login.",
            "examples": ["={server: {host: \"smtp.example.com\", port: 587, security: \"starttls\"}}"],
            "type": "object",
            "x-template": { "feel": "required" }
        })
    }
}

/// What reply and forward both take besides the mail: how the message goes out, from whom,
/// the new text, and where a copy is kept.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnswerFields {
    pub smtp: SmtpTarget,
    #[schemars(
        title = "From",
        description = "The sender: an address or \"Name <address>\". Empty: the IMAP username.",
        extend("x-template" = { "feel": "optional" })
    )]
    pub from: Option<String>,
    #[schemars(
        title = "Text body",
        description = "The text/plain part; in a reply or forward, the new text above the original.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    pub body: Option<String>,
    #[schemars(
        title = "HTML body",
        description = "The text/html part; in a reply or forward, the new text above the original.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    pub html_body: Option<String>,
    #[schemars(
        title = "Save a copy to",
        description = "A folder of the same IMAP account (e.g. Sent) to store the message in, as sent.",
        extend("x-template" = { "feel": "optional" })
    )]
    pub save_copy_to: Option<FolderPath>,
}

/// An original larger than this is not answered: it would be held whole, and no mail server
/// takes much more in one message.
pub const MAX_ORIGINAL_BYTES: u64 = 25 * 1024 * 1024;

/// The mail answered or forwarded.
pub struct Original {
    pub uid: u32,
    pub validity: u32,
    pub raw: Vec<u8>,
}

impl Original {
    pub fn parsed(&self) -> Result<Message<'_>> {
        MessageParser::default().parse(&self.raw).ok_or_else(|| {
            EmailError::new(
                ErrorCode::EmailNotFound,
                format!("UID {} does not read as a mail message", self.uid),
            )
        })
    }
}

/// The sender a reply or forward goes out as: `from` when given, else the IMAP username.
pub fn sender(from: Option<&str>, login: &Authentication) -> String {
    match from {
        Some(from) if !from.trim().is_empty() => from.to_string(),
        _ => login.username().unwrap_or_default().to_string(),
    }
}

/// A session of the IMAP account `server` + `login`, and the original mail `wanted` names in
/// `folder` (see [`original`]).
pub async fn open(
    pool: &Arc<ImapPool>,
    job: &JobContext,
    server: &Server<Imap>,
    login: &Authentication,
    folder: &Folder,
    wanted: &ImapMail,
) -> Result<(Lease, Original)> {
    let mut session = pool
        .acquire(job.services(), &server.endpoint(), login)
        .await?;
    let original = original(&mut session, folder, wanted).await?;
    Ok((session, original))
}

/// Opens `folder` (writable, for `\Answered`), finds the mail `wanted` names and fetches it
/// whole (without setting `\Seen`).
pub async fn original(
    session: &mut ImapSession,
    folder: &Folder,
    wanted: &ImapMail,
) -> Result<Original> {
    let (validity, _) = session.open(folder, true).await?;
    let (uid, _) = found(session, folder.name(), validity, wanted).await?;
    let id = wanted.describe();
    let size = fetch(session, uid, "(UID RFC822.SIZE)", Allowance::CONTROL, &id)
        .await?
        .size
        .map_or(0, u64::from);
    if size > MAX_ORIGINAL_BYTES {
        return Err(EmailError::new(
            ErrorCode::MessageRejected,
            format!("{id} is {size} bytes; at most {MAX_ORIGINAL_BYTES} are answered or forwarded"),
        ));
    }
    let mut raw = Vec::new();
    each_chunk(session, uid, &id, |chunk| {
        raw.extend_from_slice(chunk);
        if raw.len() as u64 > MAX_ORIGINAL_BYTES {
            return Err(EmailError::new(
                ErrorCode::MessageRejected,
                format!("{id} is larger than the {MAX_ORIGINAL_BYTES} bytes answered or forwarded"),
            ));
        }
        Ok(())
    })
    .await?;
    Ok(Original { uid, validity, raw })
}

/// One line of printable text: control characters (a decoded CR or LF among them) become
/// spaces, runs of spaces one, at most 998 characters.
pub fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(998)
        .collect()
}

/// `prefix` (`Re:`, `Fwd:`) and the original subject, unless it starts with that prefix
/// already (any case).
pub fn prefixed(prefix: &str, subject: Option<&str>) -> String {
    let subject = one_line(subject.unwrap_or_default());
    let starts = subject
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    if starts {
        subject
    } else if subject.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {subject}")
    }
}

/// The bare addresses of a header that parse as one address each, lower-cased for comparing
/// but kept as written.
pub fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .map(str::trim)
                .filter(|a| is_plain_address(a))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `local@domain` with nothing in it that could leave an address header.
fn is_plain_address(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 254
        && text.split('@').count() == 2
        && text.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'<' | b'>' | b',' | b';' | b'"' | b'(' | b')' | b'\\' | b':'
                )
        })
}

/// `<id>` when `id` is one token (no space, no angle bracket inside).
fn message_id_token(id: &str) -> Option<String> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    (!bare.is_empty()
        && bare.len() <= 250
        && bare
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>'))
    .then(|| format!("<{bare}>"))
}

/// The Message-IDs of a header (References, In-Reply-To) that are one token each.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|id| message_id_token(id))
        .collect()
}

/// The original's Message-ID as a token, and the References of an answer to it: its
/// References (or else its In-Reply-To) followed by its Message-ID.
pub fn thread(message: &Message<'_>) -> (Option<String>, Vec<String>) {
    let own = message.message_id().and_then(message_id_token);
    let mut references = ids(message.references());
    if references.is_empty() {
        references = ids(message.in_reply_to());
    }
    // A hostile References of thousands of ids would make a header no server takes.
    if references.len() > 50 {
        references.drain(..references.len() - 50);
    }
    references.extend(own.clone());
    (own, references)
}

/// The attribution line above a quote: `On <date>, <sender> wrote:`.
pub fn attribution(message: &Message<'_>) -> String {
    let sender = message
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (_, Some(address)) => address.to_string(),
            (Some(name), None) => name.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default();
    let sender = if sender.is_empty() {
        "the sender".to_string()
    } else {
        one_line(&sender)
    };
    match message.date() {
        Some(date) if date.is_valid() => format!("On {date}, {sender} wrote:"),
        _ => format!("{sender} wrote:"),
    }
}

/// `text` with each line prefixed `> `.
pub fn quoted_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_string()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// HTML-escapes text (for a sender's name or a text body shown in HTML).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The original's attachments as send's attachment entries (base64 content).
pub fn attachments_of(message: &Message<'_>) -> Vec<Value> {
    use mail_parser::MimeHeaders;
    message
        .attachments()
        .enumerate()
        .map(|(index, part)| {
            let content_type = part
                .content_type()
                .map(|t| match &t.c_subtype {
                    Some(sub) => format!("{}/{}", t.c_type, sub),
                    None => t.c_type.to_string(),
                })
                .map(|t| one_line(&t))
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = part
                .attachment_name()
                .map(one_line)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("attachment-{}", index + 1));
            serde_json::json!({
                "fileName": name,
                "contentType": content_type,
                "content": base64::engine::general_purpose::STANDARD.encode(part.contents()),
            })
        })
        .collect()
}

/// Sends a composed answer by `smtp`, logging in with its authentication or else `imap`'s.
pub async fn send(
    transports: &Arc<SmtpTransports>,
    job: &JobContext,
    smtp: &SmtpTarget,
    imap: &Authentication,
    composed: &Composed,
) -> Result<()> {
    let authentication = smtp.authentication.as_deref().unwrap_or(imap);
    transports
        .send(
            job.services(),
            &smtp.server.endpoint(),
            authentication,
            &composed.envelope,
            &composed.message,
        )
        .await
}

/// Composes send's `fields` into a message, with a forward's `original` attached as it is.
pub async fn composed(
    job: &JobContext,
    fields: Value,
    original: Option<Vec<u8>>,
) -> Result<Composed> {
    compose(job.services(), fields, job, original).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_get_one_prefix_and_stay_one_line() {
        assert_eq!(prefixed("Re:", Some("Hello")), "Re: Hello");
        assert_eq!(prefixed("Re:", Some("RE: Hello")), "RE: Hello");
        assert_eq!(prefixed("Re:", Some("re:Hello")), "re:Hello");
        assert_eq!(prefixed("Fwd:", Some("Re: x")), "Fwd: Re: x");
        assert_eq!(prefixed("Fwd:", Some("FWD: x")), "FWD: x");
        assert_eq!(prefixed("Re:", None), "Re:");
        assert_eq!(
            prefixed("Re:", Some("a\r\nBcc: victim@example.test")),
            "Re: a Bcc: victim@example.test"
        );
        assert_eq!(prefixed("Re:", Some("ü")), "Re: ü");
    }

    #[test]
    fn hostile_addresses_and_ids_are_left_out() {
        let raw = b"From: a@example.test\r\nReply-To: \"x\" <b@example.test>, =?utf-8?q?evil=0D=0ABcc=3A_v=40example.test?= <c@example.test>\r\nMessage-ID: <m1@example.test>\r\nReferences: <r1@x> <bad id> <r2@x>\r\nSubject: s\r\n\r\nbody\r\n";
        let message = MessageParser::default().parse(&raw[..]).unwrap();
        assert_eq!(
            addresses(message.reply_to()),
            ["b@example.test", "c@example.test"]
        );
        let (own, references) = thread(&message);
        assert_eq!(own.as_deref(), Some("<m1@example.test>"));
        assert_eq!(
            references.last().map(String::as_str),
            Some("<m1@example.test>")
        );
        assert!(
            references.iter().all(|r| !r.contains(' ')),
            "{references:?}"
        );
        assert!(!is_plain_address("a@b\r\nBcc: c@d"));
        assert!(!is_plain_address("a b@c"));
    }

    #[test]
    fn quotes_prefix_every_line() {
        assert_eq!(quoted_text("a\n\nb"), "> a\n>\n> b");
        assert_eq!(escape_html("<b>&\""), "&lt;b&gt;&amp;&quot;");
    }
}
