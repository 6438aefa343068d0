//! Hand-over: one mail to Zeebe, by PublishMessage or CreateProcessInstance. The only place
//! of the inbound side that knows both the mail and the gateway.
//!
//! Its answer decides whether the mail may be touched: [`Verdict::Accepted`] only when Zeebe
//! has the mail (or, for a publish, already had it: `ALREADY_EXISTS` for the same message id
//! means an earlier attempt or another replica got it through). With `messageIdFrom: header`
//! the message id is the sender's Message-ID, which a second mail can carry too; the watchers
//! guard against that within one process (see [`super::ledger`]).

use serde_json::{Map, Value};
use tonic::Code;

use super::config::{HandOver, MessageIdFrom, Watcher};
use crate::gateway::GatewayClient;
use crate::gateway::proto::{CreateProcessInstanceRequest, PublishMessageRequest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Zeebe has the mail (or had it already).
    Accepted { duplicate: bool },
    /// Zeebe does not have it: leave the mail as it is and try again later.
    Refused(String),
    /// Zeebe will never take this mail as it is (its variables too large, an argument it
    /// refuses): the mail is left as it is, and the watcher goes on with the next one rather
    /// than retrying it forever in front of every later mail.
    Rejected(String),
    /// No element of a discovered watcher took the mail, and one of them consumes unmatched
    /// mail: after-process it with nothing handed over.
    Consumed,
    /// No element of a discovered watcher took the mail: leave it as it is.
    Unmatched,
    /// A publish of this mail met `ALREADY_EXISTS` for a message this watcher published for
    /// another mail (see [`super::ledger`]): the mail is held back until the ledger lets it go.
    Held,
}

/// Where a mail is stored: what names it for good, whatever its headers say.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Place {
    Imap { validity: u32, uid: u32 },
    Pop3 { uidl: String },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Imap { uid, .. } => write!(f, "UID {uid}"),
            Place::Pop3 { uidl } => write!(f, "UIDL {uidl}"),
        }
    }
}

/// What a watcher knows of one mail besides its read response.
pub struct Mail {
    /// The read response (`imap:read`'s shape, within `EMAIL_MAX_RESPONSE_BYTES`).
    pub response: Value,
    pub folder: String,
    pub place: Place,
}

impl Mail {
    /// The mail's Message-ID header as found, if it has one.
    pub fn header_id(&self) -> Option<&str> {
        self.response
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty())
    }

    /// The message id of its publish. `header`: the Message-ID as found, or, for a mail
    /// without one, `watcher/uidvalidity/uid` (IMAP) or `watcher/uidl` (POP3). `stored`: a
    /// SHA-256 (hex) of the account, folder and place, which no sender can choose and every
    /// replica with the same configuration computes alike.
    pub fn message_id(&self, watcher: &Watcher) -> String {
        if watcher.message_id_from == MessageIdFrom::Stored {
            return self.stored_id(watcher);
        }
        match (self.header_id(), &self.place) {
            (Some(id), _) => id.to_string(),
            (None, Place::Imap { validity, uid }) => {
                format!("{}/{validity}/{uid}", watcher.name)
            }
            (None, Place::Pop3 { uidl }) => format!("{}/{uidl}", watcher.name),
        }
    }

    /// A digest of what the mail says, apart from how it travelled (transport headers, where
    /// it is stored): two copies of one message give the same, another mail with the same
    /// Message-ID another.
    pub fn content_digest(&self) -> String {
        let field = |name: &str| self.response.get(name).cloned().unwrap_or(Value::Null);
        let attachments: Vec<Value> = self
            .response
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| {
                serde_json::json!([
                    a.get("fileName"),
                    a.get("contentType"),
                    a.get("size"),
                    a.get("content")
                ])
            })
            .collect();
        let content = serde_json::json!([
            field("messageId"),
            field("fromAddress"),
            field("subject"),
            field("sentDate"),
            field("plainTextBody"),
            field("htmlBody"),
            attachments,
        ]);
        hex_sha256(content.to_string().as_bytes())
    }

    fn stored_id(&self, watcher: &Watcher) -> String {
        let endpoint = &watcher.target.endpoint;
        let mut parts = vec![
            watcher.protocol.name().to_string(),
            endpoint.host.to_ascii_lowercase(),
            endpoint.port.to_string(),
            watcher
                .target
                .authentication
                .username()
                .unwrap_or_default()
                .to_string(),
            self.folder.clone(),
        ];
        match &self.place {
            Place::Imap { validity, uid } => {
                parts.push(validity.to_string());
                parts.push(uid.to_string());
            }
            Place::Pop3 { uidl } => parts.push(uidl.clone()),
        }
        // Each part with its length first, so no two lists of parts give the same bytes.
        let mut bytes = Vec::new();
        for part in &parts {
            bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        hex_sha256(&bytes)
    }

    /// The mail in the read response's shape, with `folder` and `watcher` added.
    pub fn described(&self, watcher: &Watcher) -> Value {
        let mut mail = match &self.response {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        mail.insert("folder".into(), Value::String(self.folder.clone()));
        mail.insert("watcher".into(), Value::String(watcher.name.clone()));
        Value::Object(mail)
    }

    /// `{ <resultVariable>: <the mail, with folder and watcher> }` as JSON text.
    fn variables(&self, watcher: &Watcher) -> String {
        let mut variables = Map::new();
        variables.insert(watcher.result_variable.clone(), self.described(watcher));
        Value::Object(variables).to_string()
    }
}

/// The SHA-256 of `bytes` in lowercase hex.
pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hands `mail` to Zeebe as `watcher` says.
pub async fn hand_over(gateway: &GatewayClient, watcher: &Watcher, mail: &Mail) -> Verdict {
    let variables = mail.variables(watcher);
    let tenant_id = watcher.tenant_id.clone().unwrap_or_default();
    match &watcher.hand_over {
        HandOver::Publish {
            name,
            key,
            time_to_live,
        } => {
            let message_id = mail.message_id(watcher);
            let correlation_key = key.key(&mail.response).unwrap_or_else(|| {
                tracing::warn!(
                    watcher = %watcher.name,
                    message_id = %message_id,
                    "the mail has no correlation key of the configured kind; publishing with the key \"\""
                );
                String::new()
            });
            let request = PublishMessageRequest {
                name: name.clone(),
                correlation_key,
                time_to_live: i64::try_from(time_to_live.as_millis()).unwrap_or(i64::MAX),
                message_id,
                variables,
                tenant_id,
            };
            match gateway.publish_message(request).await {
                Ok(_) => Verdict::Accepted { duplicate: false },
                Err(status) if status.code() == Code::AlreadyExists => {
                    Verdict::Accepted { duplicate: true }
                }
                Err(status) => verdict(&status),
            }
        }
        HandOver::Start {
            bpmn_process_id,
            version,
        } => {
            let request = CreateProcessInstanceRequest {
                process_definition_key: 0,
                bpmn_process_id: bpmn_process_id.clone(),
                version: *version,
                variables,
                tenant_id,
            };
            match gateway.create_process_instance(request).await {
                Ok(_) => Verdict::Accepted { duplicate: false },
                Err(status) => verdict(&status),
            }
        }
        // Served by `model::deliver`, which needs the watcher's ledger (see `super::deliver`).
        HandOver::Model(_) => Verdict::Unmatched,
    }
}

/// A refusal about this mail alone, or about the gateway (then every mail would fail alike).
pub(crate) fn verdict(status: &tonic::Status) -> Verdict {
    match status.code() {
        Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange => {
            Verdict::Rejected(describe(status))
        }
        _ => Verdict::Refused(describe(status)),
    }
}

fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretProvider;
    use serde_json::json;

    fn watcher(from: &str, user: &str) -> Watcher {
        let yaml = format!(
            "watchers:\n  - name: support\n    authentication: {{ username: {user}, password: p }}\n    server: {{ host: Mail.Example.com }}\n    messageIdFrom: {from}\n    publishMessage: {{ name: m }}\n"
        );
        crate::inbound::config::parse(
            &yaml,
            &SecretProvider::new("HANDOVER_TEST_", None),
            &crate::mail::policy::HostPolicy::default(),
        )
        .unwrap()
        .remove(0)
    }

    fn mail(response: Value, place: Place) -> Mail {
        Mail {
            response,
            folder: "INBOX".into(),
            place,
        }
    }

    #[test]
    fn header_ids_fall_back_to_the_place_when_absent_or_blank() {
        let w = watcher("header", "u");
        let imap = Place::Imap {
            validity: 17,
            uid: 42,
        };
        assert_eq!(
            mail(json!({ "messageId": "<a@b>" }), imap.clone()).message_id(&w),
            "<a@b>"
        );
        for absent in [json!({ "messageId": null }), json!({ "messageId": "  " })] {
            assert_eq!(mail(absent, imap.clone()).message_id(&w), "support/17/42");
        }
        let pop = Place::Pop3 {
            uidl: "AbC12".into(),
        };
        assert_eq!(mail(json!({}), pop).message_id(&w), "support/AbC12");
    }

    #[test]
    fn stored_ids_name_the_place_whatever_the_sender_wrote() {
        let w = watcher("stored", "u");
        let at = |uid| Place::Imap { validity: 17, uid };
        let id = |response: Value, place| mail(response, place).message_id(&w);
        let first = id(json!({ "messageId": "<a@b>" }), at(42));
        assert_eq!(first.len(), 64, "{first}");
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        // The same stored mail gives the same id, another one another, Message-ID or not.
        assert_eq!(first, id(json!({ "messageId": "<other@b>" }), at(42)));
        assert_ne!(first, id(json!({ "messageId": "<a@b>" }), at(43)));
        assert_ne!(
            first,
            id(
                json!({}),
                Place::Imap {
                    validity: 18,
                    uid: 42
                }
            )
        );
        // Every replica with this configuration computes the same; another account another.
        assert_eq!(
            first,
            mail(json!({}), at(42)).message_id(&watcher("stored", "u"))
        );
        assert_ne!(
            first,
            mail(json!({}), at(42)).message_id(&watcher("stored", "v"))
        );
        let pop = |uidl: &str| Place::Pop3 { uidl: uidl.into() };
        assert_ne!(id(json!({}), pop("ab")), id(json!({}), pop("ac")));
    }
}
