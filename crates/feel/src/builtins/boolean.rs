//! The boolean built-ins that take any value: `not`, `is defined`, `get or else`, `assert`.

use super::{Builtin, Fail, Outcome, bad, f};
use crate::FeelError;
use crate::eval::Eval;
use crate::value::Value;

pub static FUNCTIONS: &[Builtin] = &[
    f("not", &["negand"], |_, a| match a.as_slice() {
        [Value::Bool(b)] => Ok(Value::Bool(!b)),
        _ => Ok(Value::Null),
    }),
    f("is defined", &["value"], |_, a| {
        Ok(Value::Bool(!matches!(a.as_slice(), [Value::Null])))
    }),
    f("get or else", &["value", "default"], |_, a| {
        match a.as_slice() {
            [Value::Null, default] => Ok(default.clone()),
            [value, _] => Ok(value.clone()),
            _ => bad(),
        }
    }),
    f("assert", &["value", "condition"], assert),
    f("assert", &["value", "condition", "cause"], assert),
];

fn assert(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [value, Value::Bool(true), ..] => Ok(value.clone()),
        [_, _, Value::String(cause)] => Err(Fail::Fatal(FeelError::Failed(cause.to_string()))),
        _ => Err(Fail::Fatal(FeelError::Failed(
            "The condition is not fulfilled".into(),
        ))),
    }
}
