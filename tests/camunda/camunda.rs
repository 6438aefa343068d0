//! Camunda 8.8+ as a new user meets it: the console's `.env` file, `grpc://` and `grpcs://`
//! addresses, Basic auth, and tenants, all against the test gateway and the worker process.
//! Needs no mail server: a job with invalid input is enough to see jobs flow.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::gateway::{Outcome, TestGateway};
use support::{WorkerProcess, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(30);
const SEND: &str = "email:smtp:send:1";

/// A job that reaches the worker and comes back failed with INVALID_INPUT: proof that the
/// worker was served the job and could report on it.
fn create_probe_job(gateway: &TestGateway, tenant: Option<&str>) -> i64 {
    let variables = json!({ "to": "nobody" });
    let headers = json!({ "resultVariable": "r" });
    match tenant {
        Some(t) => gateway.create_tenant_job(t, SEND, variables, headers, 3),
        None => gateway.create_job(SEND, variables, headers, 3),
    }
}

fn assert_served(outcome: &Outcome) {
    match outcome {
        Outcome::Failed { message, .. } => {
            assert!(message.starts_with("INVALID_INPUT"), "{message}")
        }
        other => panic!("expected the probe job to fail with INVALID_INPUT, got {other:?}"),
    }
}

/// The job's first outcome; when none comes, the failure shows the worker's log.
async fn first_outcome(gateway: &TestGateway, key: i64, worker: &WorkerProcess) -> Outcome {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(outcome) = gateway.outcomes(key).into_iter().next() {
            return outcome;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no job served:\n{}",
            worker.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A private CA and a `localhost` certificate, made with the openssl command line.
struct Certificates {
    dir: std::path::PathBuf,
}

impl Certificates {
    fn new() -> Certificates {
        let dir = std::env::temp_dir().join(unique("gateway-tls"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("leaf.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n\
             [leaf]\nbasicConstraints = critical,CA:FALSE\nextendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost,IP:127.0.0.1\n\
             [ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n",
        )
        .unwrap();
        let run = |args: &[&str]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl must be installed");
            assert!(status.success(), "openssl {args:?}");
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut ca = vec!["req", "-x509", "-new", "-nodes", "-days", "2"];
        ca.extend(ec);
        ca.extend([
            "-subj",
            "/CN=Gateway Test CA",
            "-config",
            "leaf.cnf",
            "-extensions",
            "ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        run(&ca);
        let mut csr = vec!["req", "-new", "-nodes"];
        csr.extend(ec);
        csr.extend([
            "-config",
            "leaf.cnf",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        run(&csr);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.cnf",
            "-extensions",
            "leaf",
            "-out",
            "server.crt",
        ]);
        Certificates { dir }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn ca_path(&self) -> String {
        self.dir.join("ca.crt").display().to_string()
    }

    async fn gateway(&self) -> TestGateway {
        TestGateway::start_tls(&self.read("server.crt"), &self.read("server.key")).await
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_address_is_plaintext() {
    let gateway = TestGateway::start().await;
    let address = format!("grpc://{}", gateway.address);
    let worker = WorkerProcess::start("unused:1", &[("ZEEBE_GRPC_ADDRESS", &address)]);
    let key = create_probe_job(&gateway, None);
    assert_served(&gateway.wait_outcome(key, WAIT).await);
    let logs = worker.logs();
    assert!(
        logs.lines().any(|l| l.contains("the newer name wins")
            && l.contains("ZEEBE_GRPC_ADDRESS")
            && l.split_once("ignored")
                .is_some_and(|(_, rest)| rest.contains("ZEEBE_ADDRESS"))),
        "the log must say which name was used:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcs_address_with_a_ca_file() {
    let certificates = Certificates::new();
    let gateway = certificates.gateway().await;
    let address = format!("grpcs://localhost:{}", gateway.address.port());
    let ca = certificates.ca_path();
    let worker = WorkerProcess::start(
        &address,
        &[("CAMUNDA_CA_CERTIFICATE_PATH", &ca), ("RUST_LOG", "info")],
    );
    let key = create_probe_job(&gateway, None);
    assert_served(&gateway.wait_outcome(key, WAIT).await);
    drop(worker);

    // Without the CA the certificate is not trusted: no job is served.
    let untrusted = WorkerProcess::start(&address, &[]);
    let key = create_probe_job(&gateway, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(gateway.outcomes(key).is_empty());
    assert!(untrusted.logs().contains("cannot reach the Zeebe gateway"));
}

/// A token endpoint on loopback that hands out `token` and counts the requests.
async fn token_server(token: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            answer_token_request(socket, token, &seen).await;
        }
    });
    (url, hits)
}

/// The same over TLS with `certificates`' `localhost` certificate.
async fn https_token_server(
    certificates: &Certificates,
    token: &'static str,
) -> (String, Arc<AtomicUsize>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(certificates.read("server.crt").as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(certificates.read("server.key").as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/oauth/token",
        listener.local_addr().unwrap().port()
    );
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            if let Ok(tls) = acceptor.accept(socket).await {
                answer_token_request(tls, token, &seen).await;
            }
        }
    });
    (url, hits)
}

/// Reads one token request and answers it with `token`, counting it when it carries the
/// console client's credentials.
async fn answer_token_request(
    mut socket: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    token: &str,
    seen: &AtomicUsize,
) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&request).contains("grant_type") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    if text.contains("client_id=console-client") && text.contains("client_secret=c0ns0le") {
        seen.fetch_add(1, Ordering::SeqCst);
    }
    let json = format!(r#"{{"access_token":"{token}","expires_in":3600}}"#);
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
        json.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Issue 21: an operator who narrowed `EMAIL_ALLOWED_HOSTS` to the mail servers also blocked
/// the gateway's own token endpoint, and the worker served nothing. The host policy is for
/// what jobs choose; the operator's own endpoints pass it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_token_endpoint_passes_a_narrow_host_policy() {
    let gateway = TestGateway::start().await;
    gateway.require_token("narrow-token");
    let (oauth_url, token_requests) = token_server("narrow-token").await;
    let worker = WorkerProcess::start(
        &gateway.url(),
        &[
            ("CAMUNDA_CLIENT_ID", "console-client"),
            ("CAMUNDA_CLIENT_SECRET", "c0ns0le"),
            ("CAMUNDA_OAUTH_URL", &oauth_url),
            ("EMAIL_ALLOWED_HOSTS", "mail.example.test"),
        ],
    );
    let key = create_probe_job(&gateway, None);
    assert_served(&first_outcome(&gateway, key, &worker).await);
    assert!(token_requests.load(Ordering::SeqCst) >= 1);
}

/// Issue 21: the gateway's OAuth client trusted the system roots only, while the gRPC channel
/// honoured `CAMUNDA_CA_CERTIFICATE_PATH`: a self-managed Identity behind the same private CA
/// could not be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_token_endpoint_trusts_the_ca_certificate_file() {
    let certificates = Certificates::new();
    let gateway = TestGateway::start().await;
    gateway.require_token("private-ca-token");
    let (oauth_url, token_requests) = https_token_server(&certificates, "private-ca-token").await;
    let ca = certificates.ca_path();
    let env = [
        ("CAMUNDA_CLIENT_ID", "console-client"),
        ("CAMUNDA_CLIENT_SECRET", "c0ns0le"),
        ("CAMUNDA_OAUTH_URL", oauth_url.as_str()),
        ("ZEEBE_INSECURE_CONNECTION", "true"),
    ];
    // Without the CA file the endpoint's certificate is not trusted: nothing is served.
    let untrusted = WorkerProcess::start(&gateway.url(), &env);
    let key = create_probe_job(&gateway, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(gateway.outcomes(key).is_empty());
    drop(untrusted);
    let mut with_ca = env.to_vec();
    with_ca.push(("CAMUNDA_CA_CERTIFICATE_PATH", &ca));
    let worker = WorkerProcess::start(&gateway.url(), &with_ca);
    assert_served(&first_outcome(&gateway, key, &worker).await);
    assert!(token_requests.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_env_file_works_unchanged() {
    let certificates = Certificates::new();
    let gateway = certificates.gateway().await;
    gateway.require_token("console-token");
    let (oauth_url, token_requests) = token_server("console-token").await;
    let env_file = certificates.dir.join("camunda.env");
    std::fs::write(
        &env_file,
        format!(
            "# downloaded from the console\n\
             export ZEEBE_GRPC_ADDRESS='grpcs://localhost:{port}'\n\
             export CAMUNDA_CLIENT_ID='console-client'\n\
             export CAMUNDA_CLIENT_SECRET='c0ns0le'\n\
             export CAMUNDA_OAUTH_URL='{oauth_url}'\n\
             export CAMUNDA_TOKEN_AUDIENCE='zeebe.camunda.io'\n",
            port = gateway.address.port()
        ),
    )
    .unwrap();
    let env_file = env_file.display().to_string();
    let ca = certificates.ca_path();
    // The harness's own ZEEBE_ADDRESS points elsewhere: the file's newer name must win.
    let worker = WorkerProcess::start(
        "http://127.0.0.1:9",
        &[
            ("EMAIL_ENV_FILE", &env_file),
            ("ZEEBE_CA_CERTIFICATE_PATH", &ca),
        ],
    );
    let key = create_probe_job(&gateway, None);
    assert_served(&gateway.wait_outcome(key, WAIT).await);
    assert!(token_requests.load(Ordering::SeqCst) >= 1);
    assert!(
        gateway
            .seen_authorization()
            .iter()
            .all(|h| h == "Bearer console-token")
    );
    let logs = worker.logs();
    assert!(logs.contains("OAuth client 'console-client'"), "{logs}");
    assert!(!logs.contains("c0ns0le"), "a secret reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_wrong_credentials_are_named_and_retried_right_ones_serve_jobs() {
    let gateway = TestGateway::start().await;
    gateway.require_basic("connector", "connector");
    let wrong = WorkerProcess::start(
        &gateway.url(),
        &[
            ("CAMUNDA_BASIC_AUTH_USERNAME", "connector"),
            ("CAMUNDA_BASIC_AUTH_PASSWORD", "not-the-password"),
        ],
    );
    let key = create_probe_job(&gateway, None);
    let deadline = std::time::Instant::now() + WAIT;
    let refusals = |logs: &str| {
        logs.matches("refused the worker's credentials (basic auth as user 'connector')")
            .count()
    };
    while refusals(&wrong.logs()) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "expected repeated, clear refusals:\n{}",
            wrong.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = wrong.logs();
    assert!(logs.contains("retrying in"), "{logs}");
    assert!(
        !logs.contains("not-the-password"),
        "a secret reached the log"
    );
    assert!(gateway.outcomes(key).is_empty());
    drop(wrong);

    let _right = WorkerProcess::start(
        &gateway.url(),
        &[
            ("CAMUNDA_BASIC_AUTH_USERNAME", "connector"),
            ("CAMUNDA_BASIC_AUTH_PASSWORD", "connector"),
        ],
    );
    assert_served(&gateway.wait_outcome(key, WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_sent_and_only_their_jobs_served() {
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(
        &gateway.url(),
        &[
            ("CAMUNDA_TENANT_IDS", "t1,t2"),
            ("EMAIL_OPERATIONS", "smtp:send"),
        ],
    );
    gateway.wait_for_stream(SEND, WAIT).await;
    let t1 = create_probe_job(&gateway, Some("t1"));
    let t3 = create_probe_job(&gateway, Some("t3"));
    let default = create_probe_job(&gateway, None);
    assert_served(&gateway.wait_outcome(t1, WAIT).await);
    // The job's log line names its tenant, so an operator of a shared worker can tell whose
    // job failed. The worker writes it once the gateway has taken the failure, so it may come
    // a moment after the outcome.
    let names_t1 = |logs: &str| {
        logs.lines().any(|line| {
            line.contains("job failed") && line.contains("tenant_id") && line.contains("t1")
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !names_t1(&worker.logs()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no failure line naming tenant t1:\n{}",
            worker.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(gateway.outcomes(t3).is_empty(), "t3 is not configured");
    assert!(gateway.outcomes(default).is_empty(), "neither is <default>");
    let seen = gateway.seen_tenant_ids();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|t| t == &["t1".to_string(), "t2".to_string()]),
        "every activation and stream names the tenants: {seen:?}"
    );
    drop(worker);

    // Without tenants the worker asks for none, which Zeebe reads as the default tenant.
    let _plain = WorkerProcess::start(&gateway.url(), &[("EMAIL_OPERATIONS", "smtp:send")]);
    assert_served(&gateway.wait_outcome(default, WAIT).await);
    assert!(gateway.outcomes(t3).is_empty());
    assert!(gateway.seen_tenant_ids().iter().any(Vec::is_empty));
}
