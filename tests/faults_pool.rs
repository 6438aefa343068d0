//! Pool hygiene: a session whose command was cancelled mid-flight (its job timed out or was
//! aborted) must never serve the next job, for IMAP and SMTP alike. The fault proxy stalls the
//! server so a command is still in flight when it is cancelled.

mod support;

use std::time::Duration;

use email_connector::imap::pool::ImapPool;
use email_connector::mail::server::{Authentication, Endpoint, Security};
use email_connector::smtp::data::Outgoing;
use email_connector::smtp::transport::SmtpTransports;
use lettre::address::{Address, Envelope};
use secrecy::SecretString;
use support::fault::{Fault, FaultProxy};
use support::testbed;

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        server_certificate: None,
        accept_invalid_certificates: false,
        timeout: Duration::from_secs(10),
    }
}

fn login(user: &str) -> Authentication {
    Authentication::Simple {
        username: format!("{user}@example.test"),
        password: SecretString::from(format!("{user}-pw")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_session_cancelled_mid_command_never_returns_to_the_pool() {
    let proxy = FaultProxy::start(testbed().port("PORT_IMAP")).await;
    let pool = ImapPool::new(true);
    let endpoint = endpoint(proxy.port);
    let auth = login("fault1");

    // A command that ran to its end: the session goes back.
    let mut lease = pool.acquire(&endpoint, &auth).await.expect("login");
    lease.noop().await.expect("NOOP");
    drop(lease);
    assert_eq!(pool.idle_count(), 1, "a clean session is pooled");

    // The same session, its command cancelled while the server has not answered (the
    // operation-wide timeout fires before the command's own).
    let mut lease = pool
        .acquire(&endpoint, &auth)
        .await
        .expect("pooled session");
    proxy.set(Fault::Stall);
    let cancelled = tokio::time::timeout(Duration::from_millis(300), lease.noop()).await;
    assert!(cancelled.is_err(), "the stalled command was cancelled");
    drop(lease);
    assert_eq!(
        pool.idle_count(),
        0,
        "a session cancelled mid-command went back to the pool: the next job would read the rest of its reply"
    );

    // The next job gets a fresh, working session.
    proxy.set(Fault::Pass);
    let mut lease = pool.acquire(&endpoint, &auth).await.expect("new session");
    lease.noop().await.expect("NOOP on the new session");
    assert_eq!(proxy.accepted(), 2, "a second connection was opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_session_cancelled_mid_send_never_returns_to_the_pool() {
    let proxy = FaultProxy::start(testbed().port("PORT_SMTP")).await;
    let transports = SmtpTransports::new(true);
    let endpoint = endpoint(proxy.port);
    let envelope = Envelope::new(
        Some("fault2@example.test".parse::<Address>().expect("address")),
        vec!["fault2@example.test".parse::<Address>().expect("address")],
    )
    .expect("envelope");
    let message = &Outgoing::text(
        b"From: fault2@example.test\r\nTo: fault2@example.test\r\nSubject: pool\r\n\r\nbody\r\n"
            .to_vec(),
    );

    transports
        .send(&endpoint, &Authentication::None, &envelope, message)
        .await
        .expect("first send");
    assert_eq!(transports.len(), 1, "a clean session is pooled");

    proxy.set(Fault::Stall);
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        transports.send(&endpoint, &Authentication::None, &envelope, message),
    )
    .await;
    assert!(cancelled.is_err(), "the stalled send was cancelled");
    assert_eq!(
        transports.len(),
        0,
        "an SMTP session cancelled mid-send went back to the pool"
    );

    proxy.set(Fault::Pass);
    transports
        .send(&endpoint, &Authentication::None, &envelope, message)
        .await
        .expect("send on a new session");
    assert_eq!(transports.len(), 1);
}
