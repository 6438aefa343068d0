//! From `smtp:send`'s input to a MIME message ready to submit (docs/operations.md,
//! `email:smtp:send:1`).
//!
//! Parsing is strict and complete before anything is sent: every problem in the variables is
//! reported at once, and header injection (CR or LF where a header value goes) is refused
//! rather than encoded away, because such input is a bug or an attack, never an intent.

use base64::Engine;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, Mailboxes, MultiPart, SinglePart};

use super::data::Content as AttachmentContent;
use super::send::{SendInput, StringOrList};
use super::text_body::text_body;
use crate::error::{EmailError, Result};
use crate::mail::auth::Authentication;
use crate::mail::server::Endpoint;
use crate::operation::JobContext;

/// Headers that the message structure or a dedicated field owns. Letting a custom header set
/// them would let a model forge the sender or break the MIME tree.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message-id",
    "date",
    "mime-version",
    "sender",
    "return-path",
];

/// Headers a custom header may set only when the dedicated field is not used.
const FIELD_HEADERS: &[(&str, &str)] = &[
    ("reply-to", "replyTo"),
    ("in-reply-to", "inReplyTo"),
    ("references", "references"),
];

/// A message ready to submit, with what the response needs.
pub(super) struct PreparedMessage {
    pub(super) endpoint: Endpoint,
    pub(super) authentication: Authentication,
    pub(super) message: Message,
    /// Each attachment's content and the placeholder that stands for it in `message`.
    pub(super) contents: Vec<(String, AttachmentContent)>,
    pub(super) subject: String,
    pub(super) message_id: String,
}

fn has_line_break(text: &str) -> bool {
    text.contains(['\r', '\n'])
}

/// Collects every problem found while preparing a message.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, pointer: &str, text: impl std::fmt::Display) {
        self.0.push(format!("{pointer}: {text}"));
    }

    fn check_single_line(&mut self, pointer: &str, value: &str) {
        if has_line_break(value) {
            self.add(
                pointer,
                "contains CR or LF, which would inject message headers",
            );
        }
    }
}

fn parse_mailboxes(pointer: &str, value: &StringOrList, problems: &mut Problems) -> Vec<Mailbox> {
    let mut result = Vec::new();
    for (index, item) in value.items().into_iter().enumerate() {
        let item_pointer = match value {
            StringOrList::One(_) => pointer.to_string(),
            StringOrList::Many(_) => format!("{pointer}/{index}"),
        };
        if has_line_break(item) {
            problems.check_single_line(&item_pointer, item);
            continue;
        }
        if item.trim().is_empty() {
            if matches!(value, StringOrList::Many(_)) {
                problems.add(&item_pointer, "is empty");
            }
            continue;
        }
        match item.parse::<Mailboxes>() {
            Ok(mailboxes) => result.extend(mailboxes),
            Err(e) => problems.add(
                &item_pointer,
                format!("'{item}' is not a valid address list ({e})"),
            ),
        }
    }
    result
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 76
        && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// A Message-ID that stays the same when Zeebe retries the job, so a receiver (or a search by
/// Message-ID) can recognise a duplicate sent after a lost completion.
fn message_id_for(job: &JobContext, domain: &str) -> String {
    if job.job_key != 0 {
        format!("<{}.{}@{domain}>", job.job_key, job.process_instance_key)
    } else {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("<invoke.{nanos}.{}@{domain}>", std::process::id())
    }
}

/// An attachment's body in the message lettre builds: a random placeholder, sent as base64,
/// that [`super::data`] replaces with the content encoded as it is sent, so lettre never
/// holds (and copies) a large attachment. Every attachment goes as base64, which no server
/// rewrites (7bit with a NUL in it came out of Dovecot as 0x80); only a forward's original
/// does not ([`super::forwarded`]). Returns the body and the
/// text that stands for the content in the formatted message.
pub(super) fn placeholder_body() -> Result<(Body, String)> {
    // 48 bytes: one base64 line of 64 characters, never split by lettre's line wrapping.
    let marker: String = (0..48).map(|_| fastrand::alphanumeric()).collect();
    let text = base64::engine::general_purpose::STANDARD.encode(marker.as_bytes());
    let body = Body::new_with_encoding(marker, ContentTransferEncoding::Base64)
        .map_err(|_| EmailError::internal("an attachment placeholder"))?;
    Ok((body, text))
}

pub(super) fn prepare(mut input: SendInput, job: &JobContext) -> Result<PreparedMessage> {
    let authentication = input.authentication.authentication.clone();
    let mut problems = Problems::default();

    problems.check_single_line("/from", &input.from);
    let from = if has_line_break(&input.from) {
        None
    } else {
        match input.from.trim().parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(e) => {
                problems.add("/from", format!("'{}' is not an address ({e})", input.from));
                None
            }
        }
    };
    let mut recipient_count = 0;
    let mut recipients = Vec::new();
    for (field, value) in [("to", &input.to), ("cc", &input.cc), ("bcc", &input.bcc)] {
        let list = value
            .as_ref()
            .map(|v| parse_mailboxes(&format!("/{field}"), v, &mut problems))
            .unwrap_or_default();
        recipient_count += list.len();
        recipients.push(list);
    }
    let reply_to = input
        .reply_to
        .as_ref()
        .map(|v| parse_mailboxes("/replyTo", v, &mut problems))
        .unwrap_or_default();
    if recipient_count == 0 && problems.0.is_empty() {
        problems.add("/", "at least one recipient is needed in to, cc or bcc");
    }
    let subject = input.subject.take().unwrap_or_default();
    problems.check_single_line("/subject", &subject);
    let body = input.body.take().filter(|b| !b.is_empty());
    let html_body = input.html_body.take().filter(|b| !b.is_empty());
    if body.is_none() && html_body.is_none() {
        problems.add("/", "at least one of body and htmlBody is needed");
    }
    if let Some(id) = &input.in_reply_to {
        problems.check_single_line("/inReplyTo", id);
    }
    let references: Vec<&str> = input
        .references
        .as_ref()
        .map(|r| r.items())
        .unwrap_or_default();
    for (index, reference) in references.iter().enumerate() {
        problems.check_single_line(&format!("/references/{index}"), reference);
    }

    let mut custom_headers = Vec::new();
    for (name, value) in input.headers.iter().flatten() {
        let pointer = format!("/headers/{}", name.replace('~', "~0").replace('/', "~1"));
        let lower = name.to_ascii_lowercase();
        if !is_header_name(name) {
            problems.add(
                &pointer,
                "is not a valid header name (printable ASCII without ':' or spaces)",
            );
            continue;
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("content-") {
            problems.add(
                &pointer,
                format!("'{name}' is set by the connector and cannot be replaced"),
            );
            continue;
        }
        if let Some((_, field)) = FIELD_HEADERS.iter().find(|(h, _)| *h == lower) {
            let field_used = match *field {
                "replyTo" => input.reply_to.is_some(),
                "inReplyTo" => input.in_reply_to.is_some(),
                _ => input.references.is_some(),
            };
            if field_used {
                problems.add(
                    &pointer,
                    format!("'{name}' is also given as /{field}; use one of them"),
                );
                continue;
            }
        }
        if has_line_break(value) {
            problems.check_single_line(&pointer, value);
            continue;
        }
        match HeaderName::new_from_ascii(name.clone()) {
            Ok(header) => custom_headers.push(HeaderValue::new(header, value.clone())),
            Err(e) => problems.add(&pointer, format!("is not a valid header name ({e})")),
        }
    }

    let mut attachments = Vec::new();
    let mut contents = Vec::new();
    for (index, attachment) in input.attachments.iter_mut().flatten().enumerate() {
        let pointer = format!("/attachments/{index}");
        if attachment.forms() != 1 {
            problems.add(
                &pointer,
                "needs exactly one of content (base64), documentId (a document reference) or \
                 document (a read's attachment entry)"
                    .to_string(),
            );
            continue;
        }
        let file_name = attachment
            .name()
            .unwrap_or_else(|| format!("attachment-{}", index + 1));
        problems.check_single_line(&format!("{pointer}/fileName"), &file_name);
        let media_type = attachment.media_type();
        let content_type = media_type
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or("application/octet-stream");
        let parsed_type = if has_line_break(content_type) {
            problems.check_single_line(&format!("{pointer}/contentType"), content_type);
            None
        } else {
            match ContentType::parse(content_type) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.add(
                        &format!("{pointer}/contentType"),
                        format!("'{content_type}' is not a media type ({e})"),
                    );
                    None
                }
            }
        };
        let bytes = match (attachment.content.take(), attachment.downloaded.take()) {
            (Some(content), _) => {
                // The job's text is dropped once decoded: only the bytes are kept.
                let mut compact = content.into_bytes();
                compact.retain(|b| !b.is_ascii_whitespace());
                match base64::engine::general_purpose::STANDARD.decode(&compact) {
                    Ok(b) => Some(AttachmentContent::Memory(b)),
                    Err(e) => {
                        problems.add(
                            &format!("{pointer}/content"),
                            format!("is not base64 ({e})"),
                        );
                        None
                    }
                }
            }
            (None, Some(path)) => Some(AttachmentContent::File(path)),
            (None, None) => {
                problems.add(
                    &pointer,
                    "the referenced document was not fetched".to_string(),
                );
                None
            }
        };
        if let (Some(t), Some(content)) = (parsed_type, bytes)
            && !has_line_break(&file_name)
        {
            let (body, placeholder) = placeholder_body()?;
            attachments.push(Attachment::new(file_name).body(body, t));
            contents.push((placeholder, content));
        }
    }

    if let Some(original) = input.forwarded.take() {
        let (part, placeholder, content) = super::forwarded::part(original)?;
        attachments.push(part);
        contents.push((placeholder, content));
    }

    let endpoint = input.server.endpoint();
    if !problems.0.is_empty() {
        return Err(EmailError::invalid_input(problems.0.join("; ")));
    }
    let Some(from) = from else {
        return Err(EmailError::invalid_input("/from: missing"));
    };

    let message_id = message_id_for(job, from.email.domain());
    // The envelope from the addresses at hand: lettre would otherwise format the address
    // headers and parse them back to find it.
    let envelope = Envelope::new(
        Some(from.email.clone()),
        recipients
            .iter()
            .flatten()
            .map(|mailbox| mailbox.email.clone())
            .collect(),
    )
    .map_err(|e| EmailError::invalid_input(format!("/: no envelope ({e})")))?;
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(from)
        .subject(subject.clone())
        .message_id(Some(message_id.clone()));
    let [to, cc, bcc]: [Vec<Mailbox>; 3] = recipients
        .try_into()
        .map_err(|_| EmailError::internal("recipient lists"))?;
    for mailbox in to {
        builder = builder.to(mailbox);
    }
    for mailbox in cc {
        builder = builder.cc(mailbox);
    }
    for mailbox in bcc {
        builder = builder.bcc(mailbox);
    }
    for mailbox in reply_to {
        builder = builder.reply_to(mailbox);
    }
    if let Some(id) = input.in_reply_to.filter(|s| !s.trim().is_empty()) {
        builder = builder.in_reply_to(id);
    }
    if !references.is_empty() {
        builder = builder.references(references.join(" "));
    }
    for header in custom_headers {
        builder = builder.raw_header(header);
    }

    let text_part = match (body, html_body) {
        (Some(text), Some(html)) => Content::Multi(
            MultiPart::alternative()
                .singlepart(text_part(ContentType::TEXT_PLAIN, &text))
                .singlepart(text_part(ContentType::TEXT_HTML, &html)),
        ),
        (Some(text), None) => Content::Single(text_part(ContentType::TEXT_PLAIN, &text)),
        (None, Some(html)) => Content::Single(text_part(ContentType::TEXT_HTML, &html)),
        (None, None) => return Err(EmailError::invalid_input("/: no body")),
    };
    let built = if attachments.is_empty() {
        match text_part {
            Content::Multi(m) => builder.multipart(m),
            Content::Single(s) => builder.singlepart(s),
        }
    } else {
        let mut mixed = match text_part {
            Content::Multi(m) => MultiPart::mixed().multipart(m),
            Content::Single(s) => MultiPart::mixed().singlepart(s),
        };
        for attachment in attachments {
            mixed = mixed.singlepart(attachment);
        }
        builder.multipart(mixed)
    };
    let message = built
        .map_err(|e| EmailError::invalid_input(format!("/: cannot build the message ({e})")))?;
    Ok(PreparedMessage {
        endpoint,
        authentication,
        message,
        contents,
        subject,
        message_id,
    })
}

/// A `text/plain` or `text/html` part (UTF-8), its body encoded by [`text_body`].
fn text_part(content_type: ContentType, text: &str) -> SinglePart {
    SinglePart::builder()
        .header(content_type)
        .body(text_body(text))
}

enum Content {
    Single(SinglePart),
    Multi(MultiPart),
}
