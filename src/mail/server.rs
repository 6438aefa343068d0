//! The `server` input block that every operation shares (docs/processes.md, "Common inputs"):
//! the protocol's defaults, the endpoint they give, and the place a job's mail goes.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Authentication;

pub use super::session_key::SessionKey;

/// Bounds connect, each command and the whole operation when the model sets nothing.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Smtp,
    Imap,
    Pop3,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
        }
    }

    /// SMTP submission normally upgrades with STARTTLS; mailbox access uses implicit TLS.
    pub fn default_security(self) -> Security {
        match self {
            Protocol::Smtp => Security::Starttls,
            Protocol::Imap | Protocol::Pop3 => Security::Tls,
        }
    }

    pub fn default_port(self, security: Security) -> u16 {
        match (self, security) {
            (Protocol::Smtp, Security::Tls) => 465,
            (Protocol::Smtp, Security::Starttls) => 587,
            (Protocol::Smtp, Security::None) => 25,
            (Protocol::Imap, Security::Tls) => 993,
            (Protocol::Imap, _) => 143,
            (Protocol::Pop3, Security::Tls) => 995,
            (Protocol::Pop3, _) => 110,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    // TLS from the first byte.
    Tls,
    // Plaintext greeting, then an upgrade that must succeed. (Plain comments: a doc comment
    // here would become a `oneOf` of described constants in the schema.)
    Starttls,
    None,
}

/// The `server` block as every protocol reads it. The schema's protocol-dependent parts (the
/// default security and ports, the words naming the protocol) are filled in by
/// [`crate::mail::inputs::Server`].
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Server")]
pub struct ServerConfig {
    #[schemars(title = "Host", length(min = 1), regex(pattern = r"^[^\s/]+$"))]
    pub host: String,
    #[schemars(
        title = "Security",
        description = "How the connection is encrypted. Certificates are always verified."
    )]
    pub security: Option<Security>,
    #[schemars(title = "Port", range(min = 1, max = 65535))]
    pub port: Option<u16>,
    #[schemars(
        title = "Timeout (seconds)",
        description = "Bounds connecting, each command and the whole operation.",
        range(min = 1, max = 3600),
        extend("default" = DEFAULT_TIMEOUT_SECONDS)
    )]
    pub timeout_seconds: Option<u64>,
    /// PEM of the server's own certificate or of its private CA, trusted besides the system
    /// roots.
    #[schemars(
        title = "Server certificate (PEM)",
        description = "The server's self-signed certificate or its private CA, trusted besides the system roots.",
        extend("examples" = ["-----BEGIN CERTIFICATE-----"], "x-template" = { "multiline": true, "feel": "optional" })
    )]
    pub server_certificate: Option<String>,
    #[serde(default)]
    #[schemars(
        title = "Accept invalid certificates (development only)",
        description = "Skips certificate verification; logs a warning on every use.",
        extend("default" = false)
    )]
    pub accept_invalid_certificates: bool,
}

/// A server with every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub server_certificate: Option<String>,
    pub accept_invalid_certificates: bool,
    pub timeout: Duration,
}

impl ServerConfig {
    pub fn endpoint(&self, protocol: Protocol) -> Endpoint {
        let security = self.security.unwrap_or(protocol.default_security());
        Endpoint {
            host: self.host.trim().to_string(),
            port: self.port.unwrap_or(protocol.default_port(security)),
            security,
            server_certificate: self
                .server_certificate
                .clone()
                .filter(|c| !c.trim().is_empty()),
            accept_invalid_certificates: self.accept_invalid_certificates,
            timeout: Duration::from_secs(self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)),
        }
    }
}

impl Endpoint {
    /// `host:port`, with brackets around an IPv6 literal.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The operation's bound as the variables give it (`server.timeoutSeconds`), read without
/// parsing the rest of the input.
pub fn operation_timeout(variables: &Value) -> Duration {
    Duration::from_secs(
        variables
            .get("server")
            .and_then(|server| server.get("timeoutSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
    )
}

/// A best-effort `host:port` for error messages, read from raw variables before (or without)
/// a successful parse.
pub fn describe_server(variables: &Value, protocol: Protocol) -> String {
    let Some(server) = variables.get("server") else {
        return "an unknown server".into();
    };
    match ServerConfig::deserialize(server) {
        Ok(config) => config.endpoint(protocol).address(),
        Err(_) => server
            .get("host")
            .and_then(Value::as_str)
            .map_or_else(|| "an unknown server".into(), str::to_string),
    }
}

/// Where and as whom an operation connects: the `server` and `authentication` blocks, parsed.
pub struct Target {
    pub endpoint: Endpoint,
    pub authentication: Authentication,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_by_protocol_and_security() {
        let config: ServerConfig = serde_json::from_value(json!({ "host": " smtp.x " })).unwrap();
        let e = config.endpoint(Protocol::Smtp);
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("smtp.x", 587, Security::Starttls)
        );
        assert_eq!(e.timeout, Duration::from_secs(30));
        assert_eq!(config.endpoint(Protocol::Imap).port, 993);
        assert_eq!(config.endpoint(Protocol::Pop3).port, 995);
        let plain: ServerConfig =
            serde_json::from_value(json!({ "host": "::1", "security": "none" })).unwrap();
        assert_eq!(plain.endpoint(Protocol::Smtp).address(), "[::1]:25");
        assert_eq!(plain.endpoint(Protocol::Imap).port, 143);
        assert_eq!(plain.endpoint(Protocol::Pop3).port, 110);
        let tls: ServerConfig =
            serde_json::from_value(json!({ "host": "h", "security": "tls" })).unwrap();
        assert_eq!(tls.endpoint(Protocol::Smtp).port, 465);
    }
}
