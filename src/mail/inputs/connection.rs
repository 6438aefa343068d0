//! The `server` and `authentication` blocks as input types. Both read the same way for every
//! protocol; what differs by protocol (default port and security, whether a mailbox may be
//! opened without login, the words a modeler reads) comes from the protocol marker `P`, so
//! `Server<Imap>` describes and validates an IMAP server.

use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::Folder;
pub use super::login::Login;
use crate::mail::server::{Endpoint, Protocol, Security, ServerConfig, Target};

/// A protocol at the type level, for input types whose schema depends on it.
pub trait ProtocolKind: Send + Sync + 'static {
    const PROTOCOL: Protocol;
}

/// SMTP submission.
#[derive(Debug, Clone)]
pub enum Smtp {}
/// IMAP mailbox access.
#[derive(Debug, Clone)]
pub enum Imap {}
/// POP3 mailbox access.
#[derive(Debug, Clone)]
pub enum Pop3 {}

impl ProtocolKind for Smtp {
    const PROTOCOL: Protocol = Protocol::Smtp;
}
impl ProtocolKind for Imap {
    const PROTOCOL: Protocol = Protocol::Imap;
}
impl ProtocolKind for Pop3 {
    const PROTOCOL: Protocol = Protocol::Pop3;
}

/// The security choices as the modeler labels them, in the order it offers them.
pub const SECURITY_CHOICES: [(Security, &str, &str); 3] = [
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

/// The `server` block of a `P` operation.
#[derive(Debug, Clone)]
pub struct Server<P> {
    pub config: ServerConfig,
    protocol: PhantomData<fn() -> P>,
}

impl<P: ProtocolKind> Server<P> {
    /// The server with the protocol's defaults applied.
    pub fn endpoint(&self) -> Endpoint {
        self.config.endpoint(P::PROTOCOL)
    }
}

impl<'de, P> Deserialize<'de> for Server<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Server {
            config: ServerConfig::deserialize(deserializer)?,
            protocol: PhantomData,
        })
    }
}

impl<P: ProtocolKind> JsonSchema for Server<P> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Server_{}", P::PROTOCOL.name()).into()
    }

    /// [`ServerConfig`]'s own schema, with what depends on the protocol filled in: the words,
    /// the default security, and the default port of each security (the port field's default
    /// follows the chosen security, as the worker applies it when the port is left empty).
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let protocol = P::PROTOCOL;
        let name = protocol.name().to_uppercase();
        let mut schema = ServerConfig::json_schema(generator);
        schema.insert("description".into(), json!(format!("The {name} server")));
        let default_security = SECURITY_CHOICES
            .iter()
            .find(|(s, _, _)| *s == protocol.default_security())
            .map_or("tls", |(_, value, _)| value);
        let ports: Map<String, Value> = SECURITY_CHOICES
            .iter()
            .map(|(security, value, _)| {
                (value.to_string(), json!(protocol.default_port(*security)))
            })
            .collect();
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            if let Some(Value::Object(host)) = properties.get_mut("host") {
                host.insert(
                    "description".into(),
                    json!(format!("Host name or IP address of the {name} server.")),
                );
                host.insert(
                    "examples".into(),
                    json!([format!("{}.example.com", protocol.name())]),
                );
            }
            if let Some(Value::Object(security)) = properties.get_mut("security") {
                let choices: Map<String, Value> = SECURITY_CHOICES
                    .iter()
                    .map(|(_, value, label)| (value.to_string(), json!(label)))
                    .collect();
                security.insert("default".into(), json!(default_security));
                security.insert("x-template".into(), json!({ "choices": choices }));
            }
            if let Some(Value::Object(port)) = properties.get_mut("port") {
                port.insert(
                    "description".into(),
                    json!(format!(
                        "Leave empty for the {name} default of the chosen security."
                    )),
                );
                port.insert(
                    "x-template".into(),
                    json!({ "defaultBy": { "security": ports } }),
                );
            }
        }
        schema
    }
}

/// The connection blocks of any `P` operation, and the folder IMAP opens: what the `check`
/// subcommand reads.
#[derive(Debug, Deserialize)]
#[serde(bound = "")]
pub struct Connection<P> {
    pub authentication: Login<P>,
    pub server: Server<P>,
    #[serde(default)]
    pub folder: Folder,
}

impl<P: ProtocolKind> Connection<P> {
    pub fn target(&self) -> Target {
        Target {
            endpoint: self.server.endpoint(),
            authentication: self.authentication.authentication.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::inputs::input_schema;

    #[test]
    fn the_port_default_of_each_security_is_the_one_the_worker_applies() {
        fn defaults<P: ProtocolKind>() {
            let schema = input_schema::<Server<P>>();
            let by = &schema["properties"]["port"]["x-template"]["defaultBy"]["security"];
            for (security, value, _) in SECURITY_CHOICES {
                assert_eq!(by[value], json!(P::PROTOCOL.default_port(security)));
            }
            assert_eq!(
                schema["properties"]["security"]["default"],
                SECURITY_CHOICES
                    .iter()
                    .find(|(s, _, _)| *s == P::PROTOCOL.default_security())
                    .map(|(_, v, _)| json!(v))
                    .unwrap()
            );
        }
        defaults::<Smtp>();
        defaults::<Imap>();
        defaults::<Pop3>();
    }

    #[test]
    fn a_server_reads_with_the_protocol_defaults() {
        let server: Server<Pop3> =
            serde_json::from_value(json!({ "host": " pop.example.com " })).unwrap();
        let endpoint = server.endpoint();
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port, endpoint.security),
            ("pop.example.com", 995, Security::Tls)
        );
        assert!(
            serde_json::from_value::<Server<Pop3>>(json!({ "host": "h", "colour": 1 })).is_err()
        );
    }
}
