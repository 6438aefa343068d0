//! The `authentication` block every operation shares (docs/processes.md, "Common inputs",
//! "OAuth2 logins"): who logs in and with what, held so that a secret never reaches a log.
//!
//! [`Authentication`] is the block's one definition: its derives give the JSON Schema (which
//! validates jobs and the watchers file and generates the element template's fields, through
//! [`TaggedBlock`]) and the decoding; its [`Deserialize`] adds what a schema cannot say, each
//! problem named by its field, never by its value.

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use crate::mail::inputs::TaggedBlock;
pub use crate::oauth::login::OAuth2Login;

/// The `type` a block without one has: what Camunda's templates send for a password login.
const DEFAULT_TYPE: &str = "simple";

/// The fields written into protocol lines (USER, PASS, LOGIN, AUTH) or a token request's form
/// body, where a CR or LF would end the line and let the rest run as a command of its own.
const LINE_FIELDS: [&str; 5] = [
    "username",
    "password",
    "accessToken",
    "clientSecret",
    "refreshToken",
];

/// Who logs in, and with what. Its `Debug` shows the user, never the secret.
///
/// Read it through its [`Deserialize`] (`serde_json::from_value`, a field of an input type):
/// the inherent `Authentication::deserialize` that serde's `remote = "Self"` derives is only
/// the step inside it, which neither defaults `type` nor checks anything.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(
    remote = "Self",
    tag = "type",
    rename_all = "lowercase",
    deny_unknown_fields
)]
#[schemars(
    title = "Authentication",
    transform = TaggedBlock {
        default: DEFAULT_TYPE,
        title: "Type",
        description: "How the worker logs in: a username and password, an OAuth 2.0 access \
                      token, or (SMTP relays only) not at all.",
    }
)]
pub enum Authentication {
    #[schemars(title = "Username and password")]
    Simple {
        #[schemars(with = "Username")]
        username: String,
        #[schemars(
            with = "String",
            title = "Password",
            description = "Keep it out of the model: reference a secret, resolved by the worker \
                           from EMAIL_SECRET_<NAME> or its secrets directory.",
            extend(
                "examples" = ["{{secrets.MAIL_PASSWORD}}"],
                "x-template" = {
                    "feel": "optional",
                    "hint": "Use a secret: {{secrets.MAIL_PASSWORD}}"
                }
            )
        )]
        password: SecretString,
    },
    #[schemars(title = "None (relay without login)")]
    None,
    #[schemars(title = "OAuth 2.0 (XOAUTH2 / OAUTHBEARER)")]
    Oauth2(OAuth2Login),
}

// The user a password login and an OAuth2 login name: one field of the block, so one schema,
// which both variants' `username` take (only the schema is used: the field stays a String).
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(
    title = "Username",
    description = "Usually the full email address.",
    extend("examples" = ["someone@example.com"], "x-template" = { "feel": "optional" })
)]
pub(crate) struct Username(#[schemars(length(min = 1))] String);

impl<'de> Deserialize<'de> for Authentication {
    /// Reads the block, treating a missing `type` as `simple` (the common case, and what
    /// Camunda's templates send), then refuses what the schema cannot: line breaks in
    /// credentials (before any connection, naming the field, never its value), and an OAuth2
    /// login's token endpoint the worker may not call ([`OAuth2Login::problems`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut block = Value::deserialize(deserializer)?;
        if let Value::Object(map) = &mut block {
            map.entry("type").or_insert_with(|| json!(DEFAULT_TYPE));
        }
        let authentication =
            Authentication::deserialize(&block).map_err(serde::de::Error::custom)?;
        let Value::Object(block) = block else {
            return Ok(authentication);
        };
        let mut problems = line_breaks(&block);
        if problems.is_empty() && matches!(authentication, Authentication::Oauth2(_)) {
            problems = OAuth2Login::problems(&block);
        }
        if problems.is_empty() {
            Ok(authentication)
        } else {
            Err(serde::de::Error::custom(problems.join("; ")))
        }
    }
}

/// The OAuth2 login a block describes, when it reads as one and has no line break in its
/// credentials, whatever its other problems: the host policy's refusal of its endpoint is
/// listed beside them ([`crate::mail::inputs::decode_input`]).
pub(crate) fn oauth2_login_of(block: &Value) -> Option<OAuth2Login> {
    if !line_breaks(block.as_object()?).is_empty() {
        return None;
    }
    match Authentication::deserialize(block).ok()? {
        Authentication::Oauth2(login) => Some(login),
        _ => None,
    }
}

fn line_breaks(block: &Map<String, Value>) -> Vec<String> {
    LINE_FIELDS
        .iter()
        .filter(|name| {
            block
                .get(**name)
                .and_then(Value::as_str)
                .is_some_and(|value| value.contains(['\r', '\n']))
        })
        .map(|name| format!("/authentication/{name}: contains CR or LF"))
        .collect()
}

impl Authentication {
    pub fn username(&self) -> Option<&str> {
        match self {
            Authentication::Simple { username, .. } => Some(username),
            Authentication::Oauth2(login) => Some(&login.username),
            Authentication::None => None,
        }
    }
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.username() {
            Some(user) => write!(f, "Authentication({user}, ***)"),
            None => f.write_str("Authentication(none)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_in_credentials_are_refused_naming_the_field_not_the_value() {
        let check = |auth: Value| {
            crate::mail::inputs::decode::<crate::mail::inputs::Connection<crate::mail::inputs::Imap>>(
                json!({ "authentication": auth, "server": { "host": "h" } }),
            )
        };
        let e = check(json!({ "username": "u", "password": "pw\r\nDELE 1" })).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidInput);
        assert_eq!(e.message, "/authentication/password: contains CR or LF");
        let e = check(json!({ "username": "u\nx", "password": "p\r" })).unwrap_err();
        assert!(
            e.message.contains("/authentication/username")
                && e.message.contains("/authentication/password")
        );
        assert!(!e.message.contains("u\nx"));
        let e =
            check(json!({ "type": "oauth2", "username": "u", "accessToken": "t\n" })).unwrap_err();
        assert_eq!(e.message, "/authentication/accessToken: contains CR or LF");
        for field in ["clientSecret", "refreshToken"] {
            let e = check(json!({ "type": "oauth2", "username": "u",
                "tokenEndpoint": "https://login.example.com/t", "clientId": "c", field: "s\r\n" }))
            .unwrap_err();
            assert_eq!(
                e.message,
                format!("/authentication/{field}: contains CR or LF")
            );
        }
        assert!(check(json!({ "username": "u", "password": "p w\t!" })).is_ok());
        assert!(check(json!({ "type": "none" })).is_ok());
    }

    #[test]
    fn authentication_defaults_to_simple_and_hides_the_password() {
        let read = |v: Value| serde_json::from_value::<Authentication>(v);
        let auth = read(json!({ "username": "u", "password": "pw" })).unwrap();
        assert!(matches!(auth, Authentication::Simple { .. }));
        assert_eq!(format!("{auth:?}"), "Authentication(u, ***)");
        let none = read(json!({ "type": "none" })).unwrap();
        assert!(matches!(none, Authentication::None));
        let e = read(json!({ "username": "u", "password": "hunter2", "x": 1 })).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// The credentials checked for line breaks are fields the block declares: a renamed field
    /// cannot silently drop out of the check.
    #[test]
    fn every_line_field_is_a_field_of_the_block() {
        let schema = crate::mail::inputs::input_schema::<Authentication>();
        for name in LINE_FIELDS {
            assert!(schema["properties"].get(name).is_some(), "{name}");
        }
    }
}
