//! Every bound of parsing and evaluation holds, fails cleanly, and fails fast: no expression
//! can stall, crash or take memory out of proportion.

use std::time::{Duration, Instant};

use feel::{Expression, FeelError, Limits};
use serde_json::json;

fn limit_error(text: &str, limits: Limits) -> FeelError {
    let started = Instant::now();
    let result = Expression::parse_with(text, limits).and_then(|e| e.evaluate(&json!({ "n": 5 })));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{text} took {:?}",
        started.elapsed()
    );
    result.expect_err(text)
}

#[test]
fn expression_length_is_bounded() {
    let limits = Limits {
        max_length: 100,
        ..Limits::default()
    };
    let long = format!("\"{}\"", "a".repeat(200));
    assert_eq!(
        limit_error(&long, limits.clone()),
        FeelError::TooLong { limit: 100 }
    );
    assert!(Expression::parse_with("\"short\"", limits).is_ok());
    // The default allows 16 KiB.
    let text = format!("\"{}\"", "a".repeat(20_000));
    assert!(matches!(
        Expression::parse(&text),
        Err(FeelError::TooLong { .. })
    ));
}

#[test]
fn nesting_is_bounded_without_overflowing_the_stack() {
    let limits = Limits {
        max_length: 1 << 20,
        ..Limits::default()
    };
    for open in [
        "(",
        "[",
        "{a:",
        "-(",
        "not(",
        "if true then ",
        "f(",
        "[1][",
        "x in (",
        "{a: [",
        "for x in [",
    ] {
        let text = open.repeat(50_000);
        match Expression::parse_with(&text, limits.clone()) {
            Err(FeelError::TooDeep { limit: 64, .. }) => {}
            other => panic!("{open}: {other:?}"),
        }
    }
    // Chains deepen the tree without nesting.
    for (first, link) in [
        ("1", " + 1"),
        ("a", ".a"),
        ("[1]", "[1]"),
        ("true", " and true"),
        ("2", " ** 1"),
        ("x", " or x"),
    ] {
        let text = format!("{first}{}", link.repeat(10_000));
        match Expression::parse_with(&text, limits.clone()) {
            Err(FeelError::TooDeep { limit: 64, .. }) => {}
            other => panic!("{link}: {other:?}"),
        }
    }
}

/// The deepest trees the bound lets through evaluate on a 2 MiB stack (the test thread's, and
/// tokio's workers') even in a debug build.
#[test]
fn the_deepest_allowed_expressions_evaluate_on_a_small_stack() {
    let scope = json!({ "a": { "a": { "a": 1 } }, "x": [1, 2] });
    let near = 60;
    let cases = [
        format!("{}1{}", "(".repeat(near), ")".repeat(near)),
        format!("{}1{}", "[".repeat(near), "]".repeat(near)),
        format!("{}1{}", "{a:".repeat(near), "}".repeat(near)),
        format!("{}1{}", "-(".repeat(near), ")".repeat(near)),
        format!("{}true{}", "not(".repeat(near), ")".repeat(near)),
        format!("{}1{}", "string(".repeat(near), ")".repeat(near)),
        format!(
            "{}1{}",
            "if true then ".repeat(near / 2),
            " else 0".repeat(near / 2)
        ),
        format!("1{}", " + 1".repeat(near)),
        format!("a{}", ".a".repeat(near)),
        format!("x{}", "[1]".repeat(near)),
        format!("{}1{}", "for y in [1] return ".repeat(near / 2), ""),
        format!("{}true{}", "some y in [1] satisfies ".repeat(near / 2), ""),
        format!(
            "{}1{}",
            "{f: function(v) ".repeat(near / 3),
            ", r: 1}.r".repeat(near / 3)
        ),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for text in &cases {
                let e = Expression::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
                let v = e
                    .evaluate(&scope)
                    .unwrap_or_else(|err| panic!("{text}: {err}"));
                let _ = v.to_json();
            }
        })
        .expect("thread");
    handle.join().expect("no stack overflow");
}

#[test]
fn iterations_of_one_loop_are_bounded() {
    let limits = Limits {
        max_iterations: 1_000,
        ..Limits::default()
    };
    for text in [
        "for x in 1..1001 return x",
        "for x in 1..100, y in 1..11 return x",
        "some x in 1..2000 satisfies false",
        "every x in 1..10, y in 1..10, z in 1..11 satisfies true",
        "for x in 1..1000000000000 return x",
        "count((for x in 1..900 return x)[item > 0]) + count(for x in 1..1001 return x)",
    ] {
        match limit_error(text, limits.clone()) {
            FeelError::Limit(m) => assert!(m.contains("iterations"), "{text}: {m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    let ok = Expression::parse_with("count(for x in 1..1000 return x)", limits).unwrap();
    assert_eq!(ok.evaluate(&json!({})).unwrap().to_json(), json!(1000));
}

#[test]
fn steps_are_bounded() {
    let limits = Limits {
        max_steps: 10_000,
        ..Limits::default()
    };
    // Each loop is within the iteration bound; together they exceed the steps.
    let text = "for a in 1..90 return for b in 1..90 return a + b";
    match limit_error(text, limits) {
        FeelError::Limit(m) => assert!(m.contains("steps"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn time_is_bounded() {
    let limits = Limits {
        max_time: Duration::from_millis(50),
        max_steps: u64::MAX,
        ..Limits::default()
    };
    // Unbounded, this runs 10^8 conditions (minutes); the bound stops it within the 2 s that
    // `limit_error` allows on a loaded machine.
    let text = "for a in 1..100000 return some b in 1..1000 satisfies a * b < 0";
    match limit_error(text, limits) {
        FeelError::Limit(m) => assert!(m.contains("ms"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn built_values_are_bounded_however_they_share() {
    let limits = Limits {
        max_value_weight: 100_000,
        ..Limits::default()
    };
    for text in [
        // A string doubled again and again.
        "for i in 1..40 return if i = 1 then \"ab\" else partial[-1] + partial[-1]",
        // Lists that share their items: small in memory, huge when written out.
        "for i in 1..40 return if i = 1 then [1, 2] else [partial[-1], partial[-1]]",
        "for i in 1..40 return partial",
        "string join(for i in 1..2000 return \"0123456789012345678901234567890123456789012345678901234567890123456789\")",
        "replace(string join(for i in 1..1000 return \"aaaaaaaaaa\"), \"a\", \"bbbbbbbbbbbbbbbbbbbb\")",
    ] {
        match limit_error(text, limits.clone()) {
            FeelError::Limit(m) => {
                assert!(m.contains("larger") || m.contains("longer"), "{text}: {m}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    // Nesting of built values.
    let deep = Limits {
        max_value_depth: 20,
        ..Limits::default()
    };
    match limit_error("for i in 1..30 return [partial[-1]]", deep) {
        FeelError::Limit(m) => assert!(m.contains("nested"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_regular_expressions_stay_bounded() {
    // The regex engine is linear; an enormous pattern is refused (null), not compiled.
    let e = Expression::parse("matches(s, \"(a+)+$\")").unwrap();
    let s = format!("{}b", "a".repeat(5_000));
    assert_eq!(
        e.evaluate(&json!({ "s": s })).unwrap().to_json(),
        json!(false)
    );
    let huge = Expression::parse("matches(\"a\", \"a{1000}{1000}\")").unwrap();
    assert_eq!(huge.evaluate(&json!({})).unwrap().to_json(), json!(null));
}

#[test]
fn huge_numbers_do_not_explode() {
    for (text, expected) in [
        ("10 ** 999999999 > 1", json!(true)),
        ("(10 ** 999999999) * (10 ** 999999999)", json!(null)),
        ("2 ** 1000000000000", json!(null)),
        ("decimal(1, 1000000000)", json!(null)),
        ("1 / 3 * 3 = 1", json!(false)),
    ] {
        let started = Instant::now();
        let got = Expression::parse(text)
            .unwrap()
            .evaluate(&json!({}))
            .unwrap();
        assert_eq!(got.to_json(), expected, "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{text}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn deep_scope_json_is_read_without_recursion_trouble() {
    let mut v = json!(1);
    for _ in 0..100 {
        v = json!({ "a": v });
    }
    let e = Expression::parse("x.a.a.a").unwrap();
    assert!(e.evaluate(&json!({ "x": v })).is_ok());
}
