//! OAuth2 mail logins against real peers (SPEC §2.1): Dovecot checking tokens by RFC 7662
//! introspection and Postfix delegating SMTP AUTH to it (tests/testbed/oauth.sh), the worker
//! as users run it, and token endpoints scripted per test. Every test also scans the worker's
//! whole log (all levels, base64 included) and its outcomes for the secrets it handled.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::Outcome;
use support::oauth_testbed::{OAuthJobs, assert_free_of, mint, revoke, server};
use support::token_endpoint::{Reply, TokenEndpoint};
use support::unique;

const HOUR: Duration = Duration::from_secs(3600);

/// A mailbox of its own: Message-IDs come from job keys, which restart with each test
/// gateway, so mail from an earlier run must not share the mailbox.
fn user(label: &str) -> String {
    format!("{}@example.test", unique(label))
}

fn given(user: &str, token: &str, mechanism: Option<&str>) -> Value {
    let mut auth = json!({ "type": "oauth2", "username": user, "accessToken": token });
    if let Some(m) = mechanism {
        auth["mechanism"] = json!(m);
    }
    auth
}

fn fetched(user: &str, endpoint: &TokenEndpoint, extra: Value) -> Value {
    let mut auth = json!({
        "type": "oauth2", "username": user, "tokenEndpoint": endpoint.url,
        "clientId": "mail-worker", "clientSecret": "cs-very-secret-1",
        "scope": "https://outlook.office365.com/.default"
    });
    for (k, v) in extra.as_object().expect("object") {
        auth[k] = v.clone();
    }
    auth
}

fn with(authentication: Value, protocol: &str, extra: Value) -> Value {
    let mut vars = json!({ "authentication": authentication, "server": server(protocol) });
    for (k, v) in extra.as_object().expect("object") {
        vars[k] = v.clone();
    }
    vars
}

/// Sends a message to `user` and waits until IMAP lists it; returns its Message-ID.
async fn send_and_find(jobs: &OAuthJobs, auth: &Value, user: &str, subject: &str) -> String {
    let sent = jobs
        .ok(
            "smtp:send",
            with(
                auth.clone(),
                "smtp",
                json!({
                    "from": user, "to": user, "subject": subject, "body": "sent over OAuth2"
                }),
            ),
        )
        .await;
    assert_eq!(sent["sent"], json!(true), "{sent}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = jobs
            .ok(
                "imap:list",
                with(auth.clone(), "imap", json!({ "maxToBeRead": 500 })),
            )
            .await;
        if let Some(found) = listed
            .as_array()
            .expect("list")
            .iter()
            .find(|m| m["subject"] == json!(subject))
        {
            return found["messageId"].as_str().expect("messageId").to_string();
        }
        assert!(Instant::now() < deadline, "{subject} never arrived");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Send, list and read over IMAP and POP3 with one authentication block.
async fn round_trip(jobs: &OAuthJobs, auth: Value, user: &str, label: &str) {
    let subject = unique(label);
    let message_id = send_and_find(jobs, &auth, user, &subject).await;
    let read = jobs
        .ok(
            "imap:read",
            with(auth.clone(), "imap", json!({ "messageId": message_id })),
        )
        .await;
    assert_eq!(read["subject"], json!(subject));
    assert!(
        read["plainTextBody"]
            .as_str()
            .unwrap_or_default()
            .contains("sent over OAuth2")
    );
    let listed = jobs
        .ok(
            "pop3:list",
            with(auth.clone(), "pop3", json!({ "maxToBeRead": 500 })),
        )
        .await;
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|m| m["subject"] == json!(subject)),
        "POP3 does not list {subject}"
    );
    let read = jobs
        .ok(
            "pop3:read",
            with(
                auth,
                "pop3",
                json!({ "messageId": message_id, "deleteAfterRead": false }),
            ),
        )
        .await;
    assert_eq!(read["subject"], json!(subject));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_token_sends_lists_and_reads_over_both_mechanisms() {
    let jobs = OAuthJobs::start().await;
    let mut secrets = Vec::new();
    for mechanism in [None, Some("XOAUTH2"), Some("OAUTHBEARER")] {
        let user = user("given");
        let token = mint(&user, HOUR);
        round_trip(&jobs, given(&user, &token, mechanism), &user, "given").await;
        secrets.push(token);
    }
    // A token of about 3 KB, as Microsoft's are: past Postfix's 2048-byte command line, so
    // SMTP must send it after the 334 rather than on the AUTH line.
    let user = user("long");
    let long = format!("at-long-{}", "x".repeat(3000));
    support::oauth_testbed::register(&long, &user, HOUR);
    round_trip(&jobs, given(&user, &long, None), &user, "long").await;
    secrets.push(long);
    jobs.assert_log_free_of(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_are_fetched_once_and_shared_by_all_jobs() {
    let user = user("cc");
    let owner = user.clone();
    let endpoint = TokenEndpoint::start(move |_, request| {
        if request.field("client_secret") != Some("cs-very-secret-1") {
            return Reply::json(401, json!({ "error": "invalid_client" }));
        }
        Reply::token(&mint(&owner, HOUR), 3600)
    })
    .await;
    let jobs = OAuthJobs::start().await;
    let auth = fetched(&user, &endpoint, json!({}));
    round_trip(&jobs, auth.clone(), &user, "cc").await;
    let with_bearer = fetched(&user, &endpoint, json!({ "mechanism": "OAUTHBEARER" }));
    jobs.ok("imap:list", with(with_bearer, "imap", json!({})))
        .await;
    let requests = endpoint.requests();
    // The mechanism is not part of the credentials: one token for both.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].field("grant_type"), Some("client_credentials"));
    assert_eq!(requests[0].field("client_id"), Some("mail-worker"));
    assert_eq!(
        requests[0].field("scope"),
        Some("https://outlook.office365.com/.default")
    );
    jobs.assert_log_free_of(&["cs-very-secret-1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_on_a_cold_cache_make_one_token_request() {
    let user = "cold-user@example.test";
    let endpoint = TokenEndpoint::start(move |_, _| {
        Reply::token(&mint(user, HOUR), 3600).after(Duration::from_millis(500))
    })
    .await;
    let jobs = OAuthJobs::start().await;
    let keys: Vec<i64> = (0..8)
        .map(|_| {
            jobs.gateway.create_job(
                "email:imap:list:1",
                with(fetched(user, &endpoint, json!({})), "imap", json!({})),
                json!({ "resultVariable": "r" }),
                3,
            )
        })
        .collect();
    for key in keys {
        let outcome = jobs
            .gateway
            .wait_outcome(key, Duration::from_secs(60))
            .await;
        assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    }
    assert_eq!(endpoint.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_used_rotated_and_renewed_at_expiry() {
    let user = "rt-user@example.test";
    let endpoint = TokenEndpoint::start(move |n, request| {
        let expected = if n == 0 {
            "rt-seed-secret".to_string()
        } else {
            format!("rt-rotated-{n}")
        };
        if request.field("grant_type") != Some("refresh_token")
            || request.field("refresh_token") != Some(expected.as_str())
        {
            return Reply::json(
                400,
                json!({
                    "error": "invalid_grant", "error_description": "refresh token already used"
                }),
            );
        }
        // 61 s: handed out until 60 s before expiry, so for one second: the round's second
        // job shares the token, the next round needs a new one.
        Reply::json(
            200,
            json!({
                "access_token": mint(user, HOUR), "token_type": "Bearer", "expires_in": 61,
                "refresh_token": format!("rt-rotated-{}", n + 1)
            }),
        )
    })
    .await;
    let jobs = OAuthJobs::start().await;
    let auth = fetched(user, &endpoint, json!({ "refreshToken": "rt-seed-secret" }));
    for round in 0..3 {
        jobs.ok("imap:list", with(auth.clone(), "imap", json!({})))
            .await;
        jobs.ok("pop3:list", with(auth.clone(), "pop3", json!({})))
            .await;
        assert_eq!(endpoint.count(), round + 1);
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    jobs.assert_log_free_of(&[
        "rt-seed-secret".to_string(),
        "rt-rotated-1".to_string(),
        "rt-rotated-2".to_string(),
        "cs-very-secret-1".to_string(),
    ]);
}

/// SPEC §2.1 (issue 21): a token is cached until 60 s before it expires. One with 30 s left
/// serves the job that fetched it, and the next job asks the endpoint again; one with an hour
/// left serves both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_under_60_s_left_is_fetched_again_for_the_next_job() {
    let jobs = OAuthJobs::start().await;
    for (lifetime, requests) in [(30, 2), (3600, 1)] {
        let user = user("margin");
        let owner = user.clone();
        let endpoint =
            TokenEndpoint::start(move |_, _| Reply::token(&mint(&owner, HOUR), lifetime)).await;
        let auth = fetched(&user, &endpoint, json!({}));
        jobs.ok("pop3:list", with(auth.clone(), "pop3", json!({})))
            .await;
        jobs.ok("pop3:list", with(auth, "pop3", json!({}))).await;
        assert_eq!(endpoint.count(), requests, "expires_in {lifetime}");
    }
}

/// Issue 21: `expires_in: 18446744073709551615` made the token cache panic, and every job
/// failed as CONNECTION_FAILED. The lifetime is capped (a day) and the token used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifetime_no_clock_can_reach_is_capped_and_the_job_completes() {
    let jobs = OAuthJobs::start().await;
    let user = user("huge");
    let owner = user.clone();
    let endpoint =
        TokenEndpoint::start(move |_, _| Reply::token(&mint(&owner, HOUR), u64::MAX)).await;
    let auth = fetched(&user, &endpoint, json!({}));
    jobs.ok("imap:list", with(auth.clone(), "imap", json!({})))
        .await;
    jobs.ok("pop3:list", with(auth, "pop3", json!({}))).await;
    assert_eq!(endpoint.count(), 1);
}

/// Servers check a token at login only, so each step opens a new session: POP3 always does,
/// and the first SMTP and IMAP job of these credentials has no pooled session yet. The token
/// cache is shared by all protocols, so each step starts with the token the step before
/// fetched, revoked meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_while_cached_is_replaced_once_and_the_job_succeeds() {
    let user = user("revoked");
    let issued = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = issued.clone();
    let owner = user.clone();
    let endpoint = TokenEndpoint::start(move |_, _| {
        let token = mint(&owner, HOUR);
        seen.lock().unwrap().push(token.clone());
        Reply::token(&token, 3600)
    })
    .await;
    let jobs = OAuthJobs::start().await;
    let auth = fetched(&user, &endpoint, json!({}));
    jobs.ok("pop3:list", with(auth.clone(), "pop3", json!({})))
        .await;
    for (job, protocol, extra) in [
        (
            "smtp:send",
            "smtp",
            json!({ "from": user, "to": user, "subject": "revoked", "body": "b" }),
        ),
        ("imap:list", "imap", json!({})),
        ("pop3:list", "pop3", json!({})),
    ] {
        let before = endpoint.count();
        let current = issued.lock().unwrap().last().cloned().expect("a token");
        revoke(&current);
        jobs.ok(job, with(auth.clone(), protocol, extra)).await;
        assert_eq!(endpoint.count(), before + 1, "{job}: one new token");
    }
    let secrets: Vec<String> = issued.lock().unwrap().clone();
    jobs.assert_log_free_of(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_given_token_fails_with_the_servers_reason_on_every_protocol() {
    let jobs = OAuthJobs::start().await;
    let user = "rejected@example.test";
    let bogus = "at-never-minted-secret".to_string();
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        for (job, protocol, extra) in [
            ("imap:list", "imap", json!({})),
            ("pop3:list", "pop3", json!({})),
            (
                "smtp:send",
                "smtp",
                json!({ "from": user, "to": user, "subject": "s", "body": "b" }),
            ),
        ] {
            let started = Instant::now();
            let (retries, message) = jobs
                .fails(
                    job,
                    with(given(user, &bogus, Some(mechanism)), protocol, extra),
                )
                .await;
            assert_eq!(retries, 0, "{job} {mechanism}: {message}");
            assert!(message.starts_with("AUTHENTICATION_FAILED: "), "{message}");
            assert!(message.contains(mechanism), "{message}");
            // Dovecot's challenge: XOAUTH2 {"status":"401",...}, OAUTHBEARER {"status":"invalid_token"}.
            let status = if mechanism == "XOAUTH2" {
                "status 401"
            } else {
                "status invalid_token"
            };
            if protocol != "smtp" || mechanism == "XOAUTH2" {
                assert!(message.contains(status), "{job} {mechanism}: {message}");
            }
            // The exchange was finished, not left to the server's timeout.
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{:?}",
                started.elapsed()
            );
            assert_free_of(&message, std::slice::from_ref(&bogus), "the outcome");
        }
    }
    jobs.assert_log_free_of(&[bogus]);
}

/// SPEC §2.1's codes for the token endpoint's answers, each within `timeoutSeconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_failures_map_to_the_contract_codes() {
    let jobs = OAuthJobs::start().await;
    let user = "endpoint-faults@example.test";
    let cases: Vec<(Reply, &str, i32, &[&str])> = vec![
        (
            Reply::json(
                400,
                json!({ "error": "invalid_grant", "error_description": "AADSTS70008: expired" }),
            ),
            "AUTHENTICATION_FAILED",
            0,
            &["invalid_grant", "AADSTS70008"],
        ),
        (
            Reply::json(401, json!({ "error": "invalid_client" })),
            "AUTHENTICATION_FAILED",
            0,
            &["invalid_client", "401"],
        ),
        (
            Reply::json(500, json!({ "error": "server_error" })),
            "CONNECTION_FAILED",
            2,
            &["500"],
        ),
        (
            Reply::token("t", 3600).after(Duration::from_secs(30)),
            "CONNECTION_FAILED",
            2,
            &["no token within"],
        ),
    ];
    for (reply, code, retries, words) in cases {
        let endpoint = TokenEndpoint::start(move |_, _| reply.clone()).await;
        let mut vars = with(fetched(user, &endpoint, json!({})), "imap", json!({}));
        vars["server"]["timeoutSeconds"] = json!(3);
        let started = Instant::now();
        let (left, message) = jobs.fails("imap:list", vars).await;
        assert!(message.starts_with(&format!("{code}: ")), "{message}");
        assert_eq!(left, retries, "{message}");
        for word in words {
            assert!(message.contains(word), "{word}: {message}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{message}: {:?}",
            started.elapsed()
        );
        assert_free_of(&message, &["cs-very-secret-1".to_string()], "the outcome");
    }
    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut auth = fetched(
        user,
        &TokenEndpoint::start(|_, _| Reply::token("t", 1)).await,
        json!({}),
    );
    auth["tokenEndpoint"] = json!(format!("http://127.0.0.1:{closed}/token"));
    let (left, message) = jobs.fails("pop3:list", with(auth, "pop3", json!({}))).await;
    assert!(message.starts_with("CONNECTION_FAILED: "), "{message}");
    assert_eq!(left, 2);
    jobs.assert_log_free_of(&["cs-very-secret-1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_endpoints_are_invalid_input_before_any_request() {
    let jobs = OAuthJobs::start().await;
    let endpoint = TokenEndpoint::start(|_, _| Reply::token("t", 3600)).await;
    for (url, pointer) in [
        (
            "http://login.example.com/token",
            "/authentication/tokenEndpoint",
        ),
        (
            "https://169.254.169.254/token",
            "/authentication/tokenEndpoint",
        ),
    ] {
        let mut auth = fetched("u@example.test", &endpoint, json!({}));
        auth["tokenEndpoint"] = json!(url);
        let (left, message) = jobs.fails("imap:list", with(auth, "imap", json!({}))).await;
        assert!(message.starts_with("INVALID_INPUT: "), "{message}");
        assert!(message.contains(pointer), "{message}");
        assert_eq!(left, 0);
    }
    assert_eq!(endpoint.count(), 0);
}

/// The scan itself: a token inside a base64 SASL payload, at any alignment, is found.
#[test]
fn the_secret_scan_sees_through_base64() {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    for prefix in ["", "u", "us", "use"] {
        let payload = engine.encode(format!(
            "{prefix}user=a@b\x01auth=Bearer tok-123456\x01\x01"
        ));
        let log = format!("DEBUG sent AUTHENTICATE {payload} done");
        let caught =
            std::panic::catch_unwind(|| assert_free_of(&log, &["tok-123456".to_string()], "a log"));
        assert!(caught.is_err(), "missed with prefix {prefix:?}");
    }
    assert_free_of(
        "nothing here dXNlcj1hQGI=",
        &["tok-123456".to_string()],
        "a log",
    );
}

/// `check` shows the token step (endpoint reached, token obtained, expiry) before the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shows_the_token_step_before_the_login() {
    use email_connector::mail::server::Protocol;
    use email_connector::registry::check_connection;
    support::oauth_testbed::oauth_testbed();
    let user = user("check");
    let owner = user.clone();
    let endpoint = TokenEndpoint::start(move |_, _| Reply::token(&mint(&owner, HOUR), 3600)).await;
    for (protocol, name) in [
        (Protocol::Smtp, "smtp"),
        (Protocol::Imap, "imap"),
        (Protocol::Pop3, "pop3"),
    ] {
        let vars = with(fetched(&user, &endpoint, json!({})), name, json!({}));
        let services = email_connector::services::Services::default();
        let steps = check_connection(&services, protocol, &vars)
            .await
            .expect("check");
        let token = steps
            .iter()
            .position(|s| {
                s.starts_with("token: endpoint ") && s.contains("token obtained, expires in")
            })
            .unwrap_or_else(|| panic!("{name}: no token step in {steps:?}"));
        let login = steps
            .iter()
            .position(|s| s.starts_with("auth: logged in as"))
            .unwrap_or_else(|| panic!("{name}: no login step in {steps:?}"));
        assert!(token < login, "{steps:?}");
        assert_free_of(
            &steps.join("\n"),
            &["cs-very-secret-1".to_string()],
            "the steps",
        );
    }
}

/// A token endpoint that hangs holds up only the jobs that need its token: other credentials'
/// jobs, and a job that holds its token already, go on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_token_endpoint_stalls_no_unrelated_job() {
    let jobs = OAuthJobs::start().await;
    let slow_user = user("slow");
    let hanging =
        TokenEndpoint::start(|_, _| Reply::token("never", 3600).after(Duration::from_secs(60)))
            .await;
    let mut slow = with(fetched(&slow_user, &hanging, json!({})), "imap", json!({}));
    slow["server"]["timeoutSeconds"] = json!(20);
    let stalled: Vec<i64> = (0..3)
        .map(|_| {
            jobs.gateway.create_job(
                "email:imap:list:1",
                slow.clone(),
                json!({ "resultVariable": "r" }),
                3,
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fast_user = user("fast");
    let owner = fast_user.clone();
    let other = TokenEndpoint::start(move |_, _| Reply::token(&mint(&owner, HOUR), 3600)).await;
    let started = Instant::now();
    jobs.ok(
        "imap:list",
        with(fetched(&fast_user, &other, json!({})), "imap", json!({})),
    )
    .await;
    let token = mint(&fast_user, HOUR);
    jobs.ok(
        "pop3:list",
        with(given(&fast_user, &token, None), "pop3", json!({})),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "unrelated jobs waited {:?} behind a hanging endpoint",
        started.elapsed()
    );
    assert_eq!(hanging.count(), 1, "the stalled jobs share one request");
    for key in stalled {
        match jobs
            .gateway
            .wait_outcome(key, Duration::from_secs(60))
            .await
        {
            Outcome::Failed { message, .. } => {
                assert!(message.starts_with("CONNECTION_FAILED: "), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
