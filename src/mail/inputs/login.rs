//! The `authentication` block as an input type: `simple`, `none` (SMTP only) or `oauth2`
//! (docs/processes.md, "Common inputs", "OAuth2 logins"). The block itself is
//! [`Authentication`], which derives its schema and decoding; [`Login`] says which protocol it
//! is for, and [`TaggedBlock`] turns serde's tagged enum into the schema a modeler needs.

use std::marker::PhantomData;

use schemars::transform::Transform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::connection::ProtocolKind;
use crate::mail::auth::Authentication;
use crate::mail::server::Protocol;

/// The `authentication` block of a `P` operation: the runtime [`Authentication`].
#[derive(Debug, Clone)]
pub struct Login<P> {
    pub authentication: Authentication,
    protocol: PhantomData<fn() -> P>,
}

impl<P> std::ops::Deref for Login<P> {
    type Target = Authentication;

    fn deref(&self) -> &Authentication {
        &self.authentication
    }
}

impl<'de, P> Deserialize<'de> for Login<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Login {
            authentication: <Authentication as Deserialize>::deserialize(deserializer)?,
            protocol: PhantomData,
        })
    }
}

impl<P: ProtocolKind> JsonSchema for Login<P> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Authentication_{}", P::PROTOCOL.name()).into()
    }

    /// [`Authentication`]'s schema, without `none` for a mailbox: it cannot be opened
    /// anonymously; only an SMTP relay may take mail without a login.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = Authentication::json_schema(generator);
        if P::PROTOCOL != Protocol::Smtp {
            without_choice(&mut schema, "none");
        }
        schema
    }
}

/// A schema transform for a block serde reads as an internally tagged enum whose tag may be
/// missing (it means `default`). Serde's derive describes such an enum as a `oneOf` of one
/// object per variant, which cannot say that the tag may be left out, and whose violation
/// reads "not valid under any of the schemas" where a modeler needs "`password` is a required
/// property". This turns it into one object: every field declared once at the top with its
/// annotations (`x-template.when` names the types that use it, so the element template shows
/// it only for those), the tag as a choice of the variants (labelled by their titles), and for
/// each type an `if`/`then` branch with what it requires and allows and its own rules.
pub struct TaggedBlock {
    /// The tag value a block without the tag has.
    pub default: &'static str,
    /// The tag field's label and tooltip.
    pub title: &'static str,
    pub description: &'static str,
}

impl Transform for TaggedBlock {
    fn transform(&mut self, schema: &mut Schema) {
        let variants: Vec<Map<String, Value>> = schema
            .get("oneOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_object().cloned())
            .collect();
        // Serde's derive puts the tag first in each variant, as a constant.
        let Some(tag) = variants
            .first()
            .and_then(|v| v.get("properties"))
            .and_then(Value::as_object)
            .and_then(|p| p.keys().next().cloned())
        else {
            return;
        };
        let mut properties = Map::new();
        properties.insert(tag.clone(), Value::Null);
        let mut choices = Map::new();
        let mut used_by: Map<String, Value> = Map::new();
        let mut branches = Vec::new();
        for mut variant in variants {
            let fields = match variant.remove("properties") {
                Some(Value::Object(fields)) => fields,
                _ => Map::new(),
            };
            let Some(value) = fields
                .get(&tag)
                .and_then(|t| t.get("const"))
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let label = variant.remove("title").unwrap_or_else(|| json!(value));
            choices.insert(value.clone(), label);
            for (name, field) in fields.iter().filter(|(name, _)| **name != tag) {
                let mut field = field.clone();
                // An optional field's `default: null` says only that it may be left out, as
                // the branches' `required` lists do; a template must not start it as null.
                if let Some(annotations) = field.as_object_mut()
                    && annotations.get("default") == Some(&Value::Null)
                {
                    annotations.remove("default");
                }
                properties.entry(name.clone()).or_insert(field);
                if let Value::Array(types) = used_by.entry(name.clone()).or_insert(json!([])) {
                    types.push(json!(value));
                }
            }
            let mut then = Map::new();
            let required: Vec<Value> = match variant.remove("required") {
                Some(Value::Array(names)) => names.into_iter().filter(|n| *n != tag).collect(),
                _ => Vec::new(),
            };
            if !required.is_empty() {
                then.insert("required".into(), Value::Array(required));
            }
            if let Some(additional) = variant.remove("additionalProperties") {
                then.insert("additionalProperties".into(), additional);
                let allowed = fields.keys().map(|name| (name.clone(), json!(true)));
                then.insert("properties".into(), Value::Object(allowed.collect()));
            }
            // The variant's own rules; its annotations and object type are said above.
            for (key, rule) in variant {
                if !matches!(key.as_str(), "type" | "description" | "examples") {
                    then.insert(key, rule);
                }
            }
            let condition = if value == self.default {
                json!({ "properties": { &tag: { "const": value } } })
            } else {
                json!({ "required": [&tag], "properties": { &tag: { "const": value } } })
            };
            branches.push(json!({ "if": condition, "then": then }));
        }
        for (name, types) in used_by {
            if let Some(Value::Object(field)) = properties.get_mut(&name) {
                let hints = field.entry("x-template").or_insert_with(|| json!({}));
                if let Value::Object(hints) = hints {
                    hints.insert("when".into(), json!({ &tag: types }));
                }
            }
        }
        properties.insert(
            tag,
            json!({
                "title": self.title,
                "description": self.description,
                "default": self.default,
                "enum": choices.keys().collect::<Vec<_>>(),
                "x-template": { "choices": choices }
            }),
        );
        let mut block = Map::new();
        if let Some(title) = schema.get("title") {
            block.insert("title".into(), title.clone());
        }
        block.insert("type".into(), json!("object"));
        block.insert("properties".into(), Value::Object(properties));
        block.insert("allOf".into(), Value::Array(branches));
        *schema = Schema::from(block);
    }
}

/// Removes the choice `value` from a [`TaggedBlock`]'s schema: from the tag's values, its
/// labels and the branches.
fn without_choice(schema: &mut Schema, value: &str) {
    let Some(tag) = schema
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|p| p.keys().next().cloned())
    else {
        return;
    };
    if let Some(Value::Object(field)) = schema.get_mut("properties").and_then(|p| p.get_mut(&tag)) {
        if let Some(Value::Array(values)) = field.get_mut("enum") {
            values.retain(|v| v != value);
        }
        if let Some(Value::Object(labels)) = field
            .get_mut("x-template")
            .and_then(|hints| hints.get_mut("choices"))
        {
            labels.shift_remove(value);
        }
    }
    if let Some(Value::Array(branches)) = schema.get_mut("allOf") {
        let pointer = format!("/if/properties/{tag}/const");
        branches.retain(|branch| branch.pointer(&pointer) != Some(&json!(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::inputs::input_schema;
    use crate::mail::inputs::{Connection, Imap, Smtp};
    use crate::schema::InputSchema;

    fn compiled<T: JsonSchema>(name: &str) -> InputSchema {
        InputSchema::compile(&json!({
            "type": "object",
            "properties": { name: input_schema::<T>() }
        }))
        .unwrap()
    }

    #[test]
    fn logins_reject_unknown_fields_and_none_for_mailboxes() {
        let imap = compiled::<Login<Imap>>("authentication");
        let check = |v: Value| imap.validate(&json!({ "authentication": v }));
        assert!(check(json!({ "type": "none" })).is_err());
        assert!(check(json!({ "username": "u", "password": "p", "x": 1 })).is_err());
        let missing = check(json!({ "type": "simple", "username": "u" })).unwrap_err();
        assert!(
            missing
                .message
                .contains("/authentication: \"password\" is a required property"),
            "{}",
            missing.message
        );
        assert!(check(json!({ "type": "oauth2", "username": "u", "password": "p" })).is_err());
        check(json!({ "username": "u", "password": "" })).unwrap();
        check(json!({ "type": "oauth2", "username": "u", "accessToken": "t" })).unwrap();
        let smtp = compiled::<Login<Smtp>>("authentication");
        smtp.validate(&json!({ "authentication": { "type": "none" } }))
            .unwrap();
    }

    #[test]
    fn oauth2_logins_name_what_is_wrong() {
        let imap = compiled::<Login<Imap>>("authentication");
        let check = |v: Value| {
            let variables = json!({ "authentication": v, "server": { "host": "h" } });
            imap.validate(&variables)
                .and_then(|_| crate::mail::inputs::decode::<Connection<Imap>>(variables.clone()))
                // The host policy's check of the endpoint, as a job's variables get it.
                .and_then(|_| {
                    let policy = crate::mail::policy::HostPolicy::default();
                    match crate::mail::inputs::token_endpoint_refusal(&variables, &policy) {
                        Some(refused) => Err(crate::error::EmailError::invalid_input(refused)),
                        None => Ok(()),
                    }
                })
                .map(|_| ())
        };
        let endpoint = "https://login.example.com/tenant/oauth2/v2.0/token";
        check(json!({ "type": "oauth2", "username": "u", "accessToken": "t" })).unwrap();
        check(
            json!({ "type": "oauth2", "username": "u", "tokenEndpoint": endpoint,
            "clientId": "c", "clientSecret": "s", "scope": "x" }),
        )
        .unwrap();
        check(
            json!({ "type": "oauth2", "username": "u", "tokenEndpoint": endpoint,
            "clientId": "c", "refreshToken": "r", "mechanism": "OAUTHBEARER" }),
        )
        .unwrap();
        check(
            json!({ "type": "oauth2", "username": "u", "tokenEndpoint": "http://127.0.0.1:8080/t",
            "clientId": "c" }),
        )
        .unwrap();
        let refused = |v: Value, pointer: &str| {
            let e = check(v.clone()).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::InvalidInput, "{v}");
            assert!(e.message.contains(pointer), "{v}: {}", e.message);
            e.message
        };
        refused(
            json!({ "type": "oauth2", "username": "u", "accessToken": "t",
            "tokenEndpoint": endpoint, "clientId": "c" }),
            "/authentication",
        );
        refused(
            json!({ "type": "oauth2", "username": "u" }),
            "/authentication",
        );
        refused(
            json!({ "type": "oauth2", "username": "u", "tokenEndpoint": endpoint }),
            "/authentication",
        );
        refused(
            json!({ "type": "oauth2", "username": "u", "tokenEndpoint": "http://login.example.com/t",
            "clientId": "c" }),
            "/authentication/tokenEndpoint",
        );
        refused(
            json!({ "type": "oauth2", "username": "u", "tokenEndpoint": "https://169.254.169.254/t",
            "clientId": "c" }),
            "/authentication/tokenEndpoint",
        );
        refused(
            json!({ "type": "oauth2", "username": "u", "accessToken": "t", "mechanism": "PLAIN" }),
            "/authentication/mechanism",
        );
        let secret = refused(
            json!({ "type": "oauth2", "username": "u", "accessToken": "t",
            "clientSecret": "hunter2" }),
            "/authentication",
        );
        assert!(!secret.contains("hunter2"), "{secret}");
    }
}
