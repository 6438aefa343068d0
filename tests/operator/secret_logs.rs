//! Secrets never reach the log, whatever `RUST_LOG` asks for (issue 21): the worker process
//! runs jobs against the mail testbed and a token endpoint with every credential given as a
//! resolved `{{secrets.NAME}}`, under the filters an operator debugging a login would type,
//! and its whole log is scanned for each secret, as it is, in any case, and inside base64
//! (SASL payloads are base64). Also: a secret in a token endpoint's path comes back neither
//! as typed nor percent-encoded.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway};
use support::oauth_testbed::assert_free_of;
use support::token_endpoint::{Reply, TokenEndpoint};
use support::{WorkerProcess, testbed, unique};

const PASSWORD: &str = "net4-pw";
const CLIENT_SECRET: &str = "Cs-Log-Secret-77";
const TENANT: &str = "Tenänt<Secret>4711";
const ACCESS_TOKEN: &str = "at-log-token-4f9a1c";

/// Filters an operator might set to debug a login: everything, and the wire traces of the
/// libraries that see credentials.
const FILTERS: [&str; 4] = [
    "trace",
    "async_imap::imap_stream=trace",
    "info,lettre=trace,rustls=trace,tokio_rustls=trace,imap_proto=trace",
    "debug,hyper=trace,hyper_util=trace,reqwest=trace,h2=trace,tonic=trace,tower=trace",
];

fn secret_env(filter: &str) -> Vec<(&'static str, String)> {
    vec![
        ("RUST_LOG", filter.to_string()),
        ("EMAIL_SECRET_PW", PASSWORD.to_string()),
        ("EMAIL_SECRET_CS", CLIENT_SECRET.to_string()),
        ("EMAIL_SECRET_TENANT", TENANT.to_string()),
    ]
}

fn server(protocol: &str) -> Value {
    let tb = testbed();
    let port = tb.port(match protocol {
        "smtp" => "PORT_SUBMISSIONS",
        "imap" => "PORT_IMAPS",
        _ => "PORT_POP3S",
    });
    json!({ "host": "localhost", "port": port, "security": "tls", "serverCertificate": tb.ca_pem(),
            "timeoutSeconds": 10 })
}

fn simple() -> Value {
    json!({ "type": "simple", "username": "net4@example.test", "password": "{{secrets.PW}}" })
}

async fn run(gateway: &TestGateway, job: &str, variables: Value) -> Outcome {
    let key = gateway.create_job(
        &format!("email:{job}:1"),
        variables,
        json!({ "resultVariable": "r", "retryBackoff": "PT1S" }),
        1,
    );
    gateway.wait_outcome(key, Duration::from_secs(30)).await
}

/// The log, and the outcomes, hold none of the secrets, in any case or base64.
fn assert_clean(text: &str, what: &str) {
    let secrets: Vec<String> = [PASSWORD, CLIENT_SECRET, TENANT, ACCESS_TOKEN]
        .iter()
        .flat_map(|s| [s.to_string(), s.to_lowercase(), s.to_uppercase()])
        .chain([
            "Ten%C3%A4nt%3CSecret%3E4711".to_string(),
            "ten%c3%a4nt%3csecret%3e4711".to_string(),
            "Secret%3E4711".to_string(),
        ])
        .collect();
    assert_free_of(text, &secrets, what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_filter_lets_a_login_password_or_token_into_the_log() {
    testbed();
    let endpoint = TokenEndpoint::start(|_, request| {
        if request.field("client_secret") != Some(CLIENT_SECRET) {
            return Reply::json(401, json!({ "error": "invalid_client" }));
        }
        Reply::token(ACCESS_TOKEN, 3600)
    })
    .await;
    let token_url = endpoint
        .url
        .replace("/oauth2/token", "/{{secrets.TENANT}}/oauth2/token");
    let mut leaks = Vec::new();
    for filter in FILTERS {
        let gateway = TestGateway::start().await;
        let env = secret_env(filter);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let worker = WorkerProcess::start(&gateway.url(), &env);
        let mut outcomes = Vec::new();
        for (job, protocol, extra) in [
            ("imap:list", "imap", json!({ "maxToBeRead": 1 })),
            ("pop3:list", "pop3", json!({ "maxToBeRead": 1 })),
            (
                "smtp:send",
                "smtp",
                json!({ "from": "net4@example.test", "to": "logs@discard.test",
                        "subject": unique("logs"), "body": "x" }),
            ),
        ] {
            let mut vars = json!({ "authentication": simple(), "server": server(protocol) });
            for (k, v) in extra.as_object().expect("object") {
                vars[k] = v.clone();
            }
            let outcome = run(&gateway, job, vars.clone()).await;
            assert!(
                matches!(outcome, Outcome::Completed { .. }),
                "{filter}: {job}: {outcome:?}"
            );
            // The same with an OAuth2 login whose token the worker fetches: the testbed
            // refuses it, after the token went over the wire in a SASL payload.
            vars["authentication"] = json!({
                "type": "oauth2", "username": "net4@example.test", "tokenEndpoint": token_url,
                "clientId": "log-client", "clientSecret": "{{secrets.CS}}"
            });
            let outcome = run(&gateway, job, vars).await;
            assert!(
                matches!(outcome, Outcome::Failed { .. }),
                "{filter}: {job}: {outcome:?}"
            );
            outcomes.push(format!("{outcome:?}"));
        }
        assert!(endpoint.count() > 0, "the token endpoint was asked");
        let logs = worker.logs();
        // Under the issue's filter alone, only the capped target is asked for: nothing comes.
        assert!(
            filter.starts_with("async_imap") || logs.lines().count() > 20,
            "{filter}: the log is suspiciously short:\n{logs}"
        );
        assert_clean(&outcomes.join("\n"), "the outcomes");
        // Every filter is tried before the test fails, so a failure names them all.
        if let Err(leak) = std::panic::catch_unwind(|| {
            assert_clean(&logs, &format!("the log under RUST_LOG={filter}"))
        }) {
            leaks.push(
                leak.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| filter.to_string()),
            );
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// A token endpoint's error names its URL; a secret in its path is percent-encoded there, and
/// masked in that form too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_token_url_is_masked_percent_encoded() {
    testbed();
    let endpoint = TokenEndpoint::start(|_, _| Reply::json(500, json!({}))).await;
    let token_url = endpoint
        .url
        .replace("/oauth2/token", "/{{secrets.TENANT}}/oauth2/token");
    let gateway = TestGateway::start().await;
    let env = secret_env("debug");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let worker = WorkerProcess::start(&gateway.url(), &env);
    let vars = json!({
        "authentication": { "type": "oauth2", "username": "net4@example.test",
            "tokenEndpoint": token_url, "clientId": "log-client", "clientSecret": "{{secrets.CS}}" },
        "server": server("imap")
    });
    match run(&gateway, "imap:list", vars).await {
        Outcome::Failed { message, .. } => {
            assert!(message.starts_with("CONNECTION_FAILED: "), "{message}");
            assert!(message.contains("500"), "{message}");
            assert!(message.contains("/***/oauth2/token"), "{message}");
            assert_clean(&message, "the incident");
        }
        other => panic!("{other:?}"),
    }
    assert_clean(&worker.logs(), "the log");
}
