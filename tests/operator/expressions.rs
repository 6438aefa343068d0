//! The `resultExpression` and `errorExpression` task headers end to end: test gateway → worker
//! process → a loopback SMTP server (a sink, a closed port, or a listener that only counts
//! connections), and Dovecot's POP3 for the delete-after-read under each error directive.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway, completed, failed, thrown};
use support::mailbox::{append, clear_inbox, flags_by_message_id};
use support::{WorkerProcess, counting_listener, fake_smtp, testbed, unique};

const WAIT: Duration = Duration::from_secs(30);
const SEND: &str = "email:smtp:send:1";

struct Setup {
    gateway: TestGateway,
    worker: WorkerProcess,
}

async fn start() -> Setup {
    start_with(&[]).await
}

async fn start_with(env: &[(&str, &str)]) -> Setup {
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(&gateway.url(), env);
    Setup { gateway, worker }
}

impl Setup {
    async fn run(&self, job_type: &str, variables: Value, headers: Value) -> (i64, Outcome) {
        let key = self.gateway.create_job(job_type, variables, headers, 3);
        (key, self.gateway.wait_outcome(key, WAIT).await)
    }

    async fn send(&self, port: u16, headers: Value) -> (i64, Outcome) {
        self.run(SEND, send_vars(port), headers).await
    }
}

fn send_vars(port: u16) -> Value {
    json!({
        "authentication": { "type": "none" },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 10 },
        "from": "a@example.test", "to": "b@example.test",
        "subject": "Order 42", "body": "b"
    })
}

/// A loopback port nothing listens on: a send there is CONNECTION_FAILED (retryable).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_expression_shapes_the_completion() {
    let (port, received) = fake_smtp::sink(Duration::ZERO).await;
    let s = start().await;
    // The response's fields are in scope at the top level and as `response`.
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultExpression": "= { id: messageId, title: upper case(response.subject), ok: sent }" }),
        )
        .await;
    let variables = completed(outcome);
    assert_eq!(variables["title"], "ORDER 42");
    assert_eq!(variables["ok"], true);
    let id = variables["id"].as_str().expect("the message id");
    assert!(id.starts_with('<') && id.ends_with('>'), "{id}");
    assert_eq!(
        variables.as_object().map(|o| o.len()),
        Some(3),
        "only the expression's entries: {variables}"
    );
    assert_eq!(received.lock().unwrap().len(), 1);

    // A null result adds nothing; with resultVariable, both are written and the expression's
    // keys win a clash.
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultVariable": "r", "resultExpression": "null" }),
        )
        .await;
    assert_eq!(completed(outcome)["r"]["subject"], "Order 42");
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultVariable": "r", "resultExpression": "{ r: \"mine\", subject: response.subject }" }),
        )
        .await;
    assert_eq!(
        completed(outcome),
        json!({ "r": "mine", "subject": "Order 42" })
    );
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultVariable": "r", "resultExpression": "{ sent: sent }" }),
        )
        .await;
    let variables = completed(outcome);
    assert_eq!(variables["sent"], true);
    assert_eq!(variables["r"]["subject"], "Order 42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_is_not_a_context_is_invalid_input_without_retries() {
    let (port, _received) = fake_smtp::sink(Duration::ZERO).await;
    let s = start().await;
    for expression in ["= response.subject", "[1, 2]", "true"] {
        let (_, outcome) = s
            .send(port, json!({ "resultExpression": expression }))
            .await;
        let (retries, message, _) = failed(outcome);
        assert_eq!(retries, 0, "{expression}: {message}");
        assert!(
            message.starts_with("INVALID_INPUT: ") && message.contains("resultExpression"),
            "{expression}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_expression_is_refused_before_the_operation_runs() {
    let (port, connections, _listener) = counting_listener().await;
    let s = start().await;
    let cases = [
        (
            "resultExpression",
            "= { id: uuid() }",
            "resultExpression: unsupported at 1:9",
        ),
        (
            "resultExpression",
            "{ a: }",
            "resultExpression: syntax error at 1:",
        ),
        (
            "errorExpression",
            "if then",
            "errorExpression: syntax error at 1:",
        ),
    ];
    for (header, expression, expected) in cases {
        let (_, outcome) = s.send(port, json!({ header: expression })).await;
        let (retries, message, _) = failed(outcome);
        assert_eq!(retries, 0, "{message}");
        assert!(
            message.starts_with("INVALID_INPUT: ") && message.contains(expected),
            "{expression}: {message}"
        );
    }
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the SMTP server must not be contacted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_expression_throws_a_bpmn_error_with_our_code_in_scope() {
    let port = closed_port().await;
    let s = start().await;
    let expression = r#"= if error.code = "CONNECTION_FAILED"
        then bpmnError("NO_SERVER", "unreachable: " + error.message,
                       { why: error.code, retriesLeft: job.retries, kind: error.type })
        else null"#;
    let (key, outcome) = s.send(port, json!({ "errorExpression": expression })).await;
    let (code, message) = thrown(outcome);
    assert_eq!(code, "NO_SERVER");
    assert!(
        message.starts_with("unreachable: CONNECTION_FAILED: smtp:send on 127.0.0.1:"),
        "{message}"
    );
    let variables = &s.gateway.error_variables(key)[0];
    assert_eq!(variables["why"], "CONNECTION_FAILED");
    assert_eq!(variables["retriesLeft"], 3);
    assert!(
        variables["kind"]
            .as_str()
            .is_some_and(|t| t.ends_with("ConnectorException")),
        "{variables}"
    );

    // A BPMN error without a code is ignored: the normal outcome follows.
    let (_, outcome) = s
        .send(
            port,
            json!({ "errorExpression": "{ errorType: \"bpmnError\", errorMessage: \"x\" }", "retryBackoff": "PT3S" }),
        )
        .await;
    let (retries, message, backoff) = failed(outcome);
    assert_eq!((retries, backoff), (2, 3000), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_error_sets_retries_backoff_and_variables() {
    let port = closed_port().await;
    let s = start().await;
    let (key, outcome) = s
        .send(
            port,
            json!({ "errorExpression": "jobError(\"try later\", { attempt: job.retries }, job.retries - 1, @\"PT7S\")" }),
        )
        .await;
    let (retries, message, backoff) = failed(outcome);
    assert_eq!((retries, backoff), (2, 7000));
    assert_eq!(
        message,
        "try later | Error variables: {attempt=3, error=try later}"
    );
    assert_eq!(
        s.gateway.error_variables(key)[0],
        json!({ "attempt": 3, "error": "try later" })
    );

    // Camunda's defaults: retries 0 (an incident at once), no backoff.
    let (_, outcome) = s
        .send(
            port,
            json!({ "errorExpression": "jobError(\"stop\")", "retryBackoff": "PT9S" }),
        )
        .await;
    let (retries, _, backoff) = failed(outcome);
    assert_eq!((retries, backoff), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_error_completes_and_null_keeps_the_normal_outcome() {
    let port = closed_port().await;
    let s = start().await;
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultVariable": "r", "errorExpression": "ignoreError({ handled: error.code })" }),
        )
        .await;
    assert_eq!(
        completed(outcome),
        json!({ "handled": "CONNECTION_FAILED" }),
        "only the variables of ignoreError"
    );

    let (_, outcome) = s
        .send(
            port,
            json!({ "errorExpression": "if error.code = \"TIMEOUT\" then bpmnError(\"SLOW\", \"\") else null",
                    "retryBackoff": "PT4S" }),
        )
        .await;
    let (retries, message, backoff) = failed(outcome);
    assert_eq!((retries, backoff), (2, 4000));
    assert!(message.starts_with("CONNECTION_FAILED: "), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_expression_runs_after_success_too() {
    let (port, received) = fake_smtp::sink(Duration::ZERO).await;
    let s = start().await;
    // With resultVariable, `response` is the mapped output and its entries are at the top.
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultVariable": "r",
                    "errorExpression": "if response.r.sent and r.subject = \"Order 42\" then jobError(\"sent, but no\") else null" }),
        )
        .await;
    let (retries, message, _) = failed(outcome);
    assert_eq!(retries, 0);
    assert!(message.starts_with("sent, but no"), "{message}");

    // Without resultVariable or resultExpression, `response` is the operation's response.
    let (key, outcome) = s
        .send(
            port,
            json!({ "errorExpression": "if response.sent then bpmnError(\"SENT\", subject, { id: messageId }) else null" }),
        )
        .await;
    let (code, message) = thrown(outcome);
    assert_eq!((code.as_str(), message.as_str()), ("SENT", "Order 42"));
    assert!(s.gateway.error_variables(key)[0]["id"].is_string());

    // The result expression's output is what the error expression sees.
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultExpression": "{ n: 1 }", "errorExpression": "if n = 1 then ignoreError({ seen: response }) else null" }),
        )
        .await;
    assert_eq!(completed(outcome), json!({ "seen": { "n": 1 } }));

    // null: the completion as usual.
    let (_, outcome) = s
        .send(
            port,
            json!({ "resultVariable": "r", "errorExpression": "null" }),
        )
        .await;
    assert_eq!(completed(outcome)["r"]["sent"], true);
    assert_eq!(received.lock().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_expression_decides_before_bpmn_errors() {
    let port = closed_port().await;
    let s = start().await;
    let (_, outcome) = s
        .send(
            port,
            json!({ "bpmnErrors": "CONNECTION_FAILED",
                    "errorExpression": "bpmnError(\"MAPPED\", error.code)" }),
        )
        .await;
    assert_eq!(
        thrown(outcome),
        ("MAPPED".to_string(), "CONNECTION_FAILED".to_string())
    );
    let (_, outcome) = s
        .send(
            port,
            json!({ "bpmnErrors": "CONNECTION_FAILED", "errorExpression": "null" }),
        )
        .await;
    let (code, message) = thrown(outcome);
    assert_eq!(code, "CONNECTION_FAILED");
    assert!(message.starts_with("CONNECTION_FAILED: "), "{message}");

    // An error expression that fails, or names no code, is a failure with retries 0 naming
    // the header.
    for expression in [
        "\"just text\"",
        "bpmnError(\" \", \"x\")",
        "{ errorType: \"oops\" }",
    ] {
        let (_, outcome) = s.send(port, json!({ "errorExpression": expression })).await;
        let (retries, message, _) = failed(outcome);
        assert_eq!(retries, 0);
        assert!(
            message.starts_with("INVALID_INPUT: ") && message.contains("errorExpression"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expensive_expression_ends_within_its_bounds_with_a_coded_outcome() {
    let (port, _received) = fake_smtp::sink(Duration::ZERO).await;
    let s = start().await;
    // A million items in all, each product within the iteration bound: the step bound ends it.
    let expensive = "{ n: count(flatten(for i in 1..1000 return for j in 1..1000 return i * j)) }";
    for header in ["resultExpression", "errorExpression"] {
        let started = Instant::now();
        let (_, outcome) = s.send(port, json!({ header: expensive })).await;
        let took = started.elapsed();
        let (retries, message, _) = failed(outcome);
        assert_eq!(retries, 0, "{message}");
        assert!(
            message.starts_with("INVALID_INPUT: ")
                && message.contains(&format!("{header}: evaluation limit reached")),
            "{message}"
        );
        assert!(took < Duration::from_secs(5), "{header}: took {took:?}");
    }
    // Meanwhile and after, the worker serves other jobs.
    let (_, outcome) = s.send(port, json!({ "resultVariable": "r" })).await;
    assert_eq!(completed(outcome)["r"]["sent"], true);
}

/// What an expression sees was masked first: a response that quotes a secret of the job shows
/// `***`, and `{{secrets.NAME}}` written into an expression is text, never resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expressions_never_see_or_leak_a_secret() {
    let tb = testbed();
    let secret = "feel2-pw";
    let s = start_with(&[("EMAIL_SECRET_FEEL_PW", secret)]).await;
    let variables = json!({
        "authentication": { "type": "simple", "username": "feel2@example.test", "password": "{{secrets.FEEL_PW}}" },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_SUBMISSION"), "security": "starttls",
                    "serverCertificate": tb.ca_pem(), "timeoutSeconds": 10 },
        "from": "feel2@example.test", "to": "x@discard.test",
        "subject": format!("the password is {secret}"), "body": "b"
    });
    let (key, outcome) = s
        .run(
            SEND,
            variables.clone(),
            json!({
                "resultExpression": "{ s: subject, literal: \"{{secrets.FEEL_PW}}\", x: missing.name }",
                "errorExpression": "bpmnError(\"LEAK\", s + \" \" + response.s, { r: response, all: get entries(response) })"
            }),
        )
        .await;
    let (code, message) = thrown(outcome);
    assert_eq!(code, "LEAK");
    assert_eq!(message, "the password is *** the password is ***");
    let thrown_variables = s.gateway.error_variables(key)[0].to_string();
    assert!(
        thrown_variables.contains("{{secrets.FEEL_PW}}"),
        "a placeholder in an expression stays text: {thrown_variables}"
    );
    assert!(!thrown_variables.contains(secret), "{thrown_variables}");

    // A failure: the message in scope is the masked one.
    let mut wrong = variables;
    wrong["authentication"]["username"] = json!(format!("{secret}@example.test"));
    let (key, outcome) = s
        .run(
            SEND,
            wrong,
            json!({ "errorExpression": "jobError(string(error), { e: error })" }),
        )
        .await;
    let (_, message, _) = failed(outcome);
    assert!(message.contains("AUTHENTICATION_FAILED"), "{message}");
    let text = format!("{message} {:?}", s.gateway.error_variables(key));
    assert!(!text.contains(secret), "{text}");
    assert!(!s.worker.logs().contains(secret));
}

async fn inbox_ids(user: &str) -> Vec<String> {
    flags_by_message_id(user, "INBOX")
        .await
        .into_keys()
        .collect()
}

/// The POP3 delete-after-read happens only once the gateway accepted a completion: an
/// ignoreError completes (the mail goes), a jobError or bpmnError after the read does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_read_deletes_only_when_the_job_completes() {
    let tb = testbed();
    let s = start().await;
    clear_inbox("feel1").await;
    let tag = unique("feel");
    let ids: Vec<String> = (0..4).map(|i| format!("{i}-{tag}@example.test")).collect();
    let messages: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| {
            format!("Message-ID: <{id}>\r\nFrom: a@example.test\r\nSubject: S {id}\r\n\r\nbody\r\n")
                .into_bytes()
        })
        .collect();
    let entries: Vec<(&[u8], &str)> = messages.iter().map(|m| (m.as_slice(), "")).collect();
    append("feel1", "INBOX", &entries).await;
    let read = |id: &str| {
        json!({
            "authentication": { "type": "simple", "username": "feel1@example.test", "password": "feel1-pw" },
            "server": { "host": "127.0.0.1", "port": tb.port("PORT_POP3S"), "security": "tls",
                        "serverCertificate": tb.ca_pem(), "timeoutSeconds": 20 },
            "messageId": format!("<{id}>")
        })
    };
    let pop3 = "email:pop3:read:1";
    let (_, outcome) = s
        .run(
            pop3,
            read(&ids[0]),
            json!({ "errorExpression": "jobError(\"not now\", {}, 2, @\"PT1S\")" }),
        )
        .await;
    assert_eq!(failed(outcome).0, 2);
    let (_, outcome) = s
        .run(
            pop3,
            read(&ids[1]),
            json!({ "errorExpression": "bpmnError(\"SEEN\", subject)" }),
        )
        .await;
    assert_eq!(thrown(outcome).0, "SEEN");
    let (_, outcome) = s
        .run(
            pop3,
            read(&ids[2]),
            json!({ "resultExpression": "{ s: subject }", "errorExpression": "ignoreError({ kept: response.s })" }),
        )
        .await;
    assert_eq!(completed(outcome)["kept"], format!("S {}", ids[2]));
    // A result expression that fails after the read: the mail stays too.
    let (_, outcome) = s
        .run(
            pop3,
            read(&ids[3]),
            json!({ "resultExpression": "subject" }),
        )
        .await;
    assert_eq!(failed(outcome).0, 0);

    let gone = format!("<{}>", ids[2]);
    let deadline = Instant::now() + WAIT;
    while inbox_ids("feel1").await.contains(&gone) {
        assert!(
            Instant::now() < deadline,
            "the ignored error's mail was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let left = inbox_ids("feel1").await;
    for kept in [&ids[0], &ids[1], &ids[3]] {
        assert!(
            left.contains(&format!("<{kept}>")),
            "{kept} was deleted although its job did not complete: {left:?}"
        );
    }
    clear_inbox("feel1").await;
}

/// An error expression also sees failures of the mailbox itself, by our code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_not_found_maps_to_a_bpmn_error() {
    let tb = testbed();
    let s = start().await;
    let variables = json!({
        "authentication": { "type": "simple", "username": "feel2@example.test", "password": "feel2-pw" },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_POP3S"), "security": "tls",
                    "serverCertificate": tb.ca_pem(), "timeoutSeconds": 20 },
        "messageId": "<nowhere@example.test>"
    });
    let (_, outcome) = s
        .run(
            "email:pop3:read:1",
            variables,
            json!({ "errorExpression": "= if error.code = \"EMAIL_NOT_FOUND\" then bpmnError(\"NOT_FOUND\", error.message) else null" }),
        )
        .await;
    let (code, message) = thrown(outcome);
    assert_eq!(code, "NOT_FOUND");
    assert!(
        message.starts_with("EMAIL_NOT_FOUND: pop3:read on "),
        "{message}"
    );
}

/// The examples of both headers in docs/expressions.md are expressions the worker accepts.
#[test]
fn the_readme_examples_parse() {
    let readme = include_str!("../../docs/expressions.md");
    let section = readme
        .split("# Result and error expressions")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("the expressions document");
    let examples: Vec<&str> = section.lines().filter(|l| l.starts_with("= ")).collect();
    assert!(examples.len() >= 6, "{examples:?}");
    for example in examples {
        for header in ["resultExpression", "errorExpression"] {
            let headers = json!({ header: example }).to_string();
            if let Err(e) = email_connector::job::JobHeaders::parse(&headers) {
                panic!("{example}: {}", e.message);
            }
        }
    }
}
