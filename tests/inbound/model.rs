//! Inbound from the model: the worker finds Camunda's inbound Email elements in the processes
//! deployed to the cluster (the REST stand-in of `support::camunda_rest`), watches their
//! mailboxes and hands each mail to every element whose activation condition holds, with
//! Camunda's meaning of each template property. Each test owns one or two
//! of the users model1..9.

mod guarantees;
mod operator;
mod ours;
mod sharing;
mod stand_in;
mod versions;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{deliver, flags_of, free_port, http_env, mail, plain, wait_flags, with_id};
use crate::support::bpmn::{EmailInbound, Process};
use crate::support::camunda_rest::CamundaRest;
use crate::support::gateway::{Published, TestGateway};
use crate::support::mailbox::clear_inbox;
use crate::support::{WorkerProcess, testbed, unique};

/// A testbed user's mailbox as a modeller fills Camunda's template for it.
fn mailbox(user: &str) -> EmailInbound {
    EmailInbound::imap(
        "127.0.0.1",
        testbed().port("PORT_IMAP"),
        &format!("{user}@example.test"),
        &format!("{user}-pw"),
    )
}

/// The worker with no watchers file, discovering elements from `rest`; and its HTTP port.
fn start_worker(gateway: &TestGateway, rest: &CamundaRest) -> (WorkerProcess, String) {
    let port = free_port();
    let url = rest.url();
    let mut env = vec![
        ("EMAIL_INBOUND_ONLY", "true"),
        ("EMAIL_INBOUND_FROM_MODELS", "true"),
        ("CAMUNDA_REST_ADDRESS", url.as_str()),
        ("EMAIL_INBOUND_DISCOVERY_INTERVAL", "PT0.5S"),
    ];
    env.extend(http_env(&port));
    let worker = WorkerProcess::start(&gateway.url(), &env);
    (worker, port)
}

/// The body of `/readyz`, or `None` while nothing answers on the port (starting, or exited).
async fn readyz(port: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .ok()?;
    stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    Some(text)
}

/// One `element <process> v<version> <element>: watcher <name>` line of `/readyz`.
#[derive(Debug, Clone, PartialEq)]
struct Served {
    process: String,
    version: u32,
    element: String,
    watcher: String,
}

fn served(readyz: &str) -> Vec<Served> {
    readyz
        .lines()
        .filter_map(|line| {
            let (element, watcher) = line.strip_prefix("element ")?.split_once(": watcher ")?;
            let mut parts = element.split(' ');
            let process = parts.next()?.to_string();
            let version = parts.next()?.strip_prefix('v')?.parse().ok()?;
            let element = parts.next()?.to_string();
            Some(Served {
                process,
                version,
                element,
                watcher: watcher.trim().to_string(),
            })
        })
        .collect()
}

/// The `watcher model-...: <state>` lines of `/readyz`, as (name, state).
fn model_watchers(readyz: &str) -> Vec<(String, String)> {
    readyz
        .lines()
        .filter_map(|line| line.strip_prefix("watcher ")?.split_once(": "))
        .filter(|(name, _)| name.starts_with("model-"))
        .map(|(name, state)| (name.to_string(), state.trim().to_string()))
        .collect()
}

/// Whether `/readyz` serves `element` of `process` v`version` with a watcher that watches.
fn watching(readyz: &str, process: &str, version: u32, element: &str) -> bool {
    let watchers = model_watchers(readyz);
    served(readyz).iter().any(|s| {
        s.process == process
            && s.version == version
            && s.element == element
            && watchers
                .iter()
                .any(|(name, state)| *name == s.watcher && state.starts_with("watching"))
    })
}

/// The last lines of the worker's log, for a failure message.
fn log_tail(worker: &WorkerProcess) -> String {
    let log = plain(&worker.logs());
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits (30 s at most) until `/readyz` satisfies `condition`; returns that body.
async fn wait_readyz(
    worker: &WorkerProcess,
    port: &str,
    what: &str,
    condition: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = readyz(port).await.unwrap_or_default();
        if condition(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never in /readyz:\n{body}\n--- worker log (tail) ---\n{}",
            log_tail(worker)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until mail `id` is in `user`'s INBOX, then checks for `period` that it stays unseen
/// and that nothing carrying its Message-ID is published.
async fn stays_unseen_and_unpublished(
    user: &str,
    id: &str,
    gateway: &TestGateway,
    period: Duration,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while flags_of(user, "INBOX", id).await.is_none() {
        assert!(Instant::now() < deadline, "{id} never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let until = Instant::now() + period;
    while Instant::now() < until {
        // \Recent is the server's own note that no session has seen the mail since it came,
        // which is the point once no watcher is left.
        let flags = flags_of(user, "INBOX", id).await.unwrap_or_default();
        assert!(
            flags.iter().all(|f| f == "Recent"),
            "{id} was touched: {flags:?}"
        );
        let published: Vec<Published> = gateway
            .published()
            .into_iter()
            .filter(|p| p.message_id.contains(id))
            .collect();
        assert!(published.is_empty(), "{id} published: {published:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn new_id(label: &str) -> String {
    format!("{}@example.test", unique(label))
}

/// The names of `published`, sorted.
fn names(published: &[Published]) -> Vec<String> {
    let mut names: Vec<String> = published.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names
}

/// No variables: Zeebe reads an empty document and `{}` alike.
fn no_variables(variables: &Value) -> bool {
    variables.is_null() || *variables == json!({})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_message_start_event_publishes_a_mail_once_and_marks_it_seen() {
    let user = "model1";
    clear_inbox(user).await;
    let gateway = TestGateway::start().await;
    let rest = CamundaRest::start().await;
    let pid = "model-start";
    // The template generates a UUID as the message name.
    let message = "0b6e3f0a-4c1e-4f57-9d3a-model-start";
    let inbound = mailbox(user).with("resultVariable", "email").with(
        "resultExpression",
        "={subjectLine: subject, sender: fromAddress}",
    );
    let (key, version) = rest.deploy(
        pid,
        &Process::new(pid)
            .message_start("StartEvent_mail", message, inbound)
            .xml(),
    );
    assert_eq!(version, 1);
    let (worker, port) = start_worker(&gateway, &rest);
    let ready = wait_readyz(&worker, &port, "the message start event", |b| {
        watching(b, pid, 1, "StartEvent_mail")
    })
    .await;
    let lines = served(&ready);
    assert_eq!(lines.len(), 1, "{ready}");
    let name = &lines[0].watcher;
    let hex = name.strip_prefix("model-").unwrap_or_default();
    assert!(
        hex.len() == 12
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "watcher name {name}"
    );
    let id = new_id("mstart");
    deliver(user, &mail(&id, "model start", "")).await;
    let published = gateway
        .wait_published(1, Duration::from_secs(30), with_id(&id))
        .await;
    let p = &published[0];
    assert_eq!(p.name, message);
    assert_eq!(p.correlation_key, "", "a message start without a key");
    assert_eq!(
        p.message_id,
        format!("<{id}>"),
        "the Message-ID, brackets kept"
    );
    assert_eq!(p.time_to_live_ms, 3_600_000, "Camunda's default PT1H");
    assert_eq!(
        p.tenant_id, "<default>",
        "the default tenant, as the definition has it"
    );
    // {resultVariable: payload} merged with the result expression's context.
    let mut keys: Vec<&String> = p
        .variables
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(keys, ["email", "sender", "subjectLine"], "{}", p.variables);
    assert_eq!(p.variables["subjectLine"], "model start");
    assert_eq!(p.variables["sender"], "customer@example.test");
    let email = &p.variables["email"];
    for field in [
        "messageId",
        "fromAddress",
        "headers",
        "subject",
        "size",
        "plainTextBody",
        "htmlBody",
        "attachments",
        "receivedDateTime",
        "errors",
    ] {
        assert!(email.get(field).is_some(), "no {field} in {email}");
    }
    assert_eq!(email["messageId"], format!("<{id}>"));
    assert_eq!(email["fromAddress"], "customer@example.test");
    assert_eq!(email["subject"], "model start");
    assert!(
        email["plainTextBody"]
            .as_str()
            .is_some_and(|b| b.contains("Hello model start")),
        "{email}"
    );
    assert!(
        email["headers"].as_array().is_some_and(|h| h
            .iter()
            .any(|h| h["key"] == "Subject" && h["value"] == "model start")),
        "{email}"
    );
    assert_eq!(email["attachments"], json!([]));
    wait_flags(user, "INBOX", &id, &["Seen"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(gateway.published().len(), 1, "published once");
    assert_eq!(gateway.duplicates(), 0);
    let requests = rest.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.path == "/v2/process-definitions/search"),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/v2/process-definitions/{key}/xml")),
        "{requests:?}"
    );
    assert!(
        rest.searches() >= 2,
        "discovery goes on: {}",
        rest.searches()
    );
}

#[test]
fn the_readyz_lines_are_read_as_the_worker_writes_them() {
    let body = "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n\
                watcher model-0123456789ab: watching (polling)\n\
                watcher model-ba9876543210: reconnecting in 5s: AUTHENTICATION_FAILED\n\
                watcher support: watching (IDLE)\n\
                element model-case v1 Event_reply: watcher model-0123456789ab\n\
                element model-case v2 StartEvent_case: watcher model-ba9876543210\n";
    assert_eq!(
        served(body)[0],
        Served {
            process: "model-case".into(),
            version: 1,
            element: "Event_reply".into(),
            watcher: "model-0123456789ab".into(),
        }
    );
    assert_eq!(
        model_watchers(body).len(),
        2,
        "file watchers are not counted"
    );
    assert!(watching(body, "model-case", 1, "Event_reply"));
    assert!(
        !watching(body, "model-case", 2, "StartEvent_case"),
        "its watcher does not watch"
    );
    assert!(!watching(body, "model-case", 1, "StartEvent_case"));
}
