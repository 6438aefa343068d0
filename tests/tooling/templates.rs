//! The element templates: generated from the operations' input definitions, checked in,
//! accepted by Camunda's validator, and proven in the real modeling UI; the example processes
//! parse, lint and use only job types the worker serves; and what the modeler writes into a
//! task is what the worker's schemas accept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use email_connector::registry::Registry;
use email_connector::templates;
use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn registry() -> Registry {
    Registry::standard("email", None, &Default::default()).expect("registry")
}

fn generated() -> Vec<templates::Template> {
    templates::generate(&registry()).expect("templates generate")
}

#[test]
fn checked_in_templates_are_what_the_code_generates() {
    let dir = root().join("element-templates");
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for template in generated() {
        let path = dir.join(&template.file_name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == template.text(),
            "{} is out of date: run `cargo run -- templates`",
            path.display()
        );
        expected.insert(template.file_name);
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("element-templates/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert_eq!(present, expected, "stray or missing template files");
}

/// The input paths a schema declares (`server.host`, `folder`, ...), read independently of the
/// generator: every property, with blocks (objects with properties) opened.
fn schema_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    for (name, field) in schema["properties"].as_object().into_iter().flatten() {
        let path = format!("{prefix}{name}");
        if field.get("properties").is_some() {
            schema_paths(field, &format!("{path}."), out);
        } else {
            out.insert(path);
        }
    }
}

/// Whether a condition can hold for the operation (conditions on other fields may be met by
/// some choice, so only the operation part decides).
fn shown_for(condition: Option<&Value>, job_type: &str) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    let parts: Vec<&Value> = match condition.get("allMatch").and_then(Value::as_array) {
        Some(all) => all.iter().collect(),
        None => vec![condition],
    };
    parts
        .iter()
        .filter(|c| c["property"] == "operation")
        .all(|c| {
            c["equals"] == job_type
                || c["oneOf"]
                    .as_array()
                    .is_some_and(|v| v.contains(&json!(job_type)))
        })
}

#[test]
fn every_schema_field_has_a_template_property_and_every_property_a_field() {
    let registry = registry();
    let templates = generated();
    for entry in registry.entries() {
        let protocol = entry.operation.protocol().name();
        let template = templates
            .iter()
            .find(|t| t.content["id"] == format!("email-connector.{protocol}"))
            .unwrap_or_else(|| panic!("no template for {protocol}"));
        let properties = template.content["properties"]
            .as_array()
            .expect("properties");
        let operation = properties
            .iter()
            .find(|p| p["id"] == "operation")
            .expect("operation property");
        assert_eq!(operation["binding"]["type"], "zeebe:taskDefinition");
        assert!(
            operation["choices"]
                .as_array()
                .expect("choices")
                .iter()
                .any(|c| c["value"] == entry.job_type.as_str()),
            "{} is not among the operations of its template",
            entry.job_type
        );

        let mut in_schema = BTreeSet::new();
        schema_paths(&entry.operation.schema(), "", &mut in_schema);
        let in_template: BTreeSet<String> = properties
            .iter()
            .filter(|p| p["binding"]["type"] == "zeebe:input")
            .filter(|p| shown_for(p.get("condition"), &entry.job_type))
            .filter_map(|p| p["binding"]["name"].as_str().map(str::to_string))
            .collect();
        assert_eq!(
            in_schema, in_template,
            "{}: schema fields and template inputs differ",
            entry.job_type
        );
    }
    // And no template offers an operation the worker does not serve.
    let served: BTreeSet<&str> = registry.job_types().collect();
    for template in &templates {
        for property in template.content["properties"]
            .as_array()
            .expect("properties")
        {
            if property["id"] == "operation" {
                for choice in property["choices"].as_array().expect("choices") {
                    let value = choice["value"].as_str().unwrap_or_default();
                    assert!(served.contains(value), "{value} is offered but not served");
                }
            }
        }
    }
}

/// The job variables Zeebe makes from a task's input mappings, for mappings that are
/// literals: no source → null, `=<JSON literal>` → that value (numbers, booleans, FEEL context
/// and list literals written as JSON), anything else → the text itself. Dotted targets nest.
fn variables_from_inputs(inputs: &Map<String, Value>) -> Value {
    let mut variables = json!({});
    for (target, source) in inputs {
        let value = match source.as_str() {
            None => Value::Null,
            Some(text) => match text.strip_prefix('=') {
                Some(feel) => serde_json::from_str(feel).unwrap_or_else(|_| {
                    panic!("{target}: {feel} is not a literal this test reads")
                }),
                None => Value::String(text.to_string()),
            },
        };
        let mut slot = &mut variables;
        let mut parts = target.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                slot[part] = value.clone();
            } else {
                if slot.get(part).is_none() {
                    slot[part] = json!({});
                }
                slot = &mut slot[part];
            }
        }
    }
    variables
}

fn run(script: &Path, args: &[&str], env: &[(&str, String)]) {
    let mut command = Command::new(script);
    command.args(args).current_dir(root().join("tests/modeler"));
    for (name, value) in env {
        command.env(name, value);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "{} {args:?} failed", script.display());
}

/// Camunda's validator, the example checks and the browser test, in one go (they share the
/// npm install and Chromium). Then the inputs the modeler wrote for each operation are fed to
/// the worker's schemas: a task filled in through the panel must validate.
#[test]
fn templates_validate_and_work_in_the_real_modeling_ui() {
    let modeler = root().join("tests/modeler");
    run(&modeler.join("setup.sh"), &[], &[]);
    let node = PathBuf::from("node");
    run(&node, &["validate-templates.mjs"], &[]);
    let registry = registry();
    // An example is modelled with Camunda's own template, served by the drop-in: the examples
    // check knows that type too; the panel below fills only our own templates.
    let mut with_dropin = self::registry();
    with_dropin
        .serve_camunda_job_type("io.camunda:email:1")
        .expect("the drop-in");
    let served = with_dropin.job_types().collect::<Vec<_>>().join(",");
    run(&node, &["check-examples.mjs"], &[("JOB_TYPES", served)]);

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("modeler");
    std::fs::create_dir_all(&out).expect("output folder");
    let export = out.join("exported.json");
    let _ = std::fs::remove_file(&export);
    let screenshots = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        root().join("docs")
    } else {
        out.join("screenshots")
    };
    run(
        &node,
        &["--test", "--test-reporter=spec", "modeler.test.mjs"],
        &[
            ("EXPORT_PATH", export.display().to_string()),
            ("SCREENSHOT_DIR", screenshots.display().to_string()),
        ],
    );

    let exported: Value = serde_json::from_str(
        &std::fs::read_to_string(&export).expect("the browser test wrote its export"),
    )
    .expect("export JSON");
    let exported = exported.as_object().expect("by job type");
    // The headers the modeler wrote, expressions included, are what the worker accepts.
    let headers = exported.get("headers").expect("the SMTP task's headers");
    let parsed = email_connector::job::JobHeaders::parse(&headers.to_string())
        .unwrap_or_else(|e| panic!("the modeler's headers are refused: {}", e.message));
    assert!(parsed.result_expression.is_some() && parsed.error_expression.is_some());
    for entry in registry.entries() {
        let inputs = exported
            .get(&entry.job_type)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("the browser test did not fill {}", entry.job_type));
        let mut variables = variables_from_inputs(inputs);
        // The worker resolves secrets before validation; here any value will do.
        variables["authentication"]["password"] = json!("secret");
        if entry.job_type.contains(":smtp:") {
            variables["to"] = json!("someone@example.com");
        }
        entry.schema.unset_nulls(&mut variables);
        if let Err(e) = entry.schema.validate(&variables) {
            panic!(
                "{}: the modeler's task does not validate: {}",
                entry.job_type, e.message
            );
        }

        // The same task with its required text fields left empty names each of them.
        let mut empty = variables_from_inputs(inputs);
        for field in ["username", "password", "accessToken"] {
            if empty["authentication"].get(field).is_some() {
                empty["authentication"][field] = Value::Null;
            }
        }
        entry.schema.unset_nulls(&mut empty);
        let message = entry
            .schema
            .validate(&empty)
            .expect_err("empty login must be invalid")
            .message;
        assert!(
            message.contains("/authentication"),
            "{}: {message}",
            entry.job_type
        );
    }
}
