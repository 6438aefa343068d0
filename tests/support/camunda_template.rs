//! A job as Zeebe makes it from an element template of Camunda's Email connector: every
//! property whose `condition` holds contributes its binding (`zeebe:input` to a variable at
//! its dotted path, `zeebe:taskHeader` to a custom header, `zeebe:taskDefinition` to the type
//! and retries) with the value a modeler would leave: the sample a test gives (by property id
//! or binding name), else the template's own default. A FEEL value (`=...`, the Hidden
//! attachment composer of v5 and later) is evaluated with the worker's FEEL crate against the
//! variables mapped before it, as Zeebe evaluates input mappings in order.
//!
//! The templates are Camunda's, from its npm package `@camunda/connectors-element-templates`
//! (downloaded by `tests/testbed/camunda-templates.sh`, never kept here): one JSON array per
//! template holding every version of it. What the package does not hold is made from it, as
//! Camunda made it: the hybrid template (the same bindings with an editable task type) and the
//! version 2 that Camunda 8.6 and 8.7 shipped (ports and `maxToBeRead` as strings).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The id every version of Camunda's outbound Email template carries.
pub const TEMPLATE_ID: &str = "io.camunda.connectors.email.v1";

/// The extracted package (see the script for where it comes from).
pub fn package() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = format!(
            "{}/tests/testbed/camunda-templates.sh",
            env!("CARGO_MANIFEST_DIR")
        );
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg("dir")
            .output()
            .expect("run camunda-templates.sh");
        // Never skipped: without Camunda's templates the drop-in is untested.
        assert!(
            output.status.success(),
            "Camunda's templates could not be downloaded (set CAMUNDA_EMAIL_FIXTURES to a \
             folder holding the extracted package):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Every version of one of the package's templates (`email-outbound-connector.json`), oldest
/// first.
pub fn versions_of(file: &str) -> Vec<Template> {
    let path = package().join("src/element-templates").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let array: Vec<Value> = serde_json::from_str(&text).expect("a JSON array of templates");
    let mut templates: Vec<Template> = array
        .into_iter()
        .map(|json| {
            let version = json["version"].as_u64().expect("a versioned template");
            Template {
                label: format!("v{version}"),
                json,
            }
        })
        .collect();
    templates.sort_by_key(Template::version);
    templates
}

/// Every version of Camunda's outbound Email template.
pub fn outbound() -> Vec<Template> {
    let templates = versions_of("email-outbound-connector.json");
    assert!(
        templates.iter().all(|t| t.json["id"] == TEMPLATE_ID),
        "the package's outbound Email templates carry another id"
    );
    templates
}

/// One version of the outbound template.
pub fn outbound_version(version: u64) -> Template {
    outbound()
        .into_iter()
        .find(|t| t.version() == version)
        .unwrap_or_else(|| panic!("the package has no outbound Email template version {version}"))
}

#[derive(Clone)]
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
    pub fn version(&self) -> u64 {
        self.json["version"].as_u64().unwrap_or(0)
    }

    fn properties(&self) -> &[Value] {
        self.json["properties"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    fn properties_mut(&mut self) -> &mut Vec<Value> {
        self.json["properties"]
            .as_array_mut()
            .expect("a template has properties")
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

    /// The hybrid variant of this template, as Camunda's hybrid template differs from the
    /// plain one: the Hidden task type becomes an editable String property
    /// `taskDefinitionType` (its default still Camunda's type); every other binding stays.
    pub fn hybrid(&self) -> Template {
        let mut hybrid = self.clone();
        hybrid.label = format!("{} hybrid", self.label);
        hybrid.json["id"] = json!(format!("{TEMPLATE_ID}-hybrid"));
        let task_type = hybrid
            .properties_mut()
            .iter_mut()
            .find(|p| {
                p["binding"]["type"] == "zeebe:taskDefinition" && p["binding"]["property"] == "type"
            })
            .expect("the template sets the task type");
        let default = task_type["value"].clone();
        *task_type = json!({
            "id": "taskDefinitionType",
            "value": default,
            "group": "taskDefinitionType",
            "binding": { "property": "type", "type": "zeebe:taskDefinition" },
            "type": "String"
        });
        hybrid
    }

    /// This template with the property `id` set to `value` in every job, as a modeler leaves
    /// a field it filled in.
    pub fn with_value(&self, id: &str, value: Value) -> Template {
        let mut changed = self.clone();
        let property = changed
            .properties_mut()
            .iter_mut()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{}: no property {id}", self.label));
        property["value"] = value;
        changed
    }

    /// Version 2 as Camunda 8.6.5-8.6.27 (`with_attachments` false) or 8.7.x (true) shipped it:
    /// the ports and `maxToBeRead` are String properties with string defaults (`"993"`,
    /// `"100"`), so their jobs carry JSON strings; 8.6 had no attachments field yet.
    pub fn as_shipped_in_8_6_and_8_7(&self, with_attachments: bool) -> Template {
        assert_eq!(self.version(), 2, "only version 2 was shipped so");
        let mut shipped = self.clone();
        shipped.label = if with_attachments {
            "v2 as shipped in 8.7".into()
        } else {
            "v2 as shipped in 8.6".into()
        };
        let as_text = [
            "data.smtpConfig.smtpPort",
            "data.imapConfig.imapPort",
            "data.pop3Config.pop3Port",
            "data.imapAction.maxToBeRead",
            "data.pop3Action.maxToBeRead",
        ];
        for property in shipped.properties_mut() {
            let name = property["binding"]["name"].as_str().unwrap_or_default();
            if as_text.contains(&name) {
                property["type"] = json!("String");
                if let Some(number) = property.get("value").filter(|v| v.is_number()) {
                    property["value"] = json!(number.to_string());
                }
                if let Some(object) = property.as_object_mut() {
                    object.remove("feel");
                }
            }
        }
        if !with_attachments {
            shipped
                .properties_mut()
                .retain(|p| p["binding"]["name"] != "data.smtpAction.attachments");
        }
        shipped
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
    if let Some(wanted) = condition["isEmpty"].as_bool() {
        let empty = match &current {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        return empty == wanted;
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
