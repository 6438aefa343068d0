//! Search criteria (docs/operations.md, `email:imap:search:1`): a tree of leaves
//! (`{ "field", "value" }`) and groups (`{ "operator": "AND" | "OR" | "NOT", "criteria": [...] }`).
//!
//! The tree is checked here rather than by JSON Schema: a schema's `oneOf` can only say that a
//! node matches none of the shapes, while a modeler needs to read "`/criteria/criteria/1`: OR
//! needs at least one criterion". Every problem is reported, each with its pointer.

use serde_json::{Map, Value};

use crate::error::{EmailError, Result};

mod evaluate;
#[cfg(test)]
mod tests;

pub use evaluate::MessageView;

/// Deeper trees are refused: no real search needs them, and recursion must stay bounded.
pub const MAX_DEPTH: usize = 32;
/// Larger trees (leaves and groups together) are `INVALID_INPUT` naming `/criteria`: a search
/// of more leaves is not a search a server should run, and the bound keeps a job's work and
/// memory in proportion to its input.
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
