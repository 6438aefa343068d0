//! IMAP and POP3 operations that must work the same on any server, run against Dovecot and
//! Cyrus IMAP in its two common layouts (`tests/support/servers.rs`), each also as an older
//! server. Every IMAP command the worker sends here passes through a recorder and is checked
//! against RFC 3501's grammar, so a lenient server cannot hide a malformed command.
//!
//! Folder names in job variables are the user's (relative to the personal namespace, `.` or
//! the server's separator between levels); the checks read the server with its own names.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::servers::{Bench, Server};
use support::unique;

on_every_server!(pop3_list_read_delete_and_search,);

/// A plain-text mail. A non-ASCII subject goes as an RFC 2047 encoded word, as mail must
/// (Cyrus replaces raw 8-bit header bytes with `X`); the body is 8-bit UTF-8.
fn simple(id: &str, subject: &str, from: &str, body: &str) -> Vec<u8> {
    use base64::Engine;
    let subject = if subject.is_ascii() {
        subject.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(subject)
        )
    };
    format!(
        "Message-ID: <{id}>\r\nFrom: {from}\r\nTo: someone@example.test\r\nSubject: {subject}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["messageId"].as_str().unwrap_or("null").to_string())
        .collect()
}

fn sorted_subjects(list: &Value) -> Vec<String> {
    let mut s: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or("").to_string())
        .collect();
    s.sort();
    s
}

async fn pop3_list_read_delete_and_search(server: Server) {
    let b = Bench::start(server, "pop3").await;
    let user = "popsrv1";
    server.clear_inbox(user).await;
    let tag = unique("p");
    let mail: Vec<String> = (0..4).map(|i| format!("m{i}-{tag}@example.test")).collect();
    let stuffed = "First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast";
    server
        .append(
            user,
            "INBOX",
            &[
                (
                    &simple(
                        &mail[0],
                        "Rechnung März",
                        "billing@example.test",
                        "Bitte PAY now",
                    ),
                    "",
                ),
                (
                    &simple(
                        &mail[1],
                        "invoice 7",
                        "billing@example.test",
                        &"already paid ".repeat(50),
                    ),
                    "",
                ),
                (
                    &simple(&mail[2], "lunch", "friend@example.test", stuffed),
                    "",
                ),
                (&simple(&mail[3], "to delete", "x@example.test", "bye"), ""),
            ],
        )
        .await;
    let listed = b
        .ok(
            "list",
            user,
            json!({ "sortField": "SIZE", "sortOrder": "DESC", "maxToBeRead": 1 }),
        )
        .await;
    assert_eq!(ids(&listed), [format!("<{}>", mail[1])], "{server:?}");

    let read = b
        .ok(
            "read",
            user,
            json!({ "messageId": mail[2], "deleteAfterRead": false }),
        )
        .await;
    assert_eq!(
        read["plainTextBody"],
        format!("{stuffed}\r\n"),
        "{server:?}: dot-stuffing"
    );

    let r = b.ok("delete", user, json!({ "messageId": mail[3] })).await;
    assert_eq!(r["deleted"], true);
    let r = b.ok("delete", user, json!({ "messageId": mail[3] })).await;
    assert_eq!(r["deleted"], false);

    let criteria = json!({ "operator": "OR", "criteria": [
        { "operator": "AND", "criteria": [
            { "field": "FROM", "value": "BILLING@" },
            { "operator": "NOT", "criteria": [{ "field": "BODY", "value": "paid" }] }
        ]},
        { "operator": "NOT", "criteria": [
            { "operator": "OR", "criteria": [
                { "field": "FROM", "value": "billing" },
                { "field": "SUBJECT", "value": "lunch" }
            ]}
        ]}
    ]});
    let found = b.ok("search", user, json!({ "criteria": criteria })).await;
    assert_eq!(sorted_subjects(&found), ["Rechnung März"], "{server:?}");

    // Read and delete: gone once the completion was accepted.
    b.ok("read", user, json!({ "messageId": mail[0] })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server
        .flags(user, "INBOX")
        .await
        .contains_key(&format!("<{}>", mail[0]))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{server:?}: not deleted after read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
