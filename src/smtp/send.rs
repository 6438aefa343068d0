//! `smtp:send`: builds a MIME message from the job's variables and submits it (SPEC §3).
//!
//! Parsing is strict and complete before anything is sent: every problem in the variables is
//! reported at once, and header injection (CR or LF where a header value goes) is refused
//! rather than encoded away, because such input is a bug or an attack, never an intent.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use futures_util::future::BoxFuture;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, Mailboxes, MultiPart, SinglePart};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::transport::SmtpTransports;
use crate::error::{EmailError, Result};
use crate::mail::inputs::{Login, Server, Smtp};
use crate::mail::server::{Authentication, Endpoint, Protocol};
use crate::operation::{JobContext, MailOperation, Outcome};

pub struct SendOperation {
    transports: Arc<SmtpTransports>,
}

impl SendOperation {
    pub fn new(transports: Arc<SmtpTransports>) -> Self {
        SendOperation { transports }
    }
}

// A comma-separated string or a list of strings: FEEL gives either. (A plain comment: a doc
// comment would become the schema's description of every address field.)
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn items(&self) -> Vec<&str> {
        match self {
            StringOrList::One(s) => vec![s.as_str()],
            StringOrList::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AttachmentInput {
    #[schemars(length(min = 1))]
    file_name: String,
    content_type: Option<String>,
    content: String,
}

/// What `smtp:send` takes (SPEC §3).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    title = "Send an email",
    description = "Sends one message; a retried job sends the same Message-ID."
)]
pub struct SendInput {
    authentication: Login<Smtp>,
    server: Server<Smtp>,
    #[schemars(
        title = "From",
        description = "The sender: an address or \"Name <address>\".",
        length(min = 1),
        extend("examples" = ["Support <support@example.com>"], "x-template" = { "feel": "optional" })
    )]
    from: String,
    #[schemars(
        title = "To",
        description = "Comma-separated addresses, or a FEEL list of them. At least one of To, Cc \
                       and Bcc is needed.",
        extend("examples" = ["a@example.com, B <b@example.com>"], "x-template" = { "feel": "optional" })
    )]
    to: Option<StringOrList>,
    #[schemars(
        title = "Cc",
        description = "Comma-separated addresses, or a FEEL list.",
        extend("examples" = ["=[manager.email]"], "x-template" = { "feel": "optional" })
    )]
    cc: Option<StringOrList>,
    #[schemars(
        title = "Bcc",
        description = "Comma-separated addresses, or a FEEL list.",
        extend("examples" = ["archive@example.com"], "x-template" = { "feel": "optional" })
    )]
    bcc: Option<StringOrList>,
    #[schemars(
        title = "Reply to",
        description = "Where replies should go, if not to From.",
        extend("examples" = ["help@example.com"], "x-template" = { "feel": "optional" })
    )]
    reply_to: Option<StringOrList>,
    #[schemars(
        title = "Subject",
        description = "Non-ASCII text is encoded for you.",
        extend("x-template" = { "feel": "optional", "multiline": false })
    )]
    subject: Option<String>,
    #[schemars(
        title = "Text body",
        description = "The text/plain body. With an HTML body as well, the message is \
                       multipart/alternative.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    body: Option<String>,
    #[schemars(
        title = "HTML body",
        description = "The text/html body.",
        extend("x-template" = { "feel": "optional", "multiline": true })
    )]
    html_body: Option<String>,
    #[schemars(
        title = "Attachments",
        description = "A FEEL list of { fileName, contentType, content } with the content \
                       base64-encoded; contentType defaults to application/octet-stream.",
        extend(
            "examples" = ["=[{fileName: \"report.pdf\", contentType: \"application/pdf\", content: reportBase64}]"],
            "x-template" = { "feel": "required" }
        )
    )]
    attachments: Option<Vec<AttachmentInput>>,
    #[schemars(
        title = "Extra headers",
        description = "A FEEL context of header name to value. Headers that would replace From, \
                       To, Cc, Bcc, Subject, Message-ID, Date or the MIME structure are refused.",
        extend("examples" = ["={\"X-Ticket\": ticket.id}"], "x-template" = { "feel": "required" })
    )]
    headers: Option<BTreeMap<String, String>>,
    #[schemars(
        title = "In reply to",
        description = "The Message-ID this message answers, for threading.",
        extend("examples" = ["=mail.messageId"], "x-template" = { "feel": "optional" })
    )]
    in_reply_to: Option<String>,
    #[schemars(
        title = "References",
        description = "Message-IDs of the thread, oldest first (a string or a FEEL list).",
        extend("examples" = ["=[mail.messageId]"], "x-template" = { "feel": "optional" })
    )]
    references: Option<StringOrList>,
}

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
struct PreparedMessage {
    endpoint: Endpoint,
    authentication: Authentication,
    message: Message,
    subject: String,
    message_id: String,
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

fn prepare(input: SendInput, job: &JobContext) -> Result<PreparedMessage> {
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
    let subject = input.subject.clone().unwrap_or_default();
    problems.check_single_line("/subject", &subject);
    let body = input.body.clone().filter(|b| !b.is_empty());
    let html_body = input.html_body.clone().filter(|b| !b.is_empty());
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
    for (index, attachment) in input.attachments.iter().flatten().enumerate() {
        let pointer = format!("/attachments/{index}");
        problems.check_single_line(&format!("{pointer}/fileName"), &attachment.file_name);
        let content_type = attachment
            .content_type
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
        let compact: String = attachment
            .content
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.add(
                    &format!("{pointer}/content"),
                    format!("is not base64 ({e})"),
                );
                None
            }
        };
        if let (Some(t), Some(b)) = (parsed_type, bytes)
            && !has_line_break(&attachment.file_name)
        {
            attachments.push(Attachment::new(attachment.file_name.clone()).body(b, t));
        }
    }

    let endpoint = input.server.endpoint();
    if !problems.0.is_empty() {
        return Err(EmailError::invalid_input(problems.0.join("; ")));
    }
    let Some(from) = from else {
        return Err(EmailError::invalid_input("/from: missing"));
    };

    let message_id = message_id_for(job, from.email.domain());
    let mut builder = Message::builder()
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
        (Some(text), Some(html)) => Content::Multi(MultiPart::alternative_plain_html(text, html)),
        (Some(text), None) => Content::Single(SinglePart::plain(text)),
        (None, Some(html)) => Content::Single(SinglePart::html(html)),
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
        subject,
        message_id,
    })
}

enum Content {
    Single(SinglePart),
    Multi(MultiPart),
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
            let prepared = prepare(input, job)?;
            let envelope = prepared.message.envelope().clone();
            let formatted = prepared.message.formatted();
            self.transports
                .send(
                    &prepared.endpoint,
                    &prepared.authentication,
                    &envelope,
                    &formatted,
                )
                .await?;
            Ok(Outcome::respond(json!({
                "subject": prepared.subject,
                "sent": true,
                "messageId": prepared.message_id,
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::inputs::decode;
    use crate::operation::Operation;
    use serde_json::Value;

    fn base() -> Value {
        json!({
            "authentication": { "type": "none" },
            "server": { "host": "127.0.0.1", "port": 25, "security": "none" },
            "from": "Sender <sender@example.test>",
            "to": "a@example.test",
            "subject": "Hi",
            "body": "text"
        })
    }

    fn formatted(vars: Value) -> String {
        let job = JobContext {
            job_key: 42,
            process_instance_key: 7,
            retries: 3,
        };
        let input = decode(vars).unwrap();
        String::from_utf8(prepare(input, &job).unwrap().message.formatted()).unwrap()
    }

    fn problems(vars: Value) -> String {
        match decode(vars) {
            Ok(input) => {
                prepare(input, &JobContext::default())
                    .err()
                    .unwrap()
                    .message
            }
            Err(e) => e.message,
        }
    }

    #[test]
    fn message_id_comes_from_the_job() {
        let text = formatted(base());
        assert!(text.contains("Message-ID: <42.7@example.test>"), "{text}");
        assert!(text.contains("Content-Type: text/plain"), "{text}");
        assert!(!text.contains("multipart"), "{text}");
    }

    #[test]
    fn both_bodies_are_alternatives_and_attachments_mix() {
        let mut vars = base();
        vars["htmlBody"] = json!("<p>html</p>");
        assert!(formatted(vars.clone()).contains("multipart/alternative"));
        vars["attachments"] = json!([{ "fileName": "Grüße.txt", "content": "aGVsbG8=" }]);
        let text = formatted(vars);
        assert!(text.contains("multipart/mixed"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("filename*0*=utf-8''Gr%C3%BC%C3%9Fe.txt"),
            "{text}"
        );
    }

    #[test]
    fn injection_and_reserved_headers_are_refused_with_pointers() {
        let mut vars = base();
        vars["subject"] = json!("Hi\r\nBcc: victim@example.test");
        vars["to"] = json!(["ok@example.test", "x@example.test\nBcc: y@example.test"]);
        vars["headers"] = json!({ "X-Ok": "fine", "X-Bad": "a\nb", "From": "evil@example.test", "Content-Type": "text/html", "Bad Name": "v" });
        vars["attachments"] = json!([{ "fileName": "a\r\n.txt", "content": "!!" }]);
        let m = problems(vars);
        for pointer in [
            "/subject",
            "/to/1",
            "/headers/X-Bad",
            "/headers/From",
            "/headers/Content-Type",
            "/headers/Bad Name",
            "/attachments/0/fileName",
            "/attachments/0/content",
        ] {
            assert!(
                m.contains(&format!("{pointer}:")),
                "{pointer} missing in {m}"
            );
        }
        assert!(!m.contains("/headers/X-Ok"), "{m}");
    }

    #[test]
    fn recipients_and_bodies_are_required() {
        let mut vars = base();
        vars["to"] = json!(null);
        vars["body"] = json!("");
        let m = problems(vars);
        assert!(m.contains("at least one recipient"), "{m}");
        assert!(m.contains("at least one of body and htmlBody"), "{m}");
    }

    #[test]
    fn addresses_as_string_or_list_and_bcc_hidden() {
        let mut vars = base();
        vars["to"] = json!("\"Doe, Jane\" <jane@example.test>, bob@example.test");
        vars["cc"] = json!(["c1@example.test", "c2@example.test"]);
        vars["bcc"] = json!("hidden@example.test");
        let job = JobContext {
            job_key: 1,
            process_instance_key: 1,
            retries: 1,
        };
        let prepared = prepare(decode(vars).unwrap(), &job).unwrap();
        let envelope: Vec<String> = prepared
            .message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(envelope.len(), 5, "{envelope:?}");
        assert!(envelope.contains(&"hidden@example.test".to_string()));
        let text = String::from_utf8(prepared.message.formatted()).unwrap();
        assert!(!text.contains("hidden@example.test"), "{text}");
        // "Doe, Jane" travels as an encoded word, which keeps the comma out of the list syntax.
        assert!(
            text.contains("=?utf-8?b?RG9lLCBKYW5l?= <jane@example.test>, bob@example.test"),
            "{text}"
        );
    }

    #[test]
    fn field_headers_conflict_only_when_both_are_given() {
        let mut vars = base();
        vars["headers"] = json!({ "Reply-To": "r@example.test" });
        assert!(formatted(vars.clone()).contains("Reply-To: r@example.test"));
        vars["replyTo"] = json!("s@example.test");
        assert!(problems(vars).contains("/headers/Reply-To"));
    }

    #[test]
    fn schema_compiles_and_rejects_unknown_nested_fields() {
        let op = SendOperation::new(Arc::new(SmtpTransports::new(true)));
        let schema = crate::schema::InputSchema::compile(&op.schema()).unwrap();
        schema.validate(&base()).unwrap();
        let mut vars = base();
        vars["attachments"] = json!([{ "fileName": "a", "content": "", "extra": 1 }]);
        vars["server"]["port"] = json!("25");
        vars["someProcessVariable"] = json!({ "anything": true });
        let m = schema.validate(&vars).unwrap_err().message;
        assert!(m.contains("/attachments/0"), "{m}");
        assert!(m.contains("/server/port"), "{m}");
        assert!(!m.contains("someProcessVariable"), "{m}");
    }
}
