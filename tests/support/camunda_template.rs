//! A job as Zeebe makes it from an element template of Camunda's Email connector: every
//! property whose `condition` holds contributes its binding (`zeebe:input` to a variable at
//! its dotted path, `zeebe:taskHeader` to a custom header, `zeebe:taskDefinition` to the type
//! and retries) with the value a modeler would leave: the sample a test gives (by property id
//! or binding name), else the template's own default. A FEEL value (`=...`, the Hidden
//! attachment composer of v5/v6) is evaluated with the worker's FEEL crate against the
//! variables mapped before it, as Zeebe evaluates input mappings in order.
//!
//! The templates are Camunda's files, fetched by `tests/testbed/camunda-fixtures.sh`.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The folder with Camunda's templates and fixtures (see the script for its layout).
pub fn fixtures() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = format!(
            "{}/tests/testbed/camunda-fixtures.sh",
            env!("CARGO_MANIFEST_DIR")
        );
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg("dir")
            .output()
            .expect("run camunda-fixtures.sh");
        assert!(
            output.status.success(),
            "Camunda's templates could not be fetched (set CAMUNDA_EMAIL_FIXTURES to a copy):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Every outbound template version: (label, path under the fixtures folder).
pub const OUTBOUND: [(&str, &str); 9] = [
    (
        "v1",
        "element-templates/versioned/email-outbound-connector-1.json",
    ),
    (
        "v2",
        "element-templates/versioned/email-outbound-connector-2.json",
    ),
    (
        "v3",
        "element-templates/versioned/email-outbound-connector-3.json",
    ),
    (
        "v4",
        "element-templates/versioned/email-outbound-connector-4.json",
    ),
    (
        "v5",
        "element-templates/versioned/email-outbound-connector-5.json",
    ),
    ("v6", "element-templates/email-outbound-connector.json"),
    (
        "hybrid",
        "element-templates/hybrid/email-outbound-connector-hybrid.json",
    ),
    (
        "8.6.27",
        "element-templates/released/8.6.27/email-outbound-connector.json",
    ),
    (
        "8.7.23",
        "element-templates/released/8.7.23/email-outbound-connector.json",
    ),
];

pub struct Template {
    pub label: String,
    json: Value,
}

/// A job as the engine would hand it to a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub job_type: String,
    pub retries: i32,
    pub variables: Value,
    pub headers: Value,
}

impl Template {
    pub fn load(label: &str, path: &str) -> Template {
        let file = fixtures().join(path);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        Template {
            label: label.to_string(),
            json: serde_json::from_str(&text).expect("a template is JSON"),
        }
    }

    fn properties(&self) -> &[Value] {
        self.json["properties"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    /// Whether any property binds `name` (`data.smtpAction.htmlBody`).
    pub fn binds(&self, name: &str) -> bool {
        self.properties()
            .iter()
            .any(|p| p["binding"]["name"] == name || p["binding"]["key"] == name)
    }

    /// The type (`String`, `Number`, ...) of the property bound to `name`.
    pub fn property_type(&self, name: &str) -> Option<&str> {
        self.properties()
            .iter()
            .find(|p| p["binding"]["name"] == name)
            .and_then(|p| p["type"].as_str())
    }

    /// The job for `samples` (property id or binding name → value).
    pub fn job(&self, samples: &Value) -> Job {
        let properties = self.properties();
        let sample = |p: &Value| {
            let by_id = p["id"].as_str().and_then(|id| samples.get(id));
            let binding = &p["binding"];
            let name = binding["name"].as_str().or(binding["key"].as_str());
            by_id.or_else(|| name.and_then(|n| samples.get(n))).cloned()
        };
        // A property's value as the modeler holds it: the sample, else the default.
        let values: Vec<Option<Value>> = properties
            .iter()
            .map(|p| sample(p).or_else(|| p.get("value").cloned()))
            .collect();
        let active = activity(properties, &values);
        let mut variables = json!({});
        let mut headers = Map::new();
        let mut job_type = String::new();
        let mut retries = 3;
        for ((property, value), active) in properties.iter().zip(&values).zip(&active) {
            let (Some(value), true) = (value, *active) else {
                continue;
            };
            let binding = &property["binding"];
            match binding["type"].as_str() {
                Some("zeebe:input") => {
                    let value = evaluate(value, &variables);
                    if !value.is_null() {
                        put(
                            &mut variables,
                            binding["name"].as_str().expect("name"),
                            value,
                        );
                    }
                }
                Some("zeebe:taskHeader") => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    headers.insert(binding["key"].as_str().expect("key").into(), json!(text));
                }
                Some("zeebe:taskDefinition" | "zeebe:taskDefinition:type") => {
                    let text = value.as_str().map_or(value.to_string(), str::to_string);
                    match binding["property"].as_str().unwrap_or("type") {
                        "retries" => retries = text.parse().expect("retries"),
                        _ => job_type = text,
                    }
                }
                other => panic!("{}: binding {other:?} not handled", self.label),
            }
        }
        Job {
            job_type,
            retries,
            variables,
            headers: Value::Object(headers),
        }
    }
}

/// Which properties are active: a condition refers to other properties by id and holds on
/// their values, an inactive property counting as unset. Repeated until nothing changes,
/// since a condition may name a property declared after it.
fn activity(properties: &[Value], values: &[Option<Value>]) -> Vec<bool> {
    let ids: Vec<Option<&str>> = properties.iter().map(|p| p["id"].as_str()).collect();
    let mut active = vec![true; properties.len()];
    loop {
        let next: Vec<bool> = properties
            .iter()
            .map(|p| holds(&p["condition"], &ids, values, &active))
            .collect();
        if next == active {
            return active;
        }
        active = next;
    }
}

fn holds(
    condition: &Value,
    ids: &[Option<&str>],
    values: &[Option<Value>],
    active: &[bool],
) -> bool {
    if condition.is_null() {
        return true;
    }
    if let Some(all) = condition["allMatch"].as_array() {
        return all.iter().all(|c| holds(c, ids, values, active));
    }
    let property = condition["property"]
        .as_str()
        .expect("a condition names a property");
    let current = ids
        .iter()
        .position(|id| *id == Some(property))
        .filter(|i| active[*i])
        .and_then(|i| values[i].clone());
    if let Some(expected) = condition.get("equals") {
        return current.as_ref() == Some(expected);
    }
    if let Some(choices) = condition["oneOf"].as_array() {
        return current.is_some_and(|c| choices.contains(&c));
    }
    panic!("condition not handled: {condition}")
}

/// A FEEL value evaluated as Zeebe does for an input mapping, against what is mapped so far;
/// any other value is taken as it is.
fn evaluate(value: &Value, scope: &Value) -> Value {
    match value.as_str() {
        Some(text) if text.starts_with('=') => feel::Expression::parse(text)
            .unwrap_or_else(|e| panic!("the template's FEEL {text}: {e}"))
            .evaluate(scope)
            .map(|v| v.to_json())
            .unwrap_or(Value::Null),
        _ => value.clone(),
    }
}

/// Sets `value` at a dotted path, making the objects on the way.
fn put(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let map = node.as_object_mut().expect("an object on the path");
        if segments.peek().is_none() {
            map.insert(segment.to_string(), value);
            return;
        }
        node = map.entry(segment.to_string()).or_insert_with(|| json!({}));
    }
}

/// Camunda's own wire examples (its integration tests' job variables), with the placeholders
/// its test replaces.
pub fn integration_cases(operation: &str, port: u16, message_id: &str) -> Vec<Value> {
    let file = fixtures().join(format!(
        "test-resources/integration/outbound-{operation}-connector-happy-path.json"
    ));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let text = text
        .replace("{{PORT}}", &port.to_string())
        .replace("{{MESSAGE_ID}}", message_id);
    serde_json::from_str::<Vec<Value>>(&text).expect("a list of cases")
}
