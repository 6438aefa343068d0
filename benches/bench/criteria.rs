//! Hostile search criteria: what a criteria tree of the largest allowed size costs a job before
//! any mail server is asked (schema validation, the tree check, the IMAP SEARCH program), and
//! what refusing a far larger one costs. The baseline is reading the same job variables from
//! JSON, which every job pays anyway.

use std::time::Instant;

use email_connector::imap::program::search_program;
use email_connector::mail::criteria::{Criterion, MAX_NODES};
use email_connector::registry::{OperationSettings, Registry};
use serde_json::{Value, json};

use crate::common::{Row, median, row};

/// An AND of ORs with `nodes` nodes in all, each leaf with a different value, as a job's
/// variables text.
fn variables(nodes: usize) -> String {
    let per_group = 9;
    let groups = (nodes - 1) / (per_group + 1);
    let mut used = 1 + groups * (per_group + 1);
    let mut criteria: Vec<Value> = (0..groups)
        .map(|g| {
            json!({ "operator": "OR", "criteria": (0..per_group)
                .map(|i| json!({ "field": "SUBJECT", "value": format!("invoice {g}-{i} \"quoted\"") }))
                .collect::<Vec<_>>() })
        })
        .collect();
    while used < nodes {
        criteria.push(json!({ "field": "FROM", "value": format!("sender{used}@example.test") }));
        used += 1;
    }
    json!({
        "authentication": { "username": "u@example.test", "password": "pw" },
        "server": { "host": "127.0.0.1" },
        "criteria": { "operator": "AND", "criteria": criteria }
    })
    .to_string()
}

/// Median microseconds of `f` over `samples` runs of `inner` calls each.
fn time_us(samples: usize, inner: usize, mut f: impl FnMut()) -> f64 {
    let per_call: Vec<f64> = (0..samples)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..inner {
                f();
            }
            started.elapsed().as_secs_f64() * 1e6 / inner as f64
        })
        .collect();
    median(per_call)
}

pub fn scenarios(quick: bool, samples: usize, rows: &mut Vec<Row>) {
    let registry = Registry::standard("email", None, &OperationSettings::default())
        .expect("the standard registry");
    let search = registry
        .find("imap:search")
        .expect("imap:search is registered");
    let inner = if quick { 5 } else { 50 };

    let text = variables(MAX_NODES);
    let baseline = time_us(samples, inner, || {
        let parsed: Value = serde_json::from_str(&text).expect("JSON");
        std::hint::black_box(parsed);
    });
    let ours = time_us(samples, inner, || {
        let parsed: Value = serde_json::from_str(&text).expect("JSON");
        search.schema.validate(&parsed).expect("valid");
        let criterion = Criterion::parse(&parsed["criteria"], "/criteria").expect("criteria");
        std::hint::black_box(search_program(&criterion).segments(true));
    });
    rows.push(row(
        "criteria of 1,000 nodes: read, validate, build the SEARCH program",
        "time per job",
        ours / 1000.0,
        Some(baseline / 1000.0),
        "ms",
        Some(ours / baseline),
        "< 5 ms",
        Some(ours < 5000.0),
        "baseline: reading the same variables from JSON",
    ));

    let huge = json!({ "operator": "OR", "criteria": (0..20_000)
        .map(|i| json!({ "field": "SUBJECT", "value": format!("s{i}") }))
        .collect::<Vec<_>>() });
    let refused = time_us(samples, inner, || {
        let error = Criterion::parse(&huge, "/criteria").expect_err("over the limit");
        std::hint::black_box(error);
    });
    rows.push(row(
        "criteria of 20,000 leaves: refused",
        "time per job",
        refused / 1000.0,
        None,
        "ms",
        None,
        "< 5 ms",
        Some(refused < 5000.0),
        "INVALID_INPUT naming /criteria; the tree is counted, never built",
    ));
}
