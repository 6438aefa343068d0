//! The client of Camunda's document store (Orchestration Cluster REST API, 8.7+):
//! `POST /v2/documents` (multipart, part `file` streamed from the spool, part `metadata`) and
//! `GET /v2/documents/{documentId}?storeId=&contentHash=`. It presents the gateway's own
//! credentials (Basic or the OAuth token provider), so one identity talks to Camunda.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::disk::{Allowance, describe_limit};
use super::spool::Spooled;
use crate::error::{EmailError, ErrorCode, Result};
use crate::gateway::Credentials;

/// The store's answer to an upload is a small JSON object; anything longer is not one.
const MAX_REFERENCE_BYTES: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A document reference as Camunda passes it in variables (a form's file picker, a user task,
/// or our own read with `attachmentsAs: document`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentReference {
    #[serde(rename = "camunda.document.type")]
    #[schemars(
        title = "Document type",
        description = "`camunda` for Camunda's document store."
    )]
    pub document_type: String,
    pub store_id: Option<String>,
    pub document_id: String,
    pub content_hash: Option<String>,
    #[serde(default)]
    pub metadata: DocumentMetadata,
}

/// What the store knows about a document; other fields Camunda adds are kept out of the way.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMetadata {
    pub content_type: Option<String>,
    pub file_name: Option<String>,
    pub size: Option<u64>,
}

/// The one place the HTTP client is built: our rustls configuration (system CAs plus the
/// gateway's CA file), no redirects, bounded timeouts.
pub fn http_client(ca_pem: Option<&str>) -> std::result::Result<reqwest::Client, String> {
    // The operator's CAMUNDA_REST_ADDRESS, not a job's choice: the host policy is not for it.
    let client = crate::outbound_http::HttpClient::operator(crate::outbound_http::HttpOptions {
        extra_root_pem: ca_pem.map(str::to_string),
        connect_timeout: Some(CONNECT_TIMEOUT),
        request_timeout: Some(REQUEST_TIMEOUT),
        ..Default::default()
    })
    .map_err(|e| format!("the REST client: {e}"))?;
    Ok(client.streaming().clone())
}

pub struct DocumentStore {
    http: reqwest::Client,
    /// `…/v2/documents`.
    endpoint: String,
    credentials: Credentials,
}

impl DocumentStore {
    /// `rest_address` as `CAMUNDA_REST_ADDRESS` gives it (`http://camunda:8080`, or SaaS's
    /// `https://<region>.zeebe.camunda.io/<cluster>`); `ca_file` is the gateway's CA file.
    pub fn new(
        rest_address: &str,
        credentials: Credentials,
        ca_file: Option<&Path>,
    ) -> std::result::Result<DocumentStore, String> {
        let base = rest_address.trim().trim_end_matches('/');
        let base = base.strip_suffix("/v2").unwrap_or(base);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "CAMUNDA_REST_ADDRESS '{base}' must start with http:// or https://"
            ));
        }
        let ca = ca_file
            .map(|path| {
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))
            })
            .transpose()?;
        Ok(DocumentStore {
            http: http_client(ca.as_deref())?,
            endpoint: format!("{base}/v2/documents"),
            credentials,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder> {
        match self.credentials.authorization().await {
            Ok(Some(value)) => Ok(request.header(
                reqwest::header::AUTHORIZATION,
                value.expose_secret().to_string(),
            )),
            Ok(None) => Ok(request),
            Err(reason) => Err(EmailError::new(
                ErrorCode::AuthenticationFailed,
                format!("no token for the document store: {reason}"),
            )),
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> EmailError {
        let code = if error.is_timeout() {
            ErrorCode::Timeout
        } else {
            ErrorCode::ConnectionFailed
        };
        EmailError::new(
            code,
            format!(
                "the document store at {} cannot be reached: {}",
                self.endpoint,
                without_url(error)
            ),
        )
    }

    /// The multipart form of one upload: part `file` streamed from the spool, part `metadata`.
    async fn form(attachment: &Spooled) -> Result<Form> {
        let stream = || async {
            let file = tokio::fs::File::open(&attachment.path).await.map_err(|e| {
                EmailError::new(
                    ErrorCode::Internal,
                    format!("cannot reopen a spooled attachment: {e}"),
                )
            })?;
            Ok::<_, EmailError>(
                Part::stream_with_length(
                    reqwest::Body::wrap_stream(file_stream(file)),
                    attachment.size,
                )
                .file_name(attachment.file_name.clone()),
            )
        };
        // A media type from a mail need not parse; then the bytes go as octet-stream (a part
        // whose type was refused is gone with its stream, so the file is opened again).
        let file_part = match stream().await?.mime_str(&attachment.content_type) {
            Ok(part) => part,
            Err(_) => stream()
                .await?
                .mime_str("application/octet-stream")
                .map_err(|e| EmailError::new(ErrorCode::Internal, e.to_string()))?,
        };
        let metadata = json!({
            "contentType": attachment.content_type,
            "fileName": attachment.file_name,
            "size": attachment.size,
        });
        let metadata_part = Part::text(metadata.to_string())
            .mime_str("application/json")
            .map_err(|e| EmailError::new(ErrorCode::Internal, e.to_string()))?;
        Ok(Form::new()
            .part("file", file_part)
            .part("metadata", metadata_part))
    }

    /// Sends a request built by `build`; when Camunda answers 401 to an OAuth token, the
    /// token is dropped and the request sent once more with a new one.
    async fn send<F, Fut>(&self, build: F) -> Result<reqwest::Response>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::RequestBuilder>>,
    {
        let mut retried = false;
        loop {
            let request = self.authorized(build().await?).await?;
            let response = request.send().await.map_err(|e| self.unreachable(&e))?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED
                && !retried
                && matches!(self.credentials, Credentials::OAuth { .. })
            {
                self.credentials.rejected();
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// Uploads one spooled attachment, streamed from its file, and returns the store's
    /// reference object as Camunda returned it, or why the store found it too large.
    pub async fn upload(&self, attachment: &Spooled) -> Result<Upload> {
        let response = self
            .send(|| async {
                Ok(self
                    .http
                    .post(&self.endpoint)
                    .multipart(Self::form(attachment).await?))
            })
            .await?;
        let status = response.status();
        let body = limited_body(response, MAX_REFERENCE_BYTES as u64)
            .await
            .map_err(|e| self.unreachable(&e))?;
        if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
            let detail: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Ok(Upload::TooLarge(format!(
                "the document store refused {} bytes as too large (HTTP 413): {detail}",
                attachment.size
            )));
        }
        if !status.is_success() {
            return Err(self
                .refused(
                    status,
                    &body,
                    &format!("upload of '{}'", attachment.file_name),
                )
                .await);
        }
        let reference: Value = serde_json::from_slice(&body).map_err(|e| {
            EmailError::new(
                ErrorCode::ConnectionFailed,
                format!("the document store answered the upload with no reference: {e}"),
            )
        })?;
        if reference.get("documentId").is_none() {
            return Err(EmailError::new(
                ErrorCode::ConnectionFailed,
                "the document store answered the upload without a documentId",
            ));
        }
        Ok(Upload::Stored(reference))
    }

    /// Writes a referenced document to `path` as it streams in, counting its bytes against
    /// `allowance` (the store's word on the size is checked too, but not trusted). A document
    /// the store does not have, or one over the allowance, is `INVALID_INPUT` naming `pointer`.
    pub async fn download(
        &self,
        reference: &DocumentReference,
        pointer: &str,
        path: &Path,
        allowance: &mut Allowance,
    ) -> Result<()> {
        let url = format!(
            "{}/{}",
            self.endpoint,
            percent_encode(&reference.document_id)
        );
        let mut query = Vec::new();
        if let Some(store) = &reference.store_id {
            query.push(("storeId", store.as_str()));
        }
        if let Some(hash) = &reference.content_hash {
            query.push(("contentHash", hash.as_str()));
        }
        let response = self
            .send(|| async { Ok(self.http.get(&url).query(&query)) })
            .await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(EmailError::invalid_input(format!(
                "{pointer}: the document store has no document '{}'{}",
                reference.document_id,
                reference
                    .store_id
                    .as_deref()
                    .map(|s| format!(" in store '{s}'"))
                    .unwrap_or_default()
            )));
        }
        if !status.is_success() {
            let body = limited_body(response, 4096).await.unwrap_or_default();
            let mut error = self.refused(status, &body, "download").await;
            if status.is_client_error() && error.code == ErrorCode::MessageRejected {
                error = EmailError::invalid_input(format!("{pointer}: {}", error.message));
            }
            return Err(error);
        }
        let room = allowance.limit().saturating_sub(allowance.used());
        if response.content_length().is_some_and(|l| l > room) {
            return Err(too_large(pointer, allowance));
        }
        let spool_error = |e: std::io::Error| {
            EmailError::new(
                ErrorCode::Internal,
                format!("cannot spool a document to disk: {e}"),
            )
        };
        let file = tokio::fs::File::create(path).await.map_err(spool_error)?;
        let mut file = tokio::io::BufWriter::with_capacity(64 * 1024, file);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(&e))?;
            if !allowance.take(chunk.len() as u64) {
                return Err(too_large(pointer, allowance));
            }
            file.write_all(&chunk).await.map_err(spool_error)?;
        }
        file.flush().await.map_err(spool_error)?;
        Ok(())
    }

    async fn refused(&self, status: reqwest::StatusCode, body: &[u8], doing: &str) -> EmailError {
        let detail: String = String::from_utf8_lossy(body).chars().take(500).collect();
        let code = match status.as_u16() {
            401 | 403 => {
                self.credentials.rejected();
                ErrorCode::AuthenticationFailed
            }
            408 | 429 => ErrorCode::TemporaryFailure,
            s if s >= 500 => ErrorCode::ConnectionFailed,
            _ => ErrorCode::MessageRejected,
        };
        EmailError::new(
            code,
            format!(
                "the document store at {} refused the {doing} ({}): HTTP {status}: {detail}",
                self.endpoint,
                self.credentials.describe()
            ),
        )
    }
}

/// What became of one upload that the store answered.
pub enum Upload {
    /// The store's reference object.
    Stored(Value),
    /// Over the store's size limit (SaaS: 10 MB per file): no retry will change that, so the
    /// attachment is described without a document rather than failing the whole mail.
    TooLarge(String),
}

/// A document that does not fit what is left of the job's allowance.
pub fn too_large(pointer: &str, allowance: &Allowance) -> EmailError {
    EmailError::invalid_input(format!(
        "{pointer}: the documents of one send may total at most {}; this one goes past it \
         (the ones before it take {} bytes); raise it on the worker or send fewer",
        describe_limit(allowance.limit()),
        allowance.used()
    ))
}

/// reqwest's error text without the URL it carries (it is in our message already).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

async fn limited_body(response: reqwest::Response, limit: u64) -> reqwest::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = (limit as usize).saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(bytes)
}

/// A file as a stream of 64 KiB chunks: the upload never holds more.
fn file_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    futures_util::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(buffer), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
