//! Inbound watchers: how fast a delivered mail reaches Zeebe with IDLE, and how many mails a
//! watcher hands over per second from a folder of unseen mail, against Postfix's own delivery
//! rate into Dovecot measured in the same run (the watcher must never be the bottleneck).
//! The watchers run in this process against the test gateway; the mailbox is `inbench`.

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
use crate::smtp::{delivered, smtp_source, wait_delivered};
use crate::support::gateway::TestGateway;
use crate::support::mailbox::{clear_inbox, remove_maildir, write_maildir};
use crate::support::testbed;

const USER: &str = "inbench";

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
    let tb = testbed();
    let file = json!({ "watchers": [{
        "name": "bench",
        "authentication": { "username": format!("{USER}@example.test"), "password": format!("{USER}-pw") },
        "server": { "host": "127.0.0.1", "port": tb.port("PORT_IMAP"), "security": "none" },
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
    throughput(quick, rows).await;
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
        let raw = format!(
            "Message-ID: {id}\r\nFrom: bench@example.test\r\nTo: {USER}@example.test\r\nSubject: latency {i}\r\n\r\nbody\r\n"
        );
        let before = delivered(USER);
        transport
            .send_raw(&envelope, raw.as_bytes())
            .await
            .expect("SMTP");
        let deadline = Instant::now() + Duration::from_secs(30);
        while delivered(USER) <= before {
            assert!(Instant::now() < deadline, "delivery stalled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let landed = Instant::now();
        let published = gateway
            .wait_published(1, Duration::from_secs(30), |p| p.message_id == id)
            .await;
        let at = published[0].at;
        // A publish can beat our look at the Maildir by a hair: count that as no delay.
        latencies.push(at.saturating_duration_since(landed).as_secs_f64() * 1000.0);
    }
    stop_watcher(stop, tasks).await;
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    rows.push(row(
        "Inbound IMAP IDLE: delivery to publish",
        "p50 latency",
        p50,
        None,
        "ms",
        None,
        "report",
        None,
        &format!("{n} mails through Postfix, one at a time"),
    ));
    rows.push(row(
        "Inbound IMAP IDLE: delivery to publish",
        "p99 latency",
        p99,
        None,
        "ms",
        None,
        "< 1000 ms",
        Some(p99 < 1000.0),
        &format!("{n} mails through Postfix, one at a time"),
    ));
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
