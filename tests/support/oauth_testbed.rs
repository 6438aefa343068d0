//! The OAuth2 testbed as tests see it: Dovecot + Postfix from `tests/testbed/oauth.sh`, whose
//! logins Dovecot checks against the RFC 7662 introspection endpoint served here, from the
//! tokens this process minted (so a test can expire or revoke a token the worker holds).

use std::collections::HashMap;
use std::convert::Infallible;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::WorkerProcess;
use super::gateway::{Outcome, TestGateway};

struct Minted {
    email: String,
    expires: Instant,
    revoked: bool,
}

fn tokens() -> &'static Mutex<HashMap<String, Minted>> {
    static TOKENS: OnceLock<Mutex<HashMap<String, Minted>>> = OnceLock::new();
    TOKENS.get_or_init(Mutex::default)
}

static INTROSPECTIONS: AtomicUsize = AtomicUsize::new(0);

/// A new access token for `email`, valid for `ttl` at the mail servers.
pub fn mint(email: &str, ttl: Duration) -> String {
    let token = format!("at-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    register(&token, email, ttl);
    token
}

/// Makes `token` valid for `email` for `ttl`.
pub fn register(token: &str, email: &str, ttl: Duration) {
    tokens().lock().unwrap().insert(
        token.to_string(),
        Minted {
            email: email.to_string(),
            expires: Instant::now() + ttl,
            revoked: false,
        },
    );
}

/// Makes the mail servers refuse `token` from now on.
pub fn revoke(token: &str) {
    if let Some(minted) = tokens().lock().unwrap().get_mut(token) {
        minted.revoked = true;
    }
}

/// How many times Dovecot asked about a token.
pub fn introspections() -> usize {
    INTROSPECTIONS.load(Ordering::SeqCst)
}

fn introspect(form: &str) -> Value {
    INTROSPECTIONS.fetch_add(1, Ordering::SeqCst);
    let token = form
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default()
        .to_string();
    let tokens = tokens().lock().unwrap();
    match tokens.get(&token) {
        Some(m) if !m.revoked && Instant::now() < m.expires => {
            json!({ "active": true, "email": m.email, "sub": m.email, "token_type": "Bearer" })
        }
        // Dovecot reads a 4xx without a user name as a temporary failure; inactive tokens are
        // answered as RFC 7662 says, with 200 and `active: false`.
        _ => json!({ "active": false }),
    }
}

pub struct OAuthTestbed {
    pub vars: HashMap<String, String>,
}

impl OAuthTestbed {
    pub fn port(&self, name: &str) -> u16 {
        self.vars[name].parse().expect("port")
    }
}

/// Serves introspection (on its own runtime, for the whole test process) and brings the
/// servers up, once per process. Tests never skip: a testbed that cannot start fails them.
pub fn oauth_testbed() -> &'static OAuthTestbed {
    static TESTBED: OnceLock<OAuthTestbed> = OnceLock::new();
    TESTBED.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testbed/oauth.sh");
        let env = Command::new("bash").arg(script).arg("env").output().expect("oauth.sh env");
        let port: u16 = String::from_utf8_lossy(&env.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("PORT_INTROSPECT="))
            .and_then(|p| p.parse().ok())
            .expect("PORT_INTROSPECT");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!(
                            "cannot serve introspection on 127.0.0.1:{port} (another OAuth test process?): {e}"
                        )));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let service = service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let answer = introspect(&String::from_utf8_lossy(&body));
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .expect("response"),
                            )
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        ready_rx
            .recv()
            .expect("introspection thread")
            .unwrap_or_else(|e| panic!("{e}"));
        let vars = super::start_testbed("oauth.sh", "the OAuth testbed").vars;
        OAuthTestbed { vars }
    })
}

/// A test gateway with a worker process attached (logging at every level, so the secret scan
/// sees everything), for jobs of any protocol.
pub struct OAuthJobs {
    pub gateway: TestGateway,
    pub worker: WorkerProcess,
}

impl OAuthJobs {
    pub async fn start() -> OAuthJobs {
        oauth_testbed();
        let gateway = TestGateway::start().await;
        let worker = WorkerProcess::start(&gateway.url(), &[("RUST_LOG", "trace")]);
        OAuthJobs { gateway, worker }
    }

    /// Runs `email:<job>:1` (`job` as `imap:list`) with `resultVariable: r`, 3 retries.
    pub async fn run(&self, job: &str, variables: Value) -> Outcome {
        let key = self.gateway.create_job(
            &format!("email:{job}:1"),
            variables,
            json!({ "resultVariable": "r", "retryBackoff": "PT1S" }),
            3,
        );
        self.gateway
            .wait_outcome(key, Duration::from_secs(60))
            .await
    }

    pub async fn ok(&self, job: &str, variables: Value) -> Value {
        match self.run(job, variables).await {
            Outcome::Completed { variables } => variables["r"].clone(),
            other => panic!("{job}: expected completion, got {other:?}"),
        }
    }

    /// Retries left and the message of a job that must fail.
    pub async fn fails(&self, job: &str, variables: Value) -> (i32, String) {
        match self.run(job, variables).await {
            Outcome::Failed {
                retries, message, ..
            } => (retries, message),
            other => panic!("{job}: expected failure, got {other:?}"),
        }
    }

    /// Fails the test when any of `secrets` is in the worker's log, as it is or inside any
    /// base64 run (a SASL payload is base64 of user, token and framing).
    pub fn assert_log_free_of(&self, secrets: &[String]) {
        assert_free_of(&self.worker.logs(), secrets, "the worker's log");
    }
}

/// [`OAuthJobs::assert_log_free_of`] for any text (outcome messages, responses).
pub fn assert_free_of(text: &str, secrets: &[String], what: &str) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !text.contains(secret.as_str()),
            "{what} holds a secret: {secret}"
        );
    }
    let engine = base64::engine::general_purpose::STANDARD;
    for run in text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .filter(|run| run.len() >= 12)
    {
        // A run may start anywhere inside an encoding: try each of the 4 alignments.
        for skip in 0..4 {
            let Some(aligned) = run.get(skip..) else {
                continue;
            };
            let cut = aligned.trim_end_matches('=');
            let usable = &cut[..cut.len() - cut.len() % 4];
            let Ok(decoded) = engine.decode(usable) else {
                continue;
            };
            let decoded = String::from_utf8_lossy(&decoded);
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                assert!(
                    !decoded.contains(secret.as_str()),
                    "{what} holds a secret in base64: {run}"
                );
            }
        }
    }
}

/// The server block for the testbed's `protocol` (`smtp`, `imap`, `pop3`).
pub fn server(protocol: &str) -> Value {
    let testbed = oauth_testbed();
    let port = match protocol {
        "smtp" => testbed.port("PORT_SMTP"),
        "imap" => testbed.port("PORT_IMAP"),
        _ => testbed.port("PORT_POP3"),
    };
    json!({ "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 10 })
}
