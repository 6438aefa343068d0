//! The task headers of Camunda's Email templates on the drop-in's job type, as Camunda's
//! connector runtime treats them: `resultVariable` and `resultExpression` (both written, the
//! expression's keys winning, the response's fields at its top level), `errorExpression`
//! (after every run, with the output or the error and `job.retries` in scope), `retryBackoff`
//! (none when the header is absent), `jobTimeout` (applied before the run; a job the gateway
//! no longer knows is not run) and the task's `retries` (docs/camunda-dropin.md, "Task
//! headers").

use crate::camunda_dropin::{Setup, keys, setup_with, smtp_job};
use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::gateway::{Outcome, completed, failed, thrown};
use support::{testbed, unique};

const CAMUNDA_TYPE: &str = "io.camunda:email:1";
const WAIT: Duration = Duration::from_secs(30);
/// Whose login the reads use: a mailbox that stays empty.
const READER: &str = "dropin3";

/// A send that completes with Camunda's object response, delivered nowhere.
fn send(subject: &str) -> Value {
    smtp_job(json!({
        "from": "dropin3@example.test", "to": "nobody@discard.test", "subject": subject, "body": "b"
    }))
}

/// A read that fails with EMAIL_NOT_FOUND (retried by Camunda, not by us: a missing mail).
fn read_missing() -> Value {
    let tb = testbed();
    json!({
        "authentication": { "type": "simple", "username": format!("{READER}@example.test"), "password": format!("{READER}-pw") },
        "protocol": "imap",
        "data": { "imapConfig": { "imapHost": "127.0.0.1", "imapPort": tb.port("PORT_IMAPS"), "imapCryptographicProtocol": "TLS" },
                  "imapActionDiscriminator": "readEmailImap",
                  "imapAction": { "messageId": "<never-sent@dropin.test>" } }
    })
}

/// A search that completes with Camunda's list response (an array).
fn search_nothing() -> Value {
    let mut job = read_missing();
    job["data"]["imapActionDiscriminator"] = json!("searchEmailsImap");
    job["data"]["imapAction"] =
        json!({ "criteria": { "field": "SUBJECT", "value": unique("none") } });
    job
}

/// A send to a port nothing listens on: CONNECTION_FAILED, which is retried.
fn unreachable() -> Value {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut job = send("unreachable");
    job["data"]["smtpConfig"]["smtpPort"] = json!(closed);
    job
}

async fn outcome(s: &Setup, variables: Value, headers: Value) -> Outcome {
    s.outcome(CAMUNDA_TYPE, variables, headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_variable_and_result_expression_as_camundas_runtime() {
    let s = setup_with(CAMUNDA_TYPE, &[], &[]).await;

    // Neither header: the job completes with no variables.
    let none = completed(outcome(&s, send("no headers"), json!({})).await);
    assert!(none.as_object().is_none_or(|o| o.is_empty()), "{none}");

    // Both: the response under resultVariable, the expression's entries beside it (winning on a
    // clash), the response's fields at the expression's top level and as `response`.
    let headers = json!({
        "resultVariable": "subject",
        "resultExpression": "={subject: \"mine\", sentToo: sent, id: response.messageId}"
    });
    let both = completed(outcome(&s, send("both"), headers).await);
    let mut names = keys(&both);
    names.sort_unstable();
    assert_eq!(names, ["id", "sentToo", "subject"], "{both}");
    assert_eq!(both["subject"], "mine");
    assert_eq!(both["sentToo"], true);
    assert!(both["id"].as_str().is_some_and(|id| id.starts_with('<')));

    // A list response is only `response`: its items are not merged at the top level.
    let headers = json!({ "resultExpression": "={n: count(response), s: subject}" });
    let list = completed(outcome(&s, search_nothing(), headers).await);
    assert_eq!(list, json!({ "n": 0, "s": null }));

    // A result that is not a context is the model's mistake: an incident at once.
    let headers = json!({ "resultExpression": "=\"text\"" });
    let (retries, message, _) = failed(outcome(&s, send("not a context"), headers).await);
    assert_eq!(retries, 0);
    assert!(message.contains("resultExpression"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_expression_after_every_run_as_camundas_runtime() {
    let s = setup_with(CAMUNDA_TYPE, &[], &[]).await;

    // On success it sees the output variables when there are any...
    let headers = json!({
        "resultVariable": "r",
        "errorExpression": "=if r.sent then bpmnError(\"SENT\", r.subject, {was: r.subject}) else null"
    });
    let (code, message) = thrown(outcome(&s, send("seen as r"), headers).await);
    assert_eq!((code.as_str(), message.as_str()), ("SENT", "seen as r"));
    // ... and the response itself otherwise.
    let headers = json!({ "errorExpression": "=if sent and response.sent then bpmnError(\"RAW\", subject) else null" });
    assert_eq!(thrown(outcome(&s, send("raw"), headers).await).0, "RAW");

    // On failure: `error` (also as `response.error`) with our code; jobError's retries and
    // backoff default to 0, its message becomes the variable `error`.
    let headers = json!({
        "errorExpression": "=if error.code = \"EMAIL_NOT_FOUND\" and response.error.code = error.code then jobError(\"gone: \" + error.type) else null"
    });
    let key = s
        .gateway
        .create_job(CAMUNDA_TYPE, read_missing(), headers, 3);
    let (retries, message, backoff) = failed(s.gateway.wait_outcome(key, WAIT).await);
    assert_eq!((retries, backoff), (0, 0), "{message}");
    assert!(message.starts_with("gone: io.camunda."), "{message}");
    let variables = s.gateway.error_variables(key);
    assert_eq!(
        variables[0]["error"],
        json!(message.split(" | ").next().unwrap())
    );

    // job.retries is the job's as activated.
    let headers =
        json!({ "errorExpression": "=jobError(\"again\", {}, job.retries - 1, @\"PT1S\")" });
    let (retries, _, backoff) = failed(outcome(&s, read_missing(), headers).await);
    assert_eq!((retries, backoff), (2, 1000));

    // null: the run's own outcome.
    let headers = json!({ "errorExpression": "=null" });
    let (retries, message, _) = failed(outcome(&s, read_missing(), headers).await);
    assert!(message.starts_with("EMAIL_NOT_FOUND"), "{message}");
    assert_eq!(retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_retry_backoff_as_camundas_runtime() {
    let s = setup_with(CAMUNDA_TYPE, &[], &[]).await;
    // No retryBackoff header: Camunda's runtime sends no backoff, and neither does the drop-in
    // (this worker's own job types wait 30 s).
    let (retries, message, backoff) = failed(outcome(&s, unreachable(), json!({})).await);
    assert!(message.starts_with("CONNECTION_FAILED"), "{message}");
    assert_eq!((retries, backoff), (2, 0));
    // The templates' values: PT0S up to version 4, PT30S from version 5.
    for (header, expected) in [("PT0S", 0), ("PT30S", 30_000)] {
        let headers = json!({ "retryBackoff": header });
        let (retries, _, backoff) = failed(outcome(&s, unreachable(), headers).await);
        assert_eq!((retries, backoff), (2, expected), "{header}");
    }
    // A backoff that is no duration fails the job before it runs, retries 0.
    let headers = json!({ "retryBackoff": "P1M" });
    let (retries, message, _) = failed(outcome(&s, unreachable(), headers).await);
    assert_eq!(retries, 0);
    assert!(message.contains("retryBackoff"), "{message}");
    // The last retry leaves none.
    let key = s
        .gateway
        .create_job(CAMUNDA_TYPE, unreachable(), json!({}), 1);
    let (retries, _, _) = failed(s.gateway.wait_outcome(key, WAIT).await);
    assert_eq!(retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_timeout_is_applied_before_the_run_and_a_lost_job_is_not_run() {
    let s = setup_with(CAMUNDA_TYPE, &[], &[]).await;
    let key = s.gateway.create_job(
        CAMUNDA_TYPE,
        send("timeout"),
        json!({ "jobTimeout": "PT5M", "resultVariable": "r" }),
        3,
    );
    let done = completed(s.gateway.wait_outcome(key, WAIT).await);
    assert_eq!(done["r"]["sent"], true);
    assert!(s.gateway.timeout_updates().contains(&(key, 300_000)));

    let headers = json!({ "jobTimeout": "soon" });
    let (retries, message, _) = failed(outcome(&s, unreachable(), headers).await);
    assert_eq!(retries, 0);
    assert!(message.contains("jobTimeout"), "{message}");

    // A job the gateway no longer knows (it timed out, or its instance was cancelled) is not
    // run: nothing is sent, nothing reported.
    s.gateway.lose_jobs_on_timeout_update();
    let key = s.gateway.create_job(
        CAMUNDA_TYPE,
        unreachable(),
        json!({ "jobTimeout": "PT5M" }),
        3,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.gateway.outcomes(key), Vec::<Outcome>::new());
}
