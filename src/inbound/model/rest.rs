//! The two calls of Camunda's Orchestration Cluster REST API the discovery needs: the process
//! definitions deployed (every version, paged by cursor) and one definition's BPMN XML. Same
//! identity as the gateway client (Basic or the OAuth token), same trusted roots.

use std::time::Duration;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::gateway::credentials::Credentials;
use crate::outbound_http::{HttpClient, HttpError, HttpOptions};

/// Definitions asked for per page (Camunda's runtime asks for 200 too).
const PAGE: usize = 200;
/// Pages read at most per discovery: 200,000 definitions is far beyond any cluster this
/// worker serves, and a stand-in or proxy that never ends its paging cannot keep us forever.
const MAX_PAGES: usize = 1000;
const TIMEOUT: Duration = Duration::from_secs(30);

/// One deployed process definition (one version of one process).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Definition {
    pub key: i64,
    pub process_id: String,
    pub version: i32,
    pub tenant_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    process_definition_key: KeyText,
    process_definition_id: String,
    version: i32,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// REST v2 writes keys as strings; older answers had numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyText {
    Text(String),
    Number(i64),
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    page: Option<Cursor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cursor {
    #[serde(default)]
    end_cursor: Option<String>,
}

/// A definition's BPMN as the cluster gave it.
pub enum Xml {
    Found(String),
    /// The cluster no longer knows the definition.
    Gone,
    /// It can never be read (too large, not UTF-8): asking again would not help.
    Unreadable(String),
}

enum Failure {
    TooLarge(String),
    Other(String),
}

impl Failure {
    fn into_text(self) -> String {
        match self {
            Failure::TooLarge(text) | Failure::Other(text) => text,
        }
    }
}

pub struct Discovery {
    http: HttpClient,
    base: Url,
    credentials: Credentials,
}

impl Discovery {
    /// `address` is `CAMUNDA_REST_ADDRESS` (with or without a trailing `/v2`).
    pub fn new(
        address: &str,
        credentials: Credentials,
        ca_certificate_path: Option<&std::path::Path>,
    ) -> Result<Discovery, String> {
        let trimmed = address.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/v2").unwrap_or(trimmed);
        let base = Url::parse(&format!("{trimmed}/"))
            .map_err(|e| format!("CAMUNDA_REST_ADDRESS '{address}': {e}"))?;
        let extra_root_pem =
            match ca_certificate_path {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read the CA certificate {}: {e}", path.display())
                })?),
                None => None,
            };
        let http = HttpClient::operator(HttpOptions {
            extra_root_pem,
            // A BPMN resource may be several megabytes; its cap is the parser's.
            max_response_bytes: Some(super::bpmn::MAX_XML_BYTES + 1),
            ..HttpOptions::default()
        })?;
        Ok(Discovery {
            http,
            base,
            credentials,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.base.as_str()
    }

    /// Who the discovery speaks as, for logs; never a secret.
    pub fn identity(&self) -> String {
        self.credentials.describe()
    }

    /// Every deployed definition, all versions, all tenants the identity may see.
    pub async fn definitions(&self) -> Result<Vec<Definition>, String> {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut body = json!({ "filter": {}, "page": { "limit": PAGE } });
            if let Some(cursor) = &after {
                body["page"]["after"] = json!(cursor);
            }
            let bytes = self
                .call(Method::POST, "v2/process-definitions/search", Some(body))
                .await
                .map_err(Failure::into_text)?
                .ok_or("the definitions search answered 404")?;
            let page: Page = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the definitions search answered unreadably: {e}"))?;
            let count = page.items.len();
            for item in page.items {
                let key = match item.process_definition_key {
                    KeyText::Number(n) => n,
                    KeyText::Text(text) => text
                        .parse()
                        .map_err(|_| format!("a definition key '{text}' is not a number"))?,
                };
                found.push(Definition {
                    key,
                    process_id: item.process_definition_id,
                    version: item.version,
                    tenant_id: item.tenant_id.unwrap_or_default(),
                });
            }
            let next = page.page.and_then(|p| p.end_cursor);
            if count < PAGE || next.is_none() || next == after {
                return Ok(found);
            }
            after = next;
        }
        Err(format!(
            "the definitions search did not end within {MAX_PAGES} pages"
        ))
    }

    /// The BPMN XML of definition `key`.
    pub async fn xml(&self, key: i64) -> Result<Xml, String> {
        let path = format!("v2/process-definitions/{key}/xml");
        match self.call(Method::GET, &path, None).await {
            Ok(None) => Ok(Xml::Gone),
            Ok(Some(bytes)) => Ok(match String::from_utf8(bytes) {
                Ok(text) => Xml::Found(text),
                Err(_) => Xml::Unreadable("the BPMN is not UTF-8".into()),
            }),
            // Larger than any BPMN read: asking again gives the same.
            Err(Failure::TooLarge(reason)) => Ok(Xml::Unreadable(reason)),
            Err(Failure::Other(reason)) => Err(reason),
        }
    }

    /// Whether definition `key` is still deployed. Clusters before 8.8.16 list deleted
    /// definitions in the search; asking for one by its key answers 404.
    pub async fn exists(&self, key: i64) -> Result<bool, String> {
        let path = format!("v2/process-definitions/{key}");
        match self.call(Method::GET, &path, None).await {
            Ok(found) => Ok(found.is_some()),
            Err(Failure::TooLarge(reason) | Failure::Other(reason)) => Err(reason),
        }
    }

    /// One call: the body, `None` for 404, a failure naming the status for anything else.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let url = self
            .base
            .join(path)
            .map_err(|e| Failure::Other(format!("{path}: {e}")))?;
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        match self.credentials.authorization().await {
            Ok(Some(value)) => {
                use secrecy::ExposeSecret;
                request = request.header("authorization", value.expose_secret());
            }
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::Other(format!(
                    "no token for Camunda's REST API: {e}"
                )));
            }
        }
        let response = match self.http.send(request, TIMEOUT).await {
            Ok(response) => response,
            Err(e @ HttpError::TooLarge { .. }) => {
                return Err(Failure::TooLarge(format!("Camunda's REST API: {e}")));
            }
            Err(e) => return Err(Failure::Other(format!("Camunda's REST API: {e}"))),
        };
        match response.status {
            200..=299 => Ok(Some(response.body)),
            404 => Ok(None),
            status @ (401 | 403) => {
                // A new token can cure a 401; a 403 is a missing permission, which it cannot.
                if status == 401 {
                    self.credentials.rejected();
                }
                Err(Failure::Other(format!(
                    "Camunda's REST API refused {} ({status}) for {path}",
                    self.credentials.describe()
                )))
            }
            status => Err(Failure::Other(format!(
                "Camunda's REST API answered {status} for {path}"
            ))),
        }
    }
}
