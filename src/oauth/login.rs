//! The `authentication` block of `type: oauth2` (docs/processes.md, "OAuth2 logins") and
//! what a schema cannot check about it: exactly one token source, a client for the endpoint,
//! an endpoint the worker may call.

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{EmailError, Result};
use crate::mail::sasl::Mechanism;

/// The `authentication` block with `type: oauth2`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Login {
    pub username: String,
    #[serde(default)]
    pub mechanism: Option<Mechanism>,
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
}

/// Where a login's token comes from.
pub enum TokenSource<'a> {
    Given(&'a SecretString),
    Endpoint(Url),
}

impl OAuth2Login {
    /// What a schema cannot say, each with its JSON pointer: exactly one token source, a
    /// client for the endpoint, an `https://` endpoint (plain HTTP on loopback only). Checked
    /// before any request; the host policy's check of the endpoint is the process's
    /// (`crate::oauth::mail::endpoint_refusal`).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (&self.access_token, &self.token_endpoint) {
            (Some(_), Some(_)) => problems.push(
                "/authentication: give either accessToken or tokenEndpoint (with clientId), not both"
                    .to_string(),
            ),
            (None, None) => problems.push(
                "/authentication: an OAuth2 login needs accessToken, or tokenEndpoint and clientId"
                    .to_string(),
            ),
            _ => {}
        }
        if let Some(endpoint) = &self.token_endpoint {
            if self.client_id.as_deref().is_none_or(str::is_empty) {
                problems.push(
                    "/authentication: \"clientId\" is a required property with tokenEndpoint"
                        .into(),
                );
            }
            if let Err(problem) = endpoint_url(endpoint) {
                problems.push(format!("/authentication/tokenEndpoint: {problem}"));
            }
        } else {
            for (name, given) in [
                ("clientId", self.client_id.is_some()),
                ("clientSecret", self.client_secret.is_some()),
                ("scope", self.scope.is_some()),
                ("refreshToken", self.refresh_token.is_some()),
            ] {
                if given {
                    problems.push(format!(
                        "/authentication/{name}: only used with tokenEndpoint"
                    ));
                }
            }
        }
        problems
    }

    /// The fields that are written into protocol lines or form bodies, by name.
    pub fn line_fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![("username", self.username.as_str())];
        if let Some(token) = &self.access_token {
            fields.push(("accessToken", token.expose_secret()));
        }
        if let Some(secret) = &self.client_secret {
            fields.push(("clientSecret", secret.expose_secret()));
        }
        if let Some(token) = &self.refresh_token {
            fields.push(("refreshToken", token.expose_secret()));
        }
        fields
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
            _ => Err(EmailError::invalid_input(self.problems().join("; "))),
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

    #[test]
    fn the_token_sources_and_their_problems() {
        let given = login(json!({ "username": "u", "accessToken": "t" }));
        assert!(given.problems().is_empty());
        let both = login(json!({ "username": "u", "accessToken": "t",
            "tokenEndpoint": "https://login.example.com/token", "clientId": "c" }));
        assert!(both.problems()[0].contains("not both"));
        let neither = login(json!({ "username": "u" }));
        assert!(neither.problems()[0].starts_with("/authentication: "));
        let no_client =
            login(json!({ "username": "u", "tokenEndpoint": "https://login.example.com/t" }));
        assert!(no_client.problems()[0].contains("clientId"));
        let plain = login(
            json!({ "username": "u", "tokenEndpoint": "http://login.example.com/t", "clientId": "c" }),
        );
        assert!(plain.problems()[0].starts_with("/authentication/tokenEndpoint: must be https://"));
        for local in [
            "http://127.0.0.1:8080/t",
            "http://localhost/t",
            "http://[::1]:1/t",
        ] {
            let ok = login(json!({ "username": "u", "tokenEndpoint": local, "clientId": "c" }));
            assert!(ok.problems().is_empty(), "{local}: {:?}", ok.problems());
        }
        let stray = login(json!({ "username": "u", "accessToken": "t", "clientSecret": "s" }));
        assert_eq!(
            stray.problems(),
            ["/authentication/clientSecret: only used with tokenEndpoint"]
        );
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
