//! The one client for the worker's outbound HTTP(S) calls (OAuth token endpoints, Camunda's
//! document store): reqwest on our own rustls configuration, so the same roots apply as for
//! the mail protocols, with the operator's host policy (README, "Configuration") applied to the
//! URL's host and to every address it resolves to when a job chose the URL, redirects refused,
//! no proxy from the environment, and the response body read only up to a cap.
//!
//! The host policy bounds what process models choose: [`HttpClient::policed`] is the client
//! for such URLs, under the policy it is given (the process's, from
//! [`crate::services::Services`]). The operator's own endpoints (the gateway's token endpoint,
//! the document store), configured by the operator beside the policy itself, are not subject
//! to it: [`HttpClient::operator`].
//!
//! Why each: a redirect or an environment proxy would carry a request (and its client secret)
//! to a host the policy never saw; an endpoint that streams forever must not grow the
//! worker's memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, Url};

use crate::mail::policy::{HostPolicy, NameVerdict};
use crate::mail::tls;

/// Responses larger than this are refused unless a caller asks for a different cap.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why an outbound call failed. `Refused` is the operator's host policy (the caller names
/// the input that carried the URL); the others are the peer's or the network's doing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Refused(String),
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("cannot reach {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("{host} did not answer within {seconds} s")]
    Timeout { host: String, seconds: u64 },
    #[error("{host} answered with more than {limit} bytes")]
    TooLarge { host: String, limit: usize },
}

/// A response: the status, the content type, and the whole body (within the cap).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A configured client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    max_response_bytes: usize,
    /// The host policy, for a client of URLs a job chose; `None` for an operator's endpoint.
    policy: Option<Arc<HostPolicy>>,
}

/// What a client trusts beyond the system roots.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// A PEM CA or self-signed certificate to trust in addition to the system roots.
    pub extra_root_pem: Option<String>,
    /// The body cap; [`DEFAULT_MAX_RESPONSE_BYTES`] when `None`.
    pub max_response_bytes: Option<usize>,
    /// Bounds on connecting and on a whole exchange, for callers that stream bodies through
    /// [`HttpClient::streaming`] and so cannot use [`HttpClient::send`]'s timeout.
    pub connect_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
}

impl HttpClient {
    /// A client for URLs a job chose: `policy` applies to each URL's host and to every
    /// address it resolves to.
    pub fn policed(options: HttpOptions, policy: Arc<HostPolicy>) -> Result<HttpClient, String> {
        Self::build(options, Some(policy))
    }

    /// A client for an endpoint the operator configured (the gateway's token endpoint, the
    /// document store), which the host policy does not bound.
    pub fn operator(options: HttpOptions) -> Result<HttpClient, String> {
        Self::build(options, None)
    }

    fn build(options: HttpOptions, policy: Option<Arc<HostPolicy>>) -> Result<HttpClient, String> {
        let tls =
            tls::client_config(options.extra_root_pem.as_deref(), false).map_err(|e| e.message)?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(false);
        if let Some(policy) = &policy {
            builder = builder.dns_resolver(Arc::new(PolicyResolver(policy.clone())));
        }
        if let Some(timeout) = options.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = options.request_timeout {
            builder = builder.timeout(timeout);
        }
        let inner = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpClient {
            inner,
            max_response_bytes: options
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            policy,
        })
    }

    /// The underlying client, for exchanges that stream their bodies (the document store's
    /// uploads and downloads) and so cannot go through [`HttpClient::send`]'s capped read. The
    /// same TLS roots, proxy and redirect rules apply, and the resolver-side host policy unless
    /// this is an operator's endpoint.
    pub fn streaming(&self) -> &reqwest::Client {
        &self.inner
    }

    /// A request to fill in (headers, form, body); send it with [`HttpClient::send`].
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends a request, within `timeout` for the whole exchange, and reads the body up to the
    /// cap. The URL's host is checked against the host policy first (names here, resolved
    /// addresses in the resolver), so a refused host sees no packet.
    pub async fn send(
        &self,
        request: RequestBuilder,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let request = request
            .timeout(timeout)
            .build()
            .map_err(|e| HttpError::Url(e.to_string()))?;
        let host = request.url().host_str().unwrap_or_default().to_string();
        if let Some(policy) = &self.policy {
            check_host(request.url(), policy)?;
        }
        let exchange = async {
            let mut response = self
                .inner
                .execute(request)
                .await
                .map_err(|e| classify(&host, timeout, e))?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| classify(&host, timeout, e))?
            {
                if body.len() + chunk.len() > self.max_response_bytes {
                    return Err(HttpError::TooLarge {
                        host: host.clone(),
                        limit: self.max_response_bytes,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse {
                status,
                content_type,
                body,
            })
        };
        // reqwest's timeout covers the body too; this outer one also bounds what it does not
        // (a resolver that never answers).
        tokio::time::timeout(timeout + Duration::from_millis(200), exchange)
            .await
            .map_err(|_| HttpError::Timeout {
                host: host.clone(),
                seconds: timeout.as_secs(),
            })?
    }
}

/// The checks of `policy` that need no lookup; an IP literal is never handed to the resolver.
pub fn check_host(url: &Url, policy: &HostPolicy) -> Result<(), HttpError> {
    let host = url
        .host_str()
        .ok_or_else(|| HttpError::Url("the URL has no host".into()))?;
    policy
        .check_name(host)
        .map(|_| ())
        .map_err(|e| HttpError::Refused(policy_reason(&e.message)))
}

/// The policy's message names `/server/host`; callers name their own input.
fn policy_reason(message: &str) -> String {
    message
        .strip_prefix("/server/host: ")
        .unwrap_or(message)
        .to_string()
}

/// Resolves a name once and hands reqwest only the addresses the policy allows, so the
/// connection goes to the addresses that were checked.
struct PolicyResolver(Arc<HostPolicy>);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PolicyRefusal(String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let policy = self.0.clone();
        Box::pin(async move {
            let refusal =
                |e: crate::error::EmailError| -> Box<dyn std::error::Error + Send + Sync> {
                    Box::new(PolicyRefusal(policy_reason(&e.message)))
                };
            let verdict = policy.check_name(&host).map_err(refusal)?;
            let resolved: Vec<SocketAddr> = match verdict {
                NameVerdict::Address(address) => vec![SocketAddr::new(address, 0)],
                _ => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                    .collect(),
            };
            let ips: Vec<_> = resolved.iter().map(SocketAddr::ip).collect();
            policy
                .check_addresses(&host, &verdict, &ips)
                .map_err(refusal)?;
            let addrs: Addrs = Box::new(resolved.into_iter());
            Ok(addrs)
        })
    }
}

/// Sorts reqwest's error into ours by walking its causes: the policy's refusal, a TLS
/// failure, a timeout, or anything else that kept us from the peer.
fn classify(host: &str, timeout: Duration, error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut reasons = Vec::new();
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<PolicyRefusal>() {
            return HttpError::Refused(refusal.0.clone());
        }
        if tls::is_tls_failure(cause) {
            return HttpError::Tls {
                host: host.to_string(),
                reason: cause.to_string(),
            };
        }
        reasons.push(cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        return HttpError::Timeout {
            host: host.to_string(),
            seconds: timeout.as_secs(),
        };
    }
    HttpError::Unreachable {
        host: host.to_string(),
        reason: reasons.last().cloned().unwrap_or_default(),
    }
}

/// `application/x-www-form-urlencoded`, for callers that build a body themselves.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let mut serializer = String::new();
    for (key, value) in fields {
        if !serializer.is_empty() {
            serializer.push('&');
        }
        serializer.push_str(&form_encode(key));
        serializer.push('=');
        serializer.push_str(&form_encode(value));
    }
    serializer
}

fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policed(options: HttpOptions) -> HttpClient {
        HttpClient::policed(options, Arc::new(HostPolicy::default())).unwrap()
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_body(&[("a b", "&c=d/é"), ("x", "zeebe.camunda.io")]),
            "a+b=%26c%3Dd%2F%C3%A9&x=zeebe.camunda.io"
        );
    }

    #[tokio::test]
    async fn a_denied_address_sees_no_request() {
        let client = policed(HttpOptions::default());
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        let error = client
            .send(client.request(Method::GET, url), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Refused(_)), "{error}");
    }

    #[tokio::test]
    async fn a_refused_port_is_unreachable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = policed(HttpOptions::default());
        let url = Url::parse(&format!("http://127.0.0.1:{port}/token")).unwrap();
        let error = client
            .send(client.request(Method::POST, url), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Unreachable { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..64 {
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let client = policed(HttpOptions {
            max_response_bytes: Some(100_000),
            ..HttpOptions::default()
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let error = client
            .send(client.request(Method::GET, url), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::TooLarge { .. }), "{error}");
    }
}
