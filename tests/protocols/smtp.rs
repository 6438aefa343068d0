//! SMTP send end to end: test gateway → worker process → Postfix → Dovecot, with delivery
//! checked over IMAP and every outcome checked as the gateway received it.

use crate::support;

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway};
use support::mailbox::fetch_by_subject;
use support::{WorkerProcess, testbed, unique};

const SEND: &str = "email:smtp:send:1";
const WAIT: Duration = Duration::from_secs(20);

/// Variables for submission on the STARTTLS port as `user`.
fn submission(user: &str) -> Value {
    let tb = testbed();
    json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_SUBMISSION"), "security": "starttls", "serverCertificate": tb.ca_pem(), "timeoutSeconds": 10 },
        "from": format!("{user}@example.test")
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn result_headers() -> Value {
    json!({ "resultVariable": "result", "retryBackoff": "PT5S" })
}

struct Setup {
    gateway: TestGateway,
    worker: WorkerProcess,
}

async fn setup(env: &[(&str, &str)]) -> Setup {
    testbed();
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(&gateway.url(), env);
    Setup { gateway, worker }
}

async fn run_job(setup: &Setup, variables: Value, headers: Value, retries: i32) -> (i64, Outcome) {
    let key = setup.gateway.create_job(SEND, variables, headers, retries);
    let outcome = setup.gateway.wait_outcome(key, WAIT).await;
    (key, outcome)
}

fn completed_result(outcome: &Outcome) -> &Value {
    match outcome {
        Outcome::Completed { variables } => &variables["result"],
        other => panic!("expected completion, got {other:?}"),
    }
}

fn failure(outcome: &Outcome) -> (i32, &str, i64) {
    match outcome {
        Outcome::Failed {
            retries,
            message,
            backoff_ms,
        } => (*retries, message.as_str(), *backoff_ms),
        other => panic!("expected a failure, got {other:?}"),
    }
}

async fn delivered(user: &str, marker: &str, count: usize) -> Vec<Vec<u8>> {
    let messages = fetch_by_subject(testbed().port("PORT_IMAP"), user, marker, count, WAIT).await;
    assert_eq!(
        messages.len(),
        count,
        "{user} should have {count} message(s) with {marker}"
    );
    messages
}

fn header_section(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    &raw[..end]
}

#[tokio::test]
async fn plain_text_is_one_text_plain_part_with_the_documented_response() {
    let s = setup(&[]).await;
    let marker = unique("plain");
    let vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": marker, "body": "Hello Bob\r\n.\r\nA line with a dot." }),
    );
    let (key, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let result = completed_result(&outcome);
    assert_eq!(result["sent"], true);
    assert_eq!(result["subject"], marker.as_str());
    let message_id = result["messageId"].as_str().expect("messageId");
    assert!(
        message_id.starts_with(&format!("<{key}.")) && message_id.ends_with("@example.test>"),
        "{message_id}"
    );

    let raw = &delivered("bob", &marker, 1).await[0];
    let message = MessageParser::default().parse(raw).expect("parse");
    assert_eq!(
        message.message_id(),
        Some(&message_id[1..message_id.len() - 1])
    );
    let content_type = message.content_type().expect("content type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
    assert_eq!(
        message.body_text(0).as_deref().map(str::trim_end),
        Some("Hello Bob\r\n.\r\nA line with a dot.")
    );
    assert_eq!(
        message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("alice@example.test")
    );
}

#[tokio::test]
async fn text_and_html_arrive_as_multipart_alternative() {
    let s = setup(&[]).await;
    let marker = unique("alt");
    let vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": marker, "body": "plain version", "htmlBody": "<p>html version</p>" }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    completed_result(&outcome);
    let raw = &delivered("bob", &marker, 1).await[0];
    let message = MessageParser::default().parse(raw).expect("parse");
    let content_type = message.content_type().expect("content type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(
        message.body_text(0).as_deref().map(str::trim),
        Some("plain version")
    );
    assert_eq!(
        message.body_html(0).as_deref().map(str::trim),
        Some("<p>html version</p>")
    );
}

#[tokio::test]
async fn utf8_subject_and_attachment_name_are_encoded_and_arrive_intact() {
    let s = setup(&[]).await;
    let marker = unique("utf8");
    let subject = format!("Grüße aus Köln ✉ {marker}");
    let pdf = b"%PDF-1.4\n\x00\x01\x02 binary \xff\xfe".to_vec();
    use base64::Engine;
    let vars = with(
        submission("alice"),
        json!({
            "to": "bob@example.test", "subject": subject, "body": "Anbei die Rechnung für März.",
            "attachments": [{ "fileName": "Rechnung_ä €.pdf", "contentType": "application/pdf",
                              "content": base64::engine::general_purpose::STANDARD.encode(&pdf) }]
        }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    assert_eq!(completed_result(&outcome)["subject"], subject.as_str());
    let raw = &delivered("bob", &marker, 1).await[0];
    assert!(
        header_section(raw).iter().all(|b| *b < 128),
        "headers must be 7-bit"
    );
    let message = MessageParser::default().parse(raw).expect("parse");
    assert_eq!(message.subject(), Some(subject.as_str()));
    assert_eq!(
        message.body_text(0).as_deref().map(str::trim),
        Some("Anbei die Rechnung für März.")
    );
    let attachment = message.attachments().next().expect("an attachment");
    assert_eq!(attachment.attachment_name(), Some("Rechnung_ä €.pdf"));
    assert_eq!(attachment.contents(), pdf.as_slice());
    let content_type = message.content_type().expect("content type");
    assert_eq!(content_type.subtype(), Some("mixed"));
}

#[tokio::test]
async fn to_and_cc_as_comma_string_and_as_array_reach_everyone() {
    let s = setup(&[]).await;
    let marker = unique("rcpt");
    let vars = with(
        submission("alice"),
        json!({ "to": "Bob <bob@example.test>, carol@example.test", "cc": ["dave@example.test", "Erin <erin@example.test>"], "subject": marker, "body": "hi all" }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    completed_result(&outcome);
    for user in ["bob", "carol", "dave", "erin"] {
        let raw = &delivered(user, &marker, 1).await[0];
        let message = MessageParser::default().parse(raw).expect("parse");
        let cc: Vec<&str> = message
            .cc()
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(cc, ["dave@example.test", "erin@example.test"]);
        let to: Vec<&str> = message
            .to()
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(to, ["bob@example.test", "carol@example.test"]);
    }
}

#[tokio::test]
async fn bcc_is_delivered_but_absent_from_the_headers() {
    let s = setup(&[]).await;
    let marker = unique("bcc");
    let vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "bcc": ["frank@example.test"], "subject": marker, "body": "secret copy" }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    completed_result(&outcome);
    for user in ["bob", "frank"] {
        let raw = &delivered(user, &marker, 1).await[0];
        let text = String::from_utf8_lossy(header_section(raw)).to_ascii_lowercase();
        assert!(!text.contains("bcc:"), "{user}: {text}");
        assert!(
            !text.contains("frank@example.test") || text.contains("for <frank@example.test>"),
            "{user}: frank visible: {text}"
        );
    }
}

#[tokio::test]
async fn reply_to_references_and_a_custom_header_are_sent() {
    let s = setup(&[]).await;
    let marker = unique("hdr");
    let vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": marker, "body": "b", "replyTo": "Support <support@example.test>",
                "headers": { "X-Ticket-Id": "T-42 ✓" }, "inReplyTo": "<orig@example.test>", "references": ["<root@example.test>", "<orig@example.test>"] }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    completed_result(&outcome);
    let raw = &delivered("bob", &marker, 1).await[0];
    let message = MessageParser::default().parse(raw).expect("parse");
    let reply_to: Vec<&str> = message
        .reply_to()
        .into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(reply_to, ["support@example.test"]);
    // Non-ASCII in a custom header travels as an RFC 2047 encoded word ("4pyT" is ✓ in base64).
    assert_eq!(
        message.header("X-Ticket-Id").and_then(|h| h.as_text()),
        Some("T-42 =?utf-8?b?4pyT?=")
    );
    assert_eq!(message.in_reply_to().as_text(), Some("orig@example.test"));
    let references = message
        .references()
        .as_text_list()
        .map(|l| l.to_vec())
        .unwrap_or_default();
    assert_eq!(references.len(), 2, "{references:?}");
}

#[tokio::test]
async fn every_security_mode_delivers() {
    let s = setup(&[]).await;
    let tb = testbed();
    let cases = [
        (
            "tls",
            tb.port("PORT_SUBMISSIONS"),
            json!({ "type": "simple", "username": "alice@example.test", "password": "alice-pw" }),
        ),
        (
            "starttls",
            tb.port("PORT_SUBMISSION"),
            json!({ "type": "simple", "username": "alice@example.test", "password": "alice-pw" }),
        ),
        ("none", tb.port("PORT_SMTP"), json!({ "type": "none" })),
    ];
    for (security, port, auth) in cases {
        let marker = unique(&format!("sec-{security}"));
        let vars = json!({
            "authentication": auth,
            "server": { "host": "127.0.0.1", "port": port, "security": security, "serverCertificate": tb.ca_pem(), "timeoutSeconds": 10 },
            "from": "alice@example.test", "to": "grace@example.test", "subject": marker, "body": security
        });
        let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
        assert_eq!(completed_result(&outcome)["sent"], true, "{security}");
        delivered("grace", &marker, 1).await;
    }
}

#[tokio::test]
async fn wrong_password_is_authentication_failed_without_retries() {
    let s = setup(&[]).await;
    let mut vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "x", "body": "x" }),
    );
    vars["authentication"]["password"] = json!("wrong-password");
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    assert!(
        message.starts_with(&format!(
            "AUTHENTICATION_FAILED: smtp:send on 127.0.0.1:{}",
            testbed().port("PORT_SUBMISSION")
        )),
        "{message}"
    );
    assert!(!message.contains("wrong-password"), "{message}");
}

#[tokio::test]
async fn unknown_recipient_is_recipients_rejected() {
    let s = setup(&[]).await;
    let vars = with(
        submission("alice"),
        json!({ "to": "nobody-here@example.test", "subject": "x", "body": "x" }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    assert!(message.starts_with("RECIPIENTS_REJECTED: "), "{message}");
    assert!(message.contains("nobody-here@example.test"), "{message}");
}

#[tokio::test]
async fn closed_port_is_connection_failed_with_retries_decremented_and_backoff() {
    let s = setup(&[]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "x", "body": "x" }),
    );
    vars["server"]["port"] = json!(closed);
    let (_, outcome) = run_job(&s, vars, json!({ "retryBackoff": "PT7S" }), 3).await;
    let (retries, message, backoff_ms) = failure(&outcome);
    assert_eq!((retries, backoff_ms), (2, 7000));
    assert!(
        message.starts_with(&format!(
            "CONNECTION_FAILED: smtp:send on 127.0.0.1:{closed}"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn line_breaks_in_headers_are_invalid_input_naming_each_field() {
    let s = setup(&[]).await;
    let vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "Hi\r\nBcc: victim@example.test", "body": "x", "headers": { "X-Evil": "a\nb", "Message-ID": "<forged@x>" } }),
    );
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    assert!(message.starts_with("INVALID_INPUT: "), "{message}");
    for pointer in ["/subject:", "/headers/X-Evil:", "/headers/Message-ID:"] {
        assert!(message.contains(pointer), "{pointer} in {message}");
    }
}

#[tokio::test]
async fn invalid_variables_report_every_violation_with_its_pointer() {
    let s = setup(&[]).await;
    let vars = json!({
        "authentication": { "type": "simple", "username": "alice@example.test" },
        "server": { "host": "127.0.0.1", "port": "587", "colour": "blue" },
        "to": "bob@example.test", "body": "x",
        "unrelatedProcessVariable": { "kept": true }
    });
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    for expected in [
        "/: \"from\" is a required property",
        "/authentication: \"password\" is a required property",
        "/server/port",
        "/server: Additional properties are not allowed ('colour' was unexpected)",
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    assert!(!message.contains("unrelatedProcessVariable"), "{message}");
}

#[tokio::test]
async fn secrets_are_resolved_and_never_appear_in_errors_or_logs() {
    let password = "Pw-0f-Alice-9137";
    let leaky = "not-an-address-4711-SECRET";
    let s = setup(&[
        ("EMAIL_SECRET_ALICE_PW", password),
        ("EMAIL_SECRET_LEAKY", leaky),
    ])
    .await;
    // Alice's real password is alice-pw. A placeholder outside the connection settings is
    // text: in `from` it stays as typed, and the bad address is echoed as typed.
    let marker = unique("secret");
    let mut ok = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": marker, "body": "x" }),
    );
    ok["authentication"]["password"] = json!("{{secrets.ALICE_PW_REAL}}");
    let (_, missing) = run_job(&s, ok.clone(), result_headers(), 3).await;
    let (retries, message, _) = failure(&missing);
    assert_eq!(retries, 0);
    assert!(
        message.contains("ALICE_PW_REAL") && message.contains("/authentication/password"),
        "{message}"
    );

    let mut echoed = ok.clone();
    echoed["authentication"]["password"] = json!("{{secrets.ALICE_PW}}");
    echoed["from"] = json!("{{secrets.LEAKY}}");
    let (_, invalid) = run_job(&s, echoed, result_headers(), 3).await;
    let (_, message, _) = failure(&invalid);
    assert!(
        message.contains("/from") && message.contains("{{secrets.LEAKY}}"),
        "{message}"
    );
    assert!(!message.contains(leaky), "{message}");

    let mut wrong = ok;
    wrong["authentication"]["password"] = json!("{{secrets.ALICE_PW}}");
    let (_, rejected) = run_job(&s, wrong, result_headers(), 3).await;
    let (_, message, _) = failure(&rejected);
    assert!(message.starts_with("AUTHENTICATION_FAILED"), "{message}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = s.worker.logs();
    assert!(logs.contains("job failed"), "the worker logged: {logs}");
    assert!(!logs.contains(password), "password in logs:\n{logs}");
    assert!(!logs.contains(leaky), "secret in logs:\n{logs}");
}

#[tokio::test]
async fn a_retried_job_sends_the_same_message_id() {
    let s = setup(&[]).await;
    let marker = unique("retry");
    let vars = with(
        submission("alice"),
        json!({ "to": "heidi@example.test", "subject": marker, "body": "once, twice" }),
    );
    let key = s.gateway.create_job(SEND, vars, result_headers(), 3);
    let first = s.gateway.wait_outcome(key, WAIT).await;
    // Zeebe hands the job out again when a completion is lost: same key, same variables.
    s.gateway.requeue(key);
    let both = s.gateway.wait_outcomes(key, 2, WAIT).await;
    let id = completed_result(&first)["messageId"].clone();
    assert_eq!(completed_result(&both[1])["messageId"], id);
    let ids: Vec<String> = delivered("heidi", &marker, 2)
        .await
        .iter()
        .map(|raw| {
            MessageParser::default()
                .parse(raw)
                .and_then(|m| m.message_id().map(str::to_string))
                .expect("id")
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(format!("<{}>", ids[0]), id.as_str().unwrap_or_default());
}

#[tokio::test]
async fn an_untrusted_certificate_is_tls_error_without_retries() {
    let s = setup(&[]).await;
    let mut vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "x", "body": "x" }),
    );
    vars["server"]["serverCertificate"] = json!(testbed().other_ca_pem());
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    assert!(message.starts_with("TLS_ERROR: "), "{message}");
}

#[tokio::test]
async fn tls_spoken_to_a_plaintext_port_is_tls_error() {
    let s = setup(&[]).await;
    let mut vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "x", "body": "x" }),
    );
    vars["server"]["port"] = json!(testbed().port("PORT_SMTP"));
    vars["server"]["security"] = json!("tls");
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    assert!(message.starts_with("TLS_ERROR: "), "{message}");
}

#[tokio::test]
async fn a_server_that_never_greets_is_timeout_with_retries_decremented() {
    let s = setup(&[]).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let mut vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "x", "body": "x" }),
    );
    vars["server"]["port"] = json!(port);
    vars["server"]["timeoutSeconds"] = json!(1);
    let started = std::time::Instant::now();
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, backoff) = failure(&outcome);
    assert_eq!((retries, backoff), (2, 5000));
    assert!(message.starts_with("TIMEOUT: "), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    holder.abort();
}

#[tokio::test]
async fn bpmn_errors_header_turns_codes_into_thrown_errors() {
    let s = setup(&[]).await;
    let mut vars = with(
        submission("alice"),
        json!({ "to": "bob@example.test", "subject": "x", "body": "x" }),
    );
    vars["authentication"]["password"] = json!("nope");
    let (_, outcome) = run_job(
        &s,
        vars,
        json!({ "bpmnErrors": "AUTHENTICATION_FAILED,RECIPIENTS_REJECTED" }),
        3,
    )
    .await;
    match outcome {
        Outcome::Thrown { code, message } => {
            assert_eq!(code, "AUTHENTICATION_FAILED");
            assert!(message.starts_with("AUTHENTICATION_FAILED: "), "{message}");
        }
        other => panic!("expected a thrown error, got {other:?}"),
    }
}

#[tokio::test]
async fn job_timeout_header_is_applied_and_no_result_variable_means_no_variables() {
    let s = setup(&[]).await;
    let marker = unique("jt");
    let vars = with(
        submission("alice"),
        json!({ "to": "ivan@example.test", "subject": marker, "body": "x" }),
    );
    let (key, outcome) = run_job(&s, vars, json!({ "jobTimeout": "PT2M" }), 3).await;
    assert_eq!(
        outcome,
        Outcome::Completed {
            variables: Value::Null
        }
    );
    assert!(
        s.gateway.timeout_updates().contains(&(key, 120_000)),
        "{:?}",
        s.gateway.timeout_updates()
    );
    delivered("ivan", &marker, 1).await;
}

/// What a task made with the element template sends when the modeler leaves fields empty:
/// Zeebe maps an empty input to null, which must mean "not set" and apply the default.
#[tokio::test]
async fn fields_left_empty_in_the_modeler_arrive_as_null_and_mean_not_set() {
    let s = setup(&[]).await;
    let marker = unique("nulls");
    let mut vars = with(
        submission("alice"),
        json!({
            "to": "bob@example.test", "subject": marker, "body": "from the template",
            "cc": null, "bcc": null, "replyTo": null, "htmlBody": null, "attachments": null,
            "headers": null, "inReplyTo": null, "references": null
        }),
    );
    vars["server"]["timeoutSeconds"] = Value::Null;
    vars["server"]["acceptInvalidCertificates"] = json!(false);
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    assert_eq!(completed_result(&outcome)["sent"], true);
    let raw = &delivered("bob", &marker, 1).await[0];
    let message = MessageParser::default().parse(raw).expect("parse");
    let content_type = message.content_type().expect("content type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
    assert!(message.cc().is_none() && message.reply_to().is_none());

    // A required field left empty is still a mistake, named by its pointer.
    let mut vars = submission("alice");
    vars["from"] = Value::Null;
    vars["authentication"]["password"] = Value::Null;
    vars["to"] = json!("bob@example.test");
    let (_, outcome) = run_job(&s, vars, result_headers(), 3).await;
    let (retries, message, _) = failure(&outcome);
    assert_eq!(retries, 0);
    assert!(message.starts_with("INVALID_INPUT"), "{message}");
    assert!(
        message.contains("from") && message.contains("/authentication"),
        "{message}"
    );
}

/// Sends wait on the server, not on the CPU: 16 of them on 16 slots, against a server that
/// takes a second to accept each message, take about a second in all, not several.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_sends_to_a_slow_server_run_side_by_side() {
    let (port, received) = support::fake_smtp::sink(Duration::from_secs(1)).await;
    let gateway = TestGateway::start().await;
    // A backlog before the worker starts: only polling finds it.
    let keys: Vec<i64> = (0..16)
        .map(|i| {
            gateway.create_job(
                SEND,
                json!({
                    "authentication": { "type": "none" },
                    "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 30 },
                    "from": "a@example.test", "to": "b@example.test",
                    "subject": format!("parallel {i}"), "body": "b"
                }),
                json!({ "resultVariable": "r" }),
                3,
            )
        })
        .collect();
    let _worker = WorkerProcess::start(&gateway.url(), &[("EMAIL_MAX_JOBS_ACTIVE", "16")]);
    let deadline = std::time::Instant::now() + WAIT;
    while received.lock().expect("lock").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no message arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = std::time::Instant::now();
    for key in keys {
        assert!(matches!(
            gateway.wait_outcome(key, WAIT).await,
            Outcome::Completed { .. }
        ));
    }
    let all = first.elapsed();
    assert_eq!(received.lock().expect("lock").len(), 16);
    assert!(
        all < Duration::from_millis(1800),
        "16 sends of about 1 s each took {all:?} after the first arrived: they waited for one another"
    );
}
