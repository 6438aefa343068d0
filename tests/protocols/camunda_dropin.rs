//! The drop-in for Camunda's Email connector end to end: jobs built from Camunda's own element
//! templates (every version of its npm package, the hybrid variant with a task type of its
//! own, version 2 as Camunda 8.6 and 8.7 shipped it, the reusable account credential of
//! version 8) exactly as the engine builds them, and jobs written in Camunda's layout by hand,
//! served by the worker process against the mail testbed; every response compared with the
//! shape Camunda's connector returns.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::camunda_template::{Template, outbound, outbound_version};
use support::gateway::{Outcome, TestGateway};
use support::{WorkerProcess, testbed, unique};

const CAMUNDA_TYPE: &str = "io.camunda:email:1";
const WAIT: Duration = Duration::from_secs(30);
/// The sender, whose own mailbox stays empty. Every test reads mailboxes of its own: every
/// test gateway numbers jobs alike, and a send's Message-ID follows its job key.
pub(crate) const SENDER: &str = "dropin3";
const LAYOUT_USER: &str = "dropin4";
const DOCUMENTS_USER: &str = "dropin5";

/// Where one test's jobs go: the job type they carry, the mailboxes IMAP and POP3 operations
/// act on, and whether the connection comes from a reusable account credential.
#[derive(Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) job_type: &'a str,
    pub(crate) imap: &'a str,
    pub(crate) pop3: &'a str,
    pub(crate) account: bool,
}

impl<'a> Run<'a> {
    /// Jobs of `job_type` on the mailboxes `imap` and `pop3`, connected by the task's own fields.
    pub(crate) fn of(job_type: &'a str, imap: &'a str, pop3: &'a str) -> Run<'a> {
        Run {
            job_type,
            imap,
            pop3,
            account: false,
        }
    }
}

pub(crate) struct Setup {
    pub(crate) gateway: TestGateway,
    _worker: WorkerProcess,
}

/// The worker with the drop-in serving `job_type`, `mailboxes` emptied of what earlier runs
/// left, and `env` on top.
pub(crate) async fn setup_with(job_type: &str, mailboxes: &[&str], env: &[(&str, &str)]) -> Setup {
    let tb = testbed();
    for user in mailboxes {
        support::mailbox::clear_inbox(user).await;
    }
    let gateway = TestGateway::start().await;
    let mut vars = vec![
        ("EMAIL_CAMUNDA_JOB_TYPE", job_type),
        // Camunda's layout has no certificate field: the testbed's CA is the system's.
        ("SSL_CERT_FILE", tb.vars["TESTBED_CA"].as_str()),
    ];
    vars.extend_from_slice(env);
    let worker = WorkerProcess::start(&gateway.url(), &vars);
    Setup {
        gateway,
        _worker: worker,
    }
}

async fn setup(mailboxes: &[&str]) -> Setup {
    setup_with(CAMUNDA_TYPE, mailboxes, &[]).await
}

impl Setup {
    pub(crate) async fn outcome(
        &self,
        job_type: &str,
        variables: Value,
        headers: Value,
    ) -> Outcome {
        let key = self.gateway.create_job(job_type, variables, headers, 3);
        self.gateway.wait_outcome(key, WAIT).await
    }

    /// The `r` variable of a job that must complete.
    pub(crate) async fn ok(
        &self,
        what: &str,
        job_type: &str,
        variables: Value,
        headers: Value,
    ) -> Value {
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

    /// Runs a job built from `template` and returns its `r`.
    pub(crate) async fn run(&self, template: &Template, samples: &Value, run: Run<'_>) -> Value {
        let job = template.job(samples);
        assert_eq!(job.job_type, run.job_type, "{}", template.label);
        let mut variables = job.variables;
        if run.account {
            // A diagram that picks a credential may still carry the task's own login, blank:
            // the credential wins.
            variables["authentication"] =
                json!({ "type": "simple", "username": "", "password": "" });
        }
        self.ok(&template.label, &job.job_type, variables, job.headers)
            .await
    }
}

pub(crate) fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The samples every job of `protocol` gets: the testbed's server and a user's login, typed as
/// the template types them (version 2 as 8.6 and 8.7 shipped it holds ports as strings), or
/// the same as a reusable account credential, as the engine resolves it into the job.
pub(crate) fn connection(template: &Template, protocol: &str, user: &str, account: bool) -> Value {
    let tb = testbed();
    let (port, crypto) = match protocol {
        "smtp" => (tb.port("PORT_SUBMISSION"), "TLS"),
        "imap" => (tb.port("PORT_IMAPS"), "TLS"),
        _ => (tb.port("PORT_POP3S"), "SSL"),
    };
    let username = format!("{user}@example.test");
    let password = format!("{user}-pw");
    if account {
        return json!({
            "protocol": protocol,
            "emailAccountConfiguration": {
                "protocol": protocol, "username": username, "password": password,
                format!("{protocol}Host"): "127.0.0.1", format!("{protocol}Port"): port,
                format!("{protocol}CryptographicProtocol"): crypto,
            },
            "resultVariable": "r",
        });
    }
    let port_binding = format!("data.{protocol}Config.{protocol}Port");
    let port = if template.property_type(&port_binding) == Some("String") {
        json!(port.to_string())
    } else {
        json!(port)
    };
    json!({
        "protocol": protocol,
        "authentication.type": "simple",
        "authentication.username": username,
        "authentication.password": password,
        format!("data.{protocol}Config.{protocol}Host"): "127.0.0.1",
        port_binding: port,
        format!("data.{protocol}Config.{protocol}CryptographicProtocol"): crypto,
        "resultVariable": "r",
    })
}

pub(crate) fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().into_iter().flatten() {
        base[k] = v.clone();
    }
    base
}

pub(crate) const READ_KEYS: [&str; 10] = [
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

impl Setup {
    /// Runs `action` (binding names → values) from `template` on the connection samples `base`.
    pub(crate) async fn act(
        &self,
        template: &Template,
        base: &Value,
        action: Value,
        run: Run<'_>,
    ) -> Value {
        self.run(template, &with(base.clone(), action), run).await
    }

    /// Searches over `protocol` (`imap`, `pop3`) with `criteria` until the one mail it must
    /// find has arrived, and returns its Message-ID.
    pub(crate) async fn find_one(
        &self,
        template: &Template,
        base: &Value,
        protocol: &str,
        criteria: Value,
        run: Run<'_>,
    ) -> String {
        let kind = if protocol == "imap" { "Imap" } else { "Pop3" };
        let search = json!({
            format!("data.{protocol}ActionDiscriminator"): format!("searchEmails{kind}"),
            format!("data.{protocol}Action.criteria"): criteria,
        });
        let deadline = tokio::time::Instant::now() + WAIT;
        let found = loop {
            let found = self.act(template, base, search.clone(), run).await;
            let hits = found.as_array().expect("search returns an array");
            if !hits.is_empty() || tokio::time::Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert_eq!(
            found.as_array().map(Vec::len),
            Some(1),
            "{}: {found}",
            template.label
        );
        assert_eq!(
            keys(&found[0]),
            ["messageId", "subject"],
            "{}",
            template.label
        );
        found[0]["messageId"]
            .as_str()
            .expect("a Message-ID")
            .to_string()
    }
}

/// A list response, each entry in Camunda's list shape.
fn listed(response: &Value) -> &[Value] {
    let listed = response.as_array().expect("list returns an array");
    assert!(
        listed
            .iter()
            .all(|m| keys(m) == ["messageId", "fromAddress", "subject", "size"]),
        "{response}"
    );
    listed
}

/// What attachment a version can send, as samples: the document picker's helpers (v5 on; the
/// composer of v5 and v6 loses them, the worker reads them itself), the v2-v4 FEEL field, or
/// none (v1, and v2 as 8.6 shipped it).
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

async fn every_operation_of(s: &Setup, template: &Template, run: Run<'_>) {
    let label = &template.label;
    let folder: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let folder = format!("Dropin/{folder}");
    let imap_marker = unique(&format!("dropin-imap-{}", template.version()));
    let pop3_marker = unique(&format!("dropin-pop3-{}", template.version()));
    let attachment = attachment_samples(template);
    let multipart = template.binds("data.smtpAction.contentType");

    // send, once to each mailbox
    for (marker, to) in [(&imap_marker, run.imap), (&pop3_marker, run.pop3)] {
        let mut samples = with(
            connection(template, "smtp", SENDER, run.account),
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
        let sent = s.run(template, &samples, run).await;
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
    let imap = connection(template, "imap", run.imap, run.account);
    let subject = json!({ "field": "SUBJECT", "value": imap_marker });
    let message_id = s.find_one(template, &imap, "imap", subject, run).await;

    let list = json!({ "data.imapActionDiscriminator": "listEmailsImap", "data.imapAction.sortOrder": "DESC" });
    let response = s.act(template, &imap, list, run).await;
    let mine = listed(&response)
        .iter()
        .find(|m| m["subject"] == json!(imap_marker))
        .unwrap_or_else(|| panic!("{label}: not listed"));
    assert_eq!(mine["fromAddress"], format!("{SENDER}@example.test"));
    assert!(mine["size"].as_u64().unwrap() > 0);

    let read = json!({ "data.imapActionDiscriminator": "readEmailImap", "data.imapAction.messageId": message_id });
    let read = s.act(template, &imap, read, run).await;
    assert_eq!(keys(&read), READ_KEYS, "{label}");
    assert_eq!(read["messageId"], json!(message_id));
    assert_eq!(read["subject"], json!(imap_marker));
    let headers = read["headers"].as_array().unwrap();
    assert!(headers.iter().all(|h| keys(h) == ["key", "value"]));
    assert!(
        headers
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

    let moved = json!({
        "data.imapActionDiscriminator": "moveEmailImap",
        "data.imapAction.messageId": message_id,
        "data.imapAction.fromFolder": "INBOX",
        "data.imapAction.toFolder": folder,
    });
    assert_eq!(
        s.act(template, &imap, moved, run).await,
        json!({ "messageId": message_id, "from": "INBOX", "to": folder }),
        "{label}"
    );
    let deleted = json!({
        "data.imapActionDiscriminator": "deleteEmailImap",
        "data.imapAction.messageId": message_id,
        "data.imapAction.deleteEmailFolder": folder,
    });
    assert_eq!(
        s.act(template, &imap, deleted, run).await,
        json!({ "messageId": message_id, "deleted": true }),
        "{label}"
    );

    // POP3 search, list, read, delete
    let pop3 = connection(template, "pop3", run.pop3, run.account);
    let both = json!({ "operator": "AND", "criteria": [{ "field": "SUBJECT", "value": pop3_marker }, { "field": "FROM", "value": SENDER }] });
    let message_id = s.find_one(template, &pop3, "pop3", both, run).await;

    let list = json!({ "data.pop3ActionDiscriminator": "listEmailsPop3" });
    let response = s.act(template, &pop3, list, run).await;
    assert!(
        listed(&response)
            .iter()
            .any(|m| m["messageId"] == json!(message_id)),
        "{label}"
    );

    let read = json!({ "data.pop3ActionDiscriminator": "readEmailPop3", "data.pop3Action.messageId": message_id });
    let read = s.act(template, &pop3, read, run).await;
    assert_eq!(keys(&read), READ_KEYS, "{label}");
    assert_eq!(read["receivedDateTime"], Value::Null);
    assert_eq!(read["subject"], json!(pop3_marker));

    let deleted = json!({ "data.pop3ActionDiscriminator": "deleteEmailPop3", "data.pop3Action.messageId": message_id });
    assert_eq!(
        s.act(template, &pop3, deleted, run).await,
        json!({ "messageId": message_id, "deleted": true }),
        "{label}"
    );
}

/// Every version of Camunda's outbound Email template in its npm package (1 to 8 in the
/// pinned release), every operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_every_template_version() {
    let run = Run::of(CAMUNDA_TYPE, "dropin1", "dropin2");
    let s = setup(&[run.imap, run.pop3]).await;
    let templates = outbound();
    let versions: Vec<u64> = templates.iter().map(Template::version).collect();
    assert_eq!(
        versions,
        (1..=8).collect::<Vec<_>>(),
        "the package's versions"
    );
    for template in &templates {
        every_operation_of(&s, template, run).await;
    }
}

/// Version 2 as Camunda 8.6.5-8.6.27 and 8.7.x shipped it: ports and `maxToBeRead` are String
/// properties, so their jobs carry `"993"` and `"100"`, which Camunda's mapper reads as numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_as_camunda_8_6_and_8_7_shipped_it_sends_numbers_as_strings() {
    let run = Run::of(CAMUNDA_TYPE, "dropin6", "dropin7");
    let s = setup(&[run.imap, run.pop3]).await;
    let v2 = outbound_version(2);
    for with_attachments in [false, true] {
        let shipped = v2.as_shipped_in_8_6_and_8_7(with_attachments);
        let job = shipped.job(&with(
            connection(&shipped, "imap", run.imap, false),
            json!({ "data.imapActionDiscriminator": "listEmailsImap" }),
        ));
        let config = &job.variables["data"]["imapConfig"];
        assert!(config["imapPort"].is_string(), "{}", job.variables);
        assert_eq!(job.variables["data"]["imapAction"]["maxToBeRead"], "100");
        assert_eq!(
            shipped.binds("data.smtpAction.attachments"),
            with_attachments
        );
        every_operation_of(&s, &shipped, run).await;
    }
}

/// The hybrid template's point: an editable task type. Camunda's runtime keeps serving its own
/// type; this worker serves the type the model names, and only it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_templates_own_task_type_is_served() {
    let run = Run::of("my-email-type", "dropin8", "dropin9");
    let s = setup_with(run.job_type, &[run.imap, run.pop3], &[]).await;
    s.gateway.wait_for_stream(run.job_type, WAIT).await;
    assert_eq!(
        s.gateway.open_streams(CAMUNDA_TYPE),
        0,
        "Camunda's type is left alone"
    );
    let newest = outbound().pop().expect("a template");
    let hybrid = newest.hybrid();
    // A task left at the hybrid template's default keeps Camunda's type.
    assert_eq!(hybrid.job(&json!({})).job_type, CAMUNDA_TYPE);
    // Every task of this model has its type set to the worker's.
    let hybrid = hybrid.with_value("taskDefinitionType", json!(run.job_type));
    every_operation_of(&s, &hybrid, run).await;
}

/// Version 8's reusable email account: the engine resolves the credential into the job as
/// `emailAccountConfiguration`, the template leaves out the task's own connection fields, and
/// the credential wins over any that a diagram still carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reusable_email_account_credential_connects_every_operation() {
    let run = Run {
        account: true,
        ..Run::of(CAMUNDA_TYPE, "dropin10", "dropin12")
    };
    let s = setup(&[run.imap, run.pop3]).await;
    let v8 = outbound_version(8);
    assert!(v8.binds("emailAccountConfiguration"));
    let job = v8.job(&with(
        connection(&v8, "imap", run.imap, true),
        json!({ "data.imapActionDiscriminator": "listEmailsImap" }),
    ));
    assert!(
        job.variables.get("authentication").is_none(),
        "{}",
        job.variables
    );
    assert!(
        job.variables["data"].get("imapConfig").is_none(),
        "{}",
        job.variables
    );
    every_operation_of(&s, &v8, run).await;
}

/// A job in Camunda's layout as its connector's own tests write them (no template): plaintext
/// connections (`NONE`) with ports as strings, a send without `contentType` (Camunda's mapper
/// reads PLAIN), one with only an HTML body, recipients as a list and as a comma-separated
/// string, `maxToBeRead` as a string, `imapPort` as FEEL and a `FROM` search.
fn layout_job(protocol: &str, port: u16, action: Value) -> Value {
    let discriminator = format!("{protocol}ActionDiscriminator");
    let mut action = action;
    let kind = action
        .as_object_mut()
        .and_then(|a| a.remove("kind"))
        .expect("every action names its kind");
    json!({
        "authentication": { "type": "simple", "username": format!("{LAYOUT_USER}@example.test"), "password": format!("{LAYOUT_USER}-pw") },
        "protocol": protocol,
        "data": {
            format!("{protocol}Config"): {
                format!("{protocol}Host"): "127.0.0.1",
                format!("{protocol}Port"): port.to_string(),
                format!("{protocol}CryptographicProtocol"): "NONE"
            },
            discriminator: kind,
            format!("{protocol}Action"): action
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_written_in_camundas_layout_over_plaintext() {
    let s = setup(&[LAYOUT_USER]).await;
    let tb = testbed();
    // Runs a job that must complete and returns its `r`.
    let ok = |what: &'static str, job: Value| {
        s.ok(what, CAMUNDA_TYPE, job, json!({ "resultVariable": "r" }))
    };
    let me = format!("{LAYOUT_USER}@example.test");
    let marker = unique("dropin-layout");
    let sends = [
        json!({ "kind": "sendEmailSmtp", "from": me, "to": [me], "subject": format!("{marker} plain"), "body": "Content" }),
        json!({ "kind": "sendEmailSmtp", "contentType": "HTML", "from": me, "to": me, "cc": "nobody@discard.test, else@discard.test",
                "subject": format!("{marker} html"), "htmlBody": "<h1>Hey</h1>" }),
        json!({ "kind": "sendEmailSmtp", "contentType": "MULTIPART", "from": me, "to": me,
                "subject": format!("{marker} multipart"), "body": "Content", "htmlBody": "<h1>Hey</h1>" }),
    ];
    for send in sends {
        let job = layout_job("smtp", tb.port("PORT_SMTP"), send);
        let sent = ok("send", job).await;
        assert_eq!(keys(&sent), ["subject", "sent", "messageId"]);
    }
    support::mailbox::fetch_by_subject(tb.port("PORT_IMAP"), LAYOUT_USER, &marker, 3, WAIT).await;

    let imap = |action| layout_job("imap", tb.port("PORT_IMAP"), action);
    let found = ok("search", imap(json!({ "kind": "searchEmailsImap", "criteria": { "field": "SUBJECT", "value": format!("{marker} plain") } }))).await;
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    // imapPort as a FEEL expression, which Camunda's runtime evaluates at the connector.
    let mut list = imap(
        json!({ "kind": "listEmailsImap", "maxToBeRead": "100", "sortField": "RECEIVED_DATE", "sortOrder": "ASC" }),
    );
    list["data"]["imapConfig"]["imapPort"] = json!(format!("= {} + 1", tb.port("PORT_IMAP") - 1));
    let listed = ok("list", list).await;
    let subjects: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    // The three arrive within a second, the resolution of a received date: no order to check.
    let mut kinds: Vec<&str> = subjects
        .iter()
        .filter_map(|s| s.rsplit(' ').next())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["html", "multipart", "plain"], "{listed}");
    let html = ok("search", imap(json!({ "kind": "searchEmailsImap", "criteria": { "operator": "AND", "criteria": [
                { "field": "SUBJECT", "value": format!("{marker} html") }, { "field": "FROM", "value": me }] } }))).await;
    assert_eq!(html.as_array().map(Vec::len), Some(1), "{html}");
    let html_id = html[0]["messageId"].as_str().expect("found").to_string();
    let read = ok(
        "read",
        imap(json!({ "kind": "readEmailImap", "messageId": html_id })),
    )
    .await;
    assert_eq!(keys(&read), READ_KEYS);
    assert_eq!(read["plainTextBody"], Value::Null);
    assert_eq!(
        read["htmlBody"].as_str().map(str::trim_end),
        Some("<h1>Hey</h1>")
    );
    assert!(
        read["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["key"] == "Cc"
                && h["value"]
                    .as_str()
                    .is_some_and(|v| v.contains("discard.test"))),
        "{read}"
    );
    let plain_id = found[0]["messageId"].as_str().expect("found").to_string();
    let read = ok(
        "read",
        imap(json!({ "kind": "readEmailImap", "messageId": plain_id })),
    )
    .await;
    assert_eq!(keys(&read), READ_KEYS);
    assert_eq!(
        read["plainTextBody"].as_str().map(str::trim_end),
        Some("Content")
    );
    assert_eq!(read["htmlBody"], Value::Null);

    let pop3 = |action| layout_job("pop3", tb.port("PORT_POP3"), action);
    let by_sender = ok(
        "pop3 search",
        pop3(json!({ "kind": "searchEmailsPop3", "criteria": { "field": "FROM", "value": me } })),
    )
    .await;
    assert_eq!(by_sender.as_array().map(Vec::len), Some(3), "{by_sender}");
    let multipart = by_sender
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|t| t.ends_with("multipart"))
        })
        .expect("the multipart mail");
    let multipart_id = multipart["messageId"].as_str().unwrap().to_string();
    let read = ok(
        "pop3 read",
        pop3(json!({ "kind": "readEmailPop3", "messageId": multipart_id })),
    )
    .await;
    assert_eq!(
        read["htmlBody"].as_str().map(str::trim_end),
        Some("<h1>Hey</h1>")
    );
    assert_eq!(
        read["plainTextBody"].as_str().map(str::trim_end),
        Some("Content")
    );
    let deleted = ok(
        "imap delete",
        imap(json!({ "kind": "deleteEmailImap", "messageId": plain_id })),
    )
    .await;
    assert_eq!(deleted, json!({ "messageId": plain_id, "deleted": true }));
    let listed = ok("pop3 list", pop3(json!({ "kind": "listEmailsPop3", "maxToBeRead": "2", "sortField": "SIZE", "sortOrder": "DESC" }))).await;
    let sizes: Vec<u64> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["size"].as_u64())
        .collect();
    assert_eq!(sizes.len(), 2, "{listed}");
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {sizes:?}"
    );
}

pub(crate) fn smtp_job(action: Value) -> Value {
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
