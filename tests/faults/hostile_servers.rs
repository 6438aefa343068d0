//! A mail server is chosen by the job, so it is hostile input as much as a job or a mail: these
//! scripted IMAP and POP3 servers announce literals they never mean to send, send lines that
//! never end, responses that never stop, or trickle bytes forever. Each case runs in a worker
//! process of its own, which must end the job within its timeout with a coded outcome and keep
//! its peak memory (VmHWM) small, at default settings.
//!
//! `EMAIL_CONNECTOR_BIN=target/release/email-connector cargo test --release --test faults
//! hostile_servers:: -- --nocapture --test-threads 1` measures the release binary and prints
//! one line per case (the table in RELIABILITY.md, "Hostile servers").

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::gateway::{Outcome, TestGateway};
use support::scripted::{Reply, Script, serve};
use support::{WorkerProcess, peak_rss};

/// The job's `timeoutSeconds`.
const TIMEOUT_SECONDS: u64 = 6;
/// Peak RSS every case must stay under: the chart gives a replica 448 MiB for 32 jobs.
const MAX_PEAK_RSS: u64 = 64 * 1024 * 1024;

/// What one case ended with.
struct Ended {
    /// `ok`, or the failure's code.
    code: String,
    /// The failure's message.
    message: String,
    retries: i32,
    elapsed: Duration,
    peak_rss: u64,
    response: Value,
}

/// Runs one job against `script` in a fresh worker and reports how it ended.
async fn run(case: &str, job_type: &str, protocol: &str, script: Script, extra: Value) -> Ended {
    run_for(case, job_type, protocol, script, extra, TIMEOUT_SECONDS).await
}

/// [`run`] with the job's `timeoutSeconds`.
async fn run_for(
    case: &str,
    job_type: &str,
    protocol: &str,
    script: Script,
    extra: Value,
    timeout_seconds: u64,
) -> Ended {
    let port = serve(protocol, script).await;
    let gateway = TestGateway::start().await;
    let worker = WorkerProcess::start(&gateway.url(), &[]);
    let mut variables = json!({
        "authentication": { "type": "simple", "username": "u@example.test", "password": "pw" },
        "server": {
            "host": "127.0.0.1", "port": port, "security": "none",
            "timeoutSeconds": timeout_seconds
        }
    });
    for (k, v) in extra.as_object().expect("an object") {
        variables[k] = v.clone();
    }
    let started = Instant::now();
    let key = gateway.create_job(
        &format!("email:{job_type}:1"),
        variables,
        json!({ "resultVariable": "r", "retryBackoff": "PT1S" }),
        3,
    );
    let outcome = gateway
        .wait_outcome(key, Duration::from_secs(timeout_seconds + 30))
        .await;
    let elapsed = started.elapsed();
    let peak = peak_rss(worker.pid());
    let (code, retries, response, message) = match outcome {
        Outcome::Failed {
            retries, message, ..
        } => {
            println!("{case}: {message}");
            (
                message.split(':').next().unwrap_or_default().to_string(),
                retries,
                Value::Null,
                message,
            )
        }
        Outcome::Completed { variables } => {
            ("ok".to_string(), 3, variables["r"].clone(), String::new())
        }
        other => panic!("{case}: expected a result or a failure, got {other:?}"),
    };
    println!(
        "| {case} | {job_type} | {:.1} MiB | {code} (retries {retries}) | {:.1} s |",
        peak as f64 / 1024.0 / 1024.0,
        elapsed.as_secs_f64()
    );
    Ended {
        code,
        message,
        retries,
        elapsed,
        peak_rss: peak,
        response,
    }
}

fn assert_bounded(case: &str, ended: &Ended, code: &str) {
    assert_bounded_in(case, ended, code, TIMEOUT_SECONDS)
}

fn assert_bounded_in(case: &str, ended: &Ended, code: &str, timeout_seconds: u64) {
    assert_eq!(ended.code, code, "{case}");
    if code == "ok" {
        assert!(!ended.response.is_null(), "{case}: a response");
    } else {
        assert_eq!(ended.retries, 2, "{case}: a server's trouble is retried");
    }
    assert!(
        ended.elapsed < Duration::from_secs(timeout_seconds + 5),
        "{case}: {:?}",
        ended.elapsed
    );
    assert!(
        ended.peak_rss < MAX_PEAK_RSS,
        "{case}: peak RSS {} MiB",
        ended.peak_rss / 1024 / 1024
    );
}

/// An IMAP server that logs in anyone and answers EXAMINE with `select`.
fn imap_selecting(select: Reply) -> Script {
    Script::imap(move |verb| match verb {
        "EXAMINE" | "SELECT" => Some(select.clone()),
        _ => None,
    })
}

const HUNDRED_MB: u64 = 100 * 1000 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greeting_announcing_a_huge_literal_is_refused() {
    let script = Script::imap(|_| None).greeting(Reply::literal(
        "* 1 FETCH (BODY[] {536000000}\r\n",
        536_000_000,
        "",
    ));
    let ended = run(
        "greeting literal of 536 MB",
        "imap:list",
        "imap",
        script,
        json!({}),
    )
    .await;
    assert_bounded("greeting literal", &ended, "CONNECTION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_structure_behind_a_text_line_ending_in_a_literal_is_never_parsed() {
    // `{n}` ending a text line is text to imap-proto, a literal to the nesting guard, which
    // skipped the n bytes after it: a BODYSTRUCTURE nested 50,000 deep there went to the
    // parser unchecked, and a recursive parser's stack overflow aborts the whole process.
    let mut deep = String::from("* 1 FETCH (BODYSTRUCTURE ");
    deep.push_str(&"(".repeat(50_000));
    deep.push_str("\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1");
    deep.push_str(&")".repeat(50_000));
    deep.push_str(")\r\n");
    let greeting = format!(
        "* OK ready {{{}}}\r\n{deep}* OK really ready\r\n",
        deep.len()
    );
    let ended = run(
        "a greeting ending in {n}, then a structure nested 50,000 deep",
        "imap:list",
        "imap",
        Script::imap(|_| None).greeting(Reply::Text(greeting)),
        json!({}),
    )
    .await;
    assert_bounded("smuggled nesting", &ended, "CONNECTION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_fetch_literals_in_reply_to_select_are_refused() {
    let mut parts = vec![Reply::text("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n")];
    for n in 1..=8 {
        parts.push(Reply::literal(
            &format!("* {n} FETCH (BODY[] {{{HUNDRED_MB}}}\r\n"),
            HUNDRED_MB,
            ")\r\n",
        ));
    }
    parts.push(Reply::tagged("OK [READ-ONLY] done"));
    let ended = run(
        "8 unsolicited FETCH literals of 100 MB after SELECT",
        "imap:list",
        "imap",
        imap_selecting(Reply::Sequence(parts)),
        json!({}),
    )
    .await;
    assert_bounded("select literals", &ended, "CONNECTION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_without_end_is_refused() {
    let ended = run(
        "a response line without CRLF",
        "imap:list",
        "imap",
        imap_selecting(Reply::endless("* OK ", "aaaaaaaaaaaaaaaa")),
        json!({}),
    )
    .await;
    assert_bounded("endless line", &ended, "CONNECTION_FAILED");
}

/// IMAP responses of `unit` without end, in reply to SELECT.
async fn endless_responses(case: &str, unit: &str) {
    // Half a million responses to parse: time enough for an unoptimised build.
    let ended = run_for(
        case,
        "imap:list",
        "imap",
        imap_selecting(Reply::endless("", unit)),
        json!({}),
        30,
    )
    .await;
    assert_bounded_in(case, &ended, "CONNECTION_FAILED", 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_run_of_ok_responses_is_refused() {
    endless_responses("endless `* OK` lines", "* OK still here\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_run_of_small_fetch_responses_is_refused() {
    endless_responses("endless small FETCH responses", "* 1 FETCH (UID 1)\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_search_answer_is_refused() {
    let script = Script::imap(|verb| match verb {
        "EXAMINE" | "SELECT" => Some(Reply::Sequence(vec![
            Reply::text("* 1 EXISTS\r\n"),
            Reply::tagged("OK done"),
        ])),
        "SEARCH" => Some(Reply::endless("* SEARCH", " 1")),
        _ => None,
    });
    let ended = run(
        "a SEARCH answer without end",
        "imap:search",
        "imap",
        script,
        json!({ "criteria": { "field": "SUBJECT", "value": "x" } }),
    )
    .await;
    assert_bounded("endless search", &ended, "CONNECTION_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_larger_than_its_structure_says_is_refused() {
    const ID_FIELD: &str = "Message-ID: <lie@example.test>\r\n";
    const HEADER: &str = "Subject: a lie\r\n\r\n";
    // The message claims 100 MB, its structure a 10-byte text: the read asks for that text
    // whole, and the server sends 100 MB.
    let script = Script::imap_lines(|verb, line| match verb {
        "EXAMINE" | "SELECT" => Some(Reply::Sequence(vec![
            Reply::text("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"),
            Reply::tagged("OK done"),
        ])),
        "SEARCH" => Some(Reply::Sequence(vec![
            Reply::text("* SEARCH 7\r\n"),
            Reply::tagged("OK done"),
        ])),
        "FETCH" if line.contains("MESSAGE-ID)]") => Some(Reply::Sequence(vec![
            Reply::Text(format!(
                "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (MESSAGE-ID)]<0> {{{}}}\r\n{ID_FIELD})\r\n",
                ID_FIELD.len()
            )),
            Reply::tagged("OK done"),
        ])),
        "FETCH" if line.contains("BODYSTRUCTURE") => Some(Reply::Sequence(vec![
            Reply::text(
                "* 1 FETCH (UID 7 RFC822.SIZE 100000000 INTERNALDATE \"01-Feb-2024 10:00:00 +0000\" BODYSTRUCTURE (\"text\" \"plain\" NIL NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL))\r\n",
            ),
            Reply::tagged("OK done"),
        ])),
        "FETCH" => Some(Reply::Sequence(vec![
            Reply::Text(format!(
                "* 1 FETCH (UID 7 BODY[HEADER]<0> {{{}}}\r\n{HEADER} BODY[TEXT] ",
                HEADER.len()
            )),
            Reply::literal(&format!("{{{HUNDRED_MB}}}\r\n"), HUNDRED_MB, ")\r\n"),
            Reply::tagged("OK done"),
        ])),
        _ => None,
    });
    let ended = run(
        "a 100 MB section whose structure says 10 bytes",
        "imap:read",
        "imap",
        script,
        json!({ "messageId": "<lie@example.test>" }),
    )
    .await;
    assert_bounded("lying section", &ended, "CONNECTION_FAILED");
    assert!(ended.message.contains("100000000"), "{}", ended.message);
}

/// An IMAP server whose SEARCH answers `count` times `unit`, in one line.
fn searching(unit: &'static str, count: u64) -> Script {
    Script::imap(move |verb| match verb {
        "EXAMINE" | "SELECT" => Some(Reply::Sequence(vec![
            Reply::text("* 1 EXISTS\r\n"),
            Reply::tagged("OK done"),
        ])),
        "SEARCH" => Some(Reply::Sequence(vec![
            Reply::text("* SEARCH"),
            Reply::Repeat {
                unit: unit.to_string(),
                times: count,
            },
            Reply::text("\r\n"),
            Reply::tagged("OK done"),
        ])),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_answer_of_half_a_million_uids_is_read_and_two_million_are_refused() {
    let criteria = json!({ "criteria": { "field": "SUBJECT", "value": "x" } });
    // Millions of UIDs to parse: time enough for an unoptimised build on a busy machine.
    let timeout = 30;
    // 4 MB, just under what a SEARCH may send at the default budget (3 MiB and 1 MiB).
    let ended = run_for(
        "a SEARCH answer of 500,000 7-digit UIDs (4 MB)",
        "imap:search",
        "imap",
        searching(" 1234567", 500_000),
        criteria.clone(),
        timeout,
    )
    .await;
    assert_bounded_in("half a million uids", &ended, "ok", timeout);
    // As many bytes, as 2-byte UIDs: they would take 8 MB held, twice what may be kept.
    let ended = run_for(
        "a SEARCH answer of 2,000,000 1-digit UIDs (4 MB)",
        "imap:search",
        "imap",
        searching(" 1", 2_000_000),
        criteria,
        timeout,
    )
    .await;
    assert_bounded_in("two million uids", &ended, "CONNECTION_FAILED", timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_trickled_forever_ends_with_the_job_timeout() {
    let ended = run(
        "a literal trickled a byte at a time",
        "imap:list",
        "imap",
        imap_selecting(Reply::trickle("* 1 FETCH (BODY[] {1000}\r\n")),
        json!({}),
    )
    .await;
    assert_bounded("trickle", &ended, "TIMEOUT");
    assert!(ended.elapsed >= Duration::from_secs(TIMEOUT_SECONDS - 1));
}

/// A POP3 maildrop of `count` messages of `size` bytes, whose `TOP n 0` is `top` (given the
/// message number) and whose RETR is `retr`.
fn pop3_maildrop(
    count: u32,
    size: u64,
    top: impl Fn(u32) -> Reply + Send + Sync + 'static,
    retr: Reply,
) -> Script {
    Script::pop3(move |verb, line| {
        let number = || {
            line.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        match verb {
            "LIST" => Some(Reply::Text(format!(
                "+OK\r\n{}.\r\n",
                (1..=count)
                    .map(|n| format!("{n} {size}\r\n"))
                    .collect::<String>()
            ))),
            "TOP" => Some(top(number())),
            "RETR" => Some(retr.clone()),
            _ => None,
        }
    })
}

/// A header block: Message-ID, Subject, then `padding` bytes of `X-Pad` lines.
fn header_block(n: u32, padding: u64) -> Reply {
    let line = format!("X-Pad: {}\r\n", "p".repeat(990));
    let lines = padding / line.len() as u64;
    Reply::Sequence(vec![
        Reply::Text(format!(
            "+OK\r\nMessage-ID: <m{n}@example.test>\r\nSubject: message {n}\r\nDate: Thu, 1 Feb 2024 10:00:{n:02} +0000\r\n"
        )),
        Reply::Repeat {
            unit: line,
            times: lines,
        },
        Reply::text("\r\n.\r\n"),
    ])
}

const SIXTY_MIB: u64 = 60 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_header_blocks_of_60_mib_list_from_their_first_lines() {
    let script = pop3_maildrop(
        10,
        SIXTY_MIB + 200,
        |n| header_block(n, SIXTY_MIB),
        Reply::text("-ERR not here\r\n"),
    );
    // 600 MiB cross the loopback: time enough for an unoptimised build.
    let ended = run_for(
        "10 POP3 messages with 60 MiB header blocks",
        "pop3:list",
        "pop3",
        script,
        json!({ "sortOrder": "DESC" }),
        120,
    )
    .await;
    assert_eq!(ended.code, "ok", "{:?}", ended.response);
    assert!(
        ended.peak_rss < MAX_PEAK_RSS,
        "peak RSS {} MiB",
        ended.peak_rss / 1024 / 1024
    );
    let subjects: Vec<&str> = ended
        .response
        .as_array()
        .expect("a listing")
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    let expected: Vec<String> = (1..=10).rev().map(|n| format!("message {n}")).collect();
    assert_eq!(subjects, expected);
}

/// A POP3 job against `script` that must end with CONNECTION_FAILED. Some read megabytes
/// line by line: time enough for an unoptimised build on a busy machine.
async fn pop3_refused(case: &str, job_type: &str, script: Script, extra: Value) {
    let ended = run_for(case, job_type, "pop3", script, extra, 30).await;
    assert_bounded_in(case, &ended, "CONNECTION_FAILED", 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_list_without_end_is_refused() {
    let script =
        Script::pop3(|verb, _| (verb == "LIST").then(|| Reply::endless("+OK\r\n", "1 1\r\n")));
    pop3_refused("a POP3 LIST without end", "pop3:list", script, json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_top_answer_without_end_is_refused() {
    let script = pop3_maildrop(
        1,
        100,
        |_| Reply::endless("+OK\r\n", "X-Pad: pppppppp\r\n"),
        Reply::text("-ERR\r\n"),
    );
    pop3_refused(
        "a POP3 TOP answer without end",
        "pop3:list",
        script,
        json!({}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_top_answer_of_one_endless_line_is_refused() {
    let script = pop3_maildrop(
        1,
        100,
        |_| Reply::endless("+OK\r\nX-Pad: ", "pppppppp"),
        Reply::text("-ERR\r\n"),
    );
    pop3_refused(
        "a POP3 TOP answer of one endless line",
        "pop3:list",
        script,
        json!({}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_retr_without_end_is_refused() {
    let script = pop3_maildrop(
        1,
        1000,
        |n| header_block(n, 0),
        Reply::endless("+OK\r\nSubject: x\r\n\r\n", "body line\r\n"),
    );
    let extra = json!({ "messageId": "<m1@example.test>" });
    pop3_refused("a POP3 RETR without end", "pop3:read", script, extra).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_answer_trickled_forever_ends_with_the_job_timeout() {
    let script = pop3_maildrop(
        1,
        100,
        |_| Reply::trickle("+OK\r\nSubject: "),
        Reply::text("-ERR\r\n"),
    );
    let ended = run(
        "a POP3 TOP answer trickled a byte at a time",
        "pop3:list",
        "pop3",
        script,
        json!({}),
    )
    .await;
    assert_bounded("pop3 trickle", &ended, "TIMEOUT");
}
