//! Correlation keys and message ids, taken from the mail in its read response shape.
//!
//! The key decides which waiting process instance a published message reaches. A mail is
//! written by whoever sends it, so every source here is hostile text: it is only ever compared
//! by Zeebe, never interpreted, and it is bounded in length so a header of megabytes cannot
//! become a megabyte key.

use regex::Regex;
use serde_json::Value;

/// Longest key taken from a mail; Zeebe compares keys as strings, and a real id is far shorter.
const MAX_KEY_CHARS: usize = 1000;
/// A pattern is compiled once at start; its automaton is bounded so a careless pattern cannot
/// take the worker's memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    MessageId,
    InReplyTo,
    /// The first Message-ID of References: the thread's root.
    References,
    Subject,
    Header(String),
}

/// Where a key comes from, and an optional regex whose first group is the key.
#[derive(Debug, Clone)]
pub struct KeyRule {
    pub source: KeySource,
    pub pattern: Option<Regex>,
}

impl Default for KeyRule {
    fn default() -> Self {
        KeyRule {
            source: KeySource::MessageId,
            pattern: None,
        }
    }
}

impl KeyRule {
    /// Reads `correlationKey`; an error starts with the field it is about (`header: ...`).
    pub fn new(
        from: &str,
        header: Option<String>,
        pattern: Option<&str>,
    ) -> Result<KeyRule, String> {
        let source = match from {
            "messageId" => KeySource::MessageId,
            "inReplyTo" => KeySource::InReplyTo,
            "references" => KeySource::References,
            "subject" => KeySource::Subject,
            "header" => match header.as_deref().map(str::trim) {
                Some(name)
                    if !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':') =>
                {
                    KeySource::Header(name.to_string())
                }
                _ => return Err("header: a header name is required when from is header".into()),
            },
            other => {
                return Err(format!(
                    "from: '{other}' is not one of messageId, inReplyTo, references, subject, header"
                ));
            }
        };
        if header.is_some() && !matches!(source, KeySource::Header(_)) {
            return Err("header: only used with from: header".into());
        }
        let pattern = match pattern {
            None => None,
            Some(text) => {
                let regex = regex::RegexBuilder::new(text)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("pattern: {e}"))?;
                if regex.captures_len() < 2 {
                    return Err("pattern: needs a group, whose match is the key".into());
                }
                Some(regex)
            }
        };
        Ok(KeyRule { source, pattern })
    }

    /// The key for `mail` (a read response), or `None` when the mail lacks it.
    pub fn key(&self, mail: &Value) -> Option<String> {
        let raw = match &self.source {
            KeySource::MessageId => mail
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_string),
            KeySource::Subject => mail
                .get("subject")
                .and_then(Value::as_str)
                .map(str::to_string),
            KeySource::InReplyTo => header(mail, "In-Reply-To").and_then(|v| first_id(&v)),
            KeySource::References => header(mail, "References").and_then(|v| first_id(&v)),
            KeySource::Header(name) => header(mail, name),
        }?;
        let key = match &self.pattern {
            None => raw.trim().to_string(),
            Some(regex) => regex.captures(&raw)?.get(1)?.as_str().to_string(),
        };
        if key.is_empty() {
            return None;
        }
        Some(key.chars().take(MAX_KEY_CHARS).collect())
    }
}

/// The first value of header `name` (case-insensitive) in a read response.
fn header(mail: &Value, name: &str) -> Option<String> {
    mail.get("headers")?
        .as_array()?
        .iter()
        .find(|h| {
            h.get("header")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|h| h.get("value")?.as_str().map(str::to_string))
}

/// The first `<...>` of a header that lists Message-IDs, brackets kept as `smtp:send` returns
/// them; a value without brackets is taken whole (some clients write bare ids).
fn first_id(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(start) = value.find('<')
        && let Some(len) = value[start..].find('>')
    {
        return Some(value[start..=start + len].to_string());
    }
    value.split_whitespace().next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mail() -> Value {
        json!({
            "messageId": "<m3@x>",
            "subject": "Re: [CASE-42] printer",
            "headers": [
                { "header": "In-Reply-To", "value": "<m2@x>" },
                { "header": "references", "value": "<m1@x>\n <m2@x>" },
                { "header": "X-Case", "value": "  C-7 " }
            ]
        })
    }

    #[test]
    fn each_source() {
        let rule = |from: &str, header: Option<&str>| {
            KeyRule::new(from, header.map(str::to_string), None).unwrap()
        };
        assert_eq!(rule("messageId", None).key(&mail()).unwrap(), "<m3@x>");
        assert_eq!(rule("inReplyTo", None).key(&mail()).unwrap(), "<m2@x>");
        assert_eq!(rule("references", None).key(&mail()).unwrap(), "<m1@x>");
        assert_eq!(rule("header", Some("x-case")).key(&mail()).unwrap(), "C-7");
        assert_eq!(rule("header", Some("X-Missing")).key(&mail()), None);
        let subject = KeyRule::new("subject", None, Some(r"\[(CASE-\d+)\]")).unwrap();
        assert_eq!(subject.key(&mail()).unwrap(), "CASE-42");
        let miss = KeyRule::new("subject", None, Some(r"\[(BUG-\d+)\]")).unwrap();
        assert_eq!(miss.key(&mail()), None);
        assert_eq!(rule("inReplyTo", None).key(&json!({ "headers": [] })), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(
            KeyRule::new("header", None, None)
                .unwrap_err()
                .starts_with("header:")
        );
        assert!(
            KeyRule::new("body", None, None)
                .unwrap_err()
                .starts_with("from:")
        );
        assert!(
            KeyRule::new("subject", None, Some("no group"))
                .unwrap_err()
                .starts_with("pattern:")
        );
        assert!(
            KeyRule::new("subject", None, Some("("))
                .unwrap_err()
                .starts_with("pattern:")
        );
    }

    #[test]
    fn a_huge_header_gives_a_bounded_key() {
        let value = "k".repeat(100_000);
        let mail = json!({ "headers": [ { "header": "X-Case", "value": value } ] });
        let rule = KeyRule::new("header", Some("X-Case".into()), None).unwrap();
        assert_eq!(rule.key(&mail).unwrap().len(), MAX_KEY_CHARS);
    }
}
