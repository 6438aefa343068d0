//! The `authentication` block every operation shares (docs/processes.md, "Common inputs",
//! "OAuth2 logins"): who logs in and with what, held so that a secret never reaches a log.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

pub use crate::oauth::login::OAuth2Login;

/// Who logs in, and with what. Its `Debug` shows the user, never the secret.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Authentication {
    Simple {
        username: String,
        password: SecretString,
    },
    None,
    Oauth2(OAuth2Login),
}

impl Authentication {
    /// Reads the block, treating a missing `type` as `simple` (the common case, and what
    /// Camunda's templates send).
    pub fn from_value(value: &Value) -> Result<Authentication, serde_json::Error> {
        let mut value = value.clone();
        if let Value::Object(map) = &mut value {
            map.entry("type").or_insert_with(|| json!("simple"));
        }
        serde_json::from_value(value)
    }

    /// Credentials are written into protocol lines (USER, PASS, LOGIN, AUTH), where a CR or LF
    /// would end the line and let the rest run as a command of its own: refused before any
    /// connection, naming the field, never its value.
    pub(crate) fn refuse_line_breaks(&self) -> crate::error::Result<()> {
        use secrecy::ExposeSecret;
        let fields: Vec<(&str, &str)> = match self {
            Authentication::Simple { username, password } => vec![
                ("username", username.as_str()),
                ("password", password.expose_secret()),
            ],
            Authentication::Oauth2(login) => login.line_fields(),
            Authentication::None => Vec::new(),
        };
        let problems: Vec<String> = fields
            .into_iter()
            .filter(|(_, value)| value.contains(['\r', '\n']))
            .map(|(name, _)| format!("/authentication/{name}: contains CR or LF"))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::error::EmailError::invalid_input(problems.join("; ")))
        }
    }

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
        assert!(check(json!({ "username": "u", "password": "p w\t!" })).is_ok());
        assert!(check(json!({ "type": "none" })).is_ok());
    }

    #[test]
    fn authentication_defaults_to_simple_and_hides_the_password() {
        let auth =
            Authentication::from_value(&json!({ "username": "u", "password": "pw" })).unwrap();
        assert!(matches!(auth, Authentication::Simple { .. }));
        assert_eq!(format!("{auth:?}"), "Authentication(u, ***)");
        let none = Authentication::from_value(&json!({ "type": "none" })).unwrap();
        assert!(matches!(none, Authentication::None));
    }
}
