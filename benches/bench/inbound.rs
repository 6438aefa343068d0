//! Inbound watchers: how fast a delivered mail reaches Zeebe with IDLE, against a raw IDLE
//! client's notice from the same server in the same run (Dovecot waits half a second before
//! it tells an IDLE client of mail another process delivered; Cyrus with its idled tells at
//! once), and how many mails a watcher hands over per second from a folder of unseen mail,
//! against Postfix's own delivery rate into Dovecot (the watcher must never be the
//! bottleneck). The watchers run in this process against the test gateway; the mailbox is
//! `inbench` on Dovecot, `srv15` on Cyrus.

use std::sync::Arc;
use std::time::{Duration, Instant};

use email_connector::gateway::{GatewayClient, GatewayConfig};
use email_connector::inbound::config::parse;
use email_connector::mail::policy::HostPolicy;
use email_connector::metrics::Metrics;
use email_connector::operation::OperationSettings;
use email_connector::secrets::SecretProvider;
use email_connector::services::Services;
use lettre::AsyncTransport;
use serde_json::json;
use tokio::sync::watch;

use crate::common::{Row, row};
use crate::imap::RawImap;
use crate::smtp::{delivered, smtp_source, wait_delivered};
use crate::support::gateway::TestGateway;
use crate::support::mailbox::{
    clear_inbox, clear_inbox_at, login_at, remove_maildir, write_maildir,
};
use crate::support::{cyrus, testbed};

const USER: &str = "inbench";

/// Where a watcher logs in: plaintext port and user of a testbed server.
#[derive(Clone, Copy)]
struct Mailbox {
    port: u16,
    user: &'static str,
}

fn dovecot() -> Mailbox {
    Mailbox {
        port: testbed().port("PORT_IMAP"),
        user: USER,
    }
}

/// Starts one IMAP watcher on `folder` of inbench; returns what stops it.
fn start_watcher(
    gateway: &TestGateway,
    folder: &str,
    idle: bool,
) -> (
    watch::Sender<bool>,
    email_connector::inbound::InboundStatus,
    Vec<tokio::task::JoinHandle<()>>,
) {
    start_watcher_on(gateway, dovecot(), folder, idle)
}

/// Starts one IMAP watcher on `folder` of `mailbox`; returns what stops it.
fn start_watcher_on(
    gateway: &TestGateway,
    mailbox: Mailbox,
    folder: &str,
    idle: bool,
) -> (
    watch::Sender<bool>,
    email_connector::inbound::InboundStatus,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let user = mailbox.user;
    let file = json!({ "watchers": [{
        "name": "bench",
        "authentication": { "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": { "host": "127.0.0.1", "port": mailbox.port, "security": "none" },
        "folder": folder, "idle": idle, "pollInterval": "PT60S", "maxPerPoll": -1,
        "publishMessage": { "name": "mail-received" }
    }]});
    let watchers = parse(
        &file.to_string(),
        &SecretProvider::new("UNSET_", None),
        &HostPolicy::default(),
    )
    .expect("watcher config");
    let client = GatewayClient::connect_lazy(&GatewayConfig {
        address: gateway.url(),
        ..GatewayConfig::default()
    })
    .expect("gateway client");
    let (stop, stopped) = watch::channel(false);
    let metrics = Metrics::new();
    let (status, tasks) = email_connector::inbound::start(
        watchers,
        &client,
        &Arc::new(Services::default()),
        OperationSettings::default().read_limits(),
        &metrics,
        &stopped,
    );
    (stop, status, tasks)
}

async fn stop_watcher(stop: watch::Sender<bool>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    let _ = stop.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
}

async fn wait_state(status: &email_connector::inbound::InboundStatus, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !status.lines().contains(state) {
        assert!(Instant::now() < deadline, "watcher: {}", status.lines());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub async fn scenarios(quick: bool, rows: &mut Vec<Row>) {
    latency(quick, rows).await;
    cyrus_latency(quick, rows).await;
    throughput(quick, rows).await;
}

/// p50 and p99 rows of one server's IDLE latency, ours against a raw IDLE client's notice:
/// `p99_goal` judges ours and the raw client's p99.
#[allow(clippy::too_many_arguments)]
fn latency_rows(
    rows: &mut Vec<Row>,
    scenario: &str,
    ours: &mut [f64],
    raw: &mut [f64],
    p99_goal: &str,
    p99_met: impl Fn(f64, f64) -> bool,
    note: &str,
) {
    ours.sort_by(f64::total_cmp);
    raw.sort_by(f64::total_cmp);
    for (measure, p) in [("p50 latency", 0.5), ("p99 latency", 0.99)] {
        let (mine, base) = (percentile(ours, p), percentile(raw, p));
        let p99 = p > 0.5;
        rows.push(row(
            scenario,
            measure,
            mine,
            Some(base),
            "ms",
            Some(mine / base.max(0.001)),
            if p99 { p99_goal } else { "report" },
            p99.then(|| p99_met(mine, base)),
            note,
        ));
    }
}

/// A raw client in IDLE on `mailbox`'s INBOX: milliseconds from each `deliver` (which returns
/// the moment the mail is in) to the server's `* n EXISTS`.
async fn raw_idle_latencies<F, Fut>(mailbox: Mailbox, n: usize, mut deliver: F) -> Vec<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Instant>,
{
    let mut raw = RawImap::login_to("127.0.0.1", mailbox.port, mailbox.user).await;
    raw.command("SELECT INBOX").await;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        raw.idle().await;
        let landed = deliver(i).await;
        raw.wait_exists().await;
        latencies.push(landed.elapsed().as_secs_f64() * 1000.0);
        raw.done().await;
    }
    raw.command("LOGOUT").await;
    latencies
}

/// Cyrus with idled: APPEND from another session to publish, and to a raw client's notice.
async fn cyrus_latency(quick: bool, rows: &mut Vec<Row>) {
    let n = if quick { 20 } else { 200 };
    let mailbox = Mailbox {
        port: cyrus().port("CYRUS_DEBIAN_IMAP"),
        user: "srv15",
    };
    clear_inbox_at(mailbox.port, mailbox.user).await;
    let mut appender = login_at(mailbox.port, mailbox.user).await;
    let mail = |i: usize, kind: &str| {
        let id = format!("<cyrus-{kind}-{i}-{}@example.test>", std::process::id());
        let raw = format!(
            "Message-ID: {id}\r\nFrom: bench@example.test\r\nTo: srv15@example.test\r\nSubject: latency {i}\r\n\r\nbody\r\n"
        );
        (id, raw)
    };

    let gateway = TestGateway::start().await;
    let (stop, status, tasks) = start_watcher_on(&gateway, mailbox, "INBOX", true);
    wait_state(&status, "watching (IDLE)").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ours = Vec::with_capacity(n);
    for i in 0..n {
        let (id, raw) = mail(i, "watched");
        appender
            .append("INBOX", None, None, raw.as_bytes())
            .await
            .expect("APPEND");
        let appended = Instant::now();
        let published = gateway
            .wait_published(1, Duration::from_secs(30), |p| p.message_id == id)
            .await;
        ours.push(
            published[0]
                .at
                .saturating_duration_since(appended)
                .as_secs_f64()
                * 1000.0,
        );
    }
    stop_watcher(stop, tasks).await;

    let appender = std::sync::Arc::new(tokio::sync::Mutex::new(appender));
    let mut raw = raw_idle_latencies(mailbox, n, |i| {
        let appender = appender.clone();
        let (_, raw) = mail(i, "raw");
        async move {
            appender
                .lock()
                .await
                .append("INBOX", None, None, raw.as_bytes())
                .await
                .expect("APPEND");
            Instant::now()
        }
    })
    .await;
    let _ = appender.lock().await.logout().await;
    clear_inbox_at(mailbox.port, mailbox.user).await;
    latency_rows(
        rows,
        "Inbound IMAP IDLE, Cyrus with idled: APPEND to publish",
        &mut ours,
        &mut raw,
        "< 100 ms",
        |mine, _| mine < 100.0,
        &format!(
            "{n} mails appended by another session, one at a time; baseline: a raw IDLE client's * EXISTS"
        ),
    );
}

/// Delivery (the file in Dovecot's Maildir) to PublishMessage, one mail at a time, with IDLE.
async fn latency(quick: bool, rows: &mut Vec<Row>) {
    let tb = testbed();
    let n = if quick { 20 } else { 200 };
    clear_inbox(USER).await;
    let gateway = TestGateway::start().await;
    let (stop, status, tasks) = start_watcher(&gateway, "INBOX", true);
    wait_state(&status, "watching (IDLE)").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(tb.port("PORT_SMTP"))
            .build();
    let envelope = lettre::address::Envelope::new(
        Some("bench@example.test".parse().expect("from")),
        vec![format!("{USER}@example.test").parse().expect("to")],
    )
    .expect("envelope");
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("<inbound-latency-{i}-{}@example.test>", std::process::id());
        let landed = deliver_through_postfix(&transport, &envelope, &id).await;
        let published = gateway
            .wait_published(1, Duration::from_secs(30), |p| p.message_id == id)
            .await;
        let at = published[0].at;
        // A publish can beat our look at the Maildir by a hair: count that as no delay.
        latencies.push(at.saturating_duration_since(landed).as_secs_f64() * 1000.0);
    }
    stop_watcher(stop, tasks).await;

    let mut raw = raw_idle_latencies(dovecot(), n, |i| {
        let transport = transport.clone();
        let envelope = envelope.clone();
        async move {
            let id = format!("<inbound-raw-{i}-{}@example.test>", std::process::id());
            deliver_through_postfix(&transport, &envelope, &id).await
        }
    })
    .await;
    latency_rows(
        rows,
        "Inbound IMAP IDLE, Dovecot: delivery to publish",
        &mut latencies,
        &mut raw,
        "ours − raw < 100 ms",
        |mine, base| mine - base < 100.0,
        &format!(
            "{n} mails through Postfix, one at a time; baseline: a raw IDLE client's * EXISTS \
             (Dovecot's own wait before it tells)"
        ),
    );
}

/// Sends one small mail to inbench through Postfix and returns when its file is in the
/// Maildir.
async fn deliver_through_postfix(
    transport: &lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    envelope: &lettre::address::Envelope,
    id: &str,
) -> Instant {
    let raw = format!(
        "Message-ID: {id}\r\nFrom: bench@example.test\r\nTo: {USER}@example.test\r\nSubject: latency\r\n\r\nbody\r\n"
    );
    let before = delivered(USER);
    transport
        .send_raw(envelope, raw.as_bytes())
        .await
        .expect("SMTP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(USER) <= before {
        assert!(Instant::now() < deadline, "delivery stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Instant::now()
}

/// Mails handed over per second from a folder of unseen mail, against Postfix delivering the
/// same number into Dovecot (smtp-source, 16 sessions).
async fn throughput(quick: bool, rows: &mut Vec<Row>) {
    let tb = testbed();
    let n = if quick { 300 } else { 10_000 };
    let folder = "Unseen";
    remove_maildir(tb.dir(), USER, folder);
    let base = 1_700_000_000i64;
    let messages: Vec<(Vec<u8>, i64)> = (0..n)
        .map(|i| {
            let raw = format!(
                "Message-ID: <inbound-bulk-{i}-{}@example.test>\r\nFrom: bench@example.test\r\nTo: {USER}@example.test\r\nSubject: bulk {i}\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\n\r\n{}\r\n",
                std::process::id(),
                "x".repeat(1000)
            );
            (raw.into_bytes(), base + i as i64)
        })
        .collect();
    write_maildir(tb.dir(), USER, folder, &messages);
    // write_maildir stores mail as seen (`:2,S`); these must wait unseen.
    let cur = std::path::PathBuf::from(tb.dir())
        .join("mail/example.test")
        .join(USER)
        .join("Maildir")
        .join(format!(".{folder}"))
        .join("cur");
    for entry in std::fs::read_dir(&cur).expect("cur").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(unseen) = name.strip_suffix(",S") {
            let _ = std::fs::rename(entry.path(), cur.join(format!("{unseen},")));
        }
    }
    let gateway = TestGateway::start().await;
    let started = Instant::now();
    let (stop, _status, tasks) = start_watcher(&gateway, folder, false);
    gateway
        .wait_published(n, Duration::from_secs(1200), |_| true)
        .await;
    let ours = n as f64 / started.elapsed().as_secs_f64();
    stop_watcher(stop, tasks).await;
    remove_maildir(tb.dir(), USER, folder);

    clear_inbox(USER).await;
    let before = delivered(USER);
    let started = Instant::now();
    smtp_source(tb.port("PORT_SMTP"), 16, n, &format!("{USER}@example.test"));
    wait_delivered(USER, before + n).await;
    let postfix = n as f64 / started.elapsed().as_secs_f64();
    clear_inbox(USER).await;
    rows.push(row(
        "Inbound IMAP: folder of unseen mail handed over",
        "mails/s",
        ours,
        Some(postfix),
        "msg/s",
        Some(ours / postfix),
        ">= 1x (Postfix into Dovecot)",
        Some(ours >= postfix),
        &format!(
            "{n} unseen mails, markRead each; baseline smtp-source -s 16 through Postfix into Dovecot"
        ),
    ));
}
