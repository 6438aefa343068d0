//! The `authentication` block as an input type: `simple`, `none` (SMTP only) or `oauth2`
//! (docs/processes.md, "Common inputs", "OAuth2 logins"), its schema written out (with the
//! element template's fields) and what serde reads after it.

use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::connection::ProtocolKind;
use crate::mail::auth::Authentication;
use crate::mail::server::Protocol;

/// `https://`, or `http://` to a loopback address. The host policy is checked when the
/// variables are read ([`crate::mail::inputs::decode_input`], with the process's policy).
const TOKEN_ENDPOINT_PATTERN: &str =
    r"^(https://[^\s/?#]+|http://(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?)([/?#][^\s]*)?$";

/// The `authentication` block of a `P` operation: the runtime [`Authentication`], read with
/// `type` defaulting to `simple` and credentials checked for line breaks.
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
        let value = Value::deserialize(deserializer)?;
        let authentication =
            Authentication::from_value(&value).map_err(serde::de::Error::custom)?;
        authentication
            .refuse_line_breaks()
            .map_err(|e| serde::de::Error::custom(e.message))?;
        if let Authentication::Oauth2(login) = &authentication {
            let problems = login.problems();
            if !problems.is_empty() {
                return Err(serde::de::Error::custom(problems.join("; ")));
            }
        }
        Ok(Login {
            authentication,
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

    /// Written out rather than derived: serde reads an internally tagged enum whose tag may be
    /// missing (it means `simple`, as Camunda's templates send it), which a derived `oneOf`
    /// cannot say, and a `oneOf` would report "not valid under any of the schemas" where a
    /// modeler needs "`password` is a required property". The fields are declared once at the
    /// top (with their annotations); each type then says which of them it requires and allows.
    /// `none` exists only for SMTP: a mailbox cannot be opened anonymously.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut choices = Map::new();
        choices.insert("simple".into(), json!("Username and password"));
        if P::PROTOCOL == Protocol::Smtp {
            choices.insert("none".into(), json!("None (relay without login)"));
        }
        choices.insert("oauth2".into(), json!("OAuth 2.0 (XOAUTH2 / OAUTHBEARER)"));
        let types: Vec<&String> = choices.keys().collect();
        json_schema!({
            "title": "Authentication",
            "type": "object",
            "properties": {
                "type": {
                    "title": "Type",
                    "description": "How the worker logs in: a username and password, an OAuth 2.0 \
                                    access token, or (SMTP relays only) not at all.",
                    "default": "simple",
                    "enum": types,
                    "x-template": { "choices": choices }
                },
                "username": {
                    "title": "Username",
                    "description": "Usually the full email address.",
                    "examples": ["someone@example.com"],
                    "type": "string", "minLength": 1,
                    "x-template": { "feel": "optional", "when": { "type": ["simple", "oauth2"] } }
                },
                "password": {
                    "title": "Password",
                    "description": "Keep it out of the model: reference a secret, resolved by the \
                                    worker from EMAIL_SECRET_<NAME> or its secrets directory.",
                    "examples": ["{{secrets.MAIL_PASSWORD}}"],
                    "type": "string",
                    "x-template": {
                        "feel": "optional",
                        "when": { "type": ["simple"] },
                        "hint": "Use a secret: {{secrets.MAIL_PASSWORD}}"
                    }
                },
                "mechanism": {
                    "title": "SASL mechanism",
                    "description": "XOAUTH2 (Microsoft 365, Gmail) or OAUTHBEARER (RFC 7628). \
                                    Empty: XOAUTH2, unless the server offers only OAUTHBEARER.",
                    "enum": ["XOAUTH2", "OAUTHBEARER"],
                    "x-template": {
                        "when": { "type": ["oauth2"] },
                        "choices": { "XOAUTH2": "XOAUTH2", "OAUTHBEARER": "OAUTHBEARER (RFC 7628)" }
                    }
                },
                "accessToken": {
                    "title": "Access token",
                    "description": "A token the process already holds. Leave empty to let the \
                                    worker obtain tokens from the token endpoint below.",
                    "examples": ["{{secrets.MAIL_ACCESS_TOKEN}}"],
                    "type": "string", "minLength": 1,
                    "x-template": {
                        "feel": "optional",
                        "when": { "type": ["oauth2"] },
                        "hint": "Use a secret: {{secrets.MAIL_ACCESS_TOKEN}}"
                    }
                },
                "tokenEndpoint": {
                    "title": "Token endpoint",
                    "description": "The worker obtains and caches tokens here: client \
                                    credentials, or the refresh token grant when a refresh \
                                    token is given. https:// (http:// only to a loopback address).",
                    "examples": ["https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"],
                    "type": "string", "minLength": 1,
                    "pattern": TOKEN_ENDPOINT_PATTERN,
                    "x-template": { "feel": "optional", "when": { "type": ["oauth2"] } }
                },
                "clientId": {
                    "title": "Client ID",
                    "description": "The application (client) ID registered at the token endpoint.",
                    "type": "string", "minLength": 1,
                    "x-template": { "feel": "optional", "when": { "type": ["oauth2"] } }
                },
                "clientSecret": {
                    "title": "Client secret",
                    "description": "Keep it out of the model: reference a secret.",
                    "examples": ["{{secrets.MAIL_CLIENT_SECRET}}"],
                    "type": "string",
                    "x-template": {
                        "feel": "optional",
                        "when": { "type": ["oauth2"] },
                        "hint": "Use a secret: {{secrets.MAIL_CLIENT_SECRET}}"
                    }
                },
                "scope": {
                    "title": "Scope",
                    "description": "Microsoft 365 app-only: https://outlook.office365.com/.default; \
                                    Gmail: https://mail.google.com/",
                    "examples": ["https://outlook.office365.com/.default"],
                    "type": "string",
                    "x-template": { "feel": "optional", "when": { "type": ["oauth2"] } }
                },
                "refreshToken": {
                    "title": "Refresh token",
                    "description": "For delegated access (Gmail, Microsoft delegated): the worker \
                                    uses the refresh token grant, and a rotated refresh token from \
                                    then on. Reference a secret.",
                    "examples": ["{{secrets.MAIL_REFRESH_TOKEN}}"],
                    "type": "string",
                    "x-template": {
                        "feel": "optional",
                        "when": { "type": ["oauth2"] },
                        "hint": "Use a secret: {{secrets.MAIL_REFRESH_TOKEN}}"
                    }
                }
            },
            "allOf": [
                {
                    "if": { "properties": { "type": { "const": "simple" } } },
                    "then": {
                        "required": ["username", "password"],
                        "additionalProperties": false,
                        "properties": { "type": true, "username": true, "password": true }
                    }
                },
                {
                    "if": { "required": ["type"], "properties": { "type": { "const": "none" } } },
                    "then": { "additionalProperties": false, "properties": { "type": true } }
                },
                {
                    "if": { "required": ["type"], "properties": { "type": { "const": "oauth2" } } },
                    "then": {
                        "required": ["username"],
                        "additionalProperties": false,
                        "properties": {
                            "type": true, "username": true, "mechanism": true,
                            "accessToken": true, "tokenEndpoint": true, "clientId": true,
                            "clientSecret": true, "scope": true, "refreshToken": true
                        },
                        // Exactly one token source, said with keywords whose messages name
                        // fields, never quote the block (which may hold an inline secret).
                        "dependentRequired": {
                            "tokenEndpoint": ["clientId"], "clientId": ["tokenEndpoint"],
                            "clientSecret": ["tokenEndpoint"], "refreshToken": ["tokenEndpoint"],
                            "scope": ["tokenEndpoint"]
                        },
                        "if": { "required": ["accessToken"] },
                        "then": { "properties": { "tokenEndpoint": false } },
                        "else": { "required": ["tokenEndpoint"] }
                    }
                }
            ]
        })
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
