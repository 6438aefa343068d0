//! The read response as a type: what `imap:read`, `pop3:read` and the inbound watchers hand to a
//! process for one message. The fields and their order are the contract (docs/operations.md);
//! the budget ([`super::budget`]) cuts this struct, not a JSON tree, so a cut
//! can only ever shorten a field the type has.

use std::borrow::Cow;

use schemars::generate::Contract;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::documents::store::DocumentReference;

/// One message, read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadMessage {
    /// The Message-ID header as found, angle brackets included; null when the message has none.
    pub message_id: Option<String>,
    /// The bare address of the first From mailbox.
    pub from_address: Option<String>,
    /// The Subject, encoded words decoded.
    pub subject: Option<String>,
    /// The server's size of the whole message in bytes (IMAP RFC822.SIZE, POP3 LIST).
    pub size: u64,
    /// The first text/plain body, as UTF-8 whatever its charset; null when there is none.
    pub plain_text_body: Option<String>,
    /// The first text/html body, as UTF-8; null when there is none.
    pub html_body: Option<String>,
    /// Every header in order, folding removed and encoded words decoded.
    pub headers: Vec<Header>,
    /// When the server received it (IMAP INTERNALDATE), ISO-8601 UTC; null for POP3.
    pub received_date_time: Option<String>,
    /// The Date header in UTC, if it parses.
    pub sent_date: Option<String>,
    /// The attachments, each with its original bytes (base64) up to the attachment limit.
    pub attachments: Vec<Attachment>,
    /// The fields that name the stored mail for good: `uid` and `uidValidity` (IMAP) or
    /// `uidl` (POP3).
    #[serde(flatten)]
    pub identity: Map<String, Value>,
    /// Whether the response budget (`EMAIL_MAX_RESPONSE_BYTES`) cut anything.
    pub truncated: bool,
}

/// One header line of a read message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Header {
    /// The name as written.
    pub header: String,
    /// The value, unfolded and decoded.
    pub value: String,
}

/// One attachment of a read message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// A safe file name: no path, no control characters (`attachment-N` when it had none).
    pub file_name: String,
    /// The MIME type, lower case.
    pub content_type: String,
    /// The decoded size in bytes, also when the content is left out.
    pub size: u64,
    /// Whether its disposition is inline.
    pub inline: bool,
    /// The Content-ID without angle brackets.
    pub content_id: Option<String>,
    /// The original bytes, base64; absent when `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Present and true when the content was left out (over the attachment limit, or cut by
    /// the response budget), or, with `attachmentsAs: document`, the store did not take it.
    #[serde(skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// With `attachmentsAs: document`: why the attachment is not in the store (the store
    /// refused it as too large, or it is over `EMAIL_MAX_DOCUMENT_BYTES`); `truncated` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_error: Option<String>,
    /// With `attachmentsAs: document`: the store's reference to the attachment's bytes, instead
    /// of `content`, as the store wrote it; `smtp:send` takes the entry as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<StoredReference>")]
    pub document: Option<Value>,
}

/// How a read response describes a document reference: as `smtp:send` reads it back (the
/// input's terms, whatever the response's contract), since an entry is forwarded as it is and
/// the store's answer is kept as written, not rebuilt from the fields named here.
struct StoredReference;

impl JsonSchema for StoredReference {
    fn schema_name() -> Cow<'static, str> {
        "StoredReference".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let settings = generator.settings().clone().with(|s| {
            s.contract = Contract::Deserialize;
        });
        DocumentReference::json_schema(&mut settings.into_generator())
    }
}

/// One message as `list` and `search` return it (IMAP and POP3 alike), from its headers alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageSummary {
    /// The Message-ID header, angle brackets included; null when missing or longer than a
    /// header line may be.
    pub message_id: Option<String>,
    /// The bare address of the first From mailbox, at most 1,000 characters (then `…`).
    pub from_address: Option<String>,
    /// The Subject, encoded words decoded, at most 1,000 characters (then `…`).
    pub subject: Option<String>,
    /// The server's size of the whole message in bytes.
    pub size: Option<u64>,
    /// When the server received it (IMAP INTERNALDATE), ISO-8601 UTC; null for POP3.
    pub received_date_time: Option<String>,
    /// The Date header in UTC, if it parses.
    pub sent_date: Option<String>,
    /// The fields that name the stored mail for good: `uid` and `uidValidity` (IMAP) or
    /// `uidl` (POP3).
    #[serde(flatten)]
    pub identity: Map<String, Value>,
}

/// What `smtp:send` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendResult {
    /// The subject as sent.
    pub subject: String,
    /// Always true: a send that fails fails the job instead.
    pub sent: bool,
    /// The Message-ID the message went out with (the same when a retried job sends again).
    pub message_id: String,
    /// With `saveCopyTo`: where the copy was stored, or null when saving it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_to: Option<Option<crate::smtp::save::SavedTo>>,
    /// With `saveCopyTo`, when saving failed: its code and message (the mail was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_error: Option<crate::smtp::save::SaveError>,
}

/// What `imap:delete` and `pop3:delete` return.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResult {
    /// Whether a message was deleted; false when there was none to delete (a retry after the
    /// first attempt deleted it is a success too).
    pub deleted: bool,
    /// The message's Message-ID, or the one asked for.
    pub message_id: Option<String>,
    /// `uid` and `uidValidity` (IMAP) or `uidl` (POP3) of the message asked for.
    #[serde(flatten)]
    pub identity: Map<String, Value>,
}

/// What `imap:move` returns.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoveResult {
    /// The message's Message-ID, or the one asked for.
    pub message_id: Option<String>,
    /// The source folder, as the process names it.
    pub from: String,
    /// The target folder, as the process names it.
    pub to: String,
    /// The message's UID in the target folder, when the server says it (UIDPLUS).
    pub target_uid: Option<u32>,
    /// `uid` and `uidValidity` of the message in the source folder (absent when a retry found
    /// it already moved).
    #[serde(flatten)]
    pub identity: Map<String, Value>,
}

/// A response as the job completes with it.
pub fn to_json(response: &impl Serialize) -> Value {
    // Strings, numbers, booleans and maps of JSON always serialize.
    serde_json::to_value(response).unwrap_or(Value::Null)
}

fn is_false(value: &bool) -> bool {
    !value
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A response's field names, in order.
    pub(crate) fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Processes read fields by name and see them in this order; the order and the presence of
    /// null fields are part of the response.
    #[test]
    fn the_read_response_keeps_its_fields_order_and_nulls() {
        let message = ReadMessage {
            identity: Map::from_iter([
                ("uid".to_string(), json!(7)),
                ("uidValidity".to_string(), json!(1)),
            ]),
            attachments: vec![
                Attachment {
                    content: Some("QQ==".into()),
                    ..Attachment::default()
                },
                Attachment {
                    truncated: true,
                    ..Attachment::default()
                },
                Attachment {
                    document: Some(json!({ "documentId": "d" })),
                    ..Attachment::default()
                },
                Attachment {
                    truncated: true,
                    document_error: Some("too large".into()),
                    ..Attachment::default()
                },
            ],
            ..ReadMessage::default()
        };
        let value = to_json(&message);
        assert_eq!(
            keys(&value),
            [
                "messageId",
                "fromAddress",
                "subject",
                "size",
                "plainTextBody",
                "htmlBody",
                "headers",
                "receivedDateTime",
                "sentDate",
                "attachments",
                "uid",
                "uidValidity",
                "truncated"
            ]
        );
        assert_eq!(value["messageId"], Value::Null);
        let attachments = &value["attachments"];
        // Every attachment's fields, then those of its form: inline, inline over a limit,
        // and with `attachmentsAs: document` stored or refused by the store.
        let forms: [&[&str]; 4] = [
            &["content"],
            &["truncated"],
            &["document"],
            &["truncated", "documentError"],
        ];
        for (index, form) in forms.into_iter().enumerate() {
            let expected = [
                &["fileName", "contentType", "size", "inline", "contentId"][..],
                form,
            ]
            .concat();
            assert_eq!(keys(&attachments[index]), expected, "{index}");
        }
        assert_eq!(attachments[2]["contentId"], Value::Null);
    }

    /// The small responses keep the fields and order they had when written as JSON by hand.
    #[test]
    fn send_delete_and_move_results_keep_their_fields() {
        let sent = to_json(&SendResult {
            subject: "s".into(),
            sent: true,
            message_id: "<m@x>".into(),
            saved_to: None,
            save_error: None,
        });
        assert_eq!(
            sent,
            json!({ "subject": "s", "sent": true, "messageId": "<m@x>" })
        );
        assert_eq!(keys(&sent), ["subject", "sent", "messageId"]);
        let deleted = to_json(&DeleteResult {
            deleted: false,
            message_id: None,
            identity: Map::from_iter([
                ("uid".to_string(), Value::Null),
                ("uidValidity".to_string(), json!(9)),
            ]),
        });
        assert_eq!(
            keys(&deleted),
            ["deleted", "messageId", "uid", "uidValidity"]
        );
        assert_eq!(deleted["messageId"], Value::Null);
        let moved = to_json(&MoveResult {
            message_id: Some("<m@x>".into()),
            from: "INBOX".into(),
            to: "Done".into(),
            target_uid: None,
            identity: Map::new(),
        });
        assert_eq!(keys(&moved), ["messageId", "from", "to", "targetUid"]);
        assert_eq!(moved["targetUid"], Value::Null);
    }
}
