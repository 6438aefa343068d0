//! The input definitions every operation shares: the `server` and `authentication` blocks and
//! the fields several operations take (folder, message id, criteria, limits).
//!
//! An input definition is a JSON Schema that carries, beside what validation needs, what a
//! modeler needs: `title` (the label), `description` (the tooltip), `default` (the value a new
//! task starts with), `examples` (the first is the placeholder) and an `x-template` object
//! with what only the element template needs (see [`crate::templates`] for its keys). The
//! validator ignores the annotations, the template generator reads them: one definition, two
//! uses, so a field cannot be validated without being offered in the modeler, or the reverse.

use serde_json::{Value, json};

use crate::mail::server::{DEFAULT_TIMEOUT_SECONDS, Protocol, Security};

/// The schema of an operation: its title and description (the operation's name in the
/// modeler), the shared blocks for `protocol`, then `properties`, with `required`.
pub fn operation_schema(
    protocol: Protocol,
    title: &str,
    description: &str,
    properties: Value,
    required: &[&str],
) -> Value {
    let mut all = serde_json::Map::new();
    all.insert("authentication".into(), authentication_schema(protocol));
    all.insert("server".into(), server_schema(protocol));
    if let Value::Object(extra) = properties {
        all.extend(extra);
    }
    let mut required_all = vec!["authentication", "server"];
    required_all.extend_from_slice(required);
    json!({
        "title": title,
        "description": description,
        "type": "object",
        "required": required_all,
        "properties": all
    })
}

const SECURITY_CHOICES: [(Security, &str, &str); 3] = [
    (Security::Tls, "tls", "TLS (encrypted from the first byte)"),
    (
        Security::Starttls,
        "starttls",
        "STARTTLS (upgrade; fails if not offered)",
    ),
    (
        Security::None,
        "none",
        "None (plaintext; for local test servers)",
    ),
];

/// JSON Schema of the `server` block for a protocol. The port's default follows the chosen
/// security, as the worker applies it when the port is left empty.
pub fn server_schema(protocol: Protocol) -> Value {
    let name = protocol.name().to_uppercase();
    let default_security = SECURITY_CHOICES
        .iter()
        .find(|(s, _, _)| *s == protocol.default_security())
        .map_or("tls", |(_, value, _)| value);
    let choices: serde_json::Map<String, Value> = SECURITY_CHOICES
        .iter()
        .map(|(_, value, label)| (value.to_string(), json!(label)))
        .collect();
    let ports: serde_json::Map<String, Value> = SECURITY_CHOICES
        .iter()
        .map(|(security, value, _)| (value.to_string(), json!(protocol.default_port(*security))))
        .collect();
    json!({
        "title": "Server",
        "description": format!("The {name} server"),
        "type": "object",
        "required": ["host"],
        "additionalProperties": false,
        "properties": {
            "host": {
                "title": "Host",
                "description": format!("Host name or IP address of the {name} server."),
                "examples": [format!("{}.example.com", protocol.name())],
                "type": "string", "minLength": 1, "pattern": "^[^\\s/]+$"
            },
            "security": {
                "title": "Security",
                "description": "How the connection is encrypted. Certificates are always verified.",
                "default": default_security,
                "enum": ["tls", "starttls", "none"],
                "x-template": { "choices": choices }
            },
            "port": {
                "title": "Port",
                "description": format!("Leave empty for the {name} default of the chosen security."),
                "type": "integer", "minimum": 1, "maximum": 65535,
                "x-template": { "defaultBy": { "security": ports } }
            },
            "timeoutSeconds": {
                "title": "Timeout (seconds)",
                "description": "Bounds connecting, each command and the whole operation.",
                "default": DEFAULT_TIMEOUT_SECONDS,
                "type": "integer", "minimum": 1, "maximum": 3600
            },
            "serverCertificate": {
                "title": "Server certificate (PEM)",
                "description": "The server's self-signed certificate or its private CA, trusted \
                                besides the system roots.",
                "examples": ["-----BEGIN CERTIFICATE-----"],
                "type": "string",
                "x-template": { "multiline": true, "feel": "optional" }
            },
            "acceptInvalidCertificates": {
                "title": "Accept invalid certificates (development only)",
                "description": "Skips certificate verification; logs a warning on every use.",
                "default": false,
                "type": "boolean"
            }
        }
    })
}

/// JSON Schema of the `authentication` block. `none` exists only for SMTP: a mailbox cannot be
/// opened anonymously. The fields are declared once at the top (with their annotations); each
/// type then says which of them it requires and allows.
pub fn authentication_schema(protocol: Protocol) -> Value {
    let mut choices = serde_json::Map::new();
    choices.insert("simple".into(), json!("Username and password"));
    if protocol == Protocol::Smtp {
        choices.insert("none".into(), json!("None (relay without login)"));
    }
    choices.insert("oauth2".into(), json!("OAuth 2.0 access token"));
    let types: Vec<&String> = choices.keys().collect();
    json!({
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
            "accessToken": {
                "title": "Access token",
                "description": "An OAuth 2.0 access token for XOAUTH2 / OAUTHBEARER.",
                "examples": ["{{secrets.MAIL_ACCESS_TOKEN}}"],
                "type": "string", "minLength": 1,
                "x-template": {
                    "feel": "optional",
                    "when": { "type": ["oauth2"] },
                    "hint": "Use a secret: {{secrets.MAIL_ACCESS_TOKEN}}"
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
                    "required": ["username", "accessToken"],
                    "additionalProperties": false,
                    "properties": { "type": true, "username": true, "accessToken": true }
                }
            }
        ]
    })
}

/// A mailbox folder; empty means INBOX. The same definition for every operation, so the
/// modeler keeps the folder when the operation changes.
pub fn folder_field(title: &str) -> Value {
    json!({
        "title": title,
        "description": "A mailbox folder; nested folders by the server's delimiter or by '.' \
                        (Projects.2026). Empty: INBOX.",
        "default": "INBOX",
        "type": ["string", "null"],
        "x-template": { "feel": "optional" }
    })
}

/// The Message-ID header of the message to act on, with or without angle brackets.
pub fn message_id_field() -> Value {
    json!({
        "title": "Message ID",
        "description": "The Message-ID header of the message, with or without angle brackets, \
                        as list and search return it.",
        "examples": ["=mail.messageId"],
        "type": "string", "minLength": 1,
        "x-template": { "feel": "optional" }
    })
}

/// Search criteria: a tree of AND / OR / NOT nodes over leaves (SPEC §6), as an object or its
/// JSON text. The schema only takes the shape; the criteria parser checks the tree in depth and
/// names the offending node's pointer.
pub fn criteria_field() -> Value {
    json!({
        "title": "Criteria",
        "description": "A leaf { \"field\": \"FROM\"|\"TO\"|\"CC\"|\"SUBJECT\"|\"BODY\"|\"HEADER\"|\
                        \"SINCE\"|\"BEFORE\"|\"SEEN\"|\"UNSEEN\", \"value\": … } or \
                        { \"operator\": \"AND\"|\"OR\"|\"NOT\", \"criteria\": [ … ] }, nested \
                        as deep as needed. Matching is case-insensitive substring.",
        "examples": ["={\"operator\": \"AND\", \"criteria\": [{\"field\": \"FROM\", \"value\": \
                      \"billing@\"}, {\"field\": \"SUBJECT\", \"value\": \"invoice\"}]}"],
        "type": ["object", "string"],
        "x-template": { "multiline": true, "feel": "required" }
    })
}

/// Messages a listing returns when a model sets no `maxToBeRead`: job variables have a size
/// limit.
const DEFAULT_MAX_TO_BE_READ: usize = 100;

/// Results a search returns when a model sets no `maxResults`.
const DEFAULT_MAX_RESULTS: usize = 100;

fn limit_field(title: &str, description: &str, default: usize) -> Value {
    json!({
        "title": title,
        "description": description,
        "default": default,
        "type": "integer", "minimum": 1, "maximum": 10000
    })
}

fn limit(variables: &Value, name: &str, default: usize) -> usize {
    variables[name].as_u64().map_or(default, |n| n as usize)
}

/// The `maxToBeRead` of validated variables, or its default.
pub fn max_to_be_read(variables: &Value) -> usize {
    limit(variables, "maxToBeRead", DEFAULT_MAX_TO_BE_READ)
}

/// The `maxResults` of validated variables, or its default.
pub fn max_results(variables: &Value) -> usize {
    limit(variables, "maxResults", DEFAULT_MAX_RESULTS)
}

/// How many messages a listing returns, after sorting.
pub fn max_to_be_read_field() -> Value {
    limit_field(
        "Maximum number of emails",
        "Sorting comes first, then the limit.",
        DEFAULT_MAX_TO_BE_READ,
    )
}

/// How many matches a search returns.
pub fn max_results_field() -> Value {
    limit_field(
        "Maximum number of results",
        "The oldest matches first.",
        DEFAULT_MAX_RESULTS,
    )
}

/// The sort order of a listing.
pub fn sort_order_field() -> Value {
    json!({
        "title": "Sort order",
        "description": "Ascending lists the oldest (or smallest) message first.",
        "default": "ASC",
        "enum": ["ASC", "DESC", null],
        "x-template": { "choices": { "ASC": "Ascending", "DESC": "Descending" } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_reject_unknown_fields_and_none_for_mailboxes() {
        let imap = crate::schema::InputSchema::compile(&json!({
            "type": "object",
            "properties": { "authentication": authentication_schema(Protocol::Imap) }
        }))
        .unwrap();
        assert!(
            imap.validate(&json!({ "authentication": { "type": "none" } }))
                .is_err()
        );
        assert!(
            imap.validate(
                &json!({ "authentication": { "username": "u", "password": "p", "x": 1 } })
            )
            .is_err()
        );
        assert!(
            imap.validate(&json!({ "authentication": { "type": "simple", "username": "u" } }))
                .is_err()
        );
        assert!(
            imap.validate(
                &json!({ "authentication": { "type": "oauth2", "username": "u", "password": "p" } })
            )
            .is_err()
        );
        imap.validate(&json!({ "authentication": { "username": "u", "password": "" } }))
            .unwrap();
        imap.validate(
            &json!({ "authentication": { "type": "oauth2", "username": "u", "accessToken": "t" } }),
        )
        .unwrap();
    }

    #[test]
    fn the_port_default_of_each_security_is_the_one_the_worker_applies() {
        for protocol in [Protocol::Smtp, Protocol::Imap, Protocol::Pop3] {
            let schema = server_schema(protocol);
            let by = &schema["properties"]["port"]["x-template"]["defaultBy"]["security"];
            for (security, value, _) in SECURITY_CHOICES {
                assert_eq!(by[value], json!(protocol.default_port(security)));
            }
        }
    }
}
