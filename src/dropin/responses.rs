//! Our responses in the shapes Camunda's Email connector returns, field for field and in its
//! order, nulls included (docs/camunda-dropin.md, "Responses").

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::mapping::Action;

/// A header of a read, as Camunda names its fields.
#[derive(Debug, Serialize)]
struct Header {
    key: Value,
    value: Value,
}

/// Camunda's read response (its `ReadEmailResponse`), in its field order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadEmail {
    message_id: Value,
    from_address: Value,
    headers: Vec<Header>,
    subject: Value,
    size: Value,
    plain_text_body: Value,
    html_body: Value,
    attachments: Vec<Value>,
    received_date_time: Value,
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    message_id: Value,
    from_address: Value,
    subject: Value,
    size: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Found {
    message_id: Value,
    subject: Value,
}

fn field(object: &Value, name: &str) -> Value {
    object.get(name).cloned().unwrap_or(Value::Null)
}

/// Camunda's size: the server's, `-1` when unknown.
fn size(object: &Value) -> Value {
    match object.get("size") {
        Some(n @ Value::Number(_)) => n.clone(),
        _ => json!(-1),
    }
}

fn to_value(response: impl Serialize) -> Value {
    // Plain JSON values and strings always serialize.
    serde_json::to_value(response).unwrap_or(Value::Null)
}

/// Our operation's response as Camunda's; `echo` holds the inputs Camunda's delete and move
/// repeat.
pub fn camunda_response(action: Action, ours: &Value, echo: &Map<String, Value>) -> Value {
    let echoed = |name: &str| echo.get(name).cloned().unwrap_or(Value::Null);
    match action {
        Action::Send => json!({
            "subject": field(ours, "subject"),
            "sent": field(ours, "sent"),
            "messageId": field(ours, "messageId"),
        }),
        Action::ImapList | Action::Pop3List => Value::Array(
            items(ours)
                .map(|m| {
                    to_value(Listed {
                        message_id: field(m, "messageId"),
                        from_address: field(m, "fromAddress"),
                        subject: field(m, "subject"),
                        size: size(m),
                    })
                })
                .collect(),
        ),
        Action::ImapSearch | Action::Pop3Search => Value::Array(
            items(ours)
                .map(|m| {
                    to_value(Found {
                        message_id: field(m, "messageId"),
                        subject: field(m, "subject"),
                    })
                })
                .collect(),
        ),
        Action::ImapRead | Action::Pop3Read => read(ours),
        Action::ImapDelete | Action::Pop3Delete => json!({
            "messageId": echoed("messageId"),
            "deleted": field(ours, "deleted"),
        }),
        Action::ImapMove => json!({
            "messageId": echoed("messageId"),
            "from": echoed("from"),
            "to": echoed("to"),
        }),
    }
}

fn items(ours: &Value) -> impl Iterator<Item = &Value> {
    ours.as_array().into_iter().flatten()
}

fn read(ours: &Value) -> Value {
    let mut errors = Vec::new();
    let attachments = items(&ours["attachments"])
        .filter_map(|entry| attachment(entry, &mut errors))
        .collect();
    if ours["truncated"] == json!(true) {
        errors
            .push("the response was cut to fit the worker's EMAIL_MAX_RESPONSE_BYTES".to_string());
    }
    let headers = items(&ours["headers"])
        .map(|h| Header {
            key: field(h, "header"),
            value: field(h, "value"),
        })
        .collect();
    to_value(ReadEmail {
        message_id: field(ours, "messageId"),
        from_address: field(ours, "fromAddress"),
        headers,
        subject: field(ours, "subject"),
        size: size(ours),
        plain_text_body: field(ours, "plainTextBody"),
        html_body: field(ours, "htmlBody"),
        attachments,
        received_date_time: field(ours, "receivedDateTime"),
        errors,
    })
}

/// One attachment: the store's reference when it was stored (Camunda's shape), our inline
/// entry (base64 `content`) without a store; an attachment left out is named in `errors`.
fn attachment(entry: &Value, errors: &mut Vec<String>) -> Option<Value> {
    if let Some(document) = entry.get("document") {
        return Some(document.clone());
    }
    let name = entry["fileName"].as_str().unwrap_or("attachment");
    if let Some(reason) = entry.get("documentError").and_then(Value::as_str) {
        errors.push(format!("attachment '{name}' was not stored: {reason}"));
        return None;
    }
    if entry["truncated"] == json!(true) {
        errors.push(format!(
            "attachment '{name}' is listed without its content: it is larger than the worker \
             returns inline (EMAIL_MAX_ATTACHMENT_BYTES or the response budget)"
        ));
    }
    Some(entry.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::response::tests::keys;

    #[test]
    fn read_has_camundas_fields_in_order_with_nulls() {
        let ours = json!({
            "messageId": "<a@b>", "fromAddress": "x@y", "subject": "S", "size": 12,
            "plainTextBody": "hi", "htmlBody": null,
            "headers": [{ "header": "Subject", "value": "S" }],
            "receivedDateTime": "2024-08-19T06:54:28Z", "sentDate": null,
            "attachments": [
                { "fileName": "a.txt", "contentType": "text/plain", "size": 1, "document": { "camunda.document.type": "camunda", "documentId": "d" } },
                { "fileName": "big.bin", "contentType": "application/octet-stream", "size": 9, "truncated": true, "documentError": "too large" }
            ],
            "uid": 4, "uidValidity": 9, "truncated": false
        });
        let camunda = camunda_response(Action::ImapRead, &ours, &Map::new());
        assert_eq!(
            keys(&camunda),
            [
                "messageId",
                "fromAddress",
                "headers",
                "subject",
                "size",
                "plainTextBody",
                "htmlBody",
                "attachments",
                "receivedDateTime",
                "errors"
            ]
        );
        assert_eq!(
            camunda["headers"],
            json!([{ "key": "Subject", "value": "S" }])
        );
        assert_eq!(camunda["htmlBody"], Value::Null);
        assert_eq!(
            camunda["attachments"],
            json!([{ "camunda.document.type": "camunda", "documentId": "d" }])
        );
        assert!(camunda["errors"][0].as_str().unwrap().contains("big.bin"));
    }

    #[test]
    fn list_search_delete_and_move_keep_only_camundas_fields() {
        let listed = json!([{ "messageId": null, "fromAddress": "a@b", "subject": "s", "size": null, "uid": 1, "sentDate": null }]);
        assert_eq!(
            camunda_response(Action::Pop3List, &listed, &Map::new()),
            json!([{ "messageId": null, "fromAddress": "a@b", "subject": "s", "size": -1 }])
        );
        assert_eq!(
            camunda_response(Action::ImapSearch, &listed, &Map::new()),
            json!([{ "messageId": null, "subject": "s" }])
        );
        let echo: Map<String, Value> = serde_json::from_value(
            json!({ "messageId": "<m@x>", "from": "INBOX", "to": "Archive/2024" }),
        )
        .unwrap();
        assert_eq!(
            camunda_response(
                Action::ImapDelete,
                &json!({ "deleted": true, "messageId": "m@x", "uid": 3 }),
                &echo
            ),
            json!({ "messageId": "<m@x>", "deleted": true })
        );
        assert_eq!(
            camunda_response(
                Action::ImapMove,
                &json!({ "messageId": "<m@x>", "from": ["INBOX"], "to": ["Archive", "2024"] }),
                &echo
            ),
            json!({ "messageId": "<m@x>", "from": "INBOX", "to": "Archive/2024" })
        );
        assert_eq!(
            keys(&camunda_response(
                Action::Send,
                &json!({ "subject": "s", "sent": true, "messageId": "<k@h>" }),
                &Map::new()
            )),
            ["subject", "sent", "messageId"]
        );
    }
}
