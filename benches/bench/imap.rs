//! IMAP: list and search through the worker against a minimal raw client that sends the same
//! commands on one session, and the worker's peak memory while reading a 25 MB and a 100 MB
//! message, and a POP3 read of the larger one.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{InProcessWorker, Row, median, one_job, proc_kb, row, standard_registry};
use crate::support::gateway::TestGateway;
use crate::support::mailbox::write_maildir;
use crate::support::{WorkerProcess, testbed};

/// The smallest useful IMAP client: tagged commands, responses read line by line up to the tag.
pub struct RawImap {
    reader: BufReader<TcpStream>,
    tag: u32,
}

impl RawImap {
    pub async fn login(user: &str) -> RawImap {
        RawImap::login_at("127.0.0.1", user).await
    }

    /// Logs in at `host` (127.0.0.2 is the testbed's older server: no SORT).
    pub async fn login_at(host: &str, user: &str) -> RawImap {
        RawImap::login_to(host, testbed().port("PORT_IMAP"), user).await
    }

    /// Logs in on any testbed server's plaintext port.
    pub async fn login_to(host: &str, port: u16, user: &str) -> RawImap {
        let stream = TcpStream::connect((host, port)).await.expect("connect");
        let mut raw = RawImap {
            reader: BufReader::new(stream),
            tag: 0,
        };
        let mut greeting = String::new();
        raw.reader.read_line(&mut greeting).await.expect("greeting");
        raw.command(&format!("LOGIN {user}@example.test {user}-pw"))
            .await;
        raw
    }

    /// Starts IDLE (RFC 2177) on the selected folder: sends it and reads the continuation.
    pub async fn idle(&mut self) {
        self.tag += 1;
        let command = format!("R{} IDLE\r\n", self.tag);
        self.reader
            .get_mut()
            .write_all(command.as_bytes())
            .await
            .expect("write");
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).await.expect("read") > 0,
                "IDLE"
            );
            if line.starts_with('+') {
                return;
            }
        }
    }

    /// In IDLE: waits for the server's `* n EXISTS`.
    pub async fn wait_exists(&mut self) {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).await.expect("read") > 0,
                "EXISTS"
            );
            if line.trim_end().ends_with("EXISTS") {
                return;
            }
        }
    }

    /// Ends IDLE and reads its completion.
    pub async fn done(&mut self) {
        self.reader
            .get_mut()
            .write_all(b"DONE\r\n")
            .await
            .expect("write");
        let tag = format!("R{} ", self.tag);
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).await.expect("read") > 0,
                "DONE"
            );
            if line.starts_with(&tag) {
                return;
            }
        }
    }

    /// What a listing fetches of the messages it shows.
    pub async fn fetch_envelopes(&mut self, uids: impl IntoIterator<Item = u32>) {
        let set: Vec<String> = uids.into_iter().map(|uid| uid.to_string()).collect();
        self.command(&format!(
            "UID FETCH {} (UID RFC822.SIZE ENVELOPE)",
            set.join(",")
        ))
        .await;
    }

    /// Sends a command and returns the untagged lines.
    pub async fn command(&mut self, command: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("R{}", self.tag);
        self.reader
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .expect("write");
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await.expect("read") == 0 {
                panic!("connection closed during {command}");
            }
            if line.starts_with(&format!("{tag} ")) {
                assert!(line[tag.len() + 1..].starts_with("OK"), "{command}: {line}");
                return lines;
            }
            lines.push(line);
        }
    }
}

/// The UIDs of a `* ESEARCH ... PARTIAL (1:10 5,4,3)` answer (single numbers, as Dovecot
/// writes them).
fn partial_uids(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| l.split_once("PARTIAL (")?.1.split_once(' '))
        .flat_map(|(_, set)| {
            set.trim_end()
                .trim_end_matches(')')
                .split(',')
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn numbers_after(lines: &[String], prefix: &str) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .flat_map(|rest| {
            rest.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

pub(crate) fn vars(folder: &str, extra: Value) -> Value {
    let mut v = json!({
        "authentication": { "username": "bench@example.test", "password": "bench-pw" },
        "server": { "host": "127.0.0.1", "port": testbed().port("PORT_IMAP"), "security": "none" },
        "folder": folder
    });
    for (k, val) in extra.as_object().expect("object") {
        v[k] = val.clone();
    }
    v
}

/// A folder of `count` small messages for the bench user, written once and kept.
pub(crate) fn ensure_folder(count: usize) -> String {
    let tb = testbed();
    let folder = format!("Bench{count}");
    let cur = std::path::PathBuf::from(tb.dir())
        .join(format!("mail/example.test/bench/Maildir/.{folder}/cur"));
    if std::fs::read_dir(&cur).map_or(0, |r| r.count()) == count {
        return folder;
    }
    let _ = std::fs::remove_dir_all(cur.parent().expect("folder"));
    let base = 1_700_000_000i64;
    let messages: Vec<(Vec<u8>, i64)> = (0..count)
        .map(|i| {
            let raw = format!(
                "Message-ID: <bench-{i:06}@example.test>\r\nFrom: sender{:05}@example.test\r\nSubject: bulk {i:06}\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nbody {i} {}\r\n",
                i % 1000,
                "x".repeat(i % 500)
            );
            (raw.into_bytes(), base + i as i64)
        })
        .collect();
    write_maildir(tb.dir(), "bench", &folder, &messages);
    folder
}

async fn time_jobs(
    gateway: &TestGateway,
    job_type: &str,
    variables: &Value,
    samples: usize,
) -> f64 {
    one_job(gateway, job_type, variables).await;
    let mut ms = Vec::new();
    for _ in 0..samples {
        ms.push(one_job(gateway, job_type, variables).await.0.as_secs_f64() * 1000.0);
    }
    median(ms)
}

async fn time_raw<F>(samples: usize, mut iteration: F) -> f64
where
    F: AsyncFnMut(),
{
    iteration().await;
    let mut ms = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        iteration().await;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    median(ms)
}

/// The raw client's partial sort (EXAMINE, `UID SORT RETURN (PARTIAL 1:10)`, FETCH of the ten).
async fn raw_partial(raw: &mut RawImap, folder: &str) {
    raw.command(&format!("EXAMINE {folder}")).await;
    let sorted = partial_uids(
        &raw.command("UID SORT RETURN (PARTIAL 1:10) (REVERSE ARRIVAL) UTF-8 ALL")
            .await,
    );
    assert_eq!(sorted.len(), 10, "the raw client's partial sort");
    raw.fetch_envelopes(sorted).await;
}

/// The raw client's full sort (EXAMINE, `UID SORT`, FETCH of the first ten).
async fn raw_full(raw: &mut RawImap, folder: &str) {
    raw.command(&format!("EXAMINE {folder}")).await;
    let sorted = numbers_after(
        &raw.command("UID SORT (REVERSE ARRIVAL) UTF-8 ALL").await,
        "* SORT",
    );
    raw.fetch_envelopes(sorted.into_iter().take(10)).await;
}

/// Medians in ms of [`raw_partial`] and [`raw_full`], interleaved (after one warm-up each).
async fn time_alternately(samples: usize, raw: &mut RawImap, folder: &str) -> (f64, f64) {
    raw_partial(raw, folder).await;
    raw_full(raw, folder).await;
    let (mut partial, mut full) = (Vec::new(), Vec::new());
    for sample in 0..samples {
        let order = if sample % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_partial in order {
            let started = Instant::now();
            if is_partial {
                raw_partial(raw, folder).await;
            } else {
                raw_full(raw, folder).await;
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if is_partial {
                partial.push(ms)
            } else {
                full.push(ms)
            }
        }
    }
    (median(partial), median(full))
}

pub async fn scenarios(quick: bool, samples: usize, rows: &mut Vec<Row>) {
    let gateway = TestGateway::start().await;
    let worker = InProcessWorker::start(&gateway, standard_registry(true), 4);
    // A job that does nothing, on the same gateway: what any job costs in Zeebe's round trips
    // (activation, completion), which no raw client pays.
    let noop = InProcessWorker::start(&gateway, crate::worker::noop_registry(), 4);
    gateway
        .wait_for_stream("email:bench:noop:1", Duration::from_secs(10))
        .await;
    let sizes: &[usize] = if quick {
        &[1000]
    } else {
        &[1000, 10_000, 100_000]
    };
    for &count in sizes {
        let folder = ensure_folder(count);
        let dispatch = time_jobs(&gateway, "email:bench:noop:1", &json!({ "n": 1 }), samples).await;
        let ours = time_jobs(
            &gateway,
            "email:imap:list:1",
            &vars(&folder, json!({ "maxToBeRead": 10, "sortOrder": "DESC" })),
            samples,
        )
        .await;
        // What a client that knows ESORT does (the server sorts and cuts, then one FETCH),
        // and one that knows only SORT (the whole order), timed alternately, each sample in
        // the other order than the one before, so neither gains from the other's warming of
        // the server's sort.
        let mut raw = RawImap::login("bench").await;
        let (partial, full) = time_alternately(samples, &mut raw, &folder).await;
        let base = partial + dispatch;
        rows.push(row(
            &format!("IMAP list, limit 10, {count} messages"),
            "ms per job",
            ours,
            Some(base),
            "ms",
            Some(ours / base),
            "<= 1.2x",
            Some(ours / base <= 1.2),
            &format!(
                "baseline: a raw client's EXAMINE + UID SORT RETURN (PARTIAL 1:10) + UID FETCH of \
                 10 envelopes on one open session ({partial:.2} ms) + a no-op job's round trip \
                 through the gateway ({dispatch:.2} ms); a raw client sorting the whole folder \
                 takes {full:.2} ms"
            ),
        ));
    }

    // The older server (no SORT): the worker fetches every message's sort key and keeps the
    // best ten; the baseline fetches the same keys and the ten envelopes.
    for &count in sizes {
        let folder = ensure_folder(count);
        let mut older_vars = vars(&folder, json!({ "maxToBeRead": 10, "sortOrder": "DESC" }));
        older_vars["server"]["host"] = json!("127.0.0.2");
        let ours = time_jobs(&gateway, "email:imap:list:1", &older_vars, samples).await;
        let mut raw = RawImap::login_at("127.0.0.2", "bench").await;
        let base = time_raw(samples, async || {
            raw.command(&format!("EXAMINE {folder}")).await;
            let mut keyed: Vec<(String, u32)> = raw
                .command("FETCH 1:* (UID INTERNALDATE)")
                .await
                .iter()
                .filter_map(|l| {
                    let uid = l
                        .split_once("UID ")?
                        .1
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()?;
                    let date = l.split_once("INTERNALDATE \"")?.1.split_once('"')?.0;
                    Some((date.to_string(), uid))
                })
                .collect();
            keyed.sort_unstable_by(|a, b| b.cmp(a));
            raw.fetch_envelopes(keyed.into_iter().take(10).map(|(_, uid)| uid))
                .await;
        })
        .await;
        rows.push(row(
            &format!("IMAP list, limit 10, {count} messages, older server (no SORT)"),
            "ms per job",
            ours,
            Some(base),
            "ms",
            Some(ours / base),
            "report",
            None,
            "baseline: EXAMINE + FETCH 1:* (UID INTERNALDATE) + UID FETCH of 10 envelopes",
        ));
    }

    let folder = ensure_folder(if quick { 1000 } else { 10_000 });
    let criteria = json!({ "operator": "OR", "criteria": [
        { "operator": "AND", "criteria": [ { "field": "FROM", "value": "sender00042" }, { "field": "SUBJECT", "value": "bulk 0000" } ] },
        { "operator": "AND", "criteria": [ { "field": "SUBJECT", "value": "bulk 00777" }, { "operator": "NOT", "criteria": [{ "field": "FROM", "value": "nobody" }] } ] }
    ]});
    let ours = time_jobs(
        &gateway,
        "email:imap:search:1",
        &vars(&folder, json!({ "criteria": criteria })),
        samples,
    )
    .await;
    let mut raw = RawImap::login("bench").await;
    let searched = time_raw(samples, async || {
        raw.command(&format!("EXAMINE {folder}")).await;
        raw.command(r#"UID SEARCH OR FROM "sender00042" SUBJECT "bulk 0000" ( SUBJECT "bulk 00777" NOT FROM "nobody" )"#).await;
    })
    .await;
    let dispatch = time_jobs(&gateway, "email:bench:noop:1", &json!({ "n": 1 }), samples).await;
    noop.stop().await;
    let base = searched + dispatch;
    rows.push(row(
        &format!(
            "IMAP search, nested criteria, {} messages",
            if quick { 1000 } else { 10_000 }
        ),
        "ms per job",
        ours,
        Some(base),
        "ms",
        Some(ours / base),
        "<= 1.5x",
        Some(ours / base <= 1.5),
        &format!(
            "baseline: a raw client's EXAMINE + the same UID SEARCH program ({searched:.2} ms) + \
             a no-op job's round trip ({dispatch:.2} ms); ours also fetches the hits' headers"
        ),
    ));

    // Session reuse on IMAPS: a TLS handshake and login per job, or one for all.
    let folder = ensure_folder(1000);
    let mut tls_vars = vars(&folder, json!({ "maxToBeRead": 10 }));
    tls_vars["server"] = json!({ "host": "127.0.0.1", "port": testbed().port("PORT_IMAPS"), "security": "tls", "serverCertificate": testbed().ca_pem() });
    worker.stop().await;
    let mut rates = Vec::new();
    for pooling in [true, false] {
        let gateway = TestGateway::start().await;
        let worker = InProcessWorker::start(&gateway, standard_registry(pooling), 1);
        let ms = time_jobs(&gateway, "email:imap:list:1", &tls_vars, samples).await;
        rates.push(1000.0 / ms);
        worker.stop().await;
    }
    rows.push(row(
        "IMAP session reuse (IMAPS list), sequential",
        "jobs/s pooling on vs off",
        rates[0],
        Some(rates[1]),
        "jobs/s",
        Some(rates[0] / rates[1]),
        "report",
        None,
        "list limit 10 on 1,000 messages over TLS",
    ));

    read_memory(quick, rows).await;
    crate::in_flight::scenario(quick, rows).await;
}

/// Peak RSS of the worker process while it reads one large message: half a text body (cut to
/// the budget), half an attachment (left on the server), so the worker really holds a budget's
/// worth of text. A fresh worker per size, as `VmHWM` is the peak since the process started.
pub async fn read_memory(quick: bool, rows: &mut Vec<Row>) {
    // Quick mode (CI) reads 10 and 20 MB: both above the budget like 25 and 100, at a fifth
    // of the disk and time.
    let (small, large) = if quick { (10, 20) } else { (25, 100) };
    let mut peaks = Vec::new();
    for megabytes in [small, large] {
        let (peak_mb, before_mb, elapsed_ms) = read_peak(megabytes, false).await;
        peaks.push(peak_mb);
        let note = format!(
            "RSS before the job {before_mb:.1} MB; read took {elapsed_ms:.0} ms; half text body \
             (cut to the 3 MiB budget), half attachment (not fetched)"
        );
        if megabytes == small {
            rows.push(row(
                &format!("IMAP read of a {megabytes} MB message"),
                "peak RSS of the worker process",
                peak_mb,
                None,
                "MB",
                None,
                "< 40 MB",
                Some(peak_mb < 40.0),
                &note,
            ));
        } else {
            let ratio = peak_mb / peaks[0];
            rows.push(row(
                &format!("IMAP read of a {megabytes} MB message"),
                "peak RSS vs the smaller read",
                peak_mb,
                Some(peaks[0]),
                "MB",
                Some(ratio),
                "< 40 MB and <= 1.1x",
                Some(peak_mb < 40.0 && ratio <= 1.1),
                &note,
            ));
        }
    }
    let (peak_mb, before_mb, elapsed_ms) = read_peak(large, true).await;
    rows.push(row(
        &format!("POP3 read of a {large} MB message"),
        "peak RSS of the worker process",
        peak_mb,
        None,
        "MB",
        None,
        "< 40 MB",
        Some(peak_mb < 40.0),
        &format!(
            "RSS before the job {before_mb:.1} MB; read took {elapsed_ms:.0} ms; RETR streamed \
             through the pruner, which keeps the 3 MiB the response can use"
        ),
    ));
}

/// Half a text body, half a base64 attachment, `megabytes` in all.
fn big_message(megabytes: usize, id: &str) -> Vec<u8> {
    let half = megabytes * 1024 * 1024 / 2;
    let mut raw = format!(
        "Message-ID: <{id}>\r\nFrom: big@example.test\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    let text_line = "Grüße aus dem Benchmark, eine Zeile Text mit etwas Inhalt 0123456789\r\n";
    while raw.len() < half {
        raw.extend_from_slice(text_line.as_bytes());
    }
    raw.extend_from_slice(b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let line = "A".repeat(76);
    while raw.len() < 2 * half {
        raw.extend_from_slice(line.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    raw
}

/// Peak and starting RSS (MB) of a fresh worker reading one `megabytes` message over IMAP,
/// or over POP3 (from the INBOX of `budget3`, which holds only that message), and the time.
async fn read_peak(megabytes: usize, pop3: bool) -> (f64, f64, f64) {
    let tb = testbed();
    let id = format!("big-half-{megabytes}@example.test");
    let (user, folder) = if pop3 {
        ("budget3", "INBOX".to_string())
    } else {
        ("bench", format!("Big{megabytes}Half"))
    };
    let maildir =
        std::path::PathBuf::from(tb.dir()).join(format!("mail/example.test/{user}/Maildir"));
    let dir = if pop3 {
        maildir.clone()
    } else {
        maildir.join(format!(".{folder}"))
    };
    // The arrival time names the file, so the folder is known to hold this size's message.
    let arrival = 1_700_000_000 + megabytes as i64;
    let holds_it = std::fs::read_dir(dir.join("cur")).is_ok_and(|entries| {
        let names: Vec<_> = entries.filter_map(|e| e.ok()).collect();
        names.len() == 1
            && names[0]
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{arrival}."))
    });
    if !holds_it {
        for sub in ["cur", "new"] {
            let _ = std::fs::remove_dir_all(dir.join(sub));
        }
        write_maildir(
            tb.dir(),
            user,
            &folder,
            &[(big_message(megabytes, &id), arrival)],
        );
    }
    let variables = if pop3 {
        json!({
            "authentication": { "username": "budget3@example.test", "password": "budget3-pw" },
            "server": { "host": "127.0.0.1", "port": tb.port("PORT_POP3"), "security": "none" },
            "messageId": id, "deleteAfterRead": false
        })
    } else {
        vars(&folder, json!({ "messageId": id }))
    };
    let job_type = if pop3 {
        "email:pop3:read:1"
    } else {
        "email:imap:read:1"
    };
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(&gateway.url(), &[("RUST_LOG", "info")]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = proc_kb(worker.pid(), "VmHWM").unwrap_or(0);
    let (elapsed, response) = one_job(&gateway, job_type, &variables).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let peak_mb = proc_kb(worker.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
    assert_eq!(response["attachments"][0]["truncated"], true);
    (
        peak_mb,
        before as f64 / 1024.0,
        elapsed.as_secs_f64() * 1000.0,
    )
}
