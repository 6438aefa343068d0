//! Operators on values, as feel-scala defines them: `None` where feel-scala gives an error that
//! becomes null (the caller adds the warning).

use std::cmp::Ordering;
use std::sync::Arc;

use crate::ast::{Arith, Cmp};
use crate::number::Number;
use crate::temporal as t;
use crate::value::Value;

const MILLIS: i128 = 1_000_000;

/// Java's `BigDecimal.intValue()`: truncated, then the low 32 bits.
pub fn int_value(n: &Number) -> i64 {
    match n.to_i64() {
        Some(i) => i as i32 as i64,
        None => 0,
    }
}

pub fn arith(op: Arith, x: &Value, y: &Value) -> Option<Value> {
    use Value::*;
    Some(match (op, x, y) {
        (Arith::Add, Number(a), Number(b)) => Number(a.add(b)?),
        (Arith::Sub, Number(a), Number(b)) => Number(a.sub(b)?),
        (Arith::Mul, Number(a), Number(b)) => Number(a.mul(b)?),
        (Arith::Div, Number(a), Number(b)) => Number(a.div(b)?),
        (Arith::Pow, Number(a), Number(b)) => Number(power(a, b)?),
        (Arith::Add, String(a), String(b)) => {
            let mut s = std::string::String::with_capacity(a.len() + b.len());
            s.push_str(a);
            s.push_str(b);
            String(Arc::from(s))
        }
        (Arith::Add, _, _) => add_temporal(x, y)?,
        (Arith::Sub, _, _) => sub_temporal(x, y)?,
        (Arith::Mul, Number(n), YearMonth(m)) | (Arith::Mul, YearMonth(m), Number(n)) => {
            YearMonth(m.checked_mul(int_value(n))?)
        }
        (Arith::Mul, Number(n), DayTime(d)) | (Arith::Mul, DayTime(d), Number(n)) => {
            DayTime(d.checked_mul(int_value(n) as i128)?)
        }
        (Arith::Div, YearMonth(m), Number(n)) if !n.is_zero() => {
            YearMonth(int_value(&crate::Number::from(*m).div(n)?))
        }
        (Arith::Div, YearMonth(a), YearMonth(b)) if *b != 0 => Number(crate::Number::from(a / b)),
        (Arith::Div, DayTime(a), DayTime(b)) if b / MILLIS != 0 => Number(crate::Number::from(
            i64::try_from(a / MILLIS / (b / MILLIS)).ok()?,
        )),
        (Arith::Div, DayTime(d), Number(n)) if !n.is_zero() => {
            let millis = crate::Number::from(i64::try_from(d / MILLIS).ok()?).div(n)?;
            DayTime(int_value(&millis) as i128 * MILLIS)
        }
        _ => return None,
    })
}

/// `x ** y`: whole exponents exactly (Java's `pow` with 34 digits), others through doubles.
fn power(x: &Number, y: &Number) -> Option<Number> {
    if y.is_whole() {
        return x.pow(y.to_i64()?);
    }
    Number::from_f64(x.to_f64().powf(y.to_f64()))
}

fn add_temporal(x: &Value, y: &Value) -> Option<Value> {
    use Value::*;
    Some(match (x, y) {
        (LocalTime(a), DayTime(d)) | (DayTime(d), LocalTime(a)) => {
            LocalTime(t::add_nanos_time(*a, *d))
        }
        (Time(a), DayTime(d)) | (DayTime(d), Time(a)) => Time(Arc::new(t::ZonedTime {
            time: t::add_nanos_time(a.time, *d),
            ..(**a).clone()
        })),
        (LocalDateTime(a), YearMonth(m)) | (YearMonth(m), LocalDateTime(a)) => {
            LocalDateTime(t::add_months_local(*a, *m)?)
        }
        (LocalDateTime(a), DayTime(d)) | (DayTime(d), LocalDateTime(a)) => {
            LocalDateTime(t::add_nanos_local(*a, *d)?)
        }
        (DateTime(a), YearMonth(m)) | (YearMonth(m), DateTime(a)) => {
            DateTime(Arc::new(t::add_months_zoned(a, *m)?))
        }
        (DateTime(a), DayTime(d)) | (DayTime(d), DateTime(a)) => {
            DateTime(Arc::new(t::add_nanos_zoned(a, *d)?))
        }
        (YearMonth(a), YearMonth(b)) => YearMonth(a.checked_add(*b)?),
        (DayTime(a), DayTime(b)) => DayTime(a.checked_add(*b)?),
        (Date(a), YearMonth(m)) | (YearMonth(m), Date(a)) => Date(t::add_months_date(*a, *m)?),
        (Date(a), DayTime(d)) | (DayTime(d), Date(a)) => Date(t::add_nanos_date(*a, *d)?),
        _ => return None,
    })
}

fn sub_temporal(x: &Value, y: &Value) -> Option<Value> {
    use Value::*;
    Some(match (x, y) {
        (LocalTime(a), LocalTime(b)) => DayTime(t::time_between(*b, *a)),
        (LocalTime(a), DayTime(d)) => LocalTime(t::add_nanos_time(*a, -d)),
        (Time(a), Time(b)) => DayTime(t::zoned_time_distance(a, b)),
        (Time(a), DayTime(d)) => Time(Arc::new(t::ZonedTime {
            time: t::add_nanos_time(a.time, -d),
            ..(**a).clone()
        })),
        (LocalDateTime(a), LocalDateTime(b)) => DayTime(t::local_between(*b, *a)),
        (LocalDateTime(a), YearMonth(m)) => LocalDateTime(t::add_months_local(*a, -m)?),
        (LocalDateTime(a), DayTime(d)) => LocalDateTime(t::add_nanos_local(*a, -d)?),
        (DateTime(a), DateTime(b)) => DayTime(t::zoned_between(b, a)),
        (DateTime(a), YearMonth(m)) => DateTime(Arc::new(t::add_months_zoned(a, -m)?)),
        (DateTime(a), DayTime(d)) => DateTime(Arc::new(t::add_nanos_zoned(a, -d)?)),
        (Date(a), Date(b)) => DayTime(t::local_between(
            b.to_datetime(jiff::civil::Time::midnight()),
            a.to_datetime(jiff::civil::Time::midnight()),
        )),
        (Date(a), YearMonth(m)) => Date(t::add_months_date(*a, -m)?),
        (Date(a), DayTime(d)) => Date(t::add_nanos_date(*a, -d)?),
        (YearMonth(a), YearMonth(b)) => YearMonth(a.checked_sub(*b)?),
        (DayTime(a), DayTime(b)) => DayTime(a.checked_sub(*b)?),
        _ => return None,
    })
}

/// `<`, `<=`, `>`, `>=` of two values of one comparable kind.
pub fn order(op: Cmp, x: &Value, y: &Value) -> Option<bool> {
    if !x.same_kind(y) {
        return None;
    }
    let o = x.feel_cmp(y)?;
    Some(match op {
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Ge => o != Ordering::Less,
        Cmp::Eq => o == Ordering::Equal,
        Cmp::Ne => o != Ordering::Equal,
    })
}

/// An interval test: the input and both ends of one comparable kind.
pub fn in_interval(
    x: &Value,
    start: &Value,
    start_open: bool,
    end: &Value,
    end_open: bool,
) -> Option<bool> {
    if !x.same_kind(start) || !x.same_kind(end) {
        return None;
    }
    let after_start = order(if start_open { Cmp::Gt } else { Cmp::Ge }, x, start)?;
    let before_end = order(if end_open { Cmp::Lt } else { Cmp::Le }, x, end)?;
    Some(after_start && before_end)
}

/// The test `in e` where `e` is an expression's value: true when it is `true`, a list holding
/// the input, or equal to the input; null when the two cannot be compared.
pub fn in_value(input: &Value, test: &Value) -> Option<bool> {
    if matches!(test, Value::Bool(true)) {
        return Some(true);
    }
    if let Value::List(l) = test
        && l.items.iter().any(|i| input.feel_eq(i) == Some(true))
    {
        return Some(true);
    }
    match input.feel_eq(test) {
        Some(true) => Some(true),
        _ if matches!(test, Value::Bool(false) | Value::List(_)) => Some(false),
        None => None,
        Some(false) => Some(false),
    }
}
