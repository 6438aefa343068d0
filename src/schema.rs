//! Validation of job variables against an operation's JSON Schema.
//!
//! A registry's schemas are compiled once each, when the first job of their type arrives; a job
//! only walks the compiled validator. Compiling every operation's schema at start held about a
//! megabyte of validators a worker serving a few job types never uses. Every violation is
//! reported, each with the JSON pointer of the offending node, so a modeler fixes all mistakes
//! in one round instead of one per incident.

use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{EmailError, Result};
use crate::secrets::SecretMask;

/// Longest text kept from one violation: a wrong type on a 10 MB attachment must not turn into
/// a 10 MB incident message.
const MAX_VIOLATION_CHARS: usize = 300;

pub struct InputSchema {
    /// Compiled on first use (or by [`InputSchema::compile`] at once); a schema that does not
    /// compile is a defect in this program, which the registry's tests compile every schema
    /// to find.
    validator: OnceLock<std::result::Result<jsonschema::Validator, String>>,
    /// The schema itself, to compile and to tell which properties are declared (see
    /// [`InputSchema::unset_nulls`]).
    schema: Value,
}

fn build(schema: &Value) -> std::result::Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("invalid schema at {}: {e}", e.schema_path()))
}

impl InputSchema {
    /// Compiles a schema now; a failure is a defect in this program.
    pub fn compile(schema: &Value) -> std::result::Result<InputSchema, String> {
        let validator = build(schema)?;
        Ok(InputSchema {
            validator: OnceLock::from(Ok(validator)),
            schema: schema.clone(),
        })
    }

    /// Keeps a schema to compile when it is first used.
    pub fn lazy(schema: Value) -> InputSchema {
        InputSchema {
            validator: OnceLock::new(),
            schema,
        }
    }

    /// Whether the validator has been compiled (first use, or [`InputSchema::compile`]).
    pub fn is_compiled(&self) -> bool {
        self.validator.get().is_some()
    }

    /// Compiles the schema if it is not yet; the error says why it does not compile.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.compiled().map(drop)
    }

    fn compiled(&self) -> std::result::Result<&jsonschema::Validator, String> {
        // Two jobs of a new type at once: one compiles, the other waits for it (a few ms).
        self.validator
            .get_or_init(|| build(&self.schema))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Removes declared properties whose value is null, at the top level and inside declared
    /// blocks (`server`, `authentication`). A field left empty in the modeler becomes an empty
    /// input mapping, which Zeebe 8.8+ resolves to null: for the user that means "not set", so
    /// the default applies, as it would had the field never been mapped. Undeclared variables
    /// and the inside of free-form values (criteria, headers, attachments) are left alone.
    pub fn unset_nulls(&self, instance: &mut Value) {
        remove_declared_nulls(&self.schema, instance);
    }

    /// Checks `instance`; the error lists every violation as `<pointer>: <what is wrong>`.
    pub fn validate(&self, instance: &Value) -> Result<()> {
        self.validate_masked(instance, &SecretMask::default())
    }

    /// [`InputSchema::validate`] with the job's resolved secrets masked in each violation
    /// before it is cut to length: a violation quotes the offending value, and a cut that
    /// came first could leave part of a secret that the mask no longer recognises.
    pub fn validate_masked(&self, instance: &Value, mask: &SecretMask) -> Result<()> {
        let validator = self
            .compiled()
            .map_err(|e| EmailError::internal(format!("the operation's schema: {e}")))?;
        let mut violations: Vec<String> = validator
            .iter_errors(instance)
            .map(|error| {
                let pointer = error.instance_path().as_str();
                let pointer = if pointer.is_empty() { "/" } else { pointer };
                let mut text = mask.apply(&error.to_string());
                if let Some((cut, _)) = text.char_indices().nth(MAX_VIOLATION_CHARS) {
                    text.truncate(cut);
                    text.push('…');
                }
                format!("{pointer}: {text}")
            })
            .collect();
        violations.dedup();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(EmailError::invalid_input(violations.join("; ")))
        }
    }
}

fn remove_declared_nulls(schema: &Value, instance: &mut Value) {
    let (Some(declared), Value::Object(map)) = (
        schema.get("properties").and_then(Value::as_object),
        instance,
    ) else {
        return;
    };
    if map.values().any(Value::is_null) {
        map.retain(|name, value| !(value.is_null() && declared.contains_key(name)));
    }
    for (name, value) in map.iter_mut() {
        if let Some(block) = declared.get(name).filter(|s| s.get("properties").is_some()) {
            remove_declared_nulls(block, value);
        }
    }
}

/// Turns a serde error on validated input into `INVALID_INPUT`. Validation catches nearly
/// everything first; this covers what a schema cannot say (a port of 25.0, say).
pub fn input_error(error: serde_json::Error) -> EmailError {
    EmailError::invalid_input(format!(
        "variables do not match the operation's input: {error}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> InputSchema {
        InputSchema::compile(&json!({
            "type": "object",
            "required": ["server"],
            "properties": {
                "server": {
                    "type": "object",
                    "required": ["host"],
                    "additionalProperties": false,
                    "properties": {
                        "host": { "type": "string" },
                        "port": { "type": "integer", "minimum": 1, "maximum": 65535 }
                    }
                },
                "maxToBeRead": { "type": "integer", "minimum": 1 }
            }
        }))
        .unwrap()
    }

    #[test]
    fn declared_nulls_mean_not_set() {
        let schema = schema();
        let mut vars = json!({
            "server": { "host": "h", "port": null },
            "unrelated": null,
            "maxToBeRead": null
        });
        schema.unset_nulls(&mut vars);
        assert_eq!(
            vars,
            json!({ "server": { "host": "h" }, "unrelated": null })
        );
        schema.validate(&vars).unwrap();
    }

    #[test]
    fn reports_every_violation_with_its_pointer() {
        let err = schema()
            .validate(&json!({
                "server": { "port": 70000, "zzz": 1 },
                "maxToBeRead": "5",
                "unrelatedProcessVariable": true
            }))
            .unwrap_err();
        let m = err.message;
        assert!(
            m.contains("/server: \"host\" is a required property"),
            "{m}"
        );
        assert!(
            m.contains("/server/port: 70000 is greater than the maximum of 65535"),
            "{m}"
        );
        assert!(
            m.contains("/server: Additional properties are not allowed ('zzz' was unexpected)"),
            "{m}"
        );
        assert!(
            m.contains("/maxToBeRead: \"5\" is not of type \"integer\""),
            "{m}"
        );
        assert!(!m.contains("unrelatedProcessVariable"), "{m}");
    }

    #[test]
    fn fractions_are_not_integers_and_root_is_named() {
        let err = schema()
            .validate(&json!({ "server": { "host": "h", "port": 25.5 } }))
            .unwrap_err();
        assert!(err.message.contains("/server/port"), "{}", err.message);
        let err = schema().validate(&json!({})).unwrap_err();
        assert!(
            err.message
                .starts_with("/: \"server\" is a required property"),
            "{}",
            err.message
        );
    }

    #[test]
    fn long_values_are_cut() {
        let big = "x".repeat(10_000);
        let err = schema()
            .validate(&json!({ "server": { "host": "h" }, "maxToBeRead": big }))
            .unwrap_err();
        assert!(err.message.len() < 400, "{}", err.message.len());
    }
}
