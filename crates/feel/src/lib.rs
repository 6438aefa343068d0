//! A bounded FEEL evaluator for connector result and error expressions.
//!
//! It follows the semantics of Camunda's FEEL engine (feel-scala) for the subset it supports,
//! and refuses anything else when the expression is parsed, with its position
//! (`unsupported at 1:14: ...`), so nothing is ever evaluated half-way.
//!
//! Supported: literals (numbers as 34-digit decimals as Java's `BigDecimal` with
//! `MathContext.DECIMAL128`, strings with feel-scala's escapes, booleans, null, lists, contexts
//! with name, quoted or backquoted keys, `@"..."` dates, times, dates and times, day-time and
//! year-month durations); names (a missing variable or entry is null with a warning), paths,
//! projections over lists, filters with `item` and 1-based or negative indexes; arithmetic and
//! string `+`, temporal arithmetic and comparison; `=`, `!=`, `<`, `<=`, `>`, `>=`, `between`,
//! `in` (values, lists, `<`/`>` tests and intervals); three-valued `and`/`or`, `not()`,
//! `if then else`, `for in return` (several iterations, ranges `1..3`, `partial`),
//! `some`/`every ... satisfies`, `instance of`; calls with positional or named arguments,
//! `function(a, b) ...` values; the built-ins listed in `crates/feel/README.md` under
//! feel-scala's names (`string length`, `get value`, ...) and the connector functions
//! `bpmnError`, `jobError` and `ignoreError`, which build the contexts Camunda's runtime
//! recognises (see [`ErrorDirective`]).
//!
//! As feel-scala does, a failing operation or built-in gives null and a warning, not an error.
//! Errors are syntax, unsupported constructs, the bounds, and what feel-scala itself fails on
//! (`assert`, a connector function given the wrong type).
//!
//! Bounded ([`Limits`]): the expression's length and nesting at parse time; evaluation steps,
//! wall-clock time, the iterations of one `for`/`some`/`every`/filter, and the size of any value
//! evaluation builds (list and context nodes plus string bytes, counted as if nothing were
//! shared, and nesting depth). A bound hit fails the evaluation with [`FeelError::Limit`].

mod ast;
mod builtins;
mod connector;
mod eval;
mod lexer;
mod loops;
mod number;
mod ops;
mod parser;
mod temporal;
mod value;

use std::time::Duration;

pub use connector::ErrorDirective;
pub use number::Number;
pub use value::{Context, Entries, Value};

/// Runs a step of a bounded recursion with stack to spare: more is taken from the heap when a
/// small thread stack (or a debug or sanitizer build's large frames) runs low.
pub(crate) fn deep<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

/// What parsing or evaluating an expression can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeelError {
    #[error("syntax error at {line}:{column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("unsupported at {line}:{column}: {what}")]
    Unsupported {
        line: usize,
        column: usize,
        what: String,
    },
    #[error("expression longer than {limit} characters")]
    TooLong { limit: usize },
    #[error("nesting deeper than {limit} levels at {line}:{column}")]
    TooDeep {
        line: usize,
        column: usize,
        limit: usize,
    },
    /// An evaluation bound was reached; the evaluation stopped there.
    #[error("evaluation limit reached: {0}")]
    Limit(String),
    /// A failure that feel-scala does not turn into null (`assert`, a connector function given
    /// an argument of the wrong type): the whole evaluation fails.
    #[error("evaluation failed: {0}")]
    Failed(String),
}

/// The bounds of parsing and evaluation. The defaults fit connector expressions with room to
/// spare and keep a hostile one within milliseconds and a few megabytes beyond its scope.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Characters of the expression.
    pub max_length: usize,
    /// Nesting of the expression (parentheses, operands, calls).
    pub max_depth: usize,
    /// Evaluation steps (nodes evaluated plus items visited by built-ins).
    pub max_steps: u64,
    /// Wall-clock time of one evaluation.
    pub max_time: Duration,
    /// Items one `for`/`some`/`every` product or one filter may visit.
    pub max_iterations: u64,
    /// Size of one value built by the evaluation: nodes plus string bytes.
    pub max_value_weight: u64,
    /// Nesting of lists and contexts in one value.
    pub max_value_depth: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_length: 16 * 1024,
            max_depth: 64,
            max_steps: 1_000_000,
            max_time: Duration::from_millis(500),
            max_iterations: 100_000,
            max_value_weight: 16 * 1024 * 1024,
            max_value_depth: 128,
        }
    }
}

/// What evaluation gave: the value and feel-scala-like warnings about what became null.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub value: Value,
    pub warnings: Vec<String>,
}

/// A parsed expression, ready to be evaluated any number of times.
#[derive(Debug)]
pub struct Expression {
    root: ast::Expr,
    limits: Limits,
}

impl Expression {
    /// Parses with the default [`Limits`]. A leading `=` is allowed and ignored.
    pub fn parse(text: &str) -> Result<Expression, FeelError> {
        Expression::parse_with(text, Limits::default())
    }

    pub fn parse_with(text: &str, limits: Limits) -> Result<Expression, FeelError> {
        if text.chars().count() > limits.max_length {
            return Err(FeelError::TooLong {
                limit: limits.max_length,
            });
        }
        let root = parser::Parser::parse(text, limits.max_depth)?;
        Ok(Expression { root, limits })
    }

    /// Evaluates against `scope`: an object's entries are the variables (anything else is an
    /// empty scope). Warnings are dropped; see [`Expression::evaluate_with_warnings`].
    pub fn evaluate(&self, scope: &serde_json::Value) -> Result<Value, FeelError> {
        self.evaluate_with_warnings(scope).map(|e| e.value)
    }

    pub fn evaluate_with_warnings(
        &self,
        scope: &serde_json::Value,
    ) -> Result<Evaluation, FeelError> {
        eval::evaluate(&self.root, &[], &[scope], &self.limits)
    }

    /// Like [`Expression::evaluate_with_warnings`], with the variables in layers (the first
    /// object in `scopes` that has a name gives its value, so nothing need be copied to put
    /// two objects' entries side by side) and within `limits` instead of the expression's own:
    /// a caller may try a small budget first where waiting is cheap, and only an evaluation
    /// that ends in [`FeelError::Limit`] needs its full bounds. Evaluation has no side
    /// effects, so trying again is safe.
    pub fn evaluate_within(
        &self,
        scopes: &[&serde_json::Value],
        limits: &Limits,
    ) -> Result<Evaluation, FeelError> {
        eval::evaluate(&self.root, &[], scopes, limits)
    }

    /// Like [`Expression::evaluate_within`], with named `variables` looked up before the
    /// entries of `scopes`: a caller that holds its variables apart need not build an object
    /// to hold them.
    pub fn evaluate_in(
        &self,
        variables: &[(&str, serde_json::Value)],
        scopes: &[&serde_json::Value],
        limits: &Limits,
    ) -> Result<Evaluation, FeelError> {
        eval::evaluate(&self.root, variables, scopes, limits)
    }

    /// The bounds this expression was parsed with, which its evaluations keep.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// What the fuzz target (`fuzz/fuzz_targets/feel.rs`) and the corpus test check for any input:
/// the text before the first NUL is an expression, the rest a JSON scope (a fixed scope when
/// it is not JSON). Parsing and evaluation under tight bounds never panic, and whatever comes
/// out serializes within the size bound. Not part of the API.
#[doc(hidden)]
pub fn check_any_input(data: &[u8]) {
    let (text, scope) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let scope: serde_json::Value = serde_json::from_slice(scope).unwrap_or_else(|_| {
        serde_json::json!({
            "response": { "subject": "Hi", "to": ["a@x.test"], "size": 12, "sent": true },
            "error": { "code": "TIMEOUT", "message": "TIMEOUT: slow" },
            "job": { "retries": 3 }, "n": 1.5, "s": "text", "items": [1, 2, 3]
        })
    });
    let limits = Limits {
        max_steps: 200_000,
        max_time: Duration::from_secs(2),
        max_iterations: 10_000,
        max_value_weight: 1 << 20,
        ..Limits::default()
    };
    let Ok(expression) = Expression::parse_with(text, limits.clone()) else {
        return;
    };
    if let Ok(out) = expression.evaluate_with_warnings(&scope) {
        let json = out.value.to_json();
        let written = serde_json::to_string(&json).unwrap_or_default();
        assert!(
            written.len() as u64 <= 64 * limits.max_value_weight,
            "{} bytes from a value within the bound",
            written.len()
        );
        let _ = out.value.to_feel_string();
        let _ = ErrorDirective::from_value(&out.value);
        assert!(out.warnings.len() <= 100);
    }
}
