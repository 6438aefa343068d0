//! The result and error expressions around an operation (the `resultExpression` and
//! `errorExpression` task headers), in the order of Camunda's connector runtime: the
//! completion variables are built from the response (`resultVariable`, then the result
//! expression's context over it), then the error expression looks at what happened, success
//! or failure, and may turn it into a BPMN error, a failure with its own retries and backoff,
//! or a completion with variables of its choosing. README "Result and error expressions" has
//! the rules as users see them.
//!
//! What an expression sees was masked before: the response and the error message hide every
//! secret the job resolved, and placeholders are never resolved in a header. What comes out is
//! masked again all the same.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use feel::{ErrorDirective, Evaluation, FeelError};
use serde_json::{Map, Value, json};
use tracing::debug;

use super::verdict::{Verdict, error_message, fail_verdict};
use crate::error::{EmailError, ErrorCode, truncate_message};
use crate::gateway::proto::ActivatedJob;
use crate::job::{FeelHeader, JobHeaders};
use crate::operation::{AfterCompletion, Outcome};
use crate::secrets::SecretMask;

/// The metrics label of an outcome an error expression chose for a job that succeeded.
const EXPRESSION_LABEL: &str = "EXPRESSION";

/// Camunda's runtime refuses error variables above 1.5 MB of JSON (its `InlineSizeGuard`);
/// a BPMN error or failure must stay well within the gateway's message limit.
pub const MAX_DIRECTIVE_VARIABLES_BYTES: usize = 1_572_864;

/// The verdict of an operation that succeeded.
pub(super) async fn success(
    outcome: Outcome,
    job: &ActivatedJob,
    headers: JobHeaders,
    context: String,
    mask: &SecretMask,
) -> Verdict {
    let Outcome {
        response,
        after_completion: after,
    } = outcome;
    let (variables, seen) = match output(&headers, response, mask).await {
        Ok(shaped) => shaped,
        Err(e) => {
            rollback(after).await;
            let expression = headers.error_expression.as_ref();
            return failure(e, job, Some(&headers), expression, &context, mask).await;
        }
    };
    let directive = match &headers.error_expression {
        None => None,
        Some(expression) => match examine(expression, seen, job.retries, mask).await {
            Ok(directive) => directive,
            Err(reason) => {
                rollback(after).await;
                let error = EmailError::invalid_input(format!("errorExpression: {reason}"));
                return fail_verdict(error, job, Some(&headers), &context, mask);
            }
        },
    };
    let variables = match directive {
        None => Ok(as_variables(&variables, usize::MAX).unwrap_or_default()),
        Some(ErrorDirective::IgnoreError { mut variables }) => {
            masked(&mut variables, mask);
            as_variables(&variables, MAX_DIRECTIVE_VARIABLES_BYTES)
                .map_err(|bytes| too_many(bytes, "ignoreError"))
        }
        Some(directive) => {
            rollback(after).await;
            return directed(
                directive,
                EXPRESSION_LABEL,
                job,
                Some(&headers),
                &context,
                mask,
            );
        }
    };
    match variables {
        Ok(variables) => Verdict::Complete {
            variables,
            after,
            headers: Some(headers),
            context,
        },
        Err(e) => {
            rollback(after).await;
            fail_verdict(e, job, Some(&headers), &context, mask)
        }
    }
}

/// The verdict of a job that failed, before or while its operation ran: the error
/// expression's (with `error` in scope), or else the usual one by error code.
pub(super) async fn failure(
    error: EmailError,
    job: &ActivatedJob,
    headers: Option<&JobHeaders>,
    expression: Option<&FeelHeader>,
    context: &str,
    mask: &SecretMask,
) -> Verdict {
    let Some(expression) = expression else {
        return fail_verdict(error, job, headers, context, mask);
    };
    let message = error_message(&error, context, mask);
    let seen = json!({ "error": {
        "code": error.code.as_str(),
        "message": message,
        "type": exception_type(error.code),
    } });
    match examine(expression, seen, job.retries, mask).await {
        Ok(None) => fail_verdict(error, job, headers, context, mask),
        Ok(Some(directive)) => {
            directed(directive, error.code.as_str(), job, headers, context, mask)
        }
        Err(reason) => {
            let error = EmailError::invalid_input(format!(
                "errorExpression: {reason}; the job's own error: {message}"
            ));
            fail_verdict(error, job, headers, context, mask)
        }
    }
}

/// What Camunda's runtime puts in `error.type`: the exception's class. Expressions written
/// for its Email connector may test it; ours should test `error.code`.
fn exception_type(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidInput => "io.camunda.connector.api.error.ConnectorInputException",
        _ => "io.camunda.connector.api.error.ConnectorException",
    }
}

/// The completion variables (`resultVariable`, then the result expression's entries over
/// them) and what the error expression sees as `response`: those variables, or the
/// operation's response when there are none.
async fn output(
    headers: &JobHeaders,
    response: Value,
    mask: &SecretMask,
) -> Result<(Map<String, Value>, Value), EmailError> {
    let (response, shaped) = match &headers.result_expression {
        None => (response, None),
        Some(expression) => {
            let (mut variables, evaluated) =
                evaluate(expression, vec![("response", response)]).await;
            let response = variables.pop().map(|(_, v)| v).unwrap_or_default();
            let evaluation = evaluated.map_err(|e| expression_error("resultExpression", e))?;
            warnings("resultExpression", &evaluation.warnings, mask);
            (response, context_of(evaluation.value)?)
        }
    };
    let mut variables = Map::new();
    let mut response = Some(response);
    if let Some(name) = &headers.result_variable {
        variables.insert(name.clone(), response.take().unwrap_or_default());
    }
    // The expression's entries over `resultVariable`, each straight from FEEL to JSON.
    for (name, value) in shaped.iter().flat_map(|context| context.entries.iter()) {
        let mut value = value.to_json();
        mask.apply_to_value(&mut value);
        variables.insert(name.to_string(), value);
    }
    // Only an error expression looks at it: without one, nothing is kept.
    let seen = match (&headers.error_expression, response) {
        (None, _) => Value::Null,
        (Some(_), Some(response)) if variables.is_empty() => response,
        (Some(_), _) => Value::Object(variables.clone()),
    };
    Ok((variables, seen))
}

/// The variables Camunda's rule builds from `payload` for an inbound element, the same as for
/// a job: `{ <resultVariable>: payload }`, then the result expression's context entries over
/// it (the payload's fields and `payload` as `response` in scope); neither gives `{}`.
pub(crate) async fn inbound_variables(
    result_variable: Option<&str>,
    result_expression: Option<&FeelHeader>,
    payload: Value,
    mask: &SecretMask,
) -> Result<Map<String, Value>, EmailError> {
    let headers = JobHeaders {
        result_variable: result_variable.map(str::to_string),
        result_expression: result_expression.cloned(),
        ..JobHeaders::default()
    };
    output(&headers, payload, mask)
        .await
        .map(|(variables, _)| variables)
}

/// A result expression's value as completion variables: null adds nothing, a context its
/// entries; anything else is the model's mistake.
fn context_of(value: feel::Value) -> Result<Option<Arc<feel::Context>>, EmailError> {
    match value {
        feel::Value::Null => Ok(None),
        feel::Value::Context(context) => Ok(Some(context)),
        other => Err(EmailError::invalid_input(format!(
            "resultExpression: must give a context such as {{ subject: response.subject }}, \
             not a {}",
            other.type_name()
        ))),
    }
}

fn expression_error(header: &str, error: FeelError) -> EmailError {
    EmailError::invalid_input(format!("{header}: {error}"))
}

/// Evaluates an error expression against `seen` (its entries at the top level when it is an
/// object, itself as `response`, and `job.retries`) and reads the directive.
async fn examine(
    expression: &FeelHeader,
    seen: Value,
    retries: i32,
    mask: &SecretMask,
) -> Result<Option<ErrorDirective>, String> {
    let variables = vec![("response", seen), ("job", json!({ "retries": retries }))];
    let (_, evaluated) = evaluate(expression, variables).await;
    let evaluation: Evaluation = evaluated.map_err(|e| e.to_string())?;
    warnings("errorExpression", &evaluation.warnings, mask);
    ErrorDirective::from_value(&evaluation.value)
}

/// Steps an evaluation may take on the runtime's thread: typical connector expressions take a
/// few dozen, and this many take well under a millisecond.
const INLINE_STEPS: u64 = 2_000;

/// Evaluates where it is cheap: first on the runtime's thread within [`INLINE_STEPS`] (a
/// handoff to the blocking pool costs more than a typical expression, and that was a quarter of
/// a no-op job's time), and only an expression that needs more runs again, with its full
/// bounds, off the runtime's threads, so that job streams, other jobs and the health endpoints
/// never wait for it.
///
/// `variables` are the expression's, and beneath them, as Camunda's runtime has it, the
/// fields of `response` when it is an object: looked up there, never copied. The variables
/// come back so that the response need not be copied either.
async fn evaluate(
    expression: &FeelHeader,
    variables: Vec<(&'static str, Value)>,
) -> (Vec<(&'static str, Value)>, Result<Evaluation, FeelError>) {
    let parsed = expression.expression.clone();
    let quick = feel::Limits {
        max_steps: INLINE_STEPS.min(parsed.limits().max_steps),
        max_time: parsed.limits().max_time.min(Duration::from_millis(2)),
        ..parsed.limits().clone()
    };
    match evaluate_with(&parsed, &variables, &quick) {
        Err(FeelError::Limit(_)) => {}
        done => return (variables, done),
    }
    let task = tokio::task::spawn_blocking(move || {
        let evaluated = evaluate_with(&parsed, &variables, parsed.limits());
        (variables, evaluated)
    });
    match task.await {
        Ok(done) => done,
        Err(e) => (
            Vec::new(),
            Err(FeelError::Failed(format!(
                "the evaluation stopped unexpectedly: {e}"
            ))),
        ),
    }
}

fn evaluate_with(
    parsed: &feel::Expression,
    variables: &[(&'static str, Value)],
    limits: &feel::Limits,
) -> Result<Evaluation, FeelError> {
    let response = variables
        .iter()
        .find(|(n, _)| *n == "response")
        .map_or(&Value::Null, |(_, v)| v);
    parsed.evaluate_in(variables, &[response], limits)
}

/// FEEL's warnings (a missing name, a failing built-in) say why a value came out null: worth a
/// debug line, never more, and never whole values.
fn warnings(header: &str, warnings: &[String], mask: &SecretMask) {
    for warning in warnings.iter().take(10) {
        let cut: String = warning.chars().take(300).collect();
        debug!(header, "FEEL warning: {}", mask.apply(&cut));
    }
}

/// Variables as the gateway takes them: a JSON object, or nothing when empty. Writing stops
/// past `limit` bytes, so an oversized value is refused without being written out whole.
fn as_variables(variables: &Map<String, Value>, limit: usize) -> Result<String, usize> {
    if variables.is_empty() {
        return Ok(String::new());
    }
    let mut out = Capped {
        bytes: Vec::new(),
        limit,
    };
    match serde_json::to_writer(&mut out, variables) {
        Ok(()) => Ok(String::from_utf8(out.bytes).unwrap_or_default()),
        Err(_) => Err(out.bytes.len()),
    }
}

struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_many(bytes: usize, function: &str) -> EmailError {
    EmailError::invalid_input(format!(
        "errorExpression: the variables of {function} are more than \
         {MAX_DIRECTIVE_VARIABLES_BYTES} bytes of JSON ({bytes} written before stopping); \
         Camunda's runtime sends no more either"
    ))
}

/// A BPMN error or failure an error expression chose.
fn directed(
    directive: ErrorDirective,
    label: &'static str,
    job: &ActivatedJob,
    headers: Option<&JobHeaders>,
    context: &str,
    mask: &SecretMask,
) -> Verdict {
    let refused = |e| fail_verdict(e, job, headers, context, mask);
    match directive {
        ErrorDirective::BpmnError { code, .. } if code.trim().is_empty() => refused(
            EmailError::invalid_input("errorExpression: bpmnError with an empty error code"),
        ),
        ErrorDirective::BpmnError {
            code,
            message,
            mut variables,
        } => {
            masked(&mut variables, mask);
            match as_variables(&variables, MAX_DIRECTIVE_VARIABLES_BYTES) {
                Ok(variables) => Verdict::Throw {
                    label,
                    code,
                    message: truncate_message(&mask.apply(&message)),
                    variables,
                },
                Err(bytes) => refused(too_many(bytes, "bpmnError")),
            }
        }
        ErrorDirective::JobError {
            message,
            mut variables,
            retries,
            retry_backoff,
        } => {
            let message = mask.apply(&message);
            masked(&mut variables, mask);
            variables.insert("error".into(), Value::String(message.clone()));
            match as_variables(&variables, MAX_DIRECTIVE_VARIABLES_BYTES) {
                Ok(written) => Verdict::Fail {
                    label,
                    message: failure_message(&message, &variables),
                    retries: i32::try_from(retries).unwrap_or(i32::MAX),
                    backoff: retry_backoff,
                    variables: written,
                },
                Err(bytes) => refused(too_many(bytes, "jobError")),
            }
        }
        ErrorDirective::IgnoreError { mut variables } => {
            masked(&mut variables, mask);
            match as_variables(&variables, MAX_DIRECTIVE_VARIABLES_BYTES) {
                Ok(variables) => Verdict::Complete {
                    variables,
                    after: None,
                    headers: headers.cloned(),
                    context: context.to_string(),
                },
                Err(bytes) => refused(too_many(bytes, "ignoreError")),
            }
        }
    }
}

fn masked(variables: &mut Map<String, Value>, mask: &SecretMask) {
    for value in variables.values_mut() {
        mask.apply_to_value(value);
    }
}

/// The incident message of a jobError, as Camunda's runtime writes it: the message, then
/// the variables set with it in Java's `Map.toString` form, at most 6000 characters.
fn failure_message(message: &str, variables: &Map<String, Value>) -> String {
    let mut text = format!("{message} | Error variables: ");
    java_text(&Value::Object(variables.clone()), &mut text);
    truncate_message(&text)
}

/// Java's `toString` of the maps and lists Jackson reads JSON into. Stops writing once the
/// text is past what a message keeps.
fn java_text(value: &Value, out: &mut String) {
    if out.len() > 4 * crate::error::MAX_ERROR_MESSAGE_CHARS {
        return;
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                java_text(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push('=');
                java_text(item, out);
            }
            out.push('}');
        }
    }
}

async fn rollback(after: Option<Box<dyn AfterCompletion>>) {
    if let Some(after) = after {
        after.rollback().await;
    }
}

#[cfg(test)]
mod tests;
