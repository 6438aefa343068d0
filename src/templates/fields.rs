//! From one field's JSON Schema to its element template property (the mapping the module
//! documentation of [`super`] lists).

use serde_json::{Map, Value, json};

/// A property for one field: its id, the property without condition, and the conditions on
/// sibling fields it needs.
pub type Produced = (String, Map<String, Value>, Vec<Value>);

/// A condition that a property's value is one of `values`.
pub fn condition(property: &str, values: &[String]) -> Value {
    match values {
        [one] => json!({ "property": property, "equals": one }),
        _ => json!({ "property": property, "oneOf": values }),
    }
}

/// The template properties for the fields of one object schema, bound under `prefix`.
pub fn walk(
    schema: &Value,
    prefix: &str,
    group: &str,
    out: &mut Vec<Produced>,
) -> Result<(), String> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    let required = required_names(schema);
    for (name, field) in properties {
        let path = format!("{prefix}{name}");
        if field.get("properties").is_some() {
            walk(field, &format!("{path}."), name, out)?;
            continue;
        }
        let hints = field.get("x-template").cloned().unwrap_or(json!({}));
        let mut siblings = Vec::new();
        if let Some(when) = hints.get("when").and_then(Value::as_object) {
            for (sibling, values) in when {
                let values: Vec<String> = values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                siblings.push(condition(&format!("{prefix}{sibling}"), &values));
            }
        }
        let property = property(&path, field, &hints, group, required.contains(name))?;
        match hints.get("defaultBy").and_then(Value::as_object) {
            Some(by) => {
                for (sibling, defaults) in by {
                    for (value, default) in defaults.as_object().into_iter().flatten() {
                        let mut variant = property.clone();
                        variant.insert("value".into(), default.clone());
                        let mut conditions = siblings.clone();
                        conditions.push(condition(
                            &format!("{prefix}{sibling}"),
                            std::slice::from_ref(value),
                        ));
                        out.push((format!("{path}.{value}"), variant, conditions));
                    }
                }
            }
            None => out.push((path, property, siblings)),
        }
    }
    Ok(())
}

/// Names required by the object itself or by any of its conditional branches.
fn required_names(schema: &Value) -> Vec<String> {
    let direct = schema.get("required").and_then(Value::as_array);
    let branches = schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|branch| branch.pointer("/then/required").and_then(Value::as_array));
    direct
        .into_iter()
        .chain(branches)
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

fn property(
    path: &str,
    field: &Value,
    hints: &Value,
    group: &str,
    required: bool,
) -> Result<Map<String, Value>, String> {
    let label = field["title"]
        .as_str()
        .ok_or_else(|| format!("field {path} has no title"))?;
    let types: Vec<&str> = match &field["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let simple = |t: &str| types.iter().all(|x| *x == t || *x == "null") && types.contains(&t);
    let feel = hints["feel"].as_str();
    let multiline = hints["multiline"].as_bool().unwrap_or(false);
    let mut p = Map::new();
    p.insert("label".into(), json!(label));
    if let Some(hint) = hints["hint"].as_str() {
        p.insert("description".into(), json!(hint));
    }
    if let Some(tooltip) = field["description"].as_str() {
        p.insert("tooltip".into(), json!(tooltip));
    }
    let mut not_empty = required;
    if let Some(values) = field["enum"].as_array() {
        let names = &hints["choices"];
        let choices: Vec<Value> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| json!({ "name": names[v].as_str().unwrap_or(v), "value": v }))
            .collect();
        let first = choices.first().map(|c| c["value"].clone());
        p.insert("type".into(), json!("Dropdown"));
        p.insert(
            "value".into(),
            field
                .get("default")
                .cloned()
                .or(first)
                .unwrap_or(Value::Null),
        );
        p.insert("choices".into(), Value::Array(choices));
        not_empty = false;
    } else if simple("boolean") {
        p.insert("type".into(), json!("Boolean"));
        p.insert(
            "value".into(),
            field.get("default").cloned().unwrap_or(json!(false)),
        );
        not_empty = false;
    } else {
        let kind = if simple("integer") {
            "Number"
        } else if simple("string") || feel.is_some() {
            if multiline { "Text" } else { "String" }
        } else {
            return Err(format!(
                "field {path} is neither text, number nor choice: say how it is entered with \
                 x-template.feel"
            ));
        };
        // Camunda's template schema allows no placeholder on a Number.
        if let Some(example) = field
            .get("examples")
            .and_then(|e| e.get(0))
            .and_then(Value::as_str)
            .filter(|_| kind != "Number")
        {
            p.insert("placeholder".into(), json!(example));
        }
        p.insert("type".into(), json!(kind));
        if let Some(default) = field.get("default") {
            p.insert("value".into(), default.clone());
        }
        p.insert("feel".into(), json!(feel.unwrap_or("optional")));
    }
    if not_empty {
        p.insert("constraints".into(), json!({ "notEmpty": true }));
    }
    p.insert("group".into(), json!(group));
    p.insert(
        "binding".into(),
        json!({ "type": "zeebe:input", "name": path }),
    );
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(schema: Value) -> Result<Vec<Produced>, String> {
        let mut out = Vec::new();
        walk(&schema, "", "work", &mut out).map(|()| out)
    }

    #[test]
    fn a_field_must_have_a_label_and_say_how_a_list_is_entered() {
        let untitled = produced(json!({ "properties": { "a": { "type": "string" } } }));
        assert!(untitled.unwrap_err().contains("field a has no title"));
        let list = produced(json!({ "properties": { "l": { "title": "L", "type": "array" } } }));
        assert!(list.unwrap_err().contains("x-template.feel"));
        let feel = produced(json!({ "properties": {
            "l": { "title": "L", "type": "array", "x-template": { "feel": "required" } }
        } }))
        .unwrap();
        assert_eq!(feel[0].1["type"], "String");
        assert_eq!(feel[0].1["feel"], "required");
    }

    #[test]
    fn blocks_nest_and_siblings_become_conditions() {
        let out = produced(json!({ "properties": { "server": {
            "title": "Server",
            "required": ["host"],
            "properties": {
                "host": { "title": "Host", "type": "string" },
                "mode": { "title": "Mode", "enum": ["a", "b", null], "default": "b" },
                "port": { "title": "Port", "type": "integer",
                          "x-template": { "defaultBy": { "mode": { "a": 1, "b": 2 } } } },
                "key": { "title": "Key", "type": "string", "x-template": { "when": { "mode": ["a"] } } }
            }
        } } }))
        .unwrap();
        let ids: Vec<&str> = out.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "server.host",
                "server.mode",
                "server.port.a",
                "server.port.b",
                "server.key"
            ]
        );
        let (_, host, _) = &out[0];
        assert_eq!(host["constraints"], json!({ "notEmpty": true }));
        assert_eq!(host["group"], "server");
        assert_eq!(
            host["binding"],
            json!({ "type": "zeebe:input", "name": "server.host" })
        );
        let (_, mode, _) = &out[1];
        assert_eq!(mode["value"], "b");
        assert_eq!(mode["choices"].as_array().map(Vec::len), Some(2));
        let (_, port_b, conditions) = &out[3];
        assert_eq!(port_b["value"], 2);
        assert_eq!(
            conditions,
            &[json!({ "property": "server.mode", "equals": "b" })]
        );
        let (_, _, key_conditions) = &out[4];
        assert_eq!(
            key_conditions,
            &[json!({ "property": "server.mode", "equals": "a" })]
        );
    }
}
