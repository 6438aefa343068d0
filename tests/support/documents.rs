//! A Camunda document store for tests, on loopback: `POST /v2/documents` (multipart, part
//! `file` and optional part `metadata`; answers 201 with the reference object) and
//! `GET /v2/documents/{documentId}?storeId=&contentHash=` (the bytes, or 404 with a problem
//! document), with the response shapes of Camunda's Orchestration Cluster REST API. It keeps
//! every document and the `authorization` header of every request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub const STORE_ID: &str = "in-memory";

#[derive(Default)]
struct Inner {
    documents: HashMap<String, (Vec<u8>, Value)>,
    authorizations: Vec<String>,
    /// The `authorization` value every request must carry, when set.
    required: Option<String>,
    /// The largest file accepted; larger ones get 413, as a store with a size limit answers.
    max_file_bytes: Option<usize>,
    /// File names answered with 400, as a store refuses what it finds invalid.
    refused_names: Vec<String>,
    next: u64,
}

pub struct DocumentStore {
    pub address: std::net::SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl DocumentStore {
    pub async fn start() -> DocumentStore {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = inner.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        DocumentStore {
            address,
            inner,
            task,
        }
    }

    /// What `CAMUNDA_REST_ADDRESS` is set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stores bytes as a form's file picker would have, and returns the reference.
    pub fn put(&self, bytes: &[u8], file_name: &str, content_type: &str) -> Value {
        let metadata = json!({ "contentType": content_type, "fileName": file_name });
        store(&mut self.lock(), bytes.to_vec(), metadata)
    }

    /// The stored bytes of a document.
    pub fn bytes(&self, document_id: &str) -> Option<Vec<u8>> {
        self.lock()
            .documents
            .get(document_id)
            .map(|(b, _)| b.clone())
    }

    pub fn count(&self) -> usize {
        self.lock().documents.len()
    }

    /// Answers 401 to every request without this `authorization` value.
    pub fn require_authorization(&self, value: &str) {
        self.lock().required = Some(value.to_string());
    }

    /// Answers 413 Payload Too Large to a file over `bytes` (SaaS stores take 10 MB).
    pub fn limit_file_size(&self, bytes: usize) {
        self.lock().max_file_bytes = Some(bytes);
    }

    /// Answers 400 Bad Request to an upload whose metadata names this file.
    pub fn refuse_file_named(&self, name: &str) {
        self.lock().refused_names.push(name.to_string());
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.lock().authorizations.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for DocumentStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn store(inner: &mut Inner, bytes: Vec<u8>, metadata: Value) -> Value {
    inner.next += 1;
    let id = format!("doc-{}-{}", inner.next, std::process::id());
    let hash = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
    let mut metadata = metadata;
    metadata["size"] = json!(bytes.len());
    metadata["expiresAt"] = Value::Null;
    metadata["customProperties"] = json!({});
    let reference = json!({
        "camunda.document.type": "camunda",
        "storeId": STORE_ID,
        "documentId": id,
        "contentHash": hash,
        "metadata": metadata,
    });
    inner.documents.insert(id, (bytes, reference.clone()));
    reference
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn problem(status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
    let body = json!({ "type": "about:blank", "title": status.canonical_reason(), "status": status.as_u16(), "detail": detail });
    Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

async fn handle(inner: &Mutex<Inner>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let lock = || inner.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(value) = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        lock().authorizations.push(value.to_string());
    }
    let required = lock().required.clone();
    if let Some(required) = required
        && request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(required.as_str())
    {
        // Read the body before refusing, as a servlet container does: answering first and
        // closing makes the client's upload fail with a broken pipe before it sees the 401,
        // a race the test would lose now and then.
        let _ = request.into_body().collect().await;
        return problem(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
    }
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let method = request.method().clone();
    if method == hyper::Method::POST && path == "/v2/documents" {
        let content_type = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some(boundary) = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_string())
        else {
            return problem(StatusCode::BAD_REQUEST, "not multipart/form-data");
        };
        let Ok(body) = request.into_body().collect().await else {
            return problem(StatusCode::BAD_REQUEST, "body broke off");
        };
        let parts = multipart(&body.to_bytes(), &boundary);
        let Some(file) = parts.get("file") else {
            return problem(StatusCode::BAD_REQUEST, "no part 'file'");
        };
        let limit = lock().max_file_bytes;
        if let Some(limit) = limit
            && file.len() > limit
        {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The file exceeds the maximum size of {limit} bytes"),
            );
        }
        let metadata = parts
            .get("metadata")
            .and_then(|m| serde_json::from_slice::<Value>(m).ok())
            .unwrap_or_else(|| json!({}));
        let name = metadata["fileName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if lock().refused_names.contains(&name) {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("The file '{name}' is not accepted"),
            );
        }
        let reference = store(&mut lock(), file.clone(), metadata);
        return Response::builder()
            .status(StatusCode::CREATED)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(reference.to_string())))
            .expect("response");
    }
    if method == hyper::Method::GET
        && let Some(id) = path.strip_prefix("/v2/documents/")
    {
        let inner = lock();
        let Some((bytes, reference)) = inner.documents.get(id) else {
            return problem(
                StatusCode::NOT_FOUND,
                &format!("Document with id '{id}' not found"),
            );
        };
        if let Some(hash) = query
            .split('&')
            .find_map(|p| p.strip_prefix("contentHash="))
            && reference["contentHash"] != hash
        {
            return problem(StatusCode::BAD_REQUEST, "content hash does not match");
        }
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(bytes.clone())))
            .expect("response");
    }
    problem(StatusCode::NOT_FOUND, "no such endpoint")
}

/// The parts of a multipart body by name.
fn multipart(body: &[u8], boundary: &str) -> HashMap<String, Vec<u8>> {
    let delimiter = format!("--{boundary}");
    let mut parts = HashMap::new();
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, delimiter.as_bytes()) else {
            break;
        };
        let part = &rest[..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&part[..split]).to_string();
            let name = head
                .split(';')
                .find_map(|p| p.trim().strip_prefix("name="))
                .map(|n| {
                    n.split(['\r', ';'])
                        .next()
                        .unwrap_or(n)
                        .trim_matches('"')
                        .to_string()
                });
            if let Some(name) = name {
                parts.insert(name, part[split + 4..].to_vec());
            }
        }
        rest = &rest[end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
