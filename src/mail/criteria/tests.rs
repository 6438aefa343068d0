//! The criteria parser and local evaluation.

use super::*;
use serde_json::json;

#[test]
fn every_invalid_shape_is_reported_with_its_pointer() {
    let bad = json!({
        "operator": "AND",
        "criteria": [
            { "field": "FROM" },
            { "field": "COLOUR", "value": "red" },
            { "operator": "OR" },
            { "operator": "OR", "criteria": [] },
            { "operator": "XOR", "criteria": [{ "field": "SEEN" }] },
            { "field": "SUBJECT", "value": "x", "extra": 1 },
            { "field": "SINCE", "value": "yesterday" },
            { "operator": "NOT", "criteria": [{ "field": "SEEN" }, { "field": "UNSEEN" }] },
            "just text",
            { "field": "FROM", "operator": "AND" },
            { "field": "BODY", "value": 42 }
        ]
    });
    let message = Criterion::parse(&bad, "/criteria").unwrap_err().message;
    for expected in [
        "/criteria/criteria/0: \"value\" is required for FROM",
        "/criteria/criteria/1/field: unknown field 'COLOUR'",
        "/criteria/criteria/2: \"criteria\" is required for OR",
        "/criteria/criteria/3/criteria: OR needs at least one criterion",
        "/criteria/criteria/4/operator: must be AND, OR or NOT",
        "/criteria/criteria/5: unknown property 'extra'",
        "/criteria/criteria/6/value: 'yesterday' is not a date",
        "/criteria/criteria/7/criteria: NOT takes exactly one criterion",
        "/criteria/criteria/8: a criterion must be an object",
        "/criteria/criteria/9: has both",
        "/criteria/criteria/10/value: must be a string",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in {message}"
        );
    }
}

#[test]
fn local_evaluation_needs_the_body_only_when_headers_cannot_decide() {
    let raw = b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.test>\r\nTo: a@example.test\r\nSubject: Rechnung M\xc3\xa4rz\r\nDate: Thu, 1 Feb 2024 10:00:00 +0000\r\nX-Prio: HIGH\r\n\r\nPlease PAY now\r\n";
    let headers = MessageView::new(raw, false);
    let full = MessageView::new(raw, true);
    let c = |v: Value| Criterion::parse(&v, "/c").unwrap();
    assert_eq!(
        c(json!({ "field": "FROM", "value": "jürgen" })).evaluate(&headers),
        Some(true)
    );
    assert_eq!(
        c(json!({ "field": "SUBJECT", "value": "märz" })).evaluate(&headers),
        Some(true)
    );
    assert_eq!(
        c(json!({ "field": "HEADER", "name": "x-prio", "value": "high" })).evaluate(&headers),
        Some(true)
    );
    assert_eq!(
        c(json!({ "field": "SINCE", "value": "2024-02-01" })).evaluate(&headers),
        Some(true)
    );
    assert_eq!(
        c(json!({ "field": "BEFORE", "value": "2024-02-01" })).evaluate(&headers),
        Some(false)
    );
    let body = c(json!({ "field": "BODY", "value": "pay" }));
    assert_eq!(body.evaluate(&headers), None);
    assert_eq!(body.evaluate(&full), Some(true));
    // A decided branch settles it without the body.
    let either = c(
        json!({ "operator": "OR", "criteria": [{ "field": "TO", "value": "a@" }, { "field": "BODY", "value": "x" }] }),
    );
    assert_eq!(either.evaluate(&headers), Some(true));
    let both = c(
        json!({ "operator": "AND", "criteria": [{ "field": "TO", "value": "zzz" }, { "field": "BODY", "value": "x" }] }),
    );
    assert_eq!(both.evaluate(&headers), Some(false));
    assert_eq!(
        c(json!({ "operator": "NOT", "criteria": [{ "field": "SEEN" }] })).evaluate(&headers),
        Some(true)
    );
}

#[test]
fn depth_is_bounded() {
    let mut node = json!({ "field": "SEEN" });
    for _ in 0..MAX_DEPTH {
        node = json!({ "operator": "NOT", "criteria": [node] });
    }
    let message = Criterion::parse(&node, "/criteria").unwrap_err().message;
    assert!(message.contains("deeper than 32"), "{message}");
}

fn leaves(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| json!({ "field": "SUBJECT", "value": format!("s{i}") }))
        .collect()
}

#[test]
fn wide_trees_are_refused_fast_naming_criteria() {
    for (operator, count) in [("OR", 20_000), ("AND", 5_000), ("OR", 1_000)] {
        let tree = json!({ "operator": operator, "criteria": leaves(count) });
        let started = std::time::Instant::now();
        let message = Criterion::parse(&tree, "/criteria").unwrap_err().message;
        assert!(
            message.starts_with("/criteria: more than 1000 criteria"),
            "{message}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
    }
    // 999 leaves and their group: exactly the limit.
    let tree = json!({ "operator": "OR", "criteria": leaves(MAX_NODES - 1) });
    assert!(Criterion::parse(&tree, "/criteria").is_ok());
    // Nodes count across levels, not per list.
    let nested = json!({ "operator": "AND", "criteria": [
        { "operator": "OR", "criteria": leaves(600) },
        { "operator": "OR", "criteria": leaves(600) },
    ]});
    assert!(Criterion::parse(&nested, "/criteria").is_err());
}

#[test]
fn a_long_or_is_evaluated_locally() {
    let tree = json!({ "operator": "OR", "criteria": leaves(MAX_NODES - 1) });
    let criterion = Criterion::parse(&tree, "/criteria").unwrap();
    let view = MessageView::new(b"Subject: s998\r\n\r\nx", false);
    assert_eq!(criterion.evaluate(&view), Some(true));
    let other = MessageView::new(b"Subject: none\r\n\r\nx", false);
    assert_eq!(criterion.evaluate(&other), Some(false));
}

#[test]
fn body_need_is_detected() {
    let with_body = Criterion::parse(&json!({ "operator": "OR", "criteria": [{ "field": "FROM", "value": "a" }, { "operator": "NOT", "criteria": [{ "field": "BODY", "value": "b" }] }] }), "/c").unwrap();
    assert!(with_body.needs_body());
    assert!(
        !Criterion::parse(&json!({ "field": "FROM", "value": "a" }), "/c")
            .unwrap()
            .needs_body()
    );
}
