//! `sendEmailSmtp` onto our `smtp:send`: addresses, the bodies Camunda's content type
//! chooses, and attachments as Camunda documents of any source.

use serde_json::{Map, Value, json};

use super::inputs::{ContentType, DocumentMode, DocumentSource, SmtpAction};
use super::mapping::Builder;

/// A Camunda document for a send, before its bytes are known: ready for our `smtp:send`, or
/// an external URL the drop-in fetches first.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Ready(Value),
    External { url: String, name: Option<String> },
}

/// `to`, `cc` and `bcc`: a comma-separated string or a list of strings (one string alone is
/// taken as the list it stands for, as Camunda's mapper does).
fn addresses(builder: &mut Builder, ours: &str, field: &str, value: Option<Value>, required: bool) {
    let pointer = format!("/data/smtpAction/{field}");
    match value {
        None | Some(Value::Null) if required => builder.missing(&pointer),
        None | Some(Value::Null) => {}
        Some(value @ Value::String(_)) => builder.set(ours, &pointer, value),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            builder.set(ours, &pointer, Value::Array(items))
        }
        Some(_) => builder.problems.push(format!(
            "{pointer}: expected an address string or a list of them"
        )),
    }
}

pub(super) fn send(builder: &mut Builder, action: SmtpAction) -> Vec<Document> {
    let at = |field: &str| format!("/data/smtpAction/{field}");
    match action.from {
        Some(from) => builder.set("from", &at("from"), json!(from)),
        None => builder.missing(&at("from")),
    }
    addresses(builder, "to", "to", action.to, true);
    addresses(builder, "cc", "cc", action.cc, false);
    addresses(builder, "bcc", "bcc", action.bcc, false);
    match action.subject {
        Some(subject) => builder.set("subject", &at("subject"), json!(subject)),
        None => builder.missing(&at("subject")),
    }
    if let Some(headers) = action.headers.filter(|h| !h.is_null()) {
        builder.set("headers", &at("headers"), headers);
    }
    // Camunda's rule: the content type says which bodies are sent, and each must be there.
    let (plain, html) = match action.content_type {
        ContentType::Plain => (true, false),
        ContentType::Html => (false, true),
        ContentType::Multipart => (true, true),
    };
    for (wanted, ours, field, value) in [
        (plain, "body", "body", action.body.clone()),
        (html, "htmlBody", "htmlBody", action.html_body.clone()),
    ] {
        match (wanted, value) {
            (true, Some(text)) => builder.set(ours, &at(field), json!(text)),
            (true, None) => builder.problems.push(format!(
                "{}: is required with contentType {}",
                at(field),
                match action.content_type {
                    ContentType::Plain => "PLAIN",
                    ContentType::Html => "HTML",
                    ContentType::Multipart => "MULTIPART",
                }
            )),
            (false, _) => {}
        }
    }
    let listed = action.attachments.filter(|a| !a.is_null()).or_else(|| {
        match action.document_mode.unwrap_or(DocumentMode::None) {
            DocumentMode::None => None,
            DocumentMode::Multiple => action.multiple.filter(|m| !m.is_null()),
            DocumentMode::Single => match action.document_source.unwrap_or(DocumentSource::Camunda)
            {
                DocumentSource::Camunda => action.camunda_reference.filter(|r| !r.is_null()),
                DocumentSource::Inline => Some(json!({
                    "camunda.document.type": "inline",
                    "content": action.inline_content.unwrap_or_default(),
                    "name": action.inline_file_name,
                    "contentType": action.inline_content_type,
                })),
                DocumentSource::External => action.external_url.map(|url| {
                    json!({
                        "camunda.document.type": "external",
                        "url": url,
                        "name": action.external_file_name,
                    })
                }),
            },
        }
    });
    let items = match listed {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(one) => vec![one],
    };
    let mut documents = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match document(item) {
            Ok(document) => documents.push(document),
            Err(problem) => builder
                .problems
                .push(format!("{}/{index}: {problem}", at("attachments"))),
        }
    }
    builder
        .pointers
        .push(("/attachments".into(), at("attachments")));
    documents
}

/// One element of `attachments`: a Camunda document of any source, or an entry of our own
/// read response (inline base64 `content`, as this drop-in's read returns without a store).
fn document(item: Value) -> std::result::Result<Document, String> {
    let Value::Object(map) = item else {
        return Err("expected a document reference object".into());
    };
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    match text("camunda.document.type").as_deref() {
        Some("camunda") => {
            // Only what a reference is: our send refuses fields it does not know.
            let reference: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "camunda.document.type" | "storeId" | "documentId" | "contentHash"
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(map.get("metadata").map(|m| {
                    let kept: Map<String, Value> = m
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| matches!(k.as_str(), "contentType" | "fileName" | "size"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    ("metadata".to_string(), Value::Object(kept))
                }))
                .collect();
            Ok(Document::Ready(Value::Object(reference)))
        }
        Some("inline") => {
            use base64::Engine;
            // Camunda's inline document is text: its content is the string's UTF-8 bytes.
            let content = text("content").unwrap_or_default();
            let mut entry = Map::new();
            entry.insert(
                "content".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(content.as_bytes())),
            );
            if let Some(name) = text("name").filter(|n| !n.trim().is_empty()) {
                entry.insert("fileName".into(), json!(name));
            }
            if let Some(kind) = text("contentType").filter(|c| !c.trim().is_empty()) {
                entry.insert("contentType".into(), json!(kind));
            }
            Ok(Document::Ready(Value::Object(entry)))
        }
        Some("external") => match text("url").filter(|u| !u.trim().is_empty()) {
            Some(url) => Ok(Document::External {
                url,
                name: text("name").filter(|n| !n.trim().is_empty()),
            }),
            None => Err("an external document needs a url".into()),
        },
        Some(other) => Err(format!(
            "unknown camunda.document.type '{}' (camunda, inline or external)",
            other.chars().take(40).collect::<String>()
        )),
        None if map.contains_key("content") || map.contains_key("document") => {
            Ok(Document::Ready(Value::Object(map)))
        }
        None => Err("expected a Camunda document (camunda.document.type)".into()),
    }
}
