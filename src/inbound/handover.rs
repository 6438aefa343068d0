//! Hand-over: one mail to Zeebe, by PublishMessage or CreateProcessInstance. The only place
//! of the inbound side that knows both the mail and the gateway.
//!
//! Its answer decides whether the mail may be touched: [`Verdict::Accepted`] only when Zeebe
//! has the mail (or, for a publish, already had it: `ALREADY_EXISTS` for the same message id
//! means an earlier attempt or another replica got it through).

use serde_json::{Map, Value};
use tonic::Code;

use super::config::{HandOver, Watcher};
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
}

/// What a watcher knows of one mail besides its read response.
pub struct Mail {
    /// The read response (SPEC §4 shape, within the budget of §7.1).
    pub response: Value,
    pub folder: String,
    /// Used as the message id when the mail has no Message-ID: `watcher/uidvalidity/uid` for
    /// IMAP, `watcher/uidl` for POP3.
    pub fallback_id: String,
}

impl Mail {
    /// The mail's Message-ID as found, or the fallback.
    pub fn message_id(&self) -> String {
        self.response
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map_or_else(|| self.fallback_id.clone(), str::to_string)
    }

    /// `{ <resultVariable>: <the mail, with folder and watcher> }` as JSON text.
    fn variables(&self, watcher: &Watcher) -> String {
        let mut mail = match &self.response {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        mail.insert("folder".into(), Value::String(self.folder.clone()));
        mail.insert("watcher".into(), Value::String(watcher.name.clone()));
        let mut variables = Map::new();
        variables.insert(watcher.result_variable.clone(), Value::Object(mail));
        Value::Object(variables).to_string()
    }
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
            let message_id = mail.message_id();
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
    }
}

/// A refusal about this mail alone, or about the gateway (then every mail would fail alike).
fn verdict(status: &tonic::Status) -> Verdict {
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
    use serde_json::json;

    #[test]
    fn message_id_falls_back_when_absent_or_blank() {
        let mail = |response: Value| Mail {
            response,
            folder: "INBOX".into(),
            fallback_id: "support/17/42".into(),
        };
        assert_eq!(mail(json!({ "messageId": "<a@b>" })).message_id(), "<a@b>");
        assert_eq!(
            mail(json!({ "messageId": null })).message_id(),
            "support/17/42"
        );
        assert_eq!(
            mail(json!({ "messageId": "  " })).message_id(),
            "support/17/42"
        );
    }
}
