//! `emailAccountConfiguration` (Camunda's template from version 8 on): a reusable email
//! account credential, which the engine resolves into the job as the credential's own fields,
//! the login and the server of one protocol (or of several). When the job carries one, it wins
//! over the task's own connection fields, which the template hides then, as Camunda's connector
//! reads it; a server block of the credential counts when its host is set, and its port and
//! encryption then default as Camunda's do.

use serde::Deserialize;
use serde_json::Value;

use super::inputs::{Crypto, Number, ProtocolName, optional_text};
use super::pointers::read_at;
use crate::error::Result;

/// Where the job carries the credential.
pub const POINTER: &str = "/emailAccountConfiguration";

/// The credential's fields; unknown ones are ignored, as everywhere in Camunda's layout.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(default)]
    protocol: Option<ProtocolName>,
    #[serde(default, deserialize_with = "optional_text")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "optional_text")]
    smtp_host: Option<String>,
    #[serde(default)]
    smtp_port: Option<Number>,
    #[serde(default)]
    smtp_cryptographic_protocol: Option<Crypto>,
    #[serde(default, deserialize_with = "optional_text")]
    imap_host: Option<String>,
    #[serde(default)]
    imap_port: Option<Number>,
    #[serde(default)]
    imap_cryptographic_protocol: Option<Crypto>,
    #[serde(default, deserialize_with = "optional_text")]
    pop3_host: Option<String>,
    #[serde(default)]
    pop3_port: Option<Number>,
    #[serde(default)]
    pop3_cryptographic_protocol: Option<Crypto>,
}

/// One server of the credential, with Camunda's defaults filled in.
pub struct AccountServer {
    pub host: String,
    pub port: Number,
    pub crypto: Crypto,
}

impl Account {
    /// The credential a job carries, if any: absent, `null` and `""` (an emptied chooser)
    /// mean none.
    pub fn of(variables: &Value) -> Result<Option<Account>> {
        match variables.get("emailAccountConfiguration") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(value) => read_at(value, POINTER).map(Some),
        }
    }

    /// The server of `protocol`, or why there is none (`<field>: is required ...`).
    pub fn server(&self, protocol: ProtocolName) -> std::result::Result<AccountServer, String> {
        let (host, port, crypto, default_port) = match protocol {
            ProtocolName::Smtp => (
                &self.smtp_host,
                self.smtp_port,
                self.smtp_cryptographic_protocol,
                587,
            ),
            ProtocolName::Imap => (
                &self.imap_host,
                self.imap_port,
                self.imap_cryptographic_protocol,
                993,
            ),
            ProtocolName::Pop3 => (
                &self.pop3_host,
                self.pop3_port,
                self.pop3_cryptographic_protocol,
                995,
            ),
        };
        let name = protocol.as_str();
        match host {
            Some(host) => Ok(AccountServer {
                host: host.clone(),
                port: port.unwrap_or(Number(default_port)),
                crypto: crypto.unwrap_or(Crypto::Tls),
            }),
            None => {
                let of = match self.protocol {
                    Some(other) if other != protocol => {
                        format!(" (the credential is for {})", other.as_str())
                    }
                    _ => String::new(),
                };
                Err(format!(
                    "{POINTER}/{name}Host: is required by Camunda's Email connector for a \
                     {name} task{of}"
                ))
            }
        }
    }
}
