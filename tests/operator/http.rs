//! `/healthz`, `/readyz` and `/metrics` of the worker process, read with an HTTP client while
//! the test gateway comes and goes.

use crate::support;

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::gateway::{Outcome, TestGateway};
use support::{WorkerProcess, testbed, unique};

async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    get_typed(port, path)
        .await
        .map(|(status, _, body)| (status, body))
}

/// Status, Content-Type and body.
async fn get_typed(port: u16, path: &str) -> Option<(u16, String, String)> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((
        status,
        content_type,
        String::from_utf8_lossy(&body).to_string(),
    ))
}

async fn wait_for(port: u16, path: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((s, body)) = get(port, path).await
            && s == status
        {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_follow_the_gateway_and_the_jobs() {
    let tb = testbed();
    let gateway = TestGateway::start().await;
    let address = gateway.address;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_text = port.to_string();
    let _worker = WorkerProcess::start(
        &gateway.url(),
        &[
            ("EMAIL_HTTP_PORT", port_text.as_str()),
            ("EMAIL_HTTP_ADDRESS", "127.0.0.1"),
            ("EMAIL_POLL_REQUEST_TIMEOUT", "PT1S"),
        ],
    );
    assert_eq!(wait_for(port, "/healthz", 200).await, "ok\n");
    wait_for(port, "/readyz", 200).await;
    assert_eq!(get(port, "/nothing").await.map(|r| r.0), Some(404));

    let send = "email:smtp:send:1";
    let marker = unique("metrics");
    let good = json!({
        "authentication": { "username": "alice@example.test", "password": "alice-pw" },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_SUBMISSION"), "security": "starttls", "serverCertificate": tb.ca_pem() },
        "from": "alice@example.test", "to": "judy@example.test", "subject": marker, "body": "x"
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut refused = good.clone();
    refused["server"]["port"] = json!(closed);
    let invalid = json!({ "server": { "host": "127.0.0.1" } });
    let keys = [
        gateway.create_job(send, good, json!({}), 3),
        gateway.create_job(send, refused, json!({}), 3),
        gateway.create_job(send, invalid, json!({ "bpmnErrors": "INVALID_INPUT" }), 3),
    ];
    let outcomes = futures_util::future::join_all(
        keys.iter()
            .map(|k| gateway.wait_outcome(*k, Duration::from_secs(20))),
    )
    .await;
    assert!(
        matches!(outcomes[0], Outcome::Completed { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], Outcome::Failed { .. }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Outcome::Thrown { .. }),
        "{outcomes:?}"
    );

    // A job's slot is released just after its result is reported.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, content_type, text) = get_typed(port, "/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    // prometheus-client writes OpenMetrics text (it ends in `# EOF`): say so, or a scraper
    // that trusts the header parses it as the older format.
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(
        text.contains(&format!(
            "email_connector_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"email_connector_mail_sessions_idle{protocol="smtp"}"#
        )
        .is_some(),
        "{text}"
    );
    let label = r#"{job_type="email:smtp:send:1""#;
    assert_eq!(
        metric(
            &text,
            &format!("email_connector_jobs_activated_total{label}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!("email_connector_jobs_completed_total{label}}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!(r#"email_connector_jobs_failed_total{label},code="CONNECTION_FAILED"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!(r#"email_connector_jobs_errored_total{label},code="INVALID_INPUT"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!("email_connector_operation_duration_seconds_count{label}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "email_connector_jobs_in_flight "),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"email_connector_mail_sessions_idle{protocol="smtp"}"#
        ),
        Some(1.0),
        "one pooled SMTP transport: {text}"
    );

    // The gateway goes away: still ready (an outage every pod shares must not block node
    // drains), and the body says so. It comes back: plainly ready again, without a restart.
    gateway.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(port, "/readyz").await.expect("readyz");
        assert_eq!(status, 200, "{body}");
        if body.contains("not reachable") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage never showed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(port, "/healthz").await.map(|r| r.0),
        Some(200),
        "still alive"
    );
    let _gateway = TestGateway::start_on(address).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get(port, "/readyz").await.map(|r| r.1) != Some("ready\n".to_string()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never plainly ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, text) = get(port, "/metrics").await.expect("metrics");
    assert!(
        metric(&text, "email_connector_gateway_reconnects_total").is_some_and(|n| n >= 1.0),
        "{text}"
    );
}
