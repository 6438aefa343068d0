//! The `authentication` block of `type: oauth2` (docs/processes.md, "OAuth2 logins"): its
//! fields, and its token-source rules, said once (`GRANT_FIELDS` and the names beside it) and
//! made both into the schema's keywords (`token_sources`) and into the checks decoding applies
//! ([`OAuth2Login::problems`]), which add what only the worker can check: an endpoint it may
//! call.

use reqwest::Url;
use schemars::{JsonSchema, Schema};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{EmailError, Result};
use crate::mail::auth::Username;
use crate::mail::sasl::Mechanism;

/// `https://`, or `http://` to a loopback address: what [`endpoint_url`] accepts, as far as a
/// pattern can say it (the host policy is checked when the variables are read).
const TOKEN_ENDPOINT_PATTERN: &str =
    r"^(https://[^\s/?#]+|http://(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?)([/?#][^\s]*)?$";

/// A token comes given (`accessToken`) or from a token endpoint (`tokenEndpoint`), never both.
const GIVEN: &str = "accessToken";
const ENDPOINT: &str = "tokenEndpoint";
/// What only a token endpoint grant uses; the first, the client, it needs.
const GRANT_FIELDS: [&str; 4] = ["clientId", "clientSecret", "refreshToken", "scope"];

const BOTH: &str =
    "/authentication: give either accessToken or tokenEndpoint (with clientId), not both";
const NEITHER: &str =
    "/authentication: an OAuth2 login needs accessToken, or tokenEndpoint and clientId";

/// The `authentication` block with `type: oauth2`.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = token_sources)]
pub struct OAuth2Login {
    #[schemars(with = "Username")]
    pub username: String,
    #[serde(default)]
    #[schemars(
        with = "Mechanism",
        title = "SASL mechanism",
        description = "XOAUTH2 (Microsoft 365, Gmail) or OAUTHBEARER (RFC 7628). Empty: \
                       XOAUTH2, unless the server offers only OAUTHBEARER.",
        extend("x-template" = {
            "choices": { "XOAUTH2": "XOAUTH2", "OAUTHBEARER": "OAUTHBEARER (RFC 7628)" }
        })
    )]
    pub mechanism: Option<Mechanism>,
    #[serde(default)]
    #[schemars(
        with = "String",
        title = "Access token",
        description = "A token the process already holds. Leave empty to let the worker obtain \
                       tokens from the token endpoint below.",
        length(min = 1),
        extend(
            "examples" = ["{{secrets.MAIL_ACCESS_TOKEN}}"],
            "x-template" = {
                "feel": "optional",
                "hint": "Use a secret: {{secrets.MAIL_ACCESS_TOKEN}}"
            }
        )
    )]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    #[schemars(
        with = "String",
        title = "Token endpoint",
        description = "The worker obtains and caches tokens here: client credentials, or the \
                       refresh token grant when a refresh token is given. https:// (http:// \
                       only to a loopback address).",
        length(min = 1),
        regex(pattern = TOKEN_ENDPOINT_PATTERN),
        extend(
            "examples" = ["https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"],
            "x-template" = { "feel": "optional" }
        )
    )]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    #[schemars(
        with = "String",
        title = "Client ID",
        description = "The application (client) ID registered at the token endpoint.",
        length(min = 1),
        extend("x-template" = { "feel": "optional" })
    )]
    pub client_id: Option<String>,
    #[serde(default)]
    #[schemars(
        with = "String",
        title = "Client secret",
        description = "Keep it out of the model: reference a secret.",
        extend(
            "examples" = ["{{secrets.MAIL_CLIENT_SECRET}}"],
            "x-template" = {
                "feel": "optional",
                "hint": "Use a secret: {{secrets.MAIL_CLIENT_SECRET}}"
            }
        )
    )]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    #[schemars(
        with = "String",
        title = "Scope",
        description = "Microsoft 365 app-only: https://outlook.office365.com/.default; Gmail: \
                       https://mail.google.com/",
        extend(
            "examples" = ["https://outlook.office365.com/.default"],
            "x-template" = { "feel": "optional" }
        )
    )]
    pub scope: Option<String>,
    #[serde(default)]
    #[schemars(
        with = "String",
        title = "Refresh token",
        description = "For delegated access (Gmail, Microsoft delegated): the worker uses the \
                       refresh token grant, and a rotated refresh token from then on. Reference \
                       a secret.",
        extend(
            "examples" = ["{{secrets.MAIL_REFRESH_TOKEN}}"],
            "x-template" = {
                "feel": "optional",
                "hint": "Use a secret: {{secrets.MAIL_REFRESH_TOKEN}}"
            }
        )
    )]
    pub refresh_token: Option<SecretString>,
}

/// The token-source rules as schema keywords, whose messages name fields and never quote the
/// block (which may hold an inline secret): the endpoint needs the client, the grant's fields
/// need the endpoint, and exactly one of a given token and an endpoint.
fn token_sources(schema: &mut Schema) {
    let mut dependent = Map::new();
    dependent.insert(ENDPOINT.into(), json!([GRANT_FIELDS[0]]));
    for name in GRANT_FIELDS {
        dependent.insert(name.into(), json!([ENDPOINT]));
    }
    schema.insert("dependentRequired".into(), Value::Object(dependent));
    schema.insert("if".into(), json!({ "required": [GIVEN] }));
    schema.insert("then".into(), json!({ "properties": { ENDPOINT: false } }));
    schema.insert("else".into(), json!({ "required": [ENDPOINT] }));
}

/// Where a login's token comes from.
pub enum TokenSource<'a> {
    Given(&'a SecretString),
    Endpoint(Url),
}

impl OAuth2Login {
    /// The token-source rules checked on the block as written (`block`, already read as an
    /// OAuth2 login), each problem with its JSON pointer, for where no schema ran first (the
    /// `check` subcommand); and an `https://` endpoint (plain HTTP on loopback only). Checked
    /// before any request; the host policy's check of the endpoint is the process's
    /// (`crate::oauth::mail::endpoint_refusal`).
    pub fn problems(block: &Map<String, Value>) -> Vec<String> {
        let given = |name: &str| block.get(name).is_some_and(|v| !v.is_null());
        let mut problems = Vec::new();
        match (given(GIVEN), given(ENDPOINT)) {
            (true, true) => problems.push(BOTH.to_string()),
            (false, false) => problems.push(NEITHER.to_string()),
            _ => {}
        }
        if let Some(endpoint) = block.get(ENDPOINT).and_then(Value::as_str) {
            let client = GRANT_FIELDS[0];
            if block
                .get(client)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                problems.push(format!(
                    "/authentication: \"{client}\" is a required property with {ENDPOINT}"
                ));
            }
            if let Err(problem) = endpoint_url(endpoint) {
                problems.push(format!("/authentication/{ENDPOINT}: {problem}"));
            }
        } else {
            for name in GRANT_FIELDS.into_iter().filter(|name| given(name)) {
                problems.push(format!("/authentication/{name}: only used with {ENDPOINT}"));
            }
        }
        problems
    }

    pub fn source(&self) -> Result<TokenSource<'_>> {
        match (&self.access_token, &self.token_endpoint) {
            (Some(token), None) => Ok(TokenSource::Given(token)),
            (None, Some(endpoint)) => {
                endpoint_url(endpoint)
                    .map(TokenSource::Endpoint)
                    .map_err(|p| {
                        EmailError::invalid_input(format!("/authentication/tokenEndpoint: {p}"))
                    })
            }
            (Some(_), Some(_)) => Err(EmailError::invalid_input(BOTH)),
            (None, None) => Err(EmailError::invalid_input(NEITHER)),
        }
    }

    /// What identifies the credentials (the cache key and the session pools' key): the
    /// endpoint, client, scope and the secrets, digested.
    pub fn credentials_digest(&self) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let parts: [&str; 6] = [
            self.access_token.as_ref().map_or("", |t| t.expose_secret()),
            self.token_endpoint.as_deref().unwrap_or(""),
            self.client_id.as_deref().unwrap_or(""),
            self.client_secret
                .as_ref()
                .map_or("", |s| s.expose_secret()),
            self.scope.as_deref().unwrap_or(""),
            self.refresh_token
                .as_ref()
                .map_or("", |t| t.expose_secret()),
        ];
        for part in parts {
            // Length-prefixed, so no two different field sets give the same bytes.
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        digest
    }
}

/// `https://`, or `http://` to a loopback address (a local test or sidecar endpoint).
pub(super) fn endpoint_url(text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default().to_string();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err("must be https:// (plain http:// only to a loopback address)".to_string());
        }
        other => return Err(format!("the scheme '{other}' is not https")),
    }
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    Ok(url)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn login(value: serde_json::Value) -> OAuth2Login {
        serde_json::from_value(value).unwrap()
    }

    /// The problems of a block that reads as an OAuth2 login.
    fn problems(value: serde_json::Value) -> Vec<String> {
        login(value.clone());
        OAuth2Login::problems(value.as_object().unwrap())
    }

    #[test]
    fn the_token_sources_and_their_problems() {
        assert!(problems(json!({ "username": "u", "accessToken": "t" })).is_empty());
        let both = problems(json!({ "username": "u", "accessToken": "t",
            "tokenEndpoint": "https://login.example.com/token", "clientId": "c" }));
        assert!(both[0].contains("not both"));
        let neither = problems(json!({ "username": "u" }));
        assert!(neither[0].starts_with("/authentication: "));
        let no_client =
            problems(json!({ "username": "u", "tokenEndpoint": "https://login.example.com/t" }));
        assert!(no_client[0].contains("clientId"));
        let plain = problems(
            json!({ "username": "u", "tokenEndpoint": "http://login.example.com/t", "clientId": "c" }),
        );
        assert!(plain[0].starts_with("/authentication/tokenEndpoint: must be https://"));
        for local in [
            "http://127.0.0.1:8080/t",
            "http://localhost/t",
            "http://[::1]:1/t",
        ] {
            let ok = problems(json!({ "username": "u", "tokenEndpoint": local, "clientId": "c" }));
            assert!(ok.is_empty(), "{local}: {ok:?}");
        }
        let stray = problems(json!({ "username": "u", "accessToken": "t", "clientSecret": "s" }));
        assert_eq!(
            stray,
            ["/authentication/clientSecret: only used with tokenEndpoint"]
        );
        let empty_client = problems(json!({ "username": "u",
            "tokenEndpoint": "https://login.example.com/t", "clientId": "" }));
        assert_eq!(
            empty_client,
            ["/authentication: \"clientId\" is a required property with tokenEndpoint"]
        );
    }

    /// The rules the schema states are the ones decoding checks: each block the checks refuse
    /// (the host policy aside) the schema refuses too, and each it accepts the schema accepts.
    #[test]
    fn the_schema_and_the_checks_agree() {
        let schema = crate::schema::InputSchema::compile(&json!({
            "type": "object",
            "properties": { "a": crate::mail::inputs::input_schema::<OAuth2Login>() }
        }))
        .unwrap();
        let endpoint = "https://login.example.com/t";
        let fields: [(&str, serde_json::Value); 6] = [
            ("accessToken", json!("t")),
            ("tokenEndpoint", json!(endpoint)),
            ("clientId", json!("c")),
            ("clientSecret", json!("s")),
            ("refreshToken", json!("r")),
            ("scope", json!("x")),
        ];
        // Every combination of the token-source fields.
        for mask in 0u32..(1 << fields.len()) {
            let mut block = json!({ "username": "u" });
            for (i, (name, value)) in fields.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    block[*name] = value.clone();
                }
            }
            let checked = problems(block.clone()).is_empty();
            let validated = schema.validate(&json!({ "a": block })).is_ok();
            assert_eq!(checked, validated, "{block}");
        }
    }

    #[test]
    fn credentials_digests_differ_by_every_field() {
        let base = json!({ "username": "u", "tokenEndpoint": "https://a/t", "clientId": "c",
            "clientSecret": "s", "scope": "x", "refreshToken": "r" });
        let digest = |v: &serde_json::Value| login(v.clone()).credentials_digest();
        for field in [
            "tokenEndpoint",
            "clientId",
            "clientSecret",
            "scope",
            "refreshToken",
        ] {
            let mut other = base.clone();
            other[field] = json!("other");
            assert_ne!(digest(&base), digest(&other), "{field}");
        }
    }
}
