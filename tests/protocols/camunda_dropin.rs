//! The drop-in for Camunda's Email connector end to end: jobs built from Camunda's own element
//! templates (every outbound version, the hybrid one and the two shipped in 8.6/8.7) exactly
//! as the engine builds them, and Camunda's own wire examples, served by the worker process
//! under `io.camunda:email:1` against the mail testbed; every response compared with the
//! shape Camunda's connector returns.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::camunda_template::{OUTBOUND, Template, integration_cases};
use support::gateway::{Outcome, TestGateway};
use support::{WorkerProcess, testbed, unique};

const CAMUNDA_TYPE: &str = "io.camunda:email:1";
const WAIT: Duration = Duration::from_secs(30);
/// The mailbox IMAP operations act on, the one POP3 operations act on, the sender (whose own
/// mailbox stays empty), and the mailboxes of the other tests: each test has its own, since
/// every test gateway numbers jobs alike and a send's Message-ID follows its job key.
const IMAP_USER: &str = "dropin1";
const POP3_USER: &str = "dropin2";
const SENDER: &str = "dropin3";
const WIRE_USER: &str = "dropin4";
const DOCUMENTS_USER: &str = "dropin5";

struct Setup {
    gateway: TestGateway,
    _worker: WorkerProcess,
}

/// The worker with the drop-in on, and `mailboxes` emptied of what earlier runs left.
async fn setup(mailboxes: &[&str]) -> Setup {
    let tb = testbed();
    for user in mailboxes {
        support::mailbox::clear_inbox(user).await;
    }
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(
        &gateway.url(),
        &[
            ("EMAIL_CAMUNDA_JOB_TYPE", CAMUNDA_TYPE),
            // Camunda's layout has no certificate field: the testbed's CA is the system's.
            ("SSL_CERT_FILE", tb.vars["TESTBED_CA"].as_str()),
        ],
    );
    Setup {
        gateway,
        _worker: worker,
    }
}

impl Setup {
    async fn outcome(&self, job_type: &str, variables: Value, headers: Value) -> Outcome {
        let key = self.gateway.create_job(job_type, variables, headers, 3);
        self.gateway.wait_outcome(key, WAIT).await
    }

    /// The `r` variable of a job that must complete.
    async fn ok(&self, what: &str, job_type: &str, variables: Value, headers: Value) -> Value {
        match self.outcome(job_type, variables.clone(), headers).await {
            Outcome::Completed { variables } => variables["r"].clone(),
            other => panic!("{what}: expected completion, got {other:?}\nvariables: {variables}"),
        }
    }

    async fn failed(&self, variables: Value, headers: Value) -> (i32, String) {
        match self.outcome(CAMUNDA_TYPE, variables, headers).await {
            Outcome::Failed {
                retries, message, ..
            } => (retries, message),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The samples every job of `protocol` gets: the testbed's server and a user's login, typed as
/// the template types them (the 8.6/8.7 templates hold ports as strings).
fn connection(template: &Template, protocol: &str, user: &str) -> Value {
    let tb = testbed();
    let (port, crypto) = match protocol {
        "smtp" => (tb.port("PORT_SUBMISSION"), "TLS"),
        "imap" => (tb.port("PORT_IMAPS"), "TLS"),
        _ => (tb.port("PORT_POP3S"), "SSL"),
    };
    let port_binding = format!("data.{protocol}Config.{protocol}Port");
    let port = if template.property_type(&port_binding) == Some("String") {
        json!(port.to_string())
    } else {
        json!(port)
    };
    json!({
        "protocol": protocol,
        "authentication.type": "simple",
        "authentication.username": format!("{user}@example.test"),
        "authentication.password": format!("{user}-pw"),
        format!("data.{protocol}Config.{protocol}Host"): "127.0.0.1",
        port_binding: port,
        format!("data.{protocol}Config.{protocol}CryptographicProtocol"): crypto,
        "resultVariable": "r",
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().into_iter().flatten() {
        base[k] = v.clone();
    }
    base
}

const READ_KEYS: [&str; 10] = [
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
];

/// Runs `job` from `template` until its result holds one entry (delivery takes a moment).
async fn search_until_found(s: &Setup, template: &Template, samples: Value) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let job = template.job(&samples);
        let found = s
            .ok("search", &job.job_type, job.variables, job.headers)
            .await;
        let hits = found.as_array().expect("search returns an array");
        if !hits.is_empty() || tokio::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What attachment a version can send, as samples: the v5/v6 document picker's helpers, the
/// v2-v4 FEEL field (8.7), or none (v1 and 8.6).
fn attachment_samples(template: &Template) -> Option<Value> {
    let inline = json!({ "camunda.document.type": "inline", "content": "hello drop-in", "name": "hello.txt", "contentType": "text/plain" });
    if template.binds("data.smtpAction.data_smtpAction_attachments_documentMode") {
        Some(json!({
            "data_smtpAction_attachments_documentMode": "single",
            "data_smtpAction_attachments_single_documentSource": "inline",
            "data_smtpAction_attachments_single_inline_content": "hello drop-in",
            "data_smtpAction_attachments_single_inline_fileName": "hello.txt",
            "data_smtpAction_attachments_single_inline_contentType": "text/plain",
        }))
    } else if template.binds("data.smtpAction.attachments") {
        Some(json!({ "data.smtpAction.attachments": [inline] }))
    } else {
        None
    }
}

async fn every_operation_of(s: &Setup, template: &Template) {
    let label = &template.label;
    let folder = format!("Dropin/{}", label.replace('.', "_"));
    let imap_marker = unique(&format!("dropin-imap-{label}"));
    let pop3_marker = unique(&format!("dropin-pop3-{label}"));
    let attachment = attachment_samples(template);
    let multipart = template.binds("data.smtpAction.contentType");

    // send, once to each mailbox
    for (marker, to) in [(&imap_marker, IMAP_USER), (&pop3_marker, POP3_USER)] {
        let mut samples = with(
            connection(template, "smtp", SENDER),
            json!({
                "data.smtpActionDiscriminator": "sendEmailSmtp",
                "data.smtpAction.from": format!("{SENDER}@example.test"),
                "data.smtpAction.to": format!("{to}@example.test"),
                "data.smtpAction.subject": marker,
                "data.smtpAction.body": format!("plain {marker}"),
            }),
        );
        if multipart {
            samples = with(
                samples,
                json!({ "contentType": "MULTIPART", "data.smtpAction.htmlBody": format!("<p>html {marker}</p>") }),
            );
        }
        if let Some(extra) = &attachment {
            samples = with(samples, extra.clone());
        }
        let job = template.job(&samples);
        assert_eq!(job.job_type, CAMUNDA_TYPE, "{label}");
        let sent = s.ok(label, &job.job_type, job.variables, job.headers).await;
        assert_eq!(
            keys(&sent),
            ["subject", "sent", "messageId"],
            "{label}: {sent}"
        );
        assert_eq!(
            (&sent["subject"], &sent["sent"]),
            (&json!(marker), &json!(true))
        );
        assert!(
            sent["messageId"].as_str().unwrap().starts_with('<'),
            "{sent}"
        );
    }

    // IMAP search, list, read, move, delete
    let imap = connection(template, "imap", IMAP_USER);
    let found = search_until_found(
        s,
        template,
        with(
            imap.clone(),
            json!({
                "data.imapActionDiscriminator": "searchEmailsImap",
                "data.imapAction.criteria": { "field": "SUBJECT", "value": imap_marker },
            }),
        ),
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{label}: {found}");
    assert_eq!(keys(&found[0]), ["messageId", "subject"], "{label}");
    let message_id = found[0]["messageId"].as_str().unwrap().to_string();

    let job = template.job(&with(
        imap.clone(),
        json!({ "data.imapActionDiscriminator": "listEmailsImap", "data.imapAction.sortOrder": "DESC" }),
    ));
    let listed = s.ok(label, &job.job_type, job.variables, job.headers).await;
    let listed = listed.as_array().expect("list returns an array");
    assert!(
        listed
            .iter()
            .all(|m| keys(m) == ["messageId", "fromAddress", "subject", "size"])
    );
    let mine = listed
        .iter()
        .find(|m| m["subject"] == json!(imap_marker))
        .unwrap_or_else(|| panic!("{label}: not listed"));
    assert_eq!(mine["fromAddress"], format!("{SENDER}@example.test"));
    assert!(mine["size"].as_u64().unwrap() > 0);

    let job = template.job(&with(
        imap.clone(),
        json!({ "data.imapActionDiscriminator": "readEmailImap", "data.imapAction.messageId": message_id }),
    ));
    let read = s.ok(label, &job.job_type, job.variables, job.headers).await;
    assert_eq!(keys(&read), READ_KEYS, "{label}");
    assert_eq!(read["messageId"], json!(message_id));
    assert_eq!(read["subject"], json!(imap_marker));
    assert!(
        read["headers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| keys(h) == ["key", "value"])
    );
    assert!(
        read["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["key"] == "Subject" && h["value"] == json!(imap_marker)),
        "{read}"
    );
    assert!(
        read["plainTextBody"]
            .as_str()
            .unwrap()
            .contains(&imap_marker)
    );
    if multipart {
        assert!(
            read["htmlBody"].as_str().unwrap().contains("<p>html"),
            "{read}"
        );
    } else {
        assert_eq!(read["htmlBody"], Value::Null);
    }
    assert!(read["receivedDateTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(read["errors"], json!([]));
    let attachments = read["attachments"].as_array().unwrap();
    if attachment.is_some() {
        assert_eq!(attachments.len(), 1, "{label}: {read}");
        assert_eq!(attachments[0]["fileName"], "hello.txt");
        assert_eq!(attachments[0]["content"], "aGVsbG8gZHJvcC1pbg==");
    } else {
        assert!(attachments.is_empty());
    }

    let job = template.job(&with(
        imap.clone(),
        json!({
            "data.imapActionDiscriminator": "moveEmailImap",
            "data.imapAction.messageId": message_id,
            "data.imapAction.fromFolder": "INBOX",
            "data.imapAction.toFolder": folder,
        }),
    ));
    let moved = s.ok(label, &job.job_type, job.variables, job.headers).await;
    assert_eq!(
        moved,
        json!({ "messageId": message_id, "from": "INBOX", "to": folder }),
        "{label}"
    );

    let job = template.job(&with(
        imap.clone(),
        json!({
            "data.imapActionDiscriminator": "deleteEmailImap",
            "data.imapAction.messageId": message_id,
            "data.imapAction.deleteEmailFolder": folder,
        }),
    ));
    let deleted = s.ok(label, &job.job_type, job.variables, job.headers).await;
    assert_eq!(
        deleted,
        json!({ "messageId": message_id, "deleted": true }),
        "{label}"
    );

    // POP3 search, list, read, delete
    let pop3 = connection(template, "pop3", POP3_USER);
    let found = search_until_found(
        s,
        template,
        with(
            pop3.clone(),
            json!({
                "data.pop3ActionDiscriminator": "searchEmailsPop3",
                "data.pop3Action.criteria": { "operator": "AND", "criteria": [{ "field": "SUBJECT", "value": pop3_marker }, { "field": "FROM", "value": SENDER }] },
            }),
        ),
    )
    .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{label}: {found}");
    assert_eq!(keys(&found[0]), ["messageId", "subject"]);
    let message_id = found[0]["messageId"].as_str().unwrap().to_string();

    let job = template.job(&with(
        pop3.clone(),
        json!({ "data.pop3ActionDiscriminator": "listEmailsPop3" }),
    ));
    let listed = s.ok(label, &job.job_type, job.variables, job.headers).await;
    let listed = listed.as_array().expect("list returns an array");
    assert!(
        listed
            .iter()
            .all(|m| keys(m) == ["messageId", "fromAddress", "subject", "size"])
    );
    assert!(
        listed.iter().any(|m| m["messageId"] == json!(message_id)),
        "{label}"
    );

    let job = template.job(&with(
        pop3.clone(),
        json!({ "data.pop3ActionDiscriminator": "readEmailPop3", "data.pop3Action.messageId": message_id }),
    ));
    let read = s.ok(label, &job.job_type, job.variables, job.headers).await;
    assert_eq!(keys(&read), READ_KEYS, "{label}");
    assert_eq!(read["receivedDateTime"], Value::Null);
    assert_eq!(read["subject"], json!(pop3_marker));

    let job = template.job(&with(
        pop3.clone(),
        json!({ "data.pop3ActionDiscriminator": "deleteEmailPop3", "data.pop3Action.messageId": message_id }),
    ));
    let deleted = s.ok(label, &job.job_type, job.variables, job.headers).await;
    assert_eq!(
        deleted,
        json!({ "messageId": message_id, "deleted": true }),
        "{label}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_every_template_version() {
    let s = setup(&[IMAP_USER, POP3_USER]).await;
    for (label, path) in OUTBOUND {
        let template = Template::load(label, path);
        every_operation_of(&s, &template).await;
    }
}

/// Camunda's own integration examples, as job variables: the connection is the testbed's (and
/// the addresses ours, so Postfix delivers), every other field as Camunda wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camundas_wire_examples_run_unchanged() {
    let s = setup(&[WIRE_USER]).await;
    let tb = testbed();
    let login = json!({ "type": "simple", "username": format!("{WIRE_USER}@example.test"), "password": format!("{WIRE_USER}-pw") });
    let marker = unique("dropin-wire");
    let mut sent = 0;
    for mut case in integration_cases("smtp", tb.port("PORT_SMTP"), "") {
        case["authentication"] = login.clone();
        case["data"]["smtpConfig"]["smtpHost"] = json!("127.0.0.1");
        case["data"]["smtpAction"]["from"] = json!(format!("{WIRE_USER}@example.test"));
        case["data"]["smtpAction"]["to"] = json!(format!("{WIRE_USER}@example.test"));
        case["data"]["smtpAction"]["subject"] = json!(format!("{marker}-{sent}"));
        // Documents of Camunda's store exist only in its test; ours has no store here.
        case["data"]["smtpAction"]
            .as_object_mut()
            .unwrap()
            .remove("attachments");
        let r = s
            .ok(
                "smtp example",
                CAMUNDA_TYPE,
                case,
                json!({ "resultVariable": "r" }),
            )
            .await;
        assert_eq!(keys(&r), ["subject", "sent", "messageId"]);
        sent += 1;
    }
    assert!(sent >= 3, "Camunda's SMTP examples: {sent}");
    support::mailbox::fetch_by_subject(tb.port("PORT_IMAP"), WIRE_USER, &marker, sent, WAIT).await;
    for operation in ["imap-search", "imap-list", "pop3-list", "pop3-search"] {
        let (protocol, port) = if operation.starts_with("imap") {
            ("imap", tb.port("PORT_IMAP"))
        } else {
            ("pop3", tb.port("PORT_POP3"))
        };
        for mut case in integration_cases(operation, port, "") {
            case["authentication"] = login.clone();
            case["data"][format!("{protocol}Config")][format!("{protocol}Host")] =
                json!("127.0.0.1");
            let r = s
                .ok(
                    operation,
                    CAMUNDA_TYPE,
                    case,
                    json!({ "resultVariable": "r" }),
                )
                .await;
            assert!(r.is_array(), "{operation}: {r}");
        }
    }
    // read and delete by a Message-ID the search found
    let search = json!({
        "authentication": login, "protocol": "imap",
        "data": { "imapConfig": { "imapHost": "127.0.0.1", "imapPort": tb.port("PORT_IMAP"), "imapCryptographicProtocol": "NONE" },
                  "imapActionDiscriminator": "searchEmailsImap",
                  "imapAction": { "criteria": { "field": "SUBJECT", "value": format!("{marker}-0") } } }
    });
    let found = s
        .ok(
            "search",
            CAMUNDA_TYPE,
            search,
            json!({ "resultVariable": "r" }),
        )
        .await;
    let id = found[0]["messageId"].as_str().expect("found").to_string();
    for operation in ["imap-read", "imap-delete"] {
        for mut case in integration_cases(operation, tb.port("PORT_IMAP"), &id) {
            case["authentication"] = login.clone();
            case["data"]["imapConfig"]["imapHost"] = json!("127.0.0.1");
            let r = s
                .ok(
                    operation,
                    CAMUNDA_TYPE,
                    case,
                    json!({ "resultVariable": "r" }),
                )
                .await;
            assert_eq!(r["messageId"], json!(id), "{operation}: {r}");
        }
    }
}

fn smtp_job(action: Value) -> Value {
    let tb = testbed();
    json!({
        "authentication": { "type": "simple", "username": "dropin3@example.test", "password": "dropin3-pw" },
        "protocol": "smtp",
        "data": {
            "smtpConfig": { "smtpHost": "127.0.0.1", "smtpPort": tb.port("PORT_SUBMISSION"), "smtpCryptographicProtocol": "TLS" },
            "smtpActionDiscriminator": "sendEmailSmtp",
            "smtpAction": action
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_job_names_camundas_field_and_error_codes_reach_expressions() {
    let s = setup(&[]).await;
    let mut job = smtp_job(
        json!({ "from": "dropin3@example.test", "to": "dropin1@example.test", "subject": "x", "contentType": "HTML", "body": "b" }),
    );
    job["data"]["smtpConfig"]
        .as_object_mut()
        .unwrap()
        .remove("smtpHost");
    let (retries, message) = s.failed(job, json!({})).await;
    assert_eq!(retries, 0);
    assert!(message.starts_with("INVALID_INPUT: "), "{message}");
    assert!(message.contains("/data/smtpConfig/smtpHost"), "{message}");
    assert!(message.contains("/data/smtpAction/htmlBody"), "{message}");

    // our code, in error.code, for an error expression to match
    let tb = testbed();
    let read = json!({
        "authentication": { "type": "simple", "username": "dropin1@example.test", "password": "dropin1-pw" },
        "protocol": "imap",
        "data": { "imapConfig": { "imapHost": "127.0.0.1", "imapPort": tb.port("PORT_IMAPS"), "imapCryptographicProtocol": "TLS" },
                  "imapActionDiscriminator": "readEmailImap",
                  "imapAction": { "messageId": "<never-sent@dropin.test>" } }
    });
    let outcome = s
        .outcome(
            CAMUNDA_TYPE,
            read,
            json!({ "errorExpression": "= if error.code = \"EMAIL_NOT_FOUND\" then bpmnError(\"NOT_FOUND\", error.message) else null" }),
        )
        .await;
    match outcome {
        Outcome::Thrown { code, message } => {
            assert_eq!(code, "NOT_FOUND");
            assert!(message.contains("EMAIL_NOT_FOUND"), "{message}");
        }
        other => panic!("expected a BPMN error, got {other:?}"),
    }
}

/// A loopback HTTP server that answers every request with `body`.
async fn file_server(body: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/pdf\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body).await;
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_documents_are_fetched_under_the_host_policy() {
    let s = setup(&[DOCUMENTS_USER]).await;
    let port = file_server(b"%PDF-1.4 drop-in").await;
    let marker = unique("dropin-external");
    let job = smtp_job(json!({
        "from": "dropin3@example.test", "to": "dropin5@example.test", "subject": marker, "body": "see attached",
        "attachments": [{ "camunda.document.type": "external", "url": format!("http://127.0.0.1:{port}/files/report.pdf"), "name": "report.pdf" }]
    }));
    s.ok(
        "external",
        CAMUNDA_TYPE,
        job,
        json!({ "resultVariable": "r" }),
    )
    .await;
    let raw = support::mailbox::fetch_by_subject(
        testbed().port("PORT_IMAP"),
        DOCUMENTS_USER,
        &marker,
        1,
        WAIT,
    )
    .await;
    let message = mail_parser::MessageParser::default()
        .parse(&raw[0])
        .expect("parse");
    let attachment = message.attachment(0).expect("the fetched document");
    assert_eq!(attachment.contents(), b"%PDF-1.4 drop-in");
    assert_eq!(
        mail_parser::MimeHeaders::attachment_name(attachment),
        Some("report.pdf")
    );

    // A host the policy denies (link-local metadata by default) is refused before any packet.
    let job = smtp_job(json!({
        "from": "dropin3@example.test", "to": "dropin5@example.test", "subject": "x", "body": "b",
        "attachments": [{ "camunda.document.type": "external", "url": "http://169.254.169.254/latest/meta-data/", "name": "m" }]
    }));
    let (retries, message) = s.failed(job, json!({})).await;
    assert_eq!(retries, 0);
    assert!(message.starts_with("INVALID_INPUT: "), "{message}");
    assert!(
        message.contains("/data/smtpAction/attachments/0"),
        "{message}"
    );
}
