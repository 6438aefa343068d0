//! Hostile input end to end (test gateway → worker process → Dovecot and Postfix): secret
//! placeholders written where mail text goes, criteria trees built to exhaust the worker,
//! responses larger than the gateway takes, and a POP3 server whose maildrop is locked.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fake_smtp::{Misbehaviour, hostile};
use support::gateway::{Outcome, TestGateway};
use support::mailbox::{append, clear_inbox, fetch_by_subject, flags_by_message_id};
use support::{WorkerProcess, testbed, unique};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(40);
/// The value of the secret the tests try to leak: hostile1's real password, so the same
/// placeholder that must stay text in a subject must log in when it is the password.
const SECRET_VALUE: &str = "hostile1-pw";
const PLACEHOLDER: &str = "{{secrets.HOSTILE_PW}}";

struct Harness {
    gateway: TestGateway,
    worker: WorkerProcess,
}

impl Harness {
    async fn start(env: &[(&str, &str)]) -> Harness {
        testbed();
        let gateway = TestGateway::start().await;
        let mut env = env.to_vec();
        env.push(("EMAIL_SECRET_HOSTILE_PW", SECRET_VALUE));
        let worker = WorkerProcess::start(&gateway.url(), &env);
        Harness { gateway, worker }
    }

    async fn run(&self, job_type: &str, variables: Value) -> (i64, Outcome) {
        let key = self.gateway.create_job(
            &format!("email:{job_type}:1"),
            variables,
            json!({ "resultVariable": "r", "retryBackoff": "PT1S" }),
            3,
        );
        (key, self.gateway.wait_outcome(key, WAIT).await)
    }

    async fn ok(&self, job_type: &str, variables: Value) -> Value {
        match self.run(job_type, variables).await.1 {
            Outcome::Completed { variables } => variables["r"].clone(),
            other => panic!("{job_type}: expected completion, got {other:?}"),
        }
    }

    async fn fails(&self, job_type: &str, variables: Value) -> (i32, String) {
        match self.run(job_type, variables).await.1 {
            Outcome::Failed {
                retries, message, ..
            } => (retries, message),
            other => panic!("{job_type}: expected failure, got {other:?}"),
        }
    }

    /// The worker's peak resident memory so far (VmHWM), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.worker.pid()))
            .expect("the worker is running");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM");
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a number");
        kib * 1024
    }
}

/// `user`'s mailbox on the testbed; the password is given as a secret placeholder when
/// `password` is None.
fn connection(protocol: &str, user: &str, password: Option<&str>) -> Value {
    let tb = testbed();
    let port = match protocol {
        "imap" => tb.port("PORT_IMAPS"),
        "pop3" => tb.port("PORT_POP3S"),
        _ => tb.port("PORT_SUBMISSIONS"),
    };
    json!({
        "authentication": {
            "type": "simple",
            "username": format!("{user}@example.test"),
            "password": password.map_or_else(|| PLACEHOLDER.to_string(), str::to_string),
        },
        "server": {
            "host": "127.0.0.1", "port": port, "security": "tls",
            "serverCertificate": tb.ca_pem(), "timeoutSeconds": 20
        }
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().expect("object") {
        base[k] = v.clone();
    }
    base
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET_VALUE),
        "{what} holds the secret's value:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_placeholders_stay_text_everywhere_but_the_connection_settings() {
    let h = Harness::start(&[]).await;
    // Message-IDs come from job keys, which every test gateway counts from the same start.
    clear_inbox("hostile1").await;
    let marker = unique("leak");
    let subject = format!("Re: {PLACEHOLDER} {marker}");
    // Authentication by the placeholder proves it still resolves where it belongs.
    let send = with(
        connection("smtp", "hostile1", None),
        json!({
            "from": format!("\"{PLACEHOLDER}\" <hostile1@example.test>"),
            "to": "hostile1@example.test",
            "subject": subject,
            "body": format!("plain {PLACEHOLDER}"),
            "htmlBody": format!("<p>html {PLACEHOLDER}</p>"),
            "headers": { "X-Echo": PLACEHOLDER },
            "attachments": [{
                "fileName": format!("{PLACEHOLDER}.txt"),
                "contentType": "text/plain",
                "content": "aGVsbG8="
            }]
        }),
    );
    let sent = h.ok("smtp:send", send).await;
    assert_eq!(sent["subject"], subject.as_str());
    assert_no_secret("the send response", &sent.to_string());

    let delivered = fetch_by_subject(
        testbed().port("PORT_IMAP"),
        "hostile1",
        &marker,
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(delivered.len(), 1, "the message was not delivered");
    let raw = String::from_utf8_lossy(&delivered[0]).to_string();
    assert_no_secret("the delivered message", &raw);
    // Subject, header value and file name are ASCII and arrive unencoded; the display name
    // is sent as an encoded word, so it is compared decoded.
    for place in [
        format!("Subject: {subject}"),
        format!("X-Echo: {PLACEHOLDER}"),
        format!("{PLACEHOLDER}.txt"),
    ] {
        assert!(raw.contains(&place), "{place} missing in:\n{raw}");
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(&delivered[0])
        .expect("a message");
    let from = parsed.from().and_then(|a| a.first()).expect("a From");
    assert_eq!(from.name(), Some(PLACEHOLDER));

    // A criteria value is searched for as typed: it finds the message whose subject holds it.
    let found = h
        .ok(
            "imap:search",
            with(
                connection("imap", "hostile1", None),
                json!({ "criteria": { "operator": "AND", "criteria": [
                    { "field": "SUBJECT", "value": PLACEHOLDER },
                    { "field": "SUBJECT", "value": marker },
                ]}}),
            ),
        )
        .await;
    let found = found.as_array().expect("a list");
    assert_eq!(found.len(), 1, "{found:?}");
    let id = found[0]["messageId"].as_str().expect("an id").to_string();

    let read = h
        .ok(
            "imap:read",
            with(
                connection("imap", "hostile1", None),
                json!({ "messageId": id }),
            ),
        )
        .await;
    assert_eq!(read["subject"], subject.as_str());
    assert!(
        read["plainTextBody"]
            .as_str()
            .is_some_and(|b| b.contains(PLACEHOLDER)),
        "{read}"
    );
    assert_no_secret("the read response", &read.to_string());

    // A folder name is not resolved either: the error names the folder as typed.
    let (retries, message) = h
        .fails(
            "imap:read",
            with(
                connection("imap", "hostile1", None),
                json!({ "messageId": id, "folder": PLACEHOLDER }),
            ),
        )
        .await;
    assert_eq!(retries, 0, "{message}");
    assert!(message.starts_with("FOLDER_NOT_FOUND"), "{message}");
    assert!(message.contains(PLACEHOLDER), "{message}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_no_secret("the worker's log", &h.worker.logs());
}

fn leaves(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| json!({ "field": "SUBJECT", "value": format!("needle {i}") }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_criteria_are_invalid_input_fast_and_the_worker_stays_small() {
    let h = Harness::start(&[]).await;
    for protocol in ["imap", "pop3"] {
        for (operator, count) in [("OR", 20_000), ("AND", 5_000)] {
            let started = Instant::now();
            let (retries, message) = h
                .fails(
                    &format!("{protocol}:search"),
                    with(
                        connection(protocol, "hostile2", Some("hostile2-pw")),
                        json!({ "criteria": { "operator": operator, "criteria": leaves(count) } }),
                    ),
                )
                .await;
            assert_eq!(retries, 0, "{message}");
            assert!(
                message.starts_with("INVALID_INPUT") && message.contains("/criteria"),
                "{message}"
            );
            // The gateway round trip and the process start dominate; the refusal itself
            // takes milliseconds (see the unit tests and the benchmark).
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{protocol} {operator} of {count}: {:?}",
                started.elapsed()
            );
        }
        // The worker is still there and serves the next job.
        let ok = h
            .ok(
                &format!("{protocol}:search"),
                with(
                    connection(protocol, "hostile2", Some("hostile2-pw")),
                    json!({ "criteria": { "operator": "OR", "criteria": leaves(999) } }),
                ),
            )
            .await;
        assert!(ok.is_array(), "{ok}");
    }
    let peak = h.peak_rss();
    println!("peak RSS {} MB", peak / 1024 / 1024);
    // Before the limit, an OR of 2,000 leaves alone took 175 MB and 20,000 aborted the
    // process; the jobs above carry about 1 MB of variables each. The peak of this debug
    // build varies from run to run for the same code, 76 to 104 MB (glibc's per-thread arenas
    // and which runtime thread parses which job; two arenas only narrowed it to 76-95 MB), so
    // the bound sits above that spread and still far below the failure it guards against.
    assert!(
        peak < 128 * 1024 * 1024,
        "peak RSS {} MB",
        peak / 1024 / 1024
    );
}

/// A message with one attachment of `size` random-looking bytes.
fn message_with_attachment(id: &str, subject: &str, size: usize) -> Vec<u8> {
    use base64::Engine;
    let bytes: Vec<u8> = (0..size).map(|i| (i * 7919 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut lines = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        lines.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        lines.push_str("\r\n");
    }
    format!(
        "Message-ID: <{id}>\r\nFrom: big@example.test\r\nTo: hostile3@example.test\r\n\
         Subject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         see attachment\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {lines}--b--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_the_gateway_refuses_as_too_large_fails_once_and_loses_no_mail() {
    // An operator who raised the worker's limits above the gateway's: the read response
    // (a 5 MB attachment, about 6.7 MB in base64) no longer fits Zeebe's 4 MiB.
    let h = Harness::start(&[
        ("EMAIL_MAX_ATTACHMENT_BYTES", "8388608"),
        ("EMAIL_MAX_RESPONSE_BYTES", "16777216"),
    ])
    .await;
    clear_inbox("hostile3").await;
    let id = format!("{}@example.test", unique("big"));
    let raw = message_with_attachment(&id, "too large", 5 * 1024 * 1024);
    append("hostile3", "INBOX", &[(&raw, "")]).await;

    for protocol in ["imap", "pop3"] {
        let (key, outcome) = h
            .run(
                &format!("{protocol}:read"),
                with(
                    connection(protocol, "hostile3", Some("hostile3-pw")),
                    json!({ "messageId": id, "deleteAfterRead": true }),
                ),
            )
            .await;
        let Outcome::Failed {
            retries, message, ..
        } = outcome
        else {
            panic!("{protocol}: expected a failure, got {outcome:?}");
        };
        assert_eq!(retries, 0, "{message}");
        assert!(message.starts_with("RESPONSE_TOO_LARGE"), "{message}");
        assert!(message.contains("EMAIL_MAX_RESPONSE_BYTES"), "{message}");
        assert!(message.contains("maxMessageSize"), "{message}");
        // Reported once, not left to time out and come back.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(h.gateway.outcomes(key).len(), 1);
    }
    // POP3's delete-after-read rolled back: the message is still in the maildrop.
    let left = flags_by_message_id("hostile3", "INBOX").await;
    assert!(left.contains_key(&format!("<{id}>")), "{left:?}");
}

/// A POP3 server that greets and then refuses every login with `reply`.
async fn refusing_pop3_server(reply: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"+OK fake POP3 ready\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let answer = match verb.as_str() {
                        "CAPA" => "+OK\r\nUSER\r\nRESP-CODES\r\n.\r\n".to_string(),
                        "USER" => "+OK\r\n".to_string(),
                        "PASS" => format!("{reply}\r\n"),
                        "QUIT" => "+OK bye\r\n".to_string(),
                        _ => "-ERR unknown\r\n".to_string(),
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_pop3_maildrop_is_a_temporary_failure_not_a_wrong_password() {
    let h = Harness::start(&[]).await;
    let cases = [
        (
            "-ERR [IN-USE] Mailbox is locked by another POP3 session",
            2,
            "TEMPORARY_FAILURE",
        ),
        (
            "-ERR [SYS/TEMP] Internal error occurred",
            2,
            "TEMPORARY_FAILURE",
        ),
        (
            "-ERR [AUTH] Authentication failed.",
            0,
            "AUTHENTICATION_FAILED",
        ),
    ];
    for (reply, expected_retries, code) in cases {
        let port = refusing_pop3_server(reply).await;
        let (retries, message) = h
            .fails(
                "pop3:list",
                json!({
                    "authentication": { "type": "simple", "username": "x@example.test", "password": "pw" },
                    "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 5 }
                }),
            )
            .await;
        assert_eq!(retries, expected_retries, "{reply}: {message}");
        assert!(message.starts_with(code), "{reply}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_quoted_by_a_validation_error_are_masked_escaped_and_long() {
    // A quote and a backslash are escaped when the validator quotes the value; a long secret
    // used to be cut to 300 characters before masking, leaving a prefix nobody recognised.
    let odd = "pa\"ss\\wörd-4711";
    let long: String = (0..450u32)
        .map(|i| char::from(b'a' + u8::try_from((i * 7 + i / 26) % 26).unwrap_or(0)))
        .collect();
    let h = Harness::start(&[
        ("EMAIL_SECRET_ODD", odd),
        ("EMAIL_SECRET_LONG", long.as_str()),
    ])
    .await;
    let mut variables = connection("imap", "hostile2", Some("hostile2-pw"));
    variables["server"]["port"] = json!("{{secrets.ODD}}");
    variables["server"]["security"] = json!("{{secrets.LONG}}");
    let (retries, message) = h.fails("imap:list", variables).await;
    assert_eq!(retries, 0, "{message}");
    assert!(message.starts_with("INVALID_INPUT"), "{message}");
    assert!(
        message.contains("/server/port") && message.contains("/server/security"),
        "{message}"
    );
    assert!(!message.contains("wörd"), "{message}");
    for window in long.as_bytes().windows(12) {
        let piece = std::str::from_utf8(window).unwrap_or_default();
        assert!(
            !message.contains(piece),
            "a piece of the long secret in: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_with_a_huge_subject_does_not_break_every_listing() {
    let h = Harness::start(&[]).await;
    clear_inbox("net3").await;
    // A 5 MB subject, folded as a mailer would fold it.
    let words: Vec<String> = (0..70_000)
        .map(|i| format!("spam{i:06}-xxxxxxxxx"))
        .collect();
    let subject = words.join("\r\n ");
    let huge = format!(
        "Message-ID: <huge@example.test>\r\nFrom: stranger@example.test\r\nSubject: {subject}\r\n\
         Date: Thu, 1 Feb 2024 10:00:00 +0000\r\n\r\nhello\r\n"
    );
    let normal = b"Message-ID: <normal@example.test>\r\nFrom: friend@example.test\r\nSubject: lunch\r\nDate: Thu, 1 Feb 2024 11:00:00 +0000\r\n\r\nhi\r\n";
    append("net3", "INBOX", &[(huge.as_bytes(), ""), (normal, "")]).await;
    for protocol in ["imap", "pop3"] {
        let listed = h
            .ok(
                &format!("{protocol}:list"),
                connection(protocol, "net3", Some("net3-pw")),
            )
            .await;
        let listed = listed.as_array().expect("a list").clone();
        assert_eq!(listed.len(), 2, "{protocol}");
        let text = serde_json::to_string(&listed).unwrap_or_default();
        assert!(text.len() < 8 * 1024, "{protocol}: {} bytes", text.len());
        let subjects: Vec<&str> = listed
            .iter()
            .filter_map(|m| m["subject"].as_str())
            .collect();
        assert!(subjects.contains(&"lunch"), "{protocol}: {subjects:?}");
        assert!(
            subjects
                .iter()
                .any(|s| s.starts_with("spam000000") && s.ends_with('…')),
            "{protocol}: {subjects:?}"
        );
    }
    let found = h
        .ok(
            "imap:search",
            with(
                connection("imap", "net3", Some("net3-pw")),
                json!({ "criteria": { "field": "FROM", "value": "stranger" } }),
            ),
        )
        .await;
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
}

/// A send to a fake server on `port`, no login, in clear text.
fn fake_send(port: u16, timeout_seconds: u64) -> Value {
    json!({
        "authentication": { "type": "none" },
        "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": timeout_seconds },
        "from": "a@example.test", "to": "b@example.test", "subject": "s", "body": "b"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_smtp_server_can_neither_grow_the_worker_nor_hold_a_job() {
    const FLOOD: usize = 300 * 1024 * 1024;
    let h = Harness::start(&[]).await;
    for misbehaviour in [
        Misbehaviour::EndlessGreetingLine(FLOOD),
        Misbehaviour::EndlessEhloReply(FLOOD),
        Misbehaviour::EndlessLineAfterData(FLOOD),
    ] {
        let port = hostile(misbehaviour).await;
        let started = Instant::now();
        let (_, message) = h.fails("smtp:send", fake_send(port, 30)).await;
        let peak = h.peak_rss();
        assert!(
            peak < 150 * 1000 * 1000,
            "{misbehaviour:?}: the worker's peak RSS is {:.0} MB",
            peak as f64 / 1e6
        );
        assert!(
            message.starts_with("CONNECTION_FAILED") && message.contains("reply"),
            "{misbehaviour:?}: {message}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{misbehaviour:?}: {:?}",
            started.elapsed()
        );
    }
    // A reply trickled for ever ends with the job's timeout.
    let port = hostile(Misbehaviour::TrickledGreeting).await;
    let started = Instant::now();
    let (_, message) = h.fails("smtp:send", fake_send(port, 3)).await;
    assert!(message.starts_with("TIMEOUT"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
