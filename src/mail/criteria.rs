//! Search criteria (SPEC §6): a tree of leaves (`{ "field", "value" }`) and groups
//! (`{ "operator": "AND" | "OR" | "NOT", "criteria": [...] }`).
//!
//! The tree is checked here rather than by JSON Schema: a schema's `oneOf` can only say that a
//! node matches none of the shapes, while a modeler needs to read "`/criteria/criteria/1`: OR
//! needs at least one criterion". Every problem is reported, each with its pointer.

use serde_json::{Map, Value};

use crate::error::{EmailError, Result};

/// Deeper trees are refused: no real search needs them, and recursion must stay bounded.
pub const MAX_DEPTH: usize = 32;
/// Larger trees are refused (SPEC §7.1): a search of more leaves is not a search a server
/// should run, and the bound keeps a job's work and memory in proportion.
pub const MAX_NODES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    From,
    To,
    Cc,
    Subject,
    Body,
}

impl TextField {
    /// The field's name, as the contract and IMAP SEARCH both spell it.
    pub fn name(self) -> &'static str {
        match self {
            TextField::From => "FROM",
            TextField::To => "TO",
            TextField::Cc => "CC",
            TextField::Subject => "SUBJECT",
            TextField::Body => "BODY",
        }
    }
}

/// A calendar date, as IMAP's SINCE and BEFORE compare them (no time, no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    fn parse(text: &str) -> Option<Date> {
        let mut parts = text.split('-');
        let year: u16 = parts.next()?.parse().ok()?;
        let month: u8 = parts.next()?.parse().ok()?;
        let day: u8 = parts.next()?.parse().ok()?;
        if parts.next().is_some()
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || year < 1900
        {
            return None;
        }
        Some(Date { year, month, day })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    Text { field: TextField, value: String },
    Header { name: String, value: String },
    Since(Date),
    Before(Date),
    Seen,
    Unseen,
    And(Vec<Criterion>),
    Or(Vec<Criterion>),
    Not(Box<Criterion>),
}

const FIELDS: &str = "FROM, SUBJECT, BODY, TO, CC, HEADER, SINCE, BEFORE, SEEN, UNSEEN";

impl Criterion {
    /// Reads criteria from a job variable (an object, or a JSON text of one as a FEEL field may
    /// give). `pointer` is where the variable sits, for messages.
    pub fn parse(value: &Value, pointer: &str) -> Result<Criterion> {
        let parsed;
        let value = match value {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                    EmailError::invalid_input(format!("{pointer}: criteria text is not JSON ({e})"))
                })?;
                &parsed
            }
            other => other,
        };
        if exceeds_node_limit(value) {
            return Err(EmailError::invalid_input(format!(
                "{pointer}: more than {MAX_NODES} criteria (leaves and groups together); \
                 at most {MAX_NODES} are allowed"
            )));
        }
        let mut problems = Vec::new();
        let criterion = parse_node(value, pointer, 1, &mut problems);
        match criterion {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(EmailError::invalid_input(problems.join("; "))),
        }
    }

    /// Whether evaluating the criterion needs message bodies (POP3 then downloads them).
    pub fn needs_body(&self) -> bool {
        match self {
            Criterion::Text { field, .. } => *field == TextField::Body,
            Criterion::And(items) | Criterion::Or(items) => items.iter().any(Criterion::needs_body),
            Criterion::Not(inner) => inner.needs_body(),
            _ => false,
        }
    }
}

/// What local evaluation sees of a message: its headers, and its bodies once downloaded.
pub struct MessageView {
    /// (lower-case name, decoded lower-case value) of every header.
    headers: Vec<(String, String)>,
    subject: String,
    date: Option<Date>,
    /// Text and HTML bodies, lower-cased; None until the message itself is fetched.
    body: Option<String>,
}

impl MessageView {
    /// A view of a message or of its headers alone (`with_body` false).
    pub fn new(raw: &[u8], with_body: bool) -> MessageView {
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let headers = parsed
            .as_ref()
            .map(|m| {
                m.headers_raw()
                    .map(|(n, v)| {
                        (
                            n.to_lowercase(),
                            crate::mail::message::header_text(v).to_lowercase(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let subject = parsed
            .as_ref()
            .and_then(|m| m.subject())
            .unwrap_or("")
            .to_lowercase();
        let date = parsed
            .as_ref()
            .and_then(|m| m.date())
            .filter(|d| d.is_valid())
            .map(|d| Date {
                year: d.year,
                month: d.month,
                day: d.day,
            });
        let body = with_body.then(|| {
            parsed
                .as_ref()
                .map(|m| {
                    let mut text = String::new();
                    for part in m.text_bodies().chain(m.html_bodies()) {
                        if let Some(t) = part.text_contents() {
                            text.push_str(t);
                            text.push('\n');
                        }
                    }
                    text.to_lowercase()
                })
                .unwrap_or_default()
        });
        MessageView {
            headers,
            subject,
            date,
            body,
        }
    }

    fn header_contains(&self, name: &str, needle: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n == name && v.contains(needle))
    }
}

impl Criterion {
    /// Evaluates the criterion the way IMAP SEARCH does (case-insensitive substring).
    /// `None` means undecided: the answer depends on a body the view does not have yet.
    /// POP3 has no flags, so every message counts as unseen; dates compare the Date header.
    pub fn evaluate(&self, view: &MessageView) -> Option<bool> {
        match self {
            Criterion::Text { field, value } => {
                let needle = value.to_lowercase();
                match field {
                    TextField::From => Some(view.header_contains("from", &needle)),
                    TextField::To => Some(view.header_contains("to", &needle)),
                    TextField::Cc => Some(view.header_contains("cc", &needle)),
                    TextField::Subject => Some(view.subject.contains(&needle)),
                    TextField::Body => view.body.as_ref().map(|b| b.contains(&needle)),
                }
            }
            Criterion::Header { name, value } => {
                Some(view.header_contains(&name.to_lowercase(), &value.to_lowercase()))
            }
            Criterion::Since(date) => Some(view.date.is_some_and(|d| d >= *date)),
            Criterion::Before(date) => Some(view.date.is_some_and(|d| d < *date)),
            Criterion::Seen => Some(false),
            Criterion::Unseen => Some(true),
            Criterion::Not(inner) => inner.evaluate(view).map(|b| !b),
            Criterion::And(items) => {
                let mut undecided = false;
                for item in items {
                    match item.evaluate(view) {
                        Some(false) => return Some(false),
                        None => undecided = true,
                        Some(true) => {}
                    }
                }
                if undecided { None } else { Some(true) }
            }
            Criterion::Or(items) => {
                let mut undecided = false;
                for item in items {
                    match item.evaluate(view) {
                        Some(true) => return Some(true),
                        None => undecided = true,
                        Some(false) => {}
                    }
                }
                if undecided { None } else { Some(false) }
            }
        }
    }
}

/// Counts the nodes of a criteria tree without recursion, stopping at the first one past
/// [`MAX_NODES`], so a list of millions costs no more than a list of a thousand. Depth is
/// left to the parser, which reports the offending node.
fn exceeds_node_limit(root: &Value) -> bool {
    let mut count = 0usize;
    let mut pending = vec![(root, 1usize)];
    while let Some((node, depth)) = pending.pop() {
        count += 1;
        if count > MAX_NODES {
            return true;
        }
        if depth > MAX_DEPTH {
            continue;
        }
        if let Some(Value::Array(items)) = node.get("criteria") {
            pending.extend(items.iter().map(|item| (item, depth + 1)));
        }
    }
    false
}

fn expect_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    pointer: &str,
    problems: &mut Vec<String>,
) {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            problems.push(format!(
                "{pointer}: unknown property '{key}' (allowed: {})",
                allowed.join(", ")
            ));
        }
    }
}

fn text_value(
    map: &Map<String, Value>,
    key: &str,
    what: &str,
    pointer: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push(format!("{pointer}/{key}: must be a string"));
            None
        }
        None => {
            problems.push(format!("{pointer}: \"{key}\" is required for {what}"));
            None
        }
    }
}

fn parse_node(
    value: &Value,
    pointer: &str,
    depth: usize,
    problems: &mut Vec<String>,
) -> Option<Criterion> {
    if depth > MAX_DEPTH {
        problems.push(format!(
            "{pointer}: criteria nest deeper than {MAX_DEPTH} levels"
        ));
        return None;
    }
    let Value::Object(map) = value else {
        problems.push(format!(
            "{pointer}: a criterion must be an object with \"field\" or \"operator\""
        ));
        return None;
    };
    match (map.get("field"), map.get("operator")) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{pointer}: has both \"field\" and \"operator\"; a criterion is a leaf or a group"
            ));
            None
        }
        (None, None) => {
            problems.push(format!(
                "{pointer}: needs \"field\" (a leaf) or \"operator\" (a group)"
            ));
            None
        }
        (Some(field), None) => parse_leaf(map, field, pointer, problems),
        (None, Some(operator)) => parse_group(map, operator, pointer, depth, problems),
    }
}

fn parse_leaf(
    map: &Map<String, Value>,
    field: &Value,
    pointer: &str,
    problems: &mut Vec<String>,
) -> Option<Criterion> {
    let Some(field) = field.as_str() else {
        problems.push(format!(
            "{pointer}/field: must be a string, one of {FIELDS}"
        ));
        return None;
    };
    let text = |f: TextField, problems: &mut Vec<String>| {
        expect_keys(map, &["field", "value"], pointer, problems);
        text_value(map, "value", field, pointer, problems)
            .map(|value| Criterion::Text { field: f, value })
    };
    let date = |problems: &mut Vec<String>| {
        expect_keys(map, &["field", "value"], pointer, problems);
        let raw = text_value(map, "value", field, pointer, problems)?;
        let parsed = Date::parse(&raw);
        if parsed.is_none() {
            problems.push(format!(
                "{pointer}/value: '{raw}' is not a date of the form YYYY-MM-DD"
            ));
        }
        parsed
    };
    match field.to_ascii_uppercase().as_str() {
        "FROM" => text(TextField::From, problems),
        "TO" => text(TextField::To, problems),
        "CC" => text(TextField::Cc, problems),
        "SUBJECT" => text(TextField::Subject, problems),
        "BODY" => text(TextField::Body, problems),
        "HEADER" => {
            expect_keys(map, &["field", "name", "value"], pointer, problems);
            let name = text_value(map, "name", "HEADER", pointer, problems);
            let value = text_value(map, "value", "HEADER", pointer, problems);
            if let Some(n) = &name
                && (n.is_empty() || !n.bytes().all(|b| (33..=126).contains(&b) && b != b':'))
            {
                problems.push(format!("{pointer}/name: '{n}' is not a header name"));
                return None;
            }
            Some(Criterion::Header {
                name: name?,
                value: value?,
            })
        }
        "SINCE" => date(problems).map(Criterion::Since),
        "BEFORE" => date(problems).map(Criterion::Before),
        "SEEN" | "UNSEEN" => {
            expect_keys(map, &["field"], pointer, problems);
            Some(if field.eq_ignore_ascii_case("SEEN") {
                Criterion::Seen
            } else {
                Criterion::Unseen
            })
        }
        _ => {
            problems.push(format!(
                "{pointer}/field: unknown field '{field}'; use one of {FIELDS}"
            ));
            None
        }
    }
}

fn parse_group(
    map: &Map<String, Value>,
    operator: &Value,
    pointer: &str,
    depth: usize,
    problems: &mut Vec<String>,
) -> Option<Criterion> {
    expect_keys(map, &["operator", "criteria"], pointer, problems);
    let operator = match operator.as_str().map(str::to_ascii_uppercase) {
        Some(op) if ["AND", "OR", "NOT"].contains(&op.as_str()) => op,
        _ => {
            problems.push(format!("{pointer}/operator: must be AND, OR or NOT"));
            return None;
        }
    };
    let items = match map.get("criteria") {
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push(format!(
                "{pointer}/criteria: {operator} needs at least one criterion"
            ));
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.push(format!("{pointer}/criteria: must be an array of criteria"));
            return None;
        }
        None => {
            problems.push(format!(
                "{pointer}: \"criteria\" is required for {operator}"
            ));
            return None;
        }
    };
    if operator == "NOT" && items.len() != 1 {
        problems.push(format!(
            "{pointer}/criteria: NOT takes exactly one criterion, got {}",
            items.len()
        ));
        return None;
    }
    let children: Vec<Option<Criterion>> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_node(
                item,
                &format!("{pointer}/criteria/{i}"),
                depth + 1,
                problems,
            )
        })
        .collect();
    let children: Vec<Criterion> = children.into_iter().collect::<Option<_>>()?;
    Some(match operator.as_str() {
        "AND" => Criterion::And(children),
        "OR" => Criterion::Or(children),
        _ => Criterion::Not(Box::new(children.into_iter().next()?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_invalid_shape_is_reported_with_its_pointer() {
        let bad = json!({
            "operator": "AND",
            "criteria": [
                { "field": "FROM" },
                { "field": "COLOUR", "value": "red" },
                { "operator": "OR" },
                { "operator": "OR", "criteria": [] },
                { "operator": "XOR", "criteria": [{ "field": "SEEN" }] },
                { "field": "SUBJECT", "value": "x", "extra": 1 },
                { "field": "SINCE", "value": "yesterday" },
                { "operator": "NOT", "criteria": [{ "field": "SEEN" }, { "field": "UNSEEN" }] },
                "just text",
                { "field": "FROM", "operator": "AND" },
                { "field": "BODY", "value": 42 }
            ]
        });
        let message = Criterion::parse(&bad, "/criteria").unwrap_err().message;
        for expected in [
            "/criteria/criteria/0: \"value\" is required for FROM",
            "/criteria/criteria/1/field: unknown field 'COLOUR'",
            "/criteria/criteria/2: \"criteria\" is required for OR",
            "/criteria/criteria/3/criteria: OR needs at least one criterion",
            "/criteria/criteria/4/operator: must be AND, OR or NOT",
            "/criteria/criteria/5: unknown property 'extra'",
            "/criteria/criteria/6/value: 'yesterday' is not a date",
            "/criteria/criteria/7/criteria: NOT takes exactly one criterion",
            "/criteria/criteria/8: a criterion must be an object",
            "/criteria/criteria/9: has both",
            "/criteria/criteria/10/value: must be a string",
        ] {
            assert!(
                message.contains(expected),
                "missing {expected:?} in {message}"
            );
        }
    }

    #[test]
    fn local_evaluation_needs_the_body_only_when_headers_cannot_decide() {
        let raw = b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.test>\r\nTo: a@example.test\r\nSubject: Rechnung M\xc3\xa4rz\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nX-Prio: HIGH\r\n\r\nPlease PAY now\r\n";
        let headers = MessageView::new(raw, false);
        let full = MessageView::new(raw, true);
        let c = |v: Value| Criterion::parse(&v, "/c").unwrap();
        assert_eq!(
            c(json!({ "field": "FROM", "value": "jürgen" })).evaluate(&headers),
            Some(true)
        );
        assert_eq!(
            c(json!({ "field": "SUBJECT", "value": "märz" })).evaluate(&headers),
            Some(true)
        );
        assert_eq!(
            c(json!({ "field": "HEADER", "name": "x-prio", "value": "high" })).evaluate(&headers),
            Some(true)
        );
        assert_eq!(
            c(json!({ "field": "SINCE", "value": "2024-02-01" })).evaluate(&headers),
            Some(true)
        );
        assert_eq!(
            c(json!({ "field": "BEFORE", "value": "2024-02-01" })).evaluate(&headers),
            Some(false)
        );
        let body = c(json!({ "field": "BODY", "value": "pay" }));
        assert_eq!(body.evaluate(&headers), None);
        assert_eq!(body.evaluate(&full), Some(true));
        // A decided branch settles it without the body.
        let either = c(
            json!({ "operator": "OR", "criteria": [{ "field": "TO", "value": "a@" }, { "field": "BODY", "value": "x" }] }),
        );
        assert_eq!(either.evaluate(&headers), Some(true));
        let both = c(
            json!({ "operator": "AND", "criteria": [{ "field": "TO", "value": "zzz" }, { "field": "BODY", "value": "x" }] }),
        );
        assert_eq!(both.evaluate(&headers), Some(false));
        assert_eq!(
            c(json!({ "operator": "NOT", "criteria": [{ "field": "SEEN" }] })).evaluate(&headers),
            Some(true)
        );
    }

    #[test]
    fn depth_is_bounded() {
        let mut node = json!({ "field": "SEEN" });
        for _ in 0..MAX_DEPTH {
            node = json!({ "operator": "NOT", "criteria": [node] });
        }
        let message = Criterion::parse(&node, "/criteria").unwrap_err().message;
        assert!(message.contains("deeper than 32"), "{message}");
    }

    fn leaves(count: usize) -> Vec<Value> {
        (0..count)
            .map(|i| json!({ "field": "SUBJECT", "value": format!("s{i}") }))
            .collect()
    }

    #[test]
    fn wide_trees_are_refused_fast_naming_criteria() {
        for (operator, count) in [("OR", 20_000), ("AND", 5_000), ("OR", 1_000)] {
            let tree = json!({ "operator": operator, "criteria": leaves(count) });
            let started = std::time::Instant::now();
            let message = Criterion::parse(&tree, "/criteria").unwrap_err().message;
            assert!(
                message.starts_with("/criteria: more than 1000 criteria"),
                "{message}"
            );
            assert!(started.elapsed() < std::time::Duration::from_millis(200));
        }
        // 999 leaves and their group: exactly the limit.
        let tree = json!({ "operator": "OR", "criteria": leaves(MAX_NODES - 1) });
        assert!(Criterion::parse(&tree, "/criteria").is_ok());
        // Nodes count across levels, not per list.
        let nested = json!({ "operator": "AND", "criteria": [
            { "operator": "OR", "criteria": leaves(600) },
            { "operator": "OR", "criteria": leaves(600) },
        ]});
        assert!(Criterion::parse(&nested, "/criteria").is_err());
    }

    #[test]
    fn a_long_or_is_evaluated_locally() {
        let tree = json!({ "operator": "OR", "criteria": leaves(MAX_NODES - 1) });
        let criterion = Criterion::parse(&tree, "/criteria").unwrap();
        let view = MessageView::new(b"Subject: s998\r\n\r\nx", false);
        assert_eq!(criterion.evaluate(&view), Some(true));
        let other = MessageView::new(b"Subject: none\r\n\r\nx", false);
        assert_eq!(criterion.evaluate(&other), Some(false));
    }

    #[test]
    fn body_need_is_detected() {
        let with_body = Criterion::parse(&json!({ "operator": "OR", "criteria": [{ "field": "FROM", "value": "a" }, { "operator": "NOT", "criteria": [{ "field": "BODY", "value": "b" }] }] }), "/c").unwrap();
        assert!(with_body.needs_body());
        assert!(
            !Criterion::parse(&json!({ "field": "FROM", "value": "a" }), "/c")
                .unwrap()
                .needs_body()
        );
    }
}
