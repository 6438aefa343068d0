//! Pool hygiene: a session whose command was cancelled mid-flight (its job timed out or was
//! aborted) must never serve the next job, for IMAP and SMTP alike. The fault proxy stalls the
//! server so a command is still in flight when it is cancelled.

use crate::support;

use std::time::Duration;

use email_connector::imap::pool::ImapPool;
use email_connector::mail::auth::Authentication;
use email_connector::mail::server::{Endpoint, Security};
use email_connector::services::Services;
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

/// The defaults: these tests connect to the loopback testbed, which they allow.
fn services() -> Services {
    Services::default()
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
    let mut lease = pool
        .acquire(&services(), &endpoint, &auth)
        .await
        .expect("login");
    lease.noop().await.expect("NOOP");
    drop(lease);
    assert_eq!(pool.idle_count(), 1, "a clean session is pooled");

    // The same session, its command cancelled while the server has not answered (the
    // operation-wide timeout fires before the command's own).
    let mut lease = pool
        .acquire(&services(), &endpoint, &auth)
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
    let mut lease = pool
        .acquire(&services(), &endpoint, &auth)
        .await
        .expect("new session");
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

    send(&transports, &endpoint, &envelope, message)
        .await
        .expect("first send");
    assert_eq!(transports.len(), 1, "a clean session is pooled");

    proxy.set(Fault::Stall);
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        send(&transports, &endpoint, &envelope, message),
    )
    .await;
    assert!(cancelled.is_err(), "the stalled send was cancelled");
    assert_eq!(
        transports.len(),
        0,
        "an SMTP session cancelled mid-send went back to the pool"
    );

    proxy.set(Fault::Pass);
    send(&transports, &endpoint, &envelope, message)
        .await
        .expect("send on a new session");
    assert_eq!(transports.len(), 1);
}

fn one_message() -> (Envelope, Outgoing) {
    let envelope = envelope_to(&["pool@example.test"]);
    let message = Outgoing::text(
        b"From: pool@example.test\r\nTo: pool@example.test\r\nSubject: reuse\r\n\r\nbody\r\n"
            .to_vec(),
    );
    (envelope, message)
}

fn verbs(commands: &support::fake_smtp::Commands, verb: &str) -> usize {
    let commands = commands.lock().expect("lock");
    commands
        .iter()
        .filter(|c| c.trim_end_matches('+').ends_with(verb))
        .count()
}

/// A session that came back a moment ago is used as it is: probing it with NOOP first would
/// add a round trip to every message a busy process sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_back_a_moment_ago_is_reused_without_a_noop() {
    let (port, received, commands) = support::fake_smtp::recording(None).await;
    let transports = SmtpTransports::new(true);
    let (envelope, message) = one_message();
    for _ in 0..3 {
        send(&transports, &endpoint(port), &envelope, &message)
            .await
            .expect("send");
    }
    assert_eq!(received.lock().expect("lock").len(), 3);
    assert_eq!(verbs(&commands, "EHLO"), 1, "one session for all three");
    assert_eq!(
        verbs(&commands, "NOOP"),
        0,
        "{:?}",
        commands.lock().expect("lock")
    );
}

/// Reuse without a probe must not cost a job when the server has meanwhile closed the session
/// (hung up, or said 421): nothing was accepted yet, so the message goes on a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_session_the_server_closed_is_replaced_without_failing_the_send() {
    use support::fake_smtp::Misbehaviour;
    for misbehaviour in [
        Misbehaviour::HangsUpAfterEachMessage,
        Misbehaviour::Says421AfterEachMessage,
    ] {
        let (port, received, commands) = support::fake_smtp::recording(Some(misbehaviour)).await;
        let transports = SmtpTransports::new(true);
        let (envelope, message) = one_message();
        for n in 0..3 {
            // Let the hang-up arrive first, as it would between two jobs.
            tokio::time::sleep(Duration::from_millis(20)).await;
            send(&transports, &endpoint(port), &envelope, &message)
                .await
                .unwrap_or_else(|e| panic!("{misbehaviour:?}: send {n}: {e}"));
        }
        assert_eq!(
            received.lock().expect("lock").len(),
            3,
            "{misbehaviour:?}: each message once"
        );
        assert_eq!(verbs(&commands, "EHLO"), 3, "{misbehaviour:?}");
    }
}

/// Only a closed session is retried: a server that refuses the sender on a live session
/// gets its answer reported, not the same MAIL again on another session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_on_a_reused_session_is_the_answer_not_a_reason_to_retry() {
    let (port, received, commands) = support::fake_smtp::recording(Some(
        support::fake_smtp::Misbehaviour::RefusesMailAfterFirstMessage,
    ))
    .await;
    let transports = SmtpTransports::new(true);
    let (envelope, message) = one_message();
    send(&transports, &endpoint(port), &envelope, &message)
        .await
        .expect("first send");
    let refused = send(&transports, &endpoint(port), &envelope, &message)
        .await
        .expect_err("the second MAIL is refused");
    assert!(refused.to_string().contains("550"), "{refused}");
    assert_eq!(received.lock().expect("lock").len(), 1);
    assert_eq!(verbs(&commands, "MAIL"), 2, "no retry after a refusal");
    assert_eq!(verbs(&commands, "EHLO"), 1);
}

fn envelope_to(recipients: &[&str]) -> Envelope {
    Envelope::new(
        Some("pool@example.test".parse::<Address>().expect("address")),
        recipients
            .iter()
            .map(|r| r.parse::<Address>().expect("address"))
            .collect(),
    )
    .expect("envelope")
}

/// Sends `message` on `transports` without a login, under the default services.
async fn send(
    transports: &SmtpTransports,
    endpoint: &Endpoint,
    envelope: &Envelope,
    message: &Outgoing,
) -> email_connector::error::Result<()> {
    transports
        .send(
            &services(),
            endpoint,
            &Authentication::None,
            envelope,
            message,
        )
        .await
}

/// Sends `message` from pool@example.test to `recipients` on the fake server at `port`.
async fn send_to(
    transports: &SmtpTransports,
    port: u16,
    recipients: &[&str],
    message: &Outgoing,
) -> email_connector::error::Result<()> {
    send(
        transports,
        &endpoint(port),
        &envelope_to(recipients),
        message,
    )
    .await
}

/// With PIPELINING offered, MAIL, every RCPT and DATA leave in one write: two round trips per
/// message instead of four; without it, one command at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_is_pipelined_only_when_the_server_offers_it() {
    use support::fake_smtp::Misbehaviour;
    for (misbehaviour, pipelined) in [
        (None, true),
        (Some(Misbehaviour::OffersNoPipelining), false),
    ] {
        let (port, received, commands) = support::fake_smtp::recording(misbehaviour).await;
        let transports = SmtpTransports::new(true);
        let (_, message) = one_message();
        let envelope = envelope_to(&["a@example.test", "b@example.test"]);
        for _ in 0..3 {
            send(&transports, &endpoint(port), &envelope, &message)
                .await
                .expect("send");
        }
        assert_eq!(received.lock().expect("lock").len(), 3);
        let commands = commands.lock().expect("lock").clone();
        let envelope_commands: Vec<&String> = commands
            .iter()
            .filter(|c| c.contains("MAIL") || c.contains("RCPT"))
            .collect();
        assert_eq!(envelope_commands.len(), 9, "{commands:?}");
        assert!(
            envelope_commands
                .iter()
                .all(|c| c.ends_with('+') == pipelined),
            "pipelined {pipelined}: {commands:?}"
        );
    }
}

/// A refused recipient fails the send whether or not the envelope was pipelined, and the
/// recipients the server did accept get nothing: after a 354 the session is shut before the
/// final dot, at once (no wait for the server's timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_fails_the_send_and_nothing_is_delivered() {
    use support::fake_smtp::Misbehaviour;
    for misbehaviour in [
        Misbehaviour::RefusesNobody,
        Misbehaviour::RefusesNobodyWithoutPipelining,
    ] {
        let (port, received, _) = support::fake_smtp::recording(Some(misbehaviour)).await;
        let transports = SmtpTransports::new(true);
        let (_, message) = one_message();
        for recipients in [
            &["a@example.test", "nobody@example.test", "b@example.test"][..],
            &["nobody@example.test"][..],
        ] {
            let started = std::time::Instant::now();
            let error = send_to(&transports, port, recipients, &message)
                .await
                .expect_err("a recipient is refused");
            assert!(
                error.to_string().contains("no such user"),
                "{misbehaviour:?}: {error}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{misbehaviour:?}: the refusal took {:?}",
                started.elapsed()
            );
        }
        // Let the server see the shut session before counting.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            received.lock().expect("lock").is_empty(),
            "{misbehaviour:?}"
        );
        // The next message goes through on a new session.
        send_to(&transports, port, &["c@example.test"], &message)
            .await
            .expect("a send after the refusal");
    }
}

/// Thousands of recipients are pipelined a hundred commands at a time, each batch's replies
/// read before the next is written: written all at once, with the replies left unread, both
/// sides' buffers could fill and each wait for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_recipient_list_is_pipelined_in_batches() {
    // The server answers MAIL late: a client that wrote the next batch without waiting for the
    // replies would have it there by the time the batch's last command is read.
    let (port, received, commands) = support::fake_smtp::recording(Some(
        support::fake_smtp::Misbehaviour::PausesBeforeAnsweringMail,
    ))
    .await;
    let transports = SmtpTransports::new(true);
    let (_, message) = one_message();
    let recipients: Vec<String> = (0..250).map(|i| format!("r{i}@example.test")).collect();
    let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
    send_to(&transports, port, &recipients, &message)
        .await
        .expect("send");
    assert_eq!(received.lock().expect("lock").len(), 1);
    let commands = commands.lock().expect("lock").clone();
    let envelope: Vec<&String> = commands
        .iter()
        .skip_while(|c| !c.contains("MAIL"))
        .take_while(|c| !c.contains("QUIT"))
        .collect();
    assert_eq!(envelope.len(), 252, "MAIL, 250 RCPT, DATA: {envelope:?}");
    // The last command of each batch arrived alone: the next batch waited for its replies.
    for end in [99, 199] {
        assert!(
            !envelope[end].ends_with('+'),
            "{end}: {:?}",
            &envelope[end - 1..=end + 1]
        );
        assert!(
            envelope[end - 1].ends_with('+'),
            "{end}: {:?}",
            &envelope[end - 1..=end]
        );
    }
}

/// A refusal in an early batch ends the envelope there: no later batch, no DATA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_in_an_early_batch_ends_the_envelope_before_data() {
    let (port, received, commands) =
        support::fake_smtp::recording(Some(support::fake_smtp::Misbehaviour::RefusesNobody)).await;
    let transports = SmtpTransports::new(true);
    let (_, message) = one_message();
    let mut recipients: Vec<String> = (0..150).map(|i| format!("r{i}@example.test")).collect();
    recipients[10] = "nobody@example.test".into();
    let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let error = send_to(&transports, port, &recipients, &message)
        .await
        .expect_err("a recipient is refused");
    assert!(error.to_string().contains("no such user"), "{error}");
    assert_eq!(verbs(&commands, "RCPT"), 99, "only the first batch");
    assert_eq!(verbs(&commands, "DATA"), 0);
    assert!(received.lock().expect("lock").is_empty());
    send_to(&transports, port, &["c@example.test"], &message)
        .await
        .expect("a send after the refusal");
}

/// An IMAP session back a moment ago, with nothing from the server since, is used as it is: a
/// NOOP before every job is a round trip the job pays for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_session_back_a_moment_ago_is_reused_without_a_noop() {
    let recorder =
        support::recorder::Recorder::start("127.0.0.1", testbed().port("PORT_IMAP")).await;
    let pool = ImapPool::new(true);
    let endpoint = endpoint(recorder.port);
    let auth = login("fault2");
    for _ in 0..3 {
        let lease = pool
            .acquire(&services(), &endpoint, &auth)
            .await
            .expect("session");
        drop(lease);
    }
    assert_eq!(pool.idle_count(), 1, "one session served all three");
    let sent = recorder.sent();
    assert!(
        !sent.contains("NOOP"),
        "a fresh session was probed:\n{sent}"
    );
}

/// A pooled IMAP session the server has closed meanwhile (a restart) is noticed without a
/// round trip and replaced: the job gets a working session, not a connection error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_imap_session_the_server_closed_is_replaced() {
    let proxy = FaultProxy::start(testbed().port("PORT_IMAP")).await;
    let pool = ImapPool::new(true);
    let endpoint = endpoint(proxy.port);
    let auth = login("fault2");
    drop(
        pool.acquire(&services(), &endpoint, &auth)
            .await
            .expect("login"),
    );
    assert_eq!(pool.idle_count(), 1);
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut lease = pool
        .acquire(&services(), &endpoint, &auth)
        .await
        .expect("a new session");
    lease.noop().await.expect("the new session works");
    assert_eq!(proxy.accepted(), 2, "a second connection was opened");
}

/// However many jobs run at once, one login holds at most its share of sessions to a server
/// (servers refuse more: Dovecot allows 10 per user and address by default); the others wait
/// for a session to come free, and a job that waits past its timeout is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_never_holds_more_than_its_sessions() {
    let proxy = FaultProxy::start(testbed().port("PORT_IMAP")).await;
    let pool = ImapPool::with_limits(true, 1 << 20, 2);
    let endpoint = endpoint(proxy.port);
    let auth = login("fault3");
    let mut jobs = Vec::new();
    for _ in 0..6 {
        let (pool, endpoint, auth) = (pool.clone(), endpoint.clone(), auth.clone());
        jobs.push(tokio::spawn(async move {
            let mut lease = pool
                .acquire(&services(), &endpoint, &auth)
                .await
                .expect("a session, after waiting");
            lease.noop().await.expect("NOOP");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }));
    }
    let mut most = 0;
    while !jobs.iter().all(|j| j.is_finished()) {
        most = most.max(proxy.open());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for job in jobs {
        job.await.expect("job");
    }
    assert!(most <= 2, "{most} sessions open at once for one login");
    assert_eq!(
        proxy.accepted(),
        2,
        "the waiting jobs reused the two sessions"
    );

    let held = pool
        .acquire(&services(), &endpoint, &auth)
        .await
        .expect("first");
    let _also = pool
        .acquire(&services(), &endpoint, &auth)
        .await
        .expect("second");
    let short = Endpoint {
        timeout: Duration::from_millis(300),
        ..endpoint.clone()
    };
    let started = std::time::Instant::now();
    let error = match pool.acquire(&services(), &short, &auth).await {
        Ok(_) => panic!("a third session for a login allowed two"),
        Err(error) => error,
    };
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        error.code,
        email_connector::error::ErrorCode::TemporaryFailure
    );
    assert!(
        error.message.contains("2 sessions"),
        "the message names the limit: {}",
        error.message
    );
    drop(held);
    let third = pool.acquire(&services(), &short, &auth).await;
    assert!(third.is_ok(), "a session came free");
}
