//! Differential test against bpmn.io's feelin (an independent FEEL interpreter, run in node,
//! pinned by tests/feelin/package-lock.json): every case of `cases.rs` must give what feelin
//! gives, except the listed cases where feelin and feel-scala (Camunda's engine, which we
//! follow) disagree; for those, our result must be feel-scala's and feelin's must differ, so
//! the list stays true. Without node/npm this test fails under CI=true (and says so
//! elsewhere).

#[path = "differential/cases.rs"]
mod cases;

use std::path::PathBuf;
use std::process::Command;

use feel::Expression;
use serde_json::{Value, json};

/// Where feelin and feel-scala disagree: (expression, scope index or None for every scope,
/// feel-scala's result as JSON, the feel-scala rule we follow). Sources are camunda/feel-scala
/// (`src/main/scala/org/camunda/feel/...`, and its reference docs as they were before they
/// moved to Camunda's documentation, `docs/docs/reference/...`).
const DIFFERENCES: &[(&str, Option<usize>, &str, &str)] = &[
    // Camunda extensions feelin does not have.
    ("trim(s)", Some(0), r#""Hello World""#, EXT_STRING),
    ("trim(s)", Some(1), r#""""#, EXT_STRING),
    ("trim(s)", Some(2), r#""a,b,,c""#, EXT_STRING),
    ("trim(\"  hello  \")", None, r#""hello""#, EXT_STRING),
    ("is blank(s)", Some(0), "false", EXT_STRING),
    ("is blank(s)", Some(1), "true", EXT_STRING),
    ("is blank(s)", Some(2), "false", EXT_STRING),
    ("is blank(\"  \")", None, "true", EXT_STRING),
    ("is blank(\"a\")", None, "false", EXT_STRING),
    ("is empty(items)", Some(0), "false", EXT_LIST),
    ("is empty(items)", Some(1), "true", EXT_LIST),
    ("is empty(items)", Some(2), "false", EXT_LIST),
    ("is empty([])", None, "true", EXT_LIST),
    ("is empty([1])", None, "false", EXT_LIST),
    ("duplicate values([1, 2, 3, 2, 1])", None, "[1,2]", EXT_LIST),
    (
        "partition([1, 2, 3, 4, 5], 2)",
        None,
        "[[1,2],[3,4],[5]]",
        EXT_LIST,
    ),
    ("is defined(flag)", Some(0), "true", EXT_BOOLEAN),
    ("is defined(flag)", Some(1), "true", EXT_BOOLEAN),
    ("is defined(flag)", Some(2), "false", EXT_BOOLEAN),
    ("is defined(1)", None, "true", EXT_BOOLEAN),
    ("is defined(null)", None, "false", EXT_BOOLEAN),
    ("is defined(missing)", None, "false", EXT_BOOLEAN),
    ("get or else(flag, \"none\")", Some(0), "true", EXT_BOOLEAN),
    ("get or else(flag, \"none\")", Some(1), "false", EXT_BOOLEAN),
    (
        "get or else(flag, \"none\")",
        Some(2),
        r#""none""#,
        EXT_BOOLEAN,
    ),
    ("get or else(null, 2)", None, "2", EXT_BOOLEAN),
    ("get or else(1, 2)", None, "1", EXT_BOOLEAN),
    (
        "get value({a: {b: 2}}, [\"a\", \"b\"])",
        None,
        "2",
        "impl/builtin/ContextBuiltinFunctions.scala: `get value(context, keys)` follows a path of keys (Camunda extension)",
    ),
    (
        "and([true, null])",
        None,
        "null",
        "impl/builtin/ListBuiltinFunctions.scala: `and`/`all` fold a list (feelin does not parse `and(`)",
    ),
    (
        "or([false, false])",
        None,
        "false",
        "impl/builtin/ListBuiltinFunctions.scala: `or`/`any` fold a list (feelin does not parse `or(`)",
    ),
    (
        "{`odd key`: 1}.`odd key`",
        None,
        "1",
        "impl/parser/FeelParser.scala `contextEntry`: a key may be a backquoted name (`escapedIdentifier`)",
    ),
    (
        "{add: function(a, b) a + b}.add instance of function",
        None,
        "true",
        "impl/parser/FeelParser.scala `specialTypeName`: `function` is a type name",
    ),
    // Semantics.
    (
        "string(@\"P2D\" * 3)",
        None,
        r#""P6D""#,
        "impl/interpreter/FeelInterpreter.scala `mulOp`: a days-time duration times a number",
    ),
    (
        "2 + - 1",
        None,
        "1",
        "impl/parser/FeelParser.scala `mathNegation`: every operand may be negated",
    ),
    (
        "1 < \"2\"",
        None,
        "null",
        "impl/interpreter/FeelInterpreter.scala `dualOp`: values of different types are not compared (null); docs language-guide/feel-boolean-expressions.md",
    ),
    (
        "0.1 + 0.2",
        None,
        "0.3",
        "syntaxtree/Val.scala: a number is a BigDecimal (docs language-guide/feel-data-types.md), not a double",
    ),
    (
        "string(1 / 3)",
        None,
        r#""0.3333333333333333333333333333333333""#,
        "Scala's BigDecimal divides with MathContext.DECIMAL128: 34 digits",
    ),
    (
        "string length(\"\u{1F600}\")",
        None,
        "2",
        "impl/builtin/StringBuiltinFunctions.scala: Java's `String.length` counts UTF-16 units",
    ),
    (
        "true < false",
        None,
        "null",
        "syntaxtree/Val.scala `isComparable`: booleans have no order, so `dualOp` gives null",
    ),
    (
        "5 in \"5\"",
        None,
        "null",
        "impl/interpreter/FeelInterpreter.scala `unaryTestExpression`: an input not comparable with the value gives null",
    ),
    (
        "if 1 then 1 else 2",
        None,
        "2",
        "impl/interpreter/FeelInterpreter.scala `withBooleanOrFalse`: a condition that is not a boolean takes the else branch; docs language-guide/feel-control-flow.md",
    ),
    (
        "[1, 2, 3][even(item)]",
        None,
        "[2]",
        "docs language-guide/feel-list-expressions.md: `[1,2,3,4][even(item)]` is `[2,4]`",
    ),
    (
        "string({a: 1})",
        None,
        r#""{a:1}""#,
        "impl/builtin/ConversionBuiltinFunctions.scala `toString`: entries as `key:value` joined by \", \"",
    ),
    (
        "remove([1, 2, 3], -1)",
        None,
        "[1,2]",
        "impl/builtin/ListBuiltinFunctions.scala `removeFunction`: a negative position counts from the end",
    ),
];

const EXT_STRING: &str =
    "impl/builtin/StringBuiltinFunctions.scala: `trim` and `is blank` (Camunda extensions)";
const EXT_LIST: &str = "impl/builtin/ListBuiltinFunctions.scala: `is empty`, `duplicate values`, `partition` (Camunda extensions)";
const EXT_BOOLEAN: &str = "impl/builtin/BooleanBuiltinFunctions.scala: `is defined` (false for null) and `get or else` (Camunda extensions)";

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/feelin")
}

fn feelin_available() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let status = Command::new("bash").arg(here().join("setup.sh")).status();
    match status {
        Ok(s) if s.success() => true,
        _ if ci => panic!("feelin could not be installed (node and npm are needed under CI=true)"),
        _ => {
            eprintln!("SKIPPED: node/npm or feelin unavailable (this fails under CI=true)");
            false
        }
    }
}

fn all_cases() -> Vec<(String, Option<usize>, Value)> {
    let scopes = cases::scopes();
    let mut out = Vec::new();
    for e in cases::SCOPED {
        for (i, scope) in scopes.iter().enumerate() {
            out.push((e.to_string(), Some(i), scope.clone()));
        }
    }
    for e in cases::LITERAL {
        out.push((e.to_string(), None, json!({})));
    }
    out
}

fn ours(expression: &str, scope: &Value) -> Value {
    match Expression::parse(expression).and_then(|e| e.evaluate(scope)) {
        Ok(v) => v.to_json(),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn feelin(cases: &[(String, Option<usize>, Value)]) -> Vec<Value> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(e, _, s)| json!({ "expression": e, "scope": s }))
        .collect();
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("feel-differential-cases.json");
    std::fs::write(&file, serde_json::to_string(&input).expect("cases as JSON"))
        .expect("write cases");
    let out = Command::new("node")
        .arg(here().join("run.mjs"))
        .arg(&file)
        .current_dir(here())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "feelin run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("feelin's JSON");
    results
        .into_iter()
        .map(|r| match r.get("value") {
            Some(v) => v.clone(),
            None => json!({ "error": r["error"] }),
        })
        .collect()
}

#[test]
fn agrees_with_feelin_except_where_feel_scala_differs() {
    let cases = all_cases();
    assert!(cases.len() >= 500, "only {} cases", cases.len());
    if !feelin_available() {
        return;
    }
    let theirs = feelin(&cases);
    let mut failures = Vec::new();
    let mut listed_seen = 0;
    for ((expression, scope_index, scope), theirs) in cases.iter().zip(&theirs) {
        let mine = ours(expression, scope);
        let listed = DIFFERENCES
            .iter()
            .find(|(e, s, _, _)| e == expression && (s.is_none() || *s == *scope_index));
        match listed {
            Some((_, _, expected, rule)) => {
                listed_seen += 1;
                let expected: Value = serde_json::from_str(expected).expect("expected JSON");
                if mine != expected {
                    failures.push(format!(
                        "{expression} (scope {scope_index:?}): ours {mine}, feel-scala {expected} ({rule})"
                    ));
                }
                if *theirs == expected {
                    failures.push(format!(
                        "{expression} (scope {scope_index:?}): listed as a difference but feelin agrees: {theirs}"
                    ));
                }
            }
            None if mine != *theirs => failures.push(format!(
                "{expression} (scope {scope_index:?}): ours {mine}, feelin {theirs}"
            )),
            None => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} cases agree with feelin; {listed_seen} follow feel-scala where feelin differs",
        cases.len() - listed_seen
    );
}
