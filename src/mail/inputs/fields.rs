//! Fields several operations take: message id, search criteria, limits, sort order (folders
//! are in `folders.rs`).
//! Each is one type whose schema and reading sit side by side, so the same field reads and
//! looks the same in every operation (and the modeler keeps its value when the operation
//! changes).

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::mail::criteria::Criterion;

/// The Message-ID header of the message to act on, as typed (angle brackets optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(String);

impl MessageId {
    /// The id as given, trimmed: what a response echoes.
    pub fn as_given(&self) -> &str {
        &self.0
    }

    /// Without angle brackets or spaces, as messages are compared.
    pub fn bare(&self) -> String {
        bare_message_id(&self.0)
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Message-ID without angle brackets or surrounding spaces.
pub fn bare_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        // The id goes into a search command: a line break would end it.
        if id.contains(['\r', '\n']) {
            return Err(serde::de::Error::custom("/messageId: contains CR or LF"));
        }
        if bare_message_id(&id).is_empty() {
            return Err(serde::de::Error::custom("/messageId: must not be blank"));
        }
        Ok(MessageId(id.trim().to_string()))
    }
}

impl JsonSchema for MessageId {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MessageId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Message ID",
            "description": "The Message-ID header of the message, with or without angle brackets, \
                            as list and search return it. Any sender can reuse a Message-ID: when \
                            several mails carry it, the operation fails with EMAIL_AMBIGUOUS and \
                            the mail is named by its UID (POP3: UIDL) instead.",
            "examples": ["=mail.messageId"],
            "type": "string", "minLength": 1,
            "x-template": { "feel": "optional" }
        })
    }
}

/// Search criteria (docs/operations.md, `email:imap:search:1`): the recursive [`Criterion`]
/// tree, given as an object or as its JSON text (a FEEL field may give either). The schema
/// takes only the shape; the tree is read by [`Criterion::parse`], which bounds its size and
/// depth before building anything and names each offending node's pointer, where a recursive
/// `oneOf` schema could only say that a node matches none of the shapes (and would make the
/// validator walk a hostile tree first).
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria(pub Criterion);

impl<'de> Deserialize<'de> for Criteria {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Criterion::parse(&value, "/criteria")
            .map(Criteria)
            .map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl JsonSchema for Criteria {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Criteria".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Criteria",
            "description": "A leaf { \"field\": \"FROM\"|\"TO\"|\"CC\"|\"SUBJECT\"|\"BODY\"|\"HEADER\"|\
                            \"SINCE\"|\"BEFORE\"|\"SEEN\"|\"UNSEEN\", \"value\": … } or \
                            { \"operator\": \"AND\"|\"OR\"|\"NOT\", \"criteria\": [ … ] }, nested \
                            as deep as needed. Matching is case-insensitive substring.",
            "examples": ["={\"operator\": \"AND\", \"criteria\": [{\"field\": \"FROM\", \"value\": \
                          \"billing@\"}, {\"field\": \"SUBJECT\", \"value\": \"invoice\"}]}"],
            "type": ["object", "string"],
            "x-template": { "multiline": true, "feel": "required" }
        })
    }
}

/// A whole number, also when JSON writes it `5.0` (JSON Schema's `integer` allows that, and
/// FEEL arithmetic produces it); `None` for anything else.
pub(super) fn whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    Ok(number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e15)
            .map(|f| f as u64)
    }))
}

/// A count limit: a whole number from 1 to 10,000 (job variables have a size limit), with a
/// default when the model sets none.
macro_rules! limit {
    ($name:ident, $default:expr, $title:expr, $description:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub usize);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                whole_number(deserializer)?
                    .and_then(|n| usize::try_from(n).ok())
                    .map($name)
                    .ok_or_else(|| serde::de::Error::custom("must be a whole number"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name($default)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "title": $title,
                    "description": $description,
                    "type": "integer", "minimum": 1, "maximum": 10000
                })
            }
        }
    };
}

limit!(
    MaxToBeRead,
    100,
    "Maximum number of emails",
    "Sorting comes first, then the limit."
);
limit!(
    MaxResults,
    100,
    "Maximum number of results",
    "The oldest matches first."
);

/// The sort order of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
#[schemars(
    title = "Sort order",
    description = "Ascending lists the oldest (or smallest) message first.",
    extend("x-template" = { "choices": { "ASC": "Ascending", "DESC": "Descending" } })
)]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

/// How a read returns attachments (docs/configuration.md, "Camunda 8.8 and newer").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(
    title = "Attachments as",
    description = "Inline: base64 content in the response, within the response budget. \
                   Document: each attachment is streamed to Camunda's document store \
                   (Camunda 8.7+) and returned as a document reference, whatever its size.",
    extend("x-template" = { "choices": { "inline": "Inline (base64)", "document": "Camunda documents" } })
)]
pub enum AttachmentsAs {
    #[default]
    Inline,
    Document,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_ids_compare_without_brackets_and_refuse_line_breaks() {
        let id = |v: Value| serde_json::from_value::<MessageId>(v);
        assert_eq!(bare_message_id(" <a@b> "), "a@b");
        assert_eq!(id(json!(" <a@b> ")).unwrap().as_given(), "<a@b>");
        assert_eq!(id(json!("a@b")).unwrap().bare(), "a@b");
        assert!(
            id(json!("<>"))
                .unwrap_err()
                .to_string()
                .contains("/messageId")
        );
        assert!(
            id(json!("a\r\nb"))
                .unwrap_err()
                .to_string()
                .contains("CR or LF")
        );
    }
}
