//! The shaping of completions and directives, without a gateway.

use super::*;

fn headers(json: &str) -> JobHeaders {
    JobHeaders::parse(json).unwrap()
}

#[tokio::test]
async fn output_writes_the_result_variable_then_the_expression_over_it() {
    let mask = SecretMask::default();
    let response = json!({ "subject": "Hi", "sent": true });
    let (variables, seen) = output(&headers(""), response.clone(), &mask).await.unwrap();
    assert!(variables.is_empty());
    assert_eq!(
        seen,
        Value::Null,
        "nothing to see without an error expression"
    );

    let both = headers(
        r#"{"resultVariable":"r","resultExpression":"{r: 1, s: subject, t: response.sent}","errorExpression":"null"}"#,
    );
    let (variables, seen) = output(&both, response.clone(), &mask).await.unwrap();
    assert_eq!(
        Value::Object(variables.clone()),
        json!({ "r": 1, "s": "Hi", "t": true })
    );
    assert_eq!(seen, Value::Object(variables));

    // A list response: only `response` is in scope; the raw response is what is seen.
    let list = headers(r#"{"resultExpression":"{n: count(response)}","errorExpression":"null"}"#);
    let (variables, _) = output(&list, json!([1, 2]), &mask).await.unwrap();
    assert_eq!(variables["n"], 2);
    let seen_raw = headers(r#"{"errorExpression":"null"}"#);
    let (_, seen) = output(&seen_raw, json!([1, 2]), &mask).await.unwrap();
    assert_eq!(seen, json!([1, 2]));

    let wrong = headers(r#"{"resultExpression":"subject"}"#);
    let e = output(&wrong, response, &mask).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(
        e.message
            .starts_with("resultExpression: must give a context"),
        "{}",
        e.message
    );
    assert!(e.message.ends_with("not a string"), "{}", e.message);
}

#[tokio::test]
async fn the_error_expression_scope_has_the_fields_response_and_job() {
    let mask = SecretMask::default();
    let expression = FeelHeader::parse(
        "errorExpression",
        "jobError(string(job.retries), { a: a, r: response.a, e: response.error })",
    )
    .unwrap();
    let directive = examine(&expression, json!({ "a": 1 }), 4, &mask)
        .await
        .unwrap();
    match directive {
        Some(ErrorDirective::JobError {
            message, variables, ..
        }) => {
            assert_eq!(message, "4");
            assert_eq!(
                Value::Object(variables),
                json!({ "a": 1, "r": 1, "e": null })
            );
        }
        other => panic!("{other:?}"),
    }
    let text = FeelHeader::parse("errorExpression", "\"text\"").unwrap();
    let reason = examine(&text, Value::Null, 1, &mask).await.unwrap_err();
    assert!(reason.contains("not a context"), "{reason}");
}

#[test]
fn a_job_errors_message_lists_its_variables_as_java_does() {
    let variables = json!({ "a": { "b": [1, "x", null] }, "error": "boom" });
    let Value::Object(variables) = variables else {
        unreachable!()
    };
    assert_eq!(
        failure_message("boom", &variables),
        "boom | Error variables: {a={b=[1, x, null]}, error=boom}"
    );
    let long = Map::from_iter([("error".to_string(), json!("y".repeat(50_000)))]);
    let message = failure_message("x", &long);
    assert_eq!(
        message.chars().count(),
        crate::error::MAX_ERROR_MESSAGE_CHARS
    );
}

#[test]
fn directive_variables_stop_at_the_size_camunda_sends() {
    let small = Map::from_iter([("a".to_string(), json!(1))]);
    assert_eq!(as_variables(&small, 100).unwrap(), r#"{"a":1}"#);
    assert_eq!(as_variables(&Map::new(), 0).unwrap(), "");
    let big = Map::from_iter([("a".to_string(), json!("z".repeat(2_000_000)))]);
    let written = as_variables(&big, MAX_DIRECTIVE_VARIABLES_BYTES).unwrap_err();
    assert!(written <= MAX_DIRECTIVE_VARIABLES_BYTES);
}

#[tokio::test]
async fn an_expression_past_the_inline_budget_runs_again_with_its_full_bounds() {
    // Some 5,000 iterations: more than the steps allowed on the runtime's thread, well within
    // an expression's bounds.
    let long = FeelHeader::parse(
        "resultExpression",
        "{n: count(for i in 1..5000 return i * 2)}",
    )
    .unwrap();
    let (scope, evaluated) = evaluate(&long, vec![("a", json!(1))]).await;
    assert_eq!(evaluated.unwrap().value.to_json(), json!({ "n": 5000 }));
    assert_eq!(scope, vec![("a", json!(1))], "the variables come back");
    let short = FeelHeader::parse("resultExpression", "{n: a + 1}").unwrap();
    let (_, evaluated) = evaluate(&short, scope).await;
    assert_eq!(evaluated.unwrap().value.to_json(), json!({ "n": 2 }));
    // What no budget allows still ends in the limit.
    let endless = FeelHeader::parse(
        "resultExpression",
        "count(for i in 1..1000000, j in 1..1000000 return i)",
    )
    .unwrap();
    let (_, evaluated) = evaluate(&endless, Vec::new()).await;
    assert!(
        matches!(evaluated, Err(FeelError::Limit(_))),
        "{evaluated:?}"
    );
}
