//! POP3 operations end to end: test gateway → worker process → Dovecot POP3 (directly over
//! POP3S and STLS, or through a proxy that records the commands and can cut a RETR short).

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::mailbox::{append, clear_inbox, flags_by_message_id, write_maildir};
use support::proxy::Pop3Proxy;
use support::{Jobs, testbed, unique};

const WAIT: Duration = Duration::from_secs(30);

fn vars(user: &str, security: &str, port: u16, extra: Value) -> Value {
    let mut v = json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": port, "security": security, "serverCertificate": testbed().ca_pem(), "timeoutSeconds": 20 }
    });
    for (k, val) in extra.as_object().expect("object") {
        v[k] = val.clone();
    }
    v
}

fn message(id: &str, subject: &str, from: &str, body: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nFrom: {from}\r\nSubject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\n\r\n{body}").into_bytes()
}

async fn inbox_ids(user: &str) -> Vec<String> {
    let mut ids: Vec<String> = flags_by_message_id(user, "INBOX")
        .await
        .into_keys()
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_sorts_a_thousand_messages_from_headers_alone() {
    let s = Jobs::start("pop3").await;
    let tb = testbed();
    clear_inbox("pop1").await;
    let tag = unique("l");
    let base = 1_700_000_000i64;
    let count = 1000usize;
    let mut messages = Vec::new();
    // (Message-ID, Date timestamp or None, size)
    let mut meta: Vec<(String, Option<i64>, usize)> = Vec::new();
    for i in 0..count {
        let id = format!("pop-{i:04}-{tag}@example.test");
        let sent = (i % 97 != 5).then(|| base + ((i * 389) % count) as i64 * 3600);
        // Same length with or without a Date, so the padding alone decides the size.
        let date = sent.map_or_else(
            || format!("X-Undated: {}\r\n", "u".repeat(21)),
            |t| format!("Date: {}\r\n", support::rfc5322_date(t)),
        );
        let padding = "p".repeat((i * 7) % count);
        let raw = format!(
            "Message-ID: <{id}>\r\nFrom: s{i:04}@example.test\r\nSubject: pop {i:04}\r\n{date}\r\nbody {padding}\r\n"
        );
        meta.push((format!("<{id}>"), sent, raw.len()));
        messages.push((raw.into_bytes(), base + i as i64));
    }
    let mut sizes: Vec<usize> = meta.iter().map(|m| m.2).collect();
    sizes.sort_unstable();
    sizes.dedup();
    assert_eq!(sizes.len(), count, "the generator must give distinct sizes");
    write_maildir(tb.dir(), "pop1", "INBOX", &messages);
    let proxy = Pop3Proxy::start(tb.port("PORT_POP3")).await;
    for (field, order) in [
        ("SENT_DATE", "ASC"),
        ("SENT_DATE", "DESC"),
        ("SIZE", "ASC"),
        ("SIZE", "DESC"),
    ] {
        let mut expected: Vec<&(String, Option<i64>, usize)> = meta.iter().collect();
        if field == "SIZE" {
            expected.sort_by_key(|m| m.2);
            if order == "DESC" {
                expected.reverse();
            }
        } else {
            // Undated messages last in both orders.
            expected.sort_by_key(|m| {
                (
                    m.1.is_none(),
                    if order == "DESC" {
                        -m.1.unwrap_or(0)
                    } else {
                        m.1.unwrap_or(0)
                    },
                )
            });
        }
        let expected: Vec<String> = expected.iter().take(10).map(|m| m.0.clone()).collect();
        proxy.clear();
        let listed = s
            .ok(
                "list",
                vars(
                    "pop1",
                    "none",
                    proxy.port,
                    json!({ "maxToBeRead": 10, "sortField": field, "sortOrder": order }),
                ),
            )
            .await;
        let ids: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["messageId"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(ids, expected, "{field} {order}");
        let verbs = proxy.verbs();
        assert!(
            !verbs.contains(&"RETR".to_string()),
            "list must never download messages: {verbs:?}"
        );
        let tops = verbs.iter().filter(|v| *v == "TOP").count();
        assert_eq!(
            tops,
            if field == "SIZE" { 10 } else { count },
            "{field}: TOP count"
        );
    }
    let first = s
        .ok(
            "list",
            vars(
                "pop1",
                "tls",
                tb.port("PORT_POP3S"),
                json!({ "maxToBeRead": 1, "sortField": "SIZE" }),
            ),
        )
        .await;
    assert_eq!(
        first[0]["size"].as_u64(),
        Some(meta.iter().map(|m| m.2).min().unwrap() as u64)
    );
    assert_eq!(first[0]["receivedDateTime"], Value::Null);
    clear_inbox("pop1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_deletes_only_after_the_completion_is_accepted() {
    let s = Jobs::start("pop3").await;
    let tb = testbed();
    clear_inbox("pop2").await;
    let tag = unique("r");
    let (a, b, c) = (
        format!("a-{tag}@example.test"),
        format!("b-{tag}@example.test"),
        format!("c-{tag}@example.test"),
    );
    let body = "First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n";
    append(
        "pop2",
        "INBOX",
        &[
            (&message(&a, "A", "Alice <alice@example.test>", body), ""),
            (&message(&b, "B", "b@example.test", "b\r\n"), ""),
            (&message(&c, "C", "c@example.test", "c\r\n"), ""),
        ],
    )
    .await;
    let pop3s = |extra: Value| vars("pop2", "tls", tb.port("PORT_POP3S"), extra);

    let r = s
        .ok("read", pop3s(json!({ "messageId": format!("<{a}>") })))
        .await;
    assert_eq!(r["messageId"], format!("<{a}>"));
    assert_eq!(r["fromAddress"], "alice@example.test");
    assert_eq!(r["subject"], "A");
    assert_eq!(
        r["plainTextBody"], body,
        "dot-stuffed lines must come back byte for byte"
    );
    assert_eq!(r["sentDate"], "2024-02-01T10:00:00Z");
    assert_eq!(r["receivedDateTime"], Value::Null);
    assert!(r["headers"].as_array().is_some_and(|h| h.len() == 4));
    // Deleted once the gateway accepted the completion.
    let deadline = tokio::time::Instant::now() + WAIT;
    while inbox_ids("pop2").await.contains(&format!("<{a}>")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A was not deleted after completion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The gateway refuses the completion: the message must stay.
    s.gateway.set_reject_complete(true);
    let key = s.gateway.create_job(
        "email:pop3:read:1",
        pop3s(json!({ "messageId": b })),
        json!({ "resultVariable": "r" }),
        3,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(s.gateway.outcomes(key).is_empty());
    s.gateway.set_reject_complete(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        inbox_ids("pop2").await.contains(&format!("<{b}>")),
        "B was lost although its completion failed"
    );

    let r = s
        .ok(
            "read",
            pop3s(json!({ "messageId": c, "deleteAfterRead": false })),
        )
        .await;
    assert_eq!(r["subject"], "C");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(inbox_ids("pop2").await.contains(&format!("<{c}>")));

    let (retries, message, _) = s
        .fails("read", pop3s(json!({ "messageId": "nope@example.test" })))
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with(&format!(
            "EMAIL_NOT_FOUND: pop3:read on 127.0.0.1:{}",
            testbed().port("PORT_POP3S")
        )),
        "{message}"
    );
    clear_inbox("pop2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_twice_and_search_with_nested_criteria_including_body() {
    let s = Jobs::start("pop3").await;
    let tb = testbed();
    clear_inbox("pop3").await;
    let tag = unique("d");
    let ids: Vec<String> = (0..4).map(|i| format!("m{i}-{tag}@example.test")).collect();
    append(
        "pop3",
        "INBOX",
        &[
            (
                &message(
                    &ids[0],
                    "Rechnung März",
                    "billing@example.test",
                    "Bitte PAY now\r\n",
                ),
                "",
            ),
            (
                &message(
                    &ids[1],
                    "invoice 7",
                    "billing@example.test",
                    "already paid\r\n",
                ),
                "",
            ),
            (
                &message(
                    &ids[2],
                    "lunch",
                    "friend@example.test",
                    "pay for pizza?\r\n",
                ),
                "",
            ),
            (
                &message(&ids[3], "to delete", "x@example.test", "bye\r\n"),
                "",
            ),
        ],
    )
    .await;
    let stls = |extra: Value| vars("pop3", "starttls", tb.port("PORT_POP3"), extra);

    let r = s.ok("delete", stls(json!({ "messageId": ids[3] }))).await;
    assert_eq!(r["deleted"], true, "{r}");
    assert_eq!(r["messageId"], format!("<{}>", ids[3]));
    assert!(r["uidl"].as_str().is_some_and(|u| !u.is_empty()), "{r}");
    let r = s.ok("delete", stls(json!({ "messageId": ids[3] }))).await;
    assert_eq!(r["deleted"], false);
    assert!(!inbox_ids("pop3").await.contains(&format!("<{}>", ids[3])));

    // (FROM billing AND (BODY "pay now" OR SUBJECT "März")) OR (SUBJECT lunch AND NOT BODY "pizza")
    let criteria = json!({ "operator": "OR", "criteria": [
        { "operator": "AND", "criteria": [
            { "field": "FROM", "value": "BILLING@" },
            { "operator": "OR", "criteria": [ { "field": "BODY", "value": "pay now" }, { "field": "SUBJECT", "value": "märz" } ] }
        ]},
        { "operator": "AND", "criteria": [
            { "field": "SUBJECT", "value": "lunch" },
            { "operator": "NOT", "criteria": [{ "field": "BODY", "value": "pizza" }] }
        ]}
    ]});
    let found = s.ok("search", stls(json!({ "criteria": criteria }))).await;
    let subjects: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(subjects, ["Rechnung März"]);
    let found = s
        .ok(
            "search",
            stls(json!({ "criteria": { "field": "BODY", "value": "PAY" }, "maxResults": 2 })),
        )
        .await;
    assert_eq!(found.as_array().unwrap().len(), 2);
    let (retries, message, _) = s
        .fails(
            "search",
            stls(json!({ "criteria": { "operator": "NOT", "criteria": [] } })),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.contains("/criteria/criteria: NOT needs at least one criterion"),
        "{message}"
    );
    clear_inbox("pop3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_modes_wrong_password_and_a_connection_cut_mid_retr() {
    let s = Jobs::start("pop3").await;
    let tb = testbed();
    clear_inbox("pop4").await;
    let id = format!("{}@example.test", unique("cut"));
    append(
        "pop4",
        "INBOX",
        &[(
            &message(
                &id,
                "keep me",
                "a@example.test",
                &"line of text\r\n".repeat(2000),
            ),
            "",
        )],
    )
    .await;
    for (security, port) in [
        ("tls", tb.port("PORT_POP3S")),
        ("starttls", tb.port("PORT_POP3")),
        ("none", tb.port("PORT_POP3")),
    ] {
        let listed = s.ok("list", vars("pop4", security, port, json!({}))).await;
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{security}");
    }
    let mut wrong = vars("pop4", "tls", tb.port("PORT_POP3S"), json!({}));
    wrong["authentication"]["password"] = json!("not-the-password");
    let (retries, message, _) = s.fails("list", wrong).await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("AUTHENTICATION_FAILED: ") && !message.contains("not-the-password"),
        "{message}"
    );

    let proxy = Pop3Proxy::start(tb.port("PORT_POP3")).await;
    proxy.cut_retr(true);
    let (retries, message, backoff) = s
        .fails(
            "read",
            vars("pop4", "none", proxy.port, json!({ "messageId": id })),
        )
        .await;
    assert_eq!((retries, backoff), (2, 2000));
    assert!(message.starts_with("CONNECTION_FAILED: "), "{message}");
    assert!(proxy.verbs().contains(&"RETR".to_string()));
    assert!(!proxy.verbs().contains(&"DELE".to_string()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        inbox_ids("pop4").await.contains(&format!("<{id}>")),
        "nothing may be deleted"
    );

    let mut none = vars("pop4", "tls", tb.port("PORT_POP3S"), json!({}));
    none["authentication"] = json!({ "type": "none" });
    let (retries, message, _) = s.fails("list", none).await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("INVALID_INPUT: ") && message.contains("/authentication/type"),
        "{message}"
    );
    clear_inbox("pop4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_message_id_is_ambiguous_and_uidls_name_each_mail() {
    let s = Jobs::start("pop3").await;
    let tb = testbed();
    let user = "pop5";
    clear_inbox(user).await;
    let tag = unique("same");
    let reused = format!("reused-{tag}@example.test");
    let other = format!("other-{tag}@example.test");
    append(
        user,
        "INBOX",
        &[
            (
                &message(&reused, "genuine", "a@example.test", "the real one\r\n"),
                "",
            ),
            (
                &message(&reused, "spoof", "b@example.test", "a copy\r\n"),
                "",
            ),
            (&message(&other, "other", "c@example.test", "other\r\n"), ""),
        ],
    )
    .await;
    let v = |extra: Value| vars(user, "tls", tb.port("PORT_POP3S"), extra);
    let list = s.ok("list", v(json!({}))).await;
    let uidl = |subject: &str| {
        list.as_array()
            .expect("array")
            .iter()
            .find(|m| m["subject"] == subject)
            .and_then(|m| m["uidl"].as_str())
            .expect("listed with its UIDL")
            .to_string()
    };
    let (genuine, spoof, third) = (uidl("genuine"), uidl("spoof"), uidl("other"));
    assert!(genuine != spoof && spoof != third, "{list}");
    let found = s
        .ok(
            "search",
            v(json!({ "criteria": { "field": "SUBJECT", "value": "spoof" } })),
        )
        .await;
    assert_eq!(found[0]["uidl"], spoof.as_str(), "{found}");
    for (operation, extra) in [
        (
            "read",
            json!({ "messageId": reused, "deleteAfterRead": false }),
        ),
        ("delete", json!({ "messageId": reused })),
    ] {
        let (retries, message, _) = s.fails(operation, v(extra)).await;
        assert_eq!(retries, 0, "{operation}: {message}");
        assert!(
            message.starts_with("EMAIL_AMBIGUOUS: ")
                && message.contains(&format!("UIDL {genuine}"))
                && message.contains(&format!("UIDL {spoof}")),
            "{operation}: {message}"
        );
    }
    assert_eq!(inbox_ids(user).await.len(), 2, "nothing deleted");
    let read = s
        .ok(
            "read",
            v(json!({ "uidl": genuine, "deleteAfterRead": false })),
        )
        .await;
    assert_eq!(read["subject"], "genuine");
    assert_eq!(read["uidl"], genuine.as_str());
    let (retries, message, _) = s
        .fails(
            "read",
            v(json!({ "uidl": third, "messageId": reused, "deleteAfterRead": false })),
        )
        .await;
    assert_eq!(retries, 0);
    assert!(
        message.starts_with("EMAIL_NOT_FOUND: ") && message.contains("carries Message-ID"),
        "{message}"
    );
    let deleted = s.ok("delete", v(json!({ "uidl": spoof }))).await;
    assert_eq!(deleted["deleted"], true, "{deleted}");
    assert_eq!(deleted["uidl"], spoof.as_str());
    let again = s.ok("delete", v(json!({ "uidl": spoof }))).await;
    assert_eq!(again["deleted"], false, "{again}");
    // One mail carries the Message-ID now: the id alone names it again.
    let read = s
        .ok(
            "read",
            v(json!({ "messageId": reused, "deleteAfterRead": false })),
        )
        .await;
    assert_eq!(read["subject"], "genuine");
    let (_, message, _) = s.fails("read", v(json!({ "uidl": "a b" }))).await;
    assert!(message.starts_with("INVALID_INPUT: "), "{message}");
}
