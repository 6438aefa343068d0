//! A stand-in for the process-definition part of Camunda's Orchestration Cluster REST API
//! (`/v2`), on 127.0.0.1, as the inbound discovery reads it: `POST
//! /v2/process-definitions/search` (filter, cursor paging), `GET
//! /v2/process-definitions/{key}` and `GET /v2/process-definitions/{key}/xml`. A test deploys
//! and deletes BPMN through the control methods; the stand-in keeps every request it saw.
//!
//! Shapes follow the 8.8 API: keys are JSON strings, cursors are opaque (base64 here, as
//! Camunda's are), errors are problem documents, an empty page has null cursors.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The first key handed out: Zeebe's keys of partition 1 begin here.
pub const FIRST_KEY: i64 = 2_251_799_813_685_249;

/// The tenant Camunda names when multi-tenancy is off.
pub const DEFAULT_TENANT: &str = "<default>";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Debug, Clone)]
struct Definition {
    key: i64,
    process_id: String,
    version: i32,
    tenant_id: String,
    xml: String,
}

impl Definition {
    fn item(&self) -> Value {
        json!({
            "processDefinitionKey": self.key.to_string(),
            "processDefinitionId": self.process_id,
            "name": self.process_id,
            "version": self.version,
            "versionTag": null,
            "tenantId": self.tenant_id,
            "resourceName": format!("{}.bpmn", self.process_id),
            "hasStartForm": false,
        })
    }
}

#[derive(Default)]
struct Inner {
    definitions: Vec<Definition>,
    next_key: i64,
    /// The `authorization` value every request must carry, when set.
    required: Option<String>,
    requests: Vec<Seen>,
    searches: usize,
    /// Requests still to answer 503, as an API that is away.
    fail_next: usize,
    /// Deleted definitions, still listed by the search as clusters before 8.8.16 list them
    /// (only a request by key answers 404).
    deleted_but_listed: Vec<Definition>,
    /// Whether a deletion keeps the definition in the search, as older clusters do.
    lists_deleted: bool,
}

impl Inner {
    /// What the search lists: the deployed definitions, and deleted ones where they stay.
    fn listed(&self) -> Vec<Definition> {
        let mut all = self.definitions.clone();
        all.extend(self.deleted_but_listed.iter().cloned());
        all
    }

    fn forget(&mut self, gone: Vec<Definition>) {
        if self.lists_deleted {
            self.deleted_but_listed.extend(gone);
        }
    }
}

pub struct CamundaRest {
    pub address: std::net::SocketAddr,
    inner: Arc<Mutex<Inner>>,
    accept: tokio::task::JoinHandle<()>,
    /// Open connections, closed on shutdown so that a kept-alive client sees the API go.
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CamundaRest {
    pub async fn start() -> CamundaRest {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let inner = Arc::new(Mutex::new(Inner {
            next_key: FIRST_KEY,
            ..Inner::default()
        }));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (shared, open) = (inner.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let shared = shared.clone();
                let task = tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
                let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
                open.retain(|t: &tokio::task::AbortHandle| !t.is_finished());
                open.push(task.abort_handle());
            }
        });
        CamundaRest {
            address,
            inner,
            accept,
            connections,
        }
    }

    /// What `CAMUNDA_REST_ADDRESS` is set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Deploys `bpmn_xml` as the next version of `process_id` in the default tenant; returns
    /// its key and version.
    pub fn deploy(&self, process_id: &str, bpmn_xml: &str) -> (i64, i32) {
        self.deploy_for_tenant(DEFAULT_TENANT, process_id, bpmn_xml)
    }

    pub fn deploy_for_tenant(
        &self,
        tenant_id: &str,
        process_id: &str,
        bpmn_xml: &str,
    ) -> (i64, i32) {
        let mut inner = self.lock();
        // Zeebe numbers versions per process and tenant.
        let version = inner
            .definitions
            .iter()
            .filter(|d| d.process_id == process_id && d.tenant_id == tenant_id)
            .map(|d| d.version)
            .max()
            .unwrap_or(0)
            + 1;
        let key = inner.next_key;
        inner.next_key += 1;
        inner.definitions.push(Definition {
            key,
            process_id: process_id.to_string(),
            version,
            tenant_id: tenant_id.to_string(),
            xml: bpmn_xml.to_string(),
        });
        (key, version)
    }

    /// Deletes one version (its resource); the next lower version becomes the latest.
    pub fn delete(&self, key: i64) {
        let mut inner = self.lock();
        let (gone, kept) = inner.definitions.drain(..).partition(|d| d.key == key);
        inner.definitions = kept;
        inner.forget(gone);
    }

    /// Deletes every version of `process_id`, in every tenant.
    pub fn delete_process(&self, process_id: &str) {
        let mut inner = self.lock();
        let (gone, kept) = inner
            .definitions
            .drain(..)
            .partition(|d| d.process_id == process_id);
        inner.definitions = kept;
        inner.forget(gone);
    }

    /// From now on, deleted definitions stay in the search (a cluster before 8.8.16 without a
    /// state filter); asked for by key they are 404.
    pub fn list_deleted(&self) {
        self.lock().lists_deleted = true;
    }

    /// Answers 401 to every request without `Basic base64(user:pass)`.
    pub fn require_basic(&self, user: &str, pass: &str) {
        let value = format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")));
        self.lock().required = Some(value);
    }

    /// Answers 503 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.lock().requests.clone()
    }

    /// Search requests so far (answered or not).
    pub fn searches(&self) -> usize {
        self.lock().searches
    }

    /// Stops listening and closes every open connection.
    pub fn shutdown(&self) {
        self.accept.abort();
        for task in self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for CamundaRest {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

fn problem(status: StatusCode, detail: &str) -> Response<Full<Bytes>> {
    let body = json!({
        "type": "about:blank", "title": status.canonical_reason(),
        "status": status.as_u16(), "detail": detail
    });
    reply(status, "application/problem+json", body.to_string())
}

async fn handle(inner: &Mutex<Inner>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let lock = || inner.lock().unwrap_or_else(|p| p.into_inner());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The body is read before any refusal, as a servlet container does.
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let search = method == Method::POST && path == "/v2/process-definitions/search";
    {
        let mut inner = lock();
        inner.requests.push(Seen {
            method: method.to_string(),
            path: path.clone(),
            authorization: authorization.clone(),
        });
        if search {
            inner.searches += 1;
        }
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the test made the API away",
            );
        }
        if let Some(required) = &inner.required
            && authorization.as_deref() != Some(required.as_str())
        {
            return problem(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
        }
    }
    if search {
        return match serde_json::from_slice::<Value>(&body) {
            Ok(query) => match page(&lock().listed(), &query) {
                Ok(answer) => reply(StatusCode::OK, "application/json", answer.to_string()),
                Err(detail) => problem(StatusCode::BAD_REQUEST, &detail),
            },
            Err(e) => problem(StatusCode::BAD_REQUEST, &format!("not JSON: {e}")),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/process-definitions/") else {
        return problem(StatusCode::NOT_FOUND, "no such endpoint");
    };
    if method != Method::GET {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "only GET here");
    }
    let (key, xml) = match rest.strip_suffix("/xml") {
        Some(key) => (key, true),
        None => (rest, false),
    };
    let Ok(key) = key.parse::<i64>() else {
        return problem(StatusCode::BAD_REQUEST, &format!("not a key: '{key}'"));
    };
    let found = lock().definitions.iter().find(|d| d.key == key).cloned();
    match found {
        None => problem(
            StatusCode::NOT_FOUND,
            &format!("Process definition with key '{key}' not found"),
        ),
        Some(d) if xml => reply(StatusCode::OK, "text/xml", d.xml),
        Some(d) => reply(StatusCode::OK, "application/json", d.item().to_string()),
    }
}

/// The answer to one search: filter, sort by key, take the page after the cursor.
fn page(definitions: &[Definition], query: &Value) -> Result<Value, String> {
    let filter = &query["filter"];
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let latest_only = filter["isLatestVersion"].as_bool() == Some(true);
    let id = text(&filter["processDefinitionId"]);
    let key = text(&filter["processDefinitionKey"]);
    let mut matching: Vec<&Definition> = definitions
        .iter()
        .filter(|d| {
            !latest_only
                || !definitions.iter().any(|o| {
                    o.process_id == d.process_id
                        && o.tenant_id == d.tenant_id
                        && o.version > d.version
                })
        })
        .filter(|d| id.as_ref().is_none_or(|id| *id == d.process_id))
        .filter(|d| key.as_ref().is_none_or(|k| *k == d.key.to_string()))
        .collect();
    matching.sort_by_key(|d| d.key);
    let total = matching.len();
    let limit = match &query["page"]["limit"] {
        Value::Null => 100,
        v => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("page.limit is not a count: {v}"))?,
    };
    let after = match &query["page"]["after"] {
        Value::Null => None,
        Value::String(cursor) => Some(decode_cursor(cursor)?),
        v => return Err(format!("page.after is not a cursor: {v}")),
    };
    let items: Vec<&Definition> = matching
        .into_iter()
        .filter(|d| after.is_none_or(|a| d.key > a))
        .take(limit)
        .collect();
    let cursor = |d: Option<&&Definition>| d.map_or(Value::Null, |d| json!(encode_cursor(d.key)));
    Ok(json!({
        "items": items.iter().map(|d| d.item()).collect::<Vec<_>>(),
        "page": {
            "totalItems": total,
            "startCursor": cursor(items.first()),
            "endCursor": cursor(items.last()),
            "hasMoreTotalItems": false,
        }
    }))
}

/// Camunda's cursors are base64 of the sort values; a client must pass them on untouched.
fn encode_cursor(key: i64) -> String {
    STANDARD.encode(format!("[{key}]"))
}

fn decode_cursor(cursor: &str) -> Result<i64, String> {
    STANDARD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse().ok())
        })
        .ok_or_else(|| format!("not a cursor of this API: '{cursor}'"))
}
