//! FEEL result and error expressions: parsing and evaluating typical connector expressions,
//! against bpmn.io's feelin (an independent FEEL interpreter, in node, installed as the feel
//! crate's differential test installs it) on the same machine and the same expressions; and
//! the evaluation of an expression parsed once.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use feel::Expression;
use serde_json::{Value, json};

use crate::common::{Row, median, row};

fn scope() -> Value {
    let response = json!({
        "sent": true, "messageId": "<20240601.1234@mail.example.test>", "subject": "Invoice 42 for May",
        "to": ["ann@example.test", "bob@example.test"], "size": 48213,
        "attachments": [ { "name": "invoice.pdf", "size": 40211 }, { "name": "note.txt", "size": 120 } ]
    });
    json!({
        "response": response, "messageId": response["messageId"], "subject": response["subject"],
        "to": response["to"], "attachments": response["attachments"],
        "error": { "code": "EMAIL_NOT_FOUND", "message": "EMAIL_NOT_FOUND: no mail <x@y>", "type": "io.camunda.connector.api.error.ConnectorException" },
        "job": { "retries": 3 }
    })
}

const EXPRESSIONS: &[&str] = &[
    "= { messageId: response.messageId, subject: response.subject, recipients: response.to }",
    "= if error.code = \"EMAIL_NOT_FOUND\" then bpmnError(\"NOT_FOUND\", error.message) else null",
    "= if error != null and job.retries > 1 then jobError(error.message, {}, job.retries - 1, @\"PT30S\") else null",
    "= { subject: upper case(substring(subject, 1, 7)), count: count(to), first: to[1] }",
    "= { names: attachments[size > 1000].name, total: sum(attachments.size), hasPdf: some a in attachments satisfies ends with(a.name, \".pdf\") }",
];

fn time_us(samples: usize, inner: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..samples)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..inner {
                    f();
                }
                started.elapsed().as_secs_f64() * 1e6 / inner as f64
            })
            .collect(),
    )
}

/// feelin's median microseconds per evaluation of the same expressions, or why not.
fn feelin_us(rounds: usize, samples: usize) -> Result<f64, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/feel/tests/feelin");
    let setup = Command::new("bash").arg(dir.join("setup.sh")).status();
    if !setup.is_ok_and(|s| s.success()) {
        return Err("feelin could not be installed (node/npm)".into());
    }
    let cases: Vec<Value> = EXPRESSIONS
        .iter()
        .map(|e| json!({ "expression": e, "scope": scope() }))
        .collect();
    let file = std::env::temp_dir().join(format!("feel-bench-{}.json", std::process::id()));
    let input = json!({ "cases": cases, "rounds": rounds, "samples": samples });
    std::fs::write(&file, input.to_string()).map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg(dir.join("bench.mjs"))
        .arg(&file)
        .current_dir(&dir)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = out.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let answer: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    answer["microseconds"]
        .as_f64()
        .ok_or_else(|| "no figure from node".into())
}

pub fn scenarios(quick: bool, samples: usize, rows: &mut Vec<Row>) {
    let scope = scope();
    let rounds = if quick { 20 } else { 400 };
    // Every expression must evaluate (and the same way feelin reads them: no errors).
    for e in EXPRESSIONS {
        Expression::parse(e)
            .and_then(|x| x.evaluate(&scope))
            .expect("a typical expression evaluates");
    }
    let ours = time_us(samples, rounds, || {
        for e in EXPRESSIONS {
            let parsed = Expression::parse(e).expect("parses");
            std::hint::black_box(parsed.evaluate(&scope).expect("evaluates"));
        }
    }) / EXPRESSIONS.len() as f64;
    // feelin takes milliseconds per evaluation: fewer rounds give a stable median there.
    let (baseline, note) = match feelin_us(if quick { 4 } else { 20 }, samples.min(5)) {
        Ok(us) => (
            Some(us),
            "baseline: feelin 8.2.0 in node on the same machine, same expressions and scope",
        ),
        Err(why) => {
            eprintln!("feel bench: no feelin baseline: {why}");
            (None, "feelin unavailable: no baseline")
        }
    };
    rows.push(row(
        "FEEL: parse + evaluate a typical connector expression (5 kinds)",
        "time per expression",
        ours,
        baseline,
        "µs",
        baseline.map(|b| ours / b),
        "< 0.2x feelin",
        baseline.map(|b| ours / b < 0.2),
        note,
    ));

    let prepared: Vec<Expression> = EXPRESSIONS
        .iter()
        .map(|e| Expression::parse(e).expect("parses"))
        .collect();
    let evaluate = time_us(samples, rounds, || {
        for e in &prepared {
            std::hint::black_box(e.evaluate(&scope).expect("evaluates"));
        }
    }) / prepared.len() as f64;
    rows.push(row(
        "FEEL: evaluate an expression parsed once (5 kinds)",
        "time per evaluation",
        evaluate,
        None,
        "µs",
        None,
        "< 20 µs",
        Some(evaluate < 20.0),
        "the scope is a send response with its fields, an error and job.retries",
    ));
}
