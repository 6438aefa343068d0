//! A scriptable OAuth2 token endpoint on 127.0.0.1: each test decides what every request gets
//! (a token, an error, a delay, a hang) and counts what arrived.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One token request as the endpoint saw it: the form fields and the Authorization header.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

impl TokenRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

/// What the endpoint answers: a status and a JSON body, after `delay`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn token(access_token: &str, expires_in: u64) -> Reply {
        Reply::json(
            200,
            serde_json::json!({
                "access_token": access_token, "token_type": "Bearer", "expires_in": expires_in
            }),
        )
    }

    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Script = dyn Fn(usize, &TokenRequest) -> Reply + Send + Sync;

/// The running endpoint. It lives as long as the test's runtime.
pub struct TokenEndpoint {
    pub url: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenEndpoint {
    /// Starts an endpoint whose answer to the n-th request (0-based) is `script(n, request)`.
    pub async fn start(
        script: impl Fn(usize, &TokenRequest) -> Reply + Send + Sync + 'static,
    ) -> TokenEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the token endpoint");
        let url = format!(
            "http://{}/oauth2/token",
            listener.local_addr().expect("local address")
        );
        let requests: Arc<Mutex<Vec<TokenRequest>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            let script = script.clone();
                            async move {
                                let authorization = request
                                    .headers()
                                    .get(hyper::header::AUTHORIZATION)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let form = parse_form(&body);
                                let seen_request = TokenRequest {
                                    form,
                                    authorization,
                                };
                                let index = {
                                    let mut all = seen.lock().expect("requests");
                                    all.push(seen_request.clone());
                                    all.len() - 1
                                };
                                let reply = script(index, &seen_request);
                                tokio::time::sleep(reply.delay).await;
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(reply.status)
                                        .header("content-type", "application/json")
                                        .header("cache-control", "no-store")
                                        .body(Full::new(Bytes::from(reply.body)))
                                        .expect("response"),
                                )
                            }
                        });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TokenEndpoint { url, requests }
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().expect("requests").clone()
    }
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}
