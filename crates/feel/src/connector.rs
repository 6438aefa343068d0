//! The connector functions of Camunda's runtime (`bpmnError`, `jobError`, `ignoreError`): each
//! builds a context tagged with `errorType`, as the runtime's do, and [`ErrorDirective`] reads
//! an error expression's result back the way the runtime does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};

use crate::FeelError;
use crate::builtins::{Builtin, Fail, Outcome, f};
use crate::eval::Eval;
use crate::number::Number;
use crate::value::{Entries, Value};

pub static FUNCTIONS: &[Builtin] = &[
    f("bpmnError", &["errorCode"], bpmn_error),
    f("bpmnError", &["errorCode", "errorMessage"], bpmn_error),
    f(
        "bpmnError",
        &["errorCode", "errorMessage", "variables"],
        bpmn_error,
    ),
    f("jobError", &["errorMessage"], job_error),
    f("jobError", &["errorMessage", "variables"], job_error),
    f(
        "jobError",
        &["errorMessage", "variables", "retries"],
        job_error,
    ),
    f(
        "jobError",
        &["errorMessage", "variables", "retries", "retryBackoff"],
        job_error,
    ),
    f("ignoreError", &[], ignore_error),
    f("ignoreError", &["variables"], ignore_error),
];

/// The runtime's functions throw on an argument of the wrong type, which fails the whole
/// evaluation (not null).
fn wrong(param: &str, function: &str, what: &str) -> Fail {
    Fail::Fatal(FeelError::Failed(format!(
        "Parameter '{param}' of function '{function}' must be a {what}"
    )))
}

fn tagged(kind: &str, entries: Vec<(&str, Value)>) -> Value {
    let mut map = Entries::with_capacity_and_hasher(entries.len() + 1, Default::default());
    map.insert(Arc::from("errorType"), Value::str(kind));
    for (k, v) in entries {
        map.insert(Arc::from(k), v);
    }
    Value::context(map)
}

fn bpmn_error(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let names = ["errorCode", "errorMessage", "variables"];
    let mut entries = Vec::new();
    for (i, v) in a.into_iter().enumerate() {
        let ok = if i < 2 {
            matches!(v, Value::String(_))
        } else {
            matches!(v, Value::Context(_))
        };
        if !ok {
            let what = if i < 2 { "String" } else { "Context" };
            return Err(wrong(names[i], "bpmnError", what));
        }
        entries.push((names[i], v));
    }
    Ok(tagged("bpmnError", entries))
}

fn job_error(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let mut a = a.into_iter();
    let message = match a.next() {
        Some(v @ Value::String(_)) => v,
        _ => return Err(wrong("errorMessage", "jobError", "String")),
    };
    let variables = match a.next() {
        None => Value::context(Entries::default()),
        Some(v @ Value::Context(_)) => v,
        Some(_) => return Err(wrong("variables", "jobError", "Context")),
    };
    let retries = match a.next() {
        None => Value::Number(Number::zero()),
        Some(v @ Value::Number(_)) => v,
        Some(_) => return Err(wrong("retries", "jobError", "Number")),
    };
    let backoff = match a.next() {
        None => Value::DayTime(0),
        Some(v @ Value::DayTime(_)) => v,
        Some(_) => return Err(wrong("retryBackoff", "jobError", "day-time duration")),
    };
    Ok(tagged(
        "jobError",
        vec![
            ("errorMessage", message),
            ("variables", variables),
            ("retries", retries),
            ("retryBackoff", backoff),
        ],
    ))
}

fn ignore_error(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.into_iter().next() {
        None => Ok(tagged("ignoreError", vec![])),
        Some(v @ Value::Context(_)) => Ok(tagged("ignoreError", vec![("variables", v)])),
        Some(_) => Err(wrong("variables", "ignoreError", "Context")),
    }
}

/// What an error expression decided, read as Camunda's runtime reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorDirective {
    /// Throw a BPMN error (ThrowError) with this code, message and variables.
    BpmnError {
        code: String,
        message: String,
        variables: Map<String, Json>,
    },
    /// Fail the job with these retries (never below 0) and backoff; the variables are set.
    JobError {
        message: String,
        variables: Map<String, Json>,
        retries: i64,
        retry_backoff: Duration,
    },
    /// Complete the job with only these variables.
    IgnoreError { variables: Map<String, Json> },
}

impl ErrorDirective {
    /// `Ok(None)`: the normal outcome (null, `{}`, or a `bpmnError` without a code).
    /// `Err`: a result the runtime refuses (not a context, no or an unknown `errorType`);
    /// Camunda then fails the job with retries 0.
    pub fn from_value(value: &Value) -> Result<Option<ErrorDirective>, String> {
        let context = match value {
            Value::Null => return Ok(None),
            Value::Context(c) if c.entries.is_empty() => return Ok(None),
            Value::Context(c) => c,
            other => {
                return Err(format!(
                    "the error expression gave a {}, not a context",
                    other.type_name()
                ));
            }
        };
        let text = |key: &str| match context.entries.get(key) {
            Some(Value::String(s)) => Some(s.to_string()),
            _ => None,
        };
        let variables = || match context.entries.get("variables") {
            Some(v @ Value::Context(_)) => match v.to_json() {
                Json::Object(map) => map,
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        match text("errorType").as_deref() {
            Some("bpmnError") => Ok(text("errorCode").map(|code| ErrorDirective::BpmnError {
                code,
                message: text("errorMessage").unwrap_or_default(),
                variables: variables(),
            })),
            Some("jobError") => {
                let retries = match context.entries.get("retries") {
                    Some(Value::Number(n)) => n.to_i64().unwrap_or(0).max(0),
                    _ => 0,
                };
                let retry_backoff = match context.entries.get("retryBackoff") {
                    Some(Value::DayTime(nanos)) if *nanos > 0 => {
                        Duration::from_nanos(u64::try_from(*nanos).unwrap_or(u64::MAX))
                    }
                    _ => Duration::ZERO,
                };
                Ok(Some(ErrorDirective::JobError {
                    message: text("errorMessage").unwrap_or_default(),
                    variables: variables(),
                    retries,
                    retry_backoff,
                }))
            }
            Some("ignoreError") => Ok(Some(ErrorDirective::IgnoreError {
                variables: variables(),
            })),
            Some(other) => Err(format!("unknown errorType '{other}'")),
            None => Err("the error expression's context has no errorType".to_string()),
        }
    }
}
