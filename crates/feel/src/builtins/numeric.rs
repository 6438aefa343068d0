//! Numeric built-ins (`decimal`, `floor`, `ceiling`, `abs`, `modulo`, `sqrt`, `odd`, `even`,
//! the `round ...` family, `log`, `exp`).

use super::{Builtin, Fail, Outcome, bad, f};
use crate::number::{Number, Rounding};
use crate::ops::int_value;
use crate::value::Value;

pub static FUNCTIONS: &[Builtin] = &[
    f("decimal", &["n", "scale"], |_, a| {
        round(&a, Rounding::HalfEven)
    }),
    f("decimal", &["n", "scale", "mode"], |_, a| match a.get(2) {
        Some(Value::String(mode)) => match mode.to_ascii_uppercase().as_str() {
            "UP" => round(&a, Rounding::Up),
            "DOWN" => round(&a, Rounding::Down),
            "CEILING" => round(&a, Rounding::Ceiling),
            "FLOOR" => round(&a, Rounding::Floor),
            "HALF_UP" => round(&a, Rounding::HalfUp),
            "HALF_DOWN" => round(&a, Rounding::HalfDown),
            "HALF_EVEN" => round(&a, Rounding::HalfEven),
            _ => Err(Fail::Invalid(format!("illegal rounding mode '{mode}'"))),
        },
        _ => bad(),
    }),
    f("floor", &["n"], |_, a| {
        round(&with_zero(a), Rounding::Floor)
    }),
    f("floor", &["n", "scale"], |_, a| round(&a, Rounding::Floor)),
    f("ceiling", &["n"], |_, a| {
        round(&with_zero(a), Rounding::Ceiling)
    }),
    f("ceiling", &["n", "scale"], |_, a| {
        round(&a, Rounding::Ceiling)
    }),
    f("round up", &["n", "scale"], |_, a| round(&a, Rounding::Up)),
    f("round down", &["n", "scale"], |_, a| {
        round(&a, Rounding::Down)
    }),
    f("round half up", &["n", "scale"], |_, a| {
        round(&a, Rounding::HalfUp)
    }),
    f("round half down", &["n", "scale"], |_, a| {
        round(&a, Rounding::HalfDown)
    }),
    f("abs", &["n"], abs),
    f("abs", &["number"], abs),
    f("modulo", &["dividend", "divisor"], |_, a| {
        match a.as_slice() {
            // ((dividend % divisor) + divisor) % divisor, with Java's remainder.
            [Value::Number(x), Value::Number(y)] if !y.is_zero() => rem(x, y)
                .and_then(|r| r.add(y))
                .and_then(|r| rem(&r, y))
                .map(Value::Number)
                .ok_or_else(|| Fail::Invalid("out of range".into())),
            _ => bad(),
        }
    }),
    f("sqrt", &["number"], |_, a| match a.as_slice() {
        [Value::Number(n)] if n.is_negative() => Ok(Value::Null),
        [Value::Number(n)] => {
            Ok(Number::from_f64(n.to_f64().sqrt()).map_or(Value::Null, Value::Number))
        }
        _ => bad(),
    }),
    f("log", &["number"], |_, a| double(&a, f64::ln)),
    f("exp", &["number"], |_, a| double(&a, f64::exp)),
    f("odd", &["number"], |_, a| match a.as_slice() {
        [Value::Number(n)] => Ok(Value::Bool(
            rem(&n.abs(), &Number::from(2)).is_some_and(|r| r == Number::from(1)),
        )),
        _ => bad(),
    }),
    f("even", &["number"], |_, a| match a.as_slice() {
        [Value::Number(n)] => Ok(Value::Bool(
            rem(n, &Number::from(2)).is_some_and(|r| r.is_zero()),
        )),
        _ => bad(),
    }),
];

fn with_zero(mut a: Vec<Value>) -> Vec<Value> {
    a.push(Value::Number(Number::zero()));
    a
}

fn round(a: &[Value], mode: Rounding) -> Outcome {
    match a {
        [Value::Number(n), Value::Number(scale), ..] => n
            .with_scale(int_value(scale), mode)
            .map(Value::Number)
            .ok_or_else(|| Fail::Invalid("scale out of range".into())),
        _ => bad(),
    }
}

fn abs(_: &mut crate::eval::Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::Number(n)] => Ok(Value::Number(n.abs())),
        [Value::YearMonth(m)] => Ok(Value::YearMonth(m.abs())),
        [Value::DayTime(d)] => Ok(Value::DayTime(d.abs())),
        _ => bad(),
    }
}

/// Java's `remainder`: the sign of the dividend.
fn rem(x: &Number, y: &Number) -> Option<Number> {
    let q = x.div(y)?.with_scale(0, Rounding::Down)?;
    x.sub(&q.mul(y)?)
}

fn double(a: &[Value], op: fn(f64) -> f64) -> Outcome {
    match a {
        [Value::Number(n)] => {
            Ok(Number::from_f64(op(n.to_f64())).map_or(Value::Null, Value::Number))
        }
        _ => bad(),
    }
}
