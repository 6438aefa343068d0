//! Shared test support: the in-process gateway, the mail testbed, the worker as a real process,
//! and a small IMAP reader to see what was delivered.
#![allow(dead_code)]

pub mod bpmn;
pub mod camunda_rest;
pub mod camunda_template;
pub mod census;
pub mod documents;
pub mod fake_smtp;
pub mod fault;
pub mod gateway;
pub mod mailbox;
pub mod oauth_testbed;
pub mod proxy;
pub mod recorder;
pub mod rfc3501;
pub mod scripted;
pub mod servers;
pub mod token_endpoint;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The running testbed's settings (ports, CA file), started on first use.
pub struct Testbed {
    pub vars: HashMap<String, String>,
}

impl Testbed {
    pub fn port(&self, name: &str) -> u16 {
        self.vars[name].parse().expect("port")
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.vars["TESTBED_CA"]).expect("CA certificate")
    }

    pub fn other_ca_pem(&self) -> String {
        std::fs::read_to_string(&self.vars["TESTBED_OTHER_CA"]).expect("other CA certificate")
    }

    pub fn dir(&self) -> &str {
        &self.vars["TESTBED_DIR"]
    }
}

/// Installs (when missing) and starts Dovecot and Postfix, once per test process. A testbed
/// that cannot start fails the test: these tests never skip.
pub fn testbed() -> &'static Testbed {
    static TESTBED: OnceLock<Testbed> = OnceLock::new();
    TESTBED.get_or_init(|| start_testbed("testbed.sh", "the mail testbed"))
}

/// Downloads (when missing) and starts the Cyrus IMAP instances in both layouts
/// (`tests/testbed/cyrus.sh`), once per test process. As with Dovecot, a Cyrus that cannot
/// start fails the test.
pub fn cyrus() -> &'static Testbed {
    static CYRUS: OnceLock<Testbed> = OnceLock::new();
    CYRUS.get_or_init(|| start_testbed("cyrus.sh", "the Cyrus testbed"))
}

/// Runs `tests/testbed/<script> up` and reads the settings it prints.
pub fn start_testbed(script: &str, what: &str) -> Testbed {
    let script = format!("{}/tests/testbed/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(&script)
        .arg("up")
        .output()
        .expect("run the testbed script");
    assert!(
        output.status.success(),
        "{what} did not start:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let vars = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Testbed { vars }
}

/// The worker binary, run as users run it, with its log captured.
pub struct WorkerProcess {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    /// Starts the binary this build made, or the one `EMAIL_CONNECTOR_BIN` names (to measure
    /// a release build with the same tests).
    pub fn start(gateway_url: &str, env: &[(&str, &str)]) -> WorkerProcess {
        let binary = std::env::var("EMAIL_CONNECTOR_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_email-connector").to_string());
        let mut command = Command::new(binary);
        command
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ZEEBE_ADDRESS", gateway_url)
            .env(
                "RUST_LOG",
                "debug,h2=info,tower=info,hyper=info,hyper_util=info,tonic=info,rustls=info",
            )
            .env("EMAIL_SHUTDOWN_GRACE", "PT5S")
            .env("EMAIL_HTTP_PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start the worker");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        WorkerProcess { child, logs }
    }

    pub fn logs(&self) -> String {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, as Kubernetes stops a pod.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The test gateway with the worker process attached, running the jobs of one protocol, as
/// the protocol test files use it.
pub struct Jobs {
    pub gateway: gateway::TestGateway,
    _worker: WorkerProcess,
    protocol: &'static str,
}

impl Jobs {
    pub async fn start(protocol: &'static str) -> Jobs {
        Self::start_with(protocol, &[]).await
    }

    /// Like [`Jobs::start`], with extra environment for the worker process (operator settings,
    /// `SSL_CERT_FILE`).
    pub async fn start_with(protocol: &'static str, env: &[(&str, &str)]) -> Jobs {
        testbed();
        let gateway = gateway::TestGateway::start().await;
        let worker = WorkerProcess::start(&gateway.url(), env);
        Jobs {
            gateway,
            _worker: worker,
            protocol,
        }
    }

    /// The worker process's peak resident memory so far (VmHWM), in bytes.
    pub fn worker_peak_rss(&self) -> u64 {
        peak_rss(self._worker.pid())
    }

    /// Runs `<protocol>:<operation>` with `resultVariable: r` and a 2 s retry backoff.
    pub async fn run(
        &self,
        operation: &str,
        variables: serde_json::Value,
    ) -> (i64, gateway::Outcome) {
        let key = self.gateway.create_job(
            &format!("email:{}:{operation}:1", self.protocol),
            variables,
            serde_json::json!({ "resultVariable": "r", "retryBackoff": "PT2S" }),
            3,
        );
        (
            key,
            self.gateway
                .wait_outcome(key, Duration::from_secs(30))
                .await,
        )
    }

    /// The response of a job that must complete.
    pub async fn ok(&self, operation: &str, variables: serde_json::Value) -> serde_json::Value {
        match self.run(operation, variables).await.1 {
            gateway::Outcome::Completed { variables } => variables["r"].clone(),
            other => panic!("{operation}: expected completion, got {other:?}"),
        }
    }

    /// Retries, message and backoff of a job that must fail.
    pub async fn fails(&self, operation: &str, variables: serde_json::Value) -> (i32, String, i64) {
        match self.run(operation, variables).await.1 {
            gateway::Outcome::Failed {
                retries,
                message,
                backoff_ms,
            } => (retries, message, backoff_ms),
            other => panic!("{operation}: expected failure, got {other:?}"),
        }
    }
}

/// The peak resident memory so far (VmHWM) of a running process, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmHWM");
    kib * 1024
}

/// A listener on 127.0.0.1 that accepts and holds connections, counting them: the "server" of
/// jobs that must be refused before they connect.
pub async fn counting_listener() -> (
    u16,
    Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, count, task)
}

/// A unique marker for subjects, so parallel tests find their own messages.
pub fn unique(label: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An RFC 5322 date (`02 Jan 2024 10:00:00 +0000`, fixed width) for a Unix time, computed here
/// independently of the code under test.
pub fn rfc5322_date(ts: i64) -> String {
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let (mut year, mut day) = (1970i64, ts / 86_400);
    while day >= if leap(year) { 366 } else { 365 } {
        day -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while day >= lengths[month] {
        day -= lengths[month];
        month += 1;
    }
    let secs = ts % 86_400;
    format!(
        "{:02} {} {year} {:02}:{:02}:{:02} +0000",
        day + 1,
        names[month],
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}
