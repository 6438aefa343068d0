//! The Zeebe gateway's OAuth token: fetched once, shared, refreshed in the background, and
//! never holding up a call that already has a valid token.

use crate::support;

use std::time::{Duration, Instant};

use email_connector::gateway::oauth::{OAuthConfig, TokenProvider};
use secrecy::ExposeSecret;
use support::token_endpoint::{Reply, TokenEndpoint};

fn config(url: &str) -> OAuthConfig {
    OAuthConfig {
        authorization_server_url: url.to_string(),
        client_id: "worker".into(),
        client_secret: "gateway-secret".to_string().into(),
        audience: Some("zeebe-api".into()),
        scope: None,
    }
}

/// Issue 12: a refresh that hangs at the token endpoint stalled every gateway call (job
/// completions included) although the cached token was still valid for a while.
#[tokio::test]
async fn a_slow_refresh_does_not_stall_calls_that_hold_a_valid_token() {
    let endpoint = TokenEndpoint::start(|n, _| {
        if n == 0 {
            // Valid for 20 s: refreshed in the background from 10 s, handed out until 15 s.
            Reply::token("first", 20)
        } else {
            Reply::token("second", 3600).after(Duration::from_secs(20))
        }
    })
    .await;
    let tokens = TokenProvider::new(config(&endpoint.url));
    assert_eq!(tokens.token().await.unwrap().expose_secret(), "first");
    tokio::time::sleep(Duration::from_millis(10_300)).await;

    let started = Instant::now();
    let token = tokens.token().await.unwrap();
    assert_eq!(token.expose_secret(), "first");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a valid token waited {:?} for a refresh",
        started.elapsed()
    );
    // The refresh runs meanwhile, once, however many calls ask.
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token().await.map(|t| t.expose_secret().to_string()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "first");
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(endpoint.count(), 2, "one refresh for all callers");
}

#[tokio::test]
async fn concurrent_callers_on_a_cold_cache_share_one_request() {
    let endpoint =
        TokenEndpoint::start(|_, _| Reply::token("only", 3600).after(Duration::from_millis(300)))
            .await;
    let tokens = TokenProvider::new(config(&endpoint.url));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token().await.map(|t| t.expose_secret().to_string()) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "only");
    }
    assert_eq!(endpoint.count(), 1);
    let request = &endpoint.requests()[0];
    assert_eq!(request.field("grant_type"), Some("client_credentials"));
    assert_eq!(request.field("client_secret"), Some("gateway-secret"));
    assert_eq!(request.field("audience"), Some("zeebe-api"));
}

/// Forgetting a rejected token while a slow fetch runs must not wait for that fetch.
#[tokio::test]
async fn invalidating_does_not_wait_for_a_fetch_in_flight() {
    let endpoint = TokenEndpoint::start(|n, _| {
        if n == 0 {
            Reply::token("first", 3600)
        } else {
            Reply::token("second", 3600).after(Duration::from_secs(20))
        }
    })
    .await;
    let tokens = TokenProvider::new(config(&endpoint.url));
    tokens.token().await.unwrap();
    tokens.invalidate();
    let waiting = {
        let tokens = tokens.clone();
        tokio::spawn(async move { tokens.token().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), async { tokens.invalidate() })
        .await
        .expect("invalidate returned");
    assert!(started.elapsed() < Duration::from_secs(5));
    waiting.abort();
}

#[tokio::test]
async fn an_error_answer_is_reported_without_the_secret() {
    let endpoint = TokenEndpoint::start(|_, _| {
        Reply::json(401, serde_json::json!({ "error": "invalid_client" }))
    })
    .await;
    let tokens = TokenProvider::new(config(&endpoint.url));
    let error = tokens.token().await.unwrap_err().to_string();
    assert!(
        error.contains("401") && error.contains("invalid_client"),
        "{error}"
    );
    assert!(!error.contains("gateway-secret"));
}

#[tokio::test]
async fn redirects_are_refused() {
    let endpoint = TokenEndpoint::start(|_, _| Reply {
        status: 307,
        body: String::new(),
        delay: Duration::ZERO,
    })
    .await;
    let tokens = TokenProvider::new(config(&endpoint.url));
    let error = tokens.token().await.unwrap_err().to_string();
    assert!(error.contains("307"), "{error}");
    assert_eq!(endpoint.count(), 1);
}

/// A token endpoint could answer anything: a token with control characters would break the
/// SASL framing or end a protocol line, so it is refused, not used.
#[tokio::test]
async fn tokens_with_control_characters_are_refused() {
    let endpoint =
        TokenEndpoint::start(|_, _| Reply::token("abc\u{1}def\r\nA1 LOGOUT", 3600)).await;
    let tokens = TokenProvider::new(config(&endpoint.url));
    let error = tokens.token().await.unwrap_err().to_string();
    assert!(error.contains("control characters"), "{error}");
    assert!(!error.contains("LOGOUT"), "{error}");
}

/// Issue 21: `expires_in: 18446744073709551615` made the token cache panic, so the gateway
/// client never got a token. Every odd lifetime a real endpoint sends is read by one rule
/// (docs/processes.md, "OAuth2 logins"): huge values are capped at a day, a number in a string or a
/// fraction counts in whole seconds, zero or less is a token at its end (fetched again for the
/// next call), anything else is no lifetime (the default applies).
#[tokio::test]
async fn odd_lifetimes_from_the_endpoint_are_read_by_one_rule() {
    let cases: [(serde_json::Value, usize); 9] = [
        (serde_json::json!(u64::MAX), 1),
        (serde_json::json!(1e300), 1),
        (serde_json::json!("3600"), 1),
        (serde_json::json!(3599.5), 1),
        (serde_json::json!("soon"), 1),
        (serde_json::json!(null), 1),
        (serde_json::json!(0), 2),
        (serde_json::json!(-30), 2),
        (serde_json::json!("-1"), 2),
    ];
    for (expires_in, requests) in cases {
        let lifetime = expires_in.clone();
        let endpoint = TokenEndpoint::start(move |n, _| {
            Reply::json(
                200,
                serde_json::json!({
                    "access_token": format!("token-{n}"), "token_type": "Bearer",
                    "expires_in": lifetime
                }),
            )
        })
        .await;
        let tokens = TokenProvider::new(config(&endpoint.url));
        let first = tokens.token().await;
        assert_eq!(
            first.as_ref().map(|t| t.expose_secret().to_string()).ok(),
            Some("token-0".to_string()),
            "expires_in {expires_in}: {:?}",
            first.err().map(|e| e.to_string())
        );
        tokens.token().await.expect("a second token");
        assert_eq!(endpoint.count(), requests, "expires_in {expires_in}");
    }
}
