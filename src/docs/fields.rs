//! From an input's JSON Schema to the rows of its table in the operations reference: what
//! the worker validates (type, required, default, allowed values) and what the modeler shows
//! as the tooltip (the description).

use serde_json::{Map, Value};

/// One input field as the reference lists it.
pub struct Row {
    /// `folder`, `server.port`, `attachments[].fileName`.
    pub path: String,
    pub kind: String,
    pub required: String,
    pub default: String,
    pub allowed: String,
    pub description: String,
}

impl Row {
    pub fn markdown(&self) -> String {
        format!(
            "| `{}` | {} | {} | {} | {} | {} |",
            self.path, self.kind, self.required, self.default, self.allowed, self.description
        )
    }
}

pub const TABLE_HEAD: &str = "| input | type | required | default | allowed values | description |\n\
                              |---|---|---|---|---|---|";

/// The rows for the fields of an object schema, blocks and list items opened, under `prefix`.
pub fn rows(schema: &Value, prefix: &str, out: &mut Vec<Row>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required = required_by(schema);
    for (name, field) in properties {
        let path = format!("{prefix}{name}");
        let condition = required
            .iter()
            .filter(|(field_name, _)| field_name == name)
            .map(|(_, when)| when.as_str())
            .collect::<Vec<_>>();
        out.push(row(&path, field, &condition));
        if field.get("properties").is_some() {
            rows(field, &format!("{path}."), out);
        }
        if let Some(items) = field.get("items").filter(|i| i.get("properties").is_some()) {
            out.push(row(&format!("{path}[]"), items, &[]));
            rows(items, &format!("{path}[]."), out);
        }
    }
}

fn row(path: &str, field: &Value, required: &[&str]) -> Row {
    let required = if required.contains(&"") {
        "yes".to_string()
    } else if required.is_empty() {
        "no".to_string()
    } else {
        required.join("; ")
    };
    let mut description = field
        .get("description")
        .or_else(|| field.get("title"))
        .and_then(Value::as_str)
        .map(text)
        .unwrap_or_default();
    if let Some(example) = field.pointer("/examples/0") {
        if !description.is_empty() {
            description.push_str(if description.ends_with('.') {
                " "
            } else {
                ". "
            });
        }
        description.push_str(&format!("Example: {}", code(&plain(example))));
    }
    Row {
        path: path.to_string(),
        kind: kind(field),
        required,
        default: field
            .get("default")
            .map(|d| code(&plain(d)))
            .unwrap_or_default(),
        allowed: allowed(field),
        description,
    }
}

/// Field name → the condition under which it is required (`""`: always), from `required`
/// and from the `if`/`then` branches of `allOf`.
fn required_by(schema: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = names(schema.get("required"))
        .into_iter()
        .map(|name| (name, String::new()))
        .collect();
    for (when, branch) in branches(schema) {
        for name in names(branch.pointer("/then/required")) {
            out.push((name, when.clone()));
        }
    }
    out
}

/// The `if`/`then` branches of an object schema's `allOf`, each with its condition in words.
fn branches(schema: &Value) -> impl Iterator<Item = (String, &Value)> {
    schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|branch| (condition(branch.get("if")), branch))
}

/// An `if` schema in words: `with type: oauth2`.
fn condition(schema: Option<&Value>) -> String {
    let Some(properties) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return String::new();
    };
    let parts: Vec<String> = properties
        .iter()
        .filter_map(|(name, s)| Some(format!("`{name}: {}`", plain(s.get("const")?))))
        .collect();
    format!("with {}", parts.join(" and "))
}

/// What the branches of an object schema allow and require besides its plain fields, as
/// sentences (the authentication block's types, its token sources).
pub fn branch_rules(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (when, branch) in branches(schema) {
        let Some(then) = branch.get("then") else {
            continue;
        };
        let mut parts = Vec::new();
        let required = names(then.get("required"));
        if !required.is_empty() {
            parts.push(format!("requires {}", list(&required)));
        }
        if then.get("additionalProperties") == Some(&Value::Bool(false)) {
            let allowed = keys(then.get("properties"));
            parts.push(format!("allows only {}", list(&allowed)));
        }
        if let Some(dependent) = then.get("dependentRequired").and_then(Value::as_object) {
            for (name, needs) in dependent {
                parts.push(format!("`{name}` needs {}", list(&names(Some(needs)))));
            }
        }
        if let (Some(given), Some(inner)) = (
            then.pointer("/if/required").map(|r| names(Some(r))),
            then.get("then"),
        ) {
            let refused: Vec<String> = inner
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(_, s)| **s == Value::Bool(false))
                .map(|(name, _)| name.clone())
                .collect();
            if !refused.is_empty() {
                parts.push(format!(
                    "with {}, {} not allowed",
                    list(&given),
                    list(&refused)
                ));
            }
            let otherwise = names(then.pointer("/else/required"));
            if !otherwise.is_empty() {
                parts.push(format!("without it, {} required", list(&otherwise)));
            }
        }
        if !parts.is_empty() {
            out.push(format!("{when}: {}.", parts.join("; ")));
        }
    }
    out
}

fn names(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn keys(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON types a field takes, `null` (which means "not set") left out.
fn kind(field: &Value) -> String {
    let mut kinds = Vec::new();
    collect_kinds(field, &mut kinds);
    kinds.dedup();
    if kinds.is_empty() {
        enum_kind(field).unwrap_or_else(|| "any".to_string())
    } else {
        kinds.join(" or ")
    }
}

/// The type of an `enum` without `type`: the one JSON type of its values, `null` aside.
fn enum_kind(field: &Value) -> Option<String> {
    let mut kinds: Vec<&str> = field
        .get("enum")?
        .as_array()?
        .iter()
        .filter_map(|v| match v {
            Value::Null => None,
            Value::String(_) => Some("string"),
            Value::Number(_) => Some("number"),
            Value::Bool(_) => Some("boolean"),
            _ => Some("any"),
        })
        .collect();
    kinds.dedup();
    match kinds.as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

fn collect_kinds(field: &Value, out: &mut Vec<String>) {
    let types: Vec<&str> = match field.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for t in types {
        match t {
            "null" => {}
            "array" => {
                let item = field.get("items").map(kind).unwrap_or_else(|| "any".into());
                // "list of strings"; a list whose items take several types says them as is.
                let plural = if item.contains(' ') { "" } else { "s" };
                out.push(format!("list of {item}{plural}"));
            }
            "object" => match field.get("additionalProperties") {
                Some(values @ Value::Object(_)) => {
                    out.push(format!("object of {} values", kind(values)))
                }
                _ => out.push("object".to_string()),
            },
            other => out.push(other.to_string()),
        }
    }
    for alternative in field
        .get("anyOf")
        .or_else(|| field.get("oneOf"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect_kinds(alternative, out);
    }
}

/// Enumerated values, ranges, lengths and patterns the validator enforces.
fn allowed(field: &Value) -> String {
    let mut parts = Vec::new();
    let values: Vec<String> = field
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .map(|v| code(&plain(v)))
        .collect();
    if !values.is_empty() {
        parts.push(values.join(", "));
    }
    let number = |key: &str| field.get(key).and_then(Value::as_i64);
    match (number("minimum"), number("maximum")) {
        (Some(min), Some(max)) => parts.push(format!("{min}–{max}")),
        (Some(min), None) => parts.push(format!("at least {min}")),
        (None, Some(max)) => parts.push(format!("at most {max}")),
        (None, None) => {}
    }
    match (number("minLength"), number("maxLength")) {
        (Some(min), Some(max)) => parts.push(format!("{min}–{max} characters")),
        (Some(1), None) => parts.push("not empty".to_string()),
        (Some(min), None) => parts.push(format!("at least {min} characters")),
        (None, Some(max)) => parts.push(format!("at most {max} characters")),
        (None, None) => {}
    }
    if let Some(min) = number("minItems") {
        parts.push(format!(
            "at least {min} item{}",
            if min == 1 { "" } else { "s" }
        ));
    }
    if let Some(pattern) = field.get("pattern").and_then(Value::as_str) {
        parts.push(format!("matches {}", code(pattern)));
    }
    parts.join("; ")
}

/// A JSON value as a reader types it: strings without their quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text for a table cell: one line, pipes escaped, `<` kept from turning into HTML.
fn text(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
}

/// A code span for a table cell (a value with a backtick gets a double-backtick span).
fn code(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = s.replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// The object schemas among `schema`'s top-level fields.
pub fn blocks(schema: &Value) -> Map<String, Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, field)| field.get("properties").is_some())
        .map(|(name, field)| (name.clone(), field.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_field_shows_what_the_validator_enforces() {
        let schema = json!({
            "type": "object",
            "required": ["host"],
            "properties": {
                "host": { "type": "string", "minLength": 1, "description": "The host | name" },
                "port": { "type": ["integer", "null"], "minimum": 1, "maximum": 65535,
                          "default": 25 },
                "to": { "anyOf": [{ "anyOf": [{ "type": "string" },
                        { "type": "array", "items": { "type": "string" } }] }, { "type": "null" }],
                        "examples": ["a@example.com"] },
                "security": { "enum": ["tls", "none", null], "default": "tls" }
            }
        });
        let mut out = Vec::new();
        rows(&schema, "", &mut out);
        let lines: Vec<String> = out.iter().map(Row::markdown).collect();
        assert_eq!(
            lines,
            [
                "| `host` | string | yes |  | not empty | The host \\| name |",
                "| `port` | integer | no | `25` | 1–65535 |  |",
                "| `to` | string or list of strings | no |  |  | Example: `a@example.com` |",
                "| `security` | string | no | `tls` | `tls`, `none` |  |",
            ]
        );
    }

    #[test]
    fn conditional_requirements_are_named() {
        let schema = json!({
            "type": "object",
            "properties": { "type": { "enum": ["simple", "oauth2"] }, "password": {} },
            "allOf": [{
                "if": { "properties": { "type": { "const": "simple" } } },
                "then": { "required": ["password"], "additionalProperties": false,
                          "properties": { "type": true, "password": true } }
            }]
        });
        let mut out = Vec::new();
        rows(&schema, "authentication.", &mut out);
        assert_eq!(out[1].path, "authentication.password");
        assert_eq!(out[1].required, "with `type: simple`");
        assert_eq!(
            branch_rules(&schema),
            ["with `type: simple`: requires `password`; allows only `type`, `password`."]
        );
    }
}
