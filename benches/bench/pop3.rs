//! POP3 list against a raw client doing LIST and `TOP n 0` for every message, both through a
//! proxy that counts the bytes the server sends.

use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{InProcessWorker, Row, median, one_job, row, standard_registry};
use crate::support::gateway::TestGateway;
use crate::support::mailbox::write_maildir;
use crate::support::proxy::Pop3Proxy;
use crate::support::testbed;

async fn raw_list_and_tops(port: u16) {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("greeting");
    let single = async |reader: &mut BufReader<TcpStream>, command: &str| -> String {
        reader
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("write");
        let mut status = String::new();
        reader.read_line(&mut status).await.expect("status");
        assert!(status.starts_with("+OK"), "{command}: {status}");
        status
    };
    single(&mut reader, "USER popbench@example.test").await;
    single(&mut reader, "PASS popbench-pw").await;
    single(&mut reader, "LIST").await;
    let mut count = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("list");
        if line == ".\r\n" {
            break;
        }
        count += 1;
    }
    for n in 1..=count {
        single(&mut reader, &format!("TOP {n} 0")).await;
        loop {
            line.clear();
            reader.read_line(&mut line).await.expect("top");
            if line == ".\r\n" {
                break;
            }
        }
    }
    single(&mut reader, "QUIT").await;
}

pub async fn scenarios(quick: bool, samples: usize, rows: &mut Vec<Row>) {
    let tb = testbed();
    let count = if quick { 200 } else { 1000 };
    let inbox = std::path::PathBuf::from(tb.dir()).join("mail/example.test/popbench/Maildir/cur");
    if std::fs::read_dir(&inbox).map_or(0, |r| r.count()) != count {
        let _ = std::fs::remove_dir_all(&inbox);
        let messages: Vec<(Vec<u8>, i64)> = (0..count)
            .map(|i| {
                let raw = format!(
                    "Message-ID: <pop-{i:05}@example.test>\r\nFrom: s{i}@example.test\r\nSubject: pop {i}\r\nDate: Tue, 14 Nov 2023 {:02}:{:02}:00 +0000\r\n\r\n{}\r\n",
                    (i / 60) % 24,
                    i % 60,
                    "body line\r\n".repeat(1 + i % 40)
                );
                (raw.into_bytes(), 1_700_000_000 + i as i64)
            })
            .collect();
        write_maildir(tb.dir(), "popbench", "INBOX", &messages);
    }
    let proxy = Pop3Proxy::start(tb.port("PORT_POP3")).await;
    let gateway = TestGateway::start().await;
    let worker = InProcessWorker::start(&gateway, standard_registry(true), 1);
    let vars = json!({
        "authentication": { "username": "popbench@example.test", "password": "popbench-pw" },
        "server": { "host": "127.0.0.1", "port": proxy.port, "security": "none" },
        "maxToBeRead": 10, "sortField": "SENT_DATE", "sortOrder": "DESC"
    });
    one_job(&gateway, "email:pop3:list:1", &vars).await;
    let (mut ours, mut base, mut ours_bytes, mut base_bytes) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..samples {
        proxy.clear();
        ours.push(
            one_job(&gateway, "email:pop3:list:1", &vars)
                .await
                .0
                .as_secs_f64()
                * 1000.0,
        );
        ours_bytes = proxy.bytes_from_server();
        assert!(
            !proxy.verbs().contains(&"RETR".to_string()),
            "list sent RETR"
        );
        proxy.clear();
        let started = Instant::now();
        raw_list_and_tops(proxy.port).await;
        base.push(started.elapsed().as_secs_f64() * 1000.0);
        base_bytes = proxy.bytes_from_server();
    }
    worker.stop().await;
    let (ours, base) = (median(ours), median(base));
    rows.push(row(
        &format!("POP3 list, {count} messages"),
        "ms per job",
        ours,
        Some(base),
        "ms",
        Some(ours / base),
        "<= 1.5x, no RETR",
        Some(ours / base <= 1.5),
        "baseline: LIST + TOP n 0 for each message, one command at a time; no RETR sent",
    ));
    rows.push(row(
        &format!("POP3 list, {count} messages"),
        "bytes read from the server",
        ours_bytes as f64,
        Some(base_bytes as f64),
        "bytes",
        Some(ours_bytes as f64 / base_bytes as f64),
        "report",
        None,
        "ours adds CAPA; both read every header once",
    ));
}
