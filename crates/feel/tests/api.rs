//! The public API: errors with positions, what is refused as unsupported, numbers as Java's
//! BigDecimal computes them, the connector functions read back as directives, warnings.

use std::time::Duration;

use feel::{ErrorDirective, Expression, FeelError, Value};
use serde_json::{Value as Json, json};

fn eval(text: &str, scope: Json) -> Json {
    Expression::parse(text)
        .and_then(|e| e.evaluate(&scope))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .to_json()
}

fn string_of(text: &str) -> String {
    match Expression::parse(&format!("string({text})"))
        .unwrap()
        .evaluate(&json!({}))
        .unwrap()
    {
        Value::String(s) => s.to_string(),
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn syntax_errors_name_line_and_column() {
    for (text, line, column) in [
        ("1 +", 1, 4),
        ("{a: 1", 1, 6),
        ("\"open", 1, 1),
        ("if x then 1", 1, 12),
        ("a\n  + * 2", 2, 5),
        ("", 1, 1),
        ("[1, 2", 1, 6),
        ("1 2", 1, 3),
    ] {
        match Expression::parse(text) {
            Err(FeelError::Syntax {
                line: l, column: c, ..
            }) => {
                assert_eq!((l, c), (line, column), "{text:?}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let message = Expression::parse("1 +").unwrap_err().to_string();
    assert!(message.starts_with("syntax error at 1:4: "), "{message}");
}

#[test]
fn constructs_outside_the_subset_are_refused_at_parse_time_with_their_position() {
    for (text, column, what) in [
        ("x in ?", 6, "`?`"),
        ("? > 3", 1, "`?`"),
        ("< 5", 1, "unary test"),
        ("a.f(1)", 2, "function of a context"),
        (
            "function(x) external { java: { class: \"A\", method signature: \"f()\" } }",
            1,
            "external",
        ),
        ("uuid()", 1, "`uuid`"),
        ("1 + before(1, 2)", 5, "`before`"),
        ("day of week(today())", 1, "`day of week`"),
        ("includes([1..5], 3)", 1, "`includes`"),
        ("count([1..5])", 7, "ranges"),
        ("x instance of list<number>", 19, "parameterised"),
    ] {
        match Expression::parse(text) {
            Err(
                e @ FeelError::Unsupported {
                    line: 1, column: c, ..
                },
            ) => {
                assert_eq!(c, column, "{text}: {e}");
                let message = e.to_string();
                assert!(
                    message.starts_with(&format!("unsupported at 1:{column}: ")),
                    "{message}"
                );
                assert!(message.contains(what), "{text}: {message}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn a_leading_equals_sign_is_ignored() {
    assert_eq!(eval("=1 + 1", json!({})), json!(2));
    assert_eq!(eval("  = \"a\"", json!({})), json!("a"));
}

#[test]
fn numbers_follow_java_bigdecimal_with_decimal128() {
    for (text, expected) in [
        ("1 / 3", "0.3333333333333333333333333333333333"),
        ("2 / 3", "0.6666666666666666666666666666666667"),
        ("-2 / 3", "-0.6666666666666666666666666666666667"),
        ("10 / 4", "2.5"),
        ("6 / 2", "3"),
        ("1.0 / 8", "0.125"),
        ("100 / 0.5", "2.0E+2"),
        ("2 * 1.50", "3.00"),
        ("1.1 + 2.20", "3.30"),
        ("0.1 + 0.2", "0.3"),
        ("1 - 1.00", "0.00"),
        (
            "12345678901234567890123456789012345 + 1",
            "1.234567890123456789012345678901235E+34",
        ),
        (
            "99999999999999999999999999999999995 + 0",
            "1.000000000000000000000000000000000E+35",
        ),
        ("0.000001", "0.000001"),
        ("0.0000001", "1E-7"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("2 ** -2", "0.25"),
        ("1 / 7 * 7", "1.000000000000000000000000000000000"),
        ("123.456 * 1000", "123456.000"),
        ("decimal(2.5, 0)", "2"),
        ("decimal(3.5, 0)", "4"),
        ("floor(-1.5)", "-2"),
        ("round half up(-2.5, 0)", "-3"),
        ("modulo(-12, 5)", "3"),
        ("modulo(12.5, 5)", "2.5"),
    ] {
        assert_eq!(string_of(text), expected, "{text}");
    }
    // JSON: whole numbers in the long range as integers, others as doubles.
    assert_eq!(eval("1 / 3", json!({})), json!(0.3333333333333333));
    assert_eq!(eval("3.00", json!({})), json!(3));
    assert_eq!(
        eval("n + 1", json!({ "n": 9007199254740993i64 })),
        json!(9007199254740994i64)
    );
    assert_eq!(eval("x * 2", json!({ "x": 0.1 })), json!(0.2));
}

#[test]
fn strings_count_utf16_units_as_java() {
    assert_eq!(eval("string length(\"😀a\")", json!({})), json!(3));
    assert_eq!(eval("substring(\"😀ab\", 3)", json!({})), json!("ab"));
    assert_eq!(eval("upper case(\"straße\")", json!({})), json!("STRASSE"));
}

#[test]
fn missing_names_are_null_with_a_warning() {
    let e = Expression::parse("missing.field = null and error = null").unwrap();
    let out = e.evaluate_with_warnings(&json!({ "error": null })).unwrap();
    assert_eq!(out.value.to_json(), json!(true));
    assert!(
        out.warnings.iter().any(|w| w.contains("'missing'")),
        "{:?}",
        out.warnings
    );
    // Not an object: an empty scope.
    assert_eq!(eval("x", json!([1, 2])), json!(null));
}

#[test]
fn failing_functions_are_null_with_a_warning_unknown_ones_too() {
    let e = Expression::parse("number(\"x\") = null and someFunction(1) = null").unwrap();
    let out = e.evaluate_with_warnings(&json!({})).unwrap();
    assert_eq!(out.value.to_json(), json!(true));
    assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
}

fn directive(text: &str, scope: Json) -> Result<Option<ErrorDirective>, String> {
    let value = Expression::parse(text).unwrap().evaluate(&scope).unwrap();
    ErrorDirective::from_value(&value)
}

#[test]
fn connector_functions_read_back_as_camunda_runtime_does() {
    let error = json!({ "error": { "code": "EMAIL_NOT_FOUND", "message": "EMAIL_NOT_FOUND: gone" }, "job": { "retries": 3 } });
    assert_eq!(
        directive(
            "if error.code = \"EMAIL_NOT_FOUND\" then bpmnError(\"NOT_FOUND\", error.message) else null",
            error.clone()
        ),
        Ok(Some(ErrorDirective::BpmnError {
            code: "NOT_FOUND".into(),
            message: "EMAIL_NOT_FOUND: gone".into(),
            variables: Default::default(),
        }))
    );
    assert_eq!(
        directive("bpmnError(\"C\", \"m\", {a: 1})", json!({})),
        Ok(Some(ErrorDirective::BpmnError {
            code: "C".into(),
            message: "m".into(),
            variables: json!({ "a": 1 }).as_object().unwrap().clone(),
        }))
    );
    assert_eq!(
        directive(
            "jobError(\"later\", {}, job.retries - 1, @\"PT30S\")",
            error.clone()
        ),
        Ok(Some(ErrorDirective::JobError {
            message: "later".into(),
            variables: Default::default(),
            retries: 2,
            retry_backoff: Duration::from_secs(30),
        }))
    );
    // Defaults as the runtime: retries 0, backoff zero.
    assert_eq!(
        directive("jobError(\"now\")", json!({})),
        Ok(Some(ErrorDirective::JobError {
            message: "now".into(),
            variables: Default::default(),
            retries: 0,
            retry_backoff: Duration::ZERO,
        }))
    );
    assert_eq!(
        directive("jobError(\"neg\", {}, -5)", json!({})).map(|d| match d {
            Some(ErrorDirective::JobError { retries, .. }) => retries,
            _ => 99,
        }),
        Ok(0)
    );
    assert_eq!(
        directive("ignoreError({done: true})", json!({})),
        Ok(Some(ErrorDirective::IgnoreError {
            variables: json!({ "done": true }).as_object().unwrap().clone(),
        }))
    );
    assert_eq!(
        directive("ignoreError()", json!({})),
        Ok(Some(ErrorDirective::IgnoreError {
            variables: Default::default()
        }))
    );
    // The normal outcome.
    assert_eq!(directive("null", json!({})), Ok(None));
    assert_eq!(directive("{}", json!({})), Ok(None));
    // Refused results (the runtime fails the job with retries 0).
    assert!(directive("\"text\"", json!({})).is_err());
    assert!(directive("{a: 1}", json!({})).is_err());
    assert!(directive("{errorType: \"other\"}", json!({})).is_err());
}

#[test]
fn connector_functions_given_wrong_types_fail_the_evaluation() {
    for text in [
        "bpmnError(null, \"x\")",
        "bpmnError(1, \"x\")",
        "bpmnError(\"C\", \"m\", [1])",
        "jobError(null)",
        "jobError(\"m\", {}, \"3\")",
        "jobError(\"m\", {}, 1, \"PT1S\")",
        "ignoreError(1)",
    ] {
        let e = Expression::parse(text).unwrap();
        match e.evaluate(&json!({})) {
            Err(FeelError::Failed(m)) => assert!(m.contains("must be a"), "{text}: {m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn a_result_expression_builds_a_context_from_the_response() {
    let scope = json!({
        "response": { "messageId": "<1@x>", "subject": "Hi", "to": ["a@x", "b@x"] },
        "messageId": "<1@x>", "subject": "Hi", "to": ["a@x", "b@x"]
    });
    assert_eq!(
        eval(
            "= { id: messageId, firstTo: response.to[1], count: count(to), subject: upper case(subject) }",
            scope
        ),
        json!({ "id": "<1@x>", "firstTo": "a@x", "count": 2, "subject": "HI" })
    );
}

#[test]
fn a_prepared_expression_evaluates_many_times() {
    let e = Expression::parse("n * 2").unwrap();
    for n in 0..100 {
        assert_eq!(
            e.evaluate(&json!({ "n": n })).unwrap().to_json(),
            json!(n * 2)
        );
    }
}

#[test]
fn parsed_expressions_and_values_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Expression>();
    send_sync::<Value>();
    send_sync::<FeelError>();
    send_sync::<ErrorDirective>();
}

#[test]
fn layered_scopes_give_the_first_layer_that_has_a_name() {
    let expression = Expression::parse("{a: a, b: b, c: c, r: response.b}").unwrap();
    let top = json!({ "a": 1, "response": { "a": 10, "b": 20 } });
    let beneath = top["response"].clone();
    let limits = expression.limits().clone();
    let value = expression
        .evaluate_within(&[&top, &beneath, &json!("not an object")], &limits)
        .unwrap()
        .value
        .to_json();
    assert_eq!(value, json!({ "a": 1, "b": 20, "c": null, "r": 20 }));
    // A smaller budget than the expression's own ends in a limit, not a wrong value.
    let tight = feel::Limits {
        max_steps: 2,
        ..limits
    };
    assert!(matches!(
        expression.evaluate_within(&[&top], &tight),
        Err(feel::FeelError::Limit(_))
    ));
}

/// A chain of names and keys into the scope reads the leaf alone, and must give what reading
/// the whole variable would: locals hide scope variables, lists project, missing keys warn.
#[test]
fn paths_into_the_scope_read_what_the_whole_variable_would_give() {
    let scope = json!({
        "response": { "messageId": "<1@x>", "inner": { "deep": { "n": 2 } },
                      "items": [{ "name": "a" }, { "name": "b" }] },
        "sent": true
    });
    for (text, expected) in [
        ("response.messageId", json!("<1@x>")),
        ("response.inner.deep.n", json!(2)),
        ("response.inner.deep", json!({ "n": 2 })),
        ("response.items.name", json!(["a", "b"])),
        ("response.items[1].name", json!("a")),
        ("response.missing.n", json!(null)),
        (
            "for response in [{messageId: 7}] return response.messageId",
            json!([7]),
        ),
        (
            "[{response: {messageId: 8}}][response.messageId = 8].response.messageId",
            json!([8]),
        ),
        (
            "sort([{messageId: 2}, {messageId: 1}], function(response, b) \
             response.messageId < b.messageId).messageId",
            json!([1, 2]),
        ),
        (
            "{ id: response.messageId, sent: sent }",
            json!({ "id": "<1@x>", "sent": true }),
        ),
    ] {
        assert_eq!(eval(text, scope.clone()), expected, "{text}");
    }
    let missing = Expression::parse("response.inner.nothing")
        .unwrap()
        .evaluate_with_warnings(&scope)
        .unwrap();
    assert_eq!(missing.value.to_json(), json!(null));
    assert!(
        missing.warnings.iter().any(|w| w.contains("'nothing'")),
        "{:?}",
        missing.warnings
    );
}
