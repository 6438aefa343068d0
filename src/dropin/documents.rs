//! External documents of a send (`camunda.document.type: external`): fetched by the worker,
//! under the operator's host policy, within the per-job document budget and a timeout, and
//! handed to `smtp:send` as inline attachments.

use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::mapping::Document;
use crate::error::{EmailError, ErrorCode, Result};
use crate::outbound_http::{HttpClient, HttpError, HttpOptions, HttpResponse};
use crate::services::Services;

/// How long one external document may take to arrive.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A GET of `url` under the job's host policy, refused before any packet when the policy
/// refuses its host, at most `limit` bytes.
async fn fetch(
    url: &str,
    limit: u64,
    services: &Services,
) -> std::result::Result<HttpResponse, HttpError> {
    let url = reqwest::Url::parse(url).map_err(|e| HttpError::Url(e.to_string()))?;
    let client = HttpClient::policed(
        HttpOptions {
            max_response_bytes: Some(usize::try_from(limit).unwrap_or(usize::MAX)),
            ..HttpOptions::default()
        },
        services.shared_policy(),
    )
    .map_err(HttpError::Url)?;
    client
        .send(client.request(reqwest::Method::GET, url), FETCH_TIMEOUT)
        .await
}

/// The attachments for `smtp:send`: ready documents as they are, external ones fetched. All
/// external documents of one job share the job's document budget.
pub async fn resolve(
    documents: Vec<Document>,
    pointer: &str,
    services: &Services,
) -> Result<Vec<Value>> {
    let budget = services.max_document_bytes();
    let mut left = budget;
    let mut attachments = Vec::with_capacity(documents.len());
    for (index, document) in documents.into_iter().enumerate() {
        match document {
            Document::Ready(value) => attachments.push(value),
            Document::External { url, name } => {
                let at = format!("{pointer}/{index}");
                let response = fetch(&url, left, services)
                    .await
                    .map_err(|e| fetch_error(&at, e, budget))?;
                if !response.is_success() {
                    return Err(status_error(&at, response.status));
                }
                left = left.saturating_sub(response.body.len() as u64);
                attachments.push(inline(&url, name, response));
            }
        }
    }
    Ok(attachments)
}

fn inline(url: &str, name: Option<String>, response: HttpResponse) -> Value {
    let file_name = name.unwrap_or_else(|| {
        reqwest::Url::parse(url)
            .ok()
            .and_then(|u| {
                u.path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_string))
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "attachment".to_string())
    });
    let mut entry = Map::new();
    entry.insert("fileName".into(), json!(file_name));
    // A server's content type goes into a MIME header: only a plain `type/subtype` is kept.
    if let Some(kind) = response
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .filter(|c| {
            c.contains('/')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/+-.".contains(&b))
        })
    {
        entry.insert("contentType".into(), json!(kind.to_ascii_lowercase()));
    }
    entry.insert(
        "content".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(&response.body)),
    );
    Value::Object(entry)
}

fn fetch_error(pointer: &str, error: HttpError, budget: u64) -> EmailError {
    let code = match &error {
        HttpError::Refused(_) | HttpError::Url(_) | HttpError::TooLarge { .. } => {
            ErrorCode::InvalidInput
        }
        HttpError::Unreachable { .. } => ErrorCode::ConnectionFailed,
        HttpError::Tls { .. } => ErrorCode::TlsError,
        HttpError::Timeout { .. } => ErrorCode::Timeout,
    };
    let reason = match &error {
        HttpError::TooLarge { .. } => format!(
            "the external document is larger than what is left of the job's document budget, {}",
            crate::documents::disk::describe_limit(budget)
        ),
        other => other.to_string(),
    };
    EmailError::new(code, format!("{pointer}: {reason}"))
}

fn status_error(pointer: &str, status: u16) -> EmailError {
    let code = if status >= 500 || status == 408 || status == 429 {
        ErrorCode::TemporaryFailure
    } else {
        ErrorCode::InvalidInput
    };
    EmailError::new(
        code,
        format!("{pointer}: the external document's URL answered HTTP {status}"),
    )
}
