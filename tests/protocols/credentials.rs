//! Credentials with CR or LF are refused on every protocol before anything connects: a line
//! break in a password would end the PASS/LOGIN/AUTH line and run the rest as a command.

use crate::support;

use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use support::{Jobs, counting_listener, testbed};

/// Each way a credential can carry a line break, with the field the error must name and the
/// text it must never repeat.
fn cases() -> Vec<(Value, &'static str, &'static str)> {
    vec![
        (
            json!({ "type": "simple", "username": "alice@example.test", "password": "pw-secret-1\r\nDELE 1" }),
            "/authentication/password",
            "pw-secret-1",
        ),
        (
            json!({ "type": "simple", "username": "alice@example.test", "password": "pw-secret-2\n" }),
            "/authentication/password",
            "pw-secret-2",
        ),
        (
            json!({ "type": "simple", "username": "alice@example.test\rX", "password": "pw-secret-3" }),
            "/authentication/username",
            "pw-secret-3",
        ),
        (
            json!({ "type": "oauth2", "username": "alice@example.test", "accessToken": "tok-secret-4\r\nA1 LOGOUT" }),
            "/authentication/accessToken",
            "tok-secret-4",
        ),
    ]
}

async fn refused_before_connecting(protocol: &'static str, operation: &str, extra: Value) {
    testbed();
    let jobs = Jobs::start(protocol).await;
    let (port, connections, listener) = counting_listener().await;
    for (authentication, pointer, secret) in cases() {
        let mut vars = json!({
            "authentication": authentication,
            "server": { "host": "127.0.0.1", "port": port, "security": "none", "timeoutSeconds": 5 }
        });
        for (k, v) in extra.as_object().unwrap() {
            vars[k] = v.clone();
        }
        let (retries, message, _) = jobs.fails(operation, vars).await;
        assert_eq!(retries, 0, "{message}");
        assert!(message.starts_with("INVALID_INPUT: "), "{message}");
        assert!(message.contains(pointer), "{message}");
        assert!(!message.contains(secret), "{message}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "{protocol}: a job with a line break in a credential connected"
    );
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_refuses_line_breaks_in_credentials_before_connecting() {
    refused_before_connecting(
        "smtp",
        "send",
        json!({ "from": "alice@example.test", "to": "x@discard.test", "subject": "s", "body": "b" }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_refuses_line_breaks_in_credentials_before_connecting() {
    refused_before_connecting("imap", "list", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_refuses_line_breaks_in_credentials_before_connecting() {
    refused_before_connecting("pop3", "list", json!({})).await;
}
