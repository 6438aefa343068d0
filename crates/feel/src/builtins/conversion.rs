//! Conversion built-ins (`string`, `number`, `date`, `time`, `date and time`, `duration`, JSON)
//! and the temporal ones (`now`, `today`), with feel-scala's text formats.

use std::sync::Arc;

use super::{Builtin, Fail, Outcome, bad, f};
use crate::eval::Eval;
use crate::number::Number;
use crate::ops::int_value;
use crate::temporal as t;
use crate::value::Value;

pub static FUNCTIONS: &[Builtin] = &[
    f("string", &["from"], |_, a| match a.as_slice() {
        [Value::Null] => Ok(Value::Null),
        [v @ Value::String(_)] => Ok(v.clone()),
        [v] => Ok(Value::String(Arc::from(v.to_feel_string()))),
        _ => bad(),
    }),
    f("number", &["from"], number),
    f("number", &["from", "grouping separator"], number),
    f(
        "number",
        &["from", "grouping separator", "decimal separator"],
        number,
    ),
    f("date", &["from"], |_, a| match a.as_slice() {
        [Value::String(s)] => parsed(t::parse_date(s).map(Value::Date), "date", s),
        [Value::LocalDateTime(dt)] => Ok(Value::Date(dt.date())),
        [Value::DateTime(z)] => Ok(Value::Date(z.zoned.date())),
        [Value::Date(d)] => Ok(Value::Date(*d)),
        _ => bad(),
    }),
    f("date", &["year", "month", "day"], |_, a| {
        match a.as_slice() {
            [Value::Number(y), Value::Number(m), Value::Number(d)] => {
                let part = |n: &Number| i8::try_from(int_value(n)).ok();
                let date = i16::try_from(int_value(y))
                    .ok()
                    .zip(part(m).zip(part(d)))
                    .and_then(|(y, (m, d))| jiff::civil::Date::new(y, m, d).ok());
                date.map(Value::Date)
                    .ok_or_else(|| Fail::Invalid("not a date".into()))
            }
            _ => bad(),
        }
    }),
    f("date and time", &["from"], |_, a| match a.as_slice() {
        [Value::String(s)] => parsed(date_time(s), "date and time", s),
        _ => bad(),
    }),
    f("date and time", &["date", "time"], date_and_time),
    f("date and time", &["date", "timezone"], date_and_time),
    f("time", &["from"], |_, a| match a.as_slice() {
        [Value::String(s)] => parsed(time(s), "time", s),
        [Value::LocalDateTime(dt)] => Ok(Value::LocalTime(dt.time())),
        [Value::DateTime(z)] => Ok(Value::Time(Arc::new(t::time_of(z)))),
        [Value::Date(_)] => Ok(Value::Time(Arc::new(t::ZonedTime {
            time: jiff::civil::Time::midnight(),
            offset: jiff::tz::Offset::UTC,
            zone: None,
        }))),
        _ => bad(),
    }),
    f("time", &["hour", "minute", "second"], time_of_parts),
    f(
        "time",
        &["hour", "minute", "second", "offset"],
        time_of_parts,
    ),
    f("duration", &["from"], |_, a| match a.as_slice() {
        [Value::String(s)] => parsed(duration(s), "duration", s),
        _ => bad(),
    }),
    f("years and months duration", &["from", "to"], |_, a| {
        let date = |v: &Value| match v {
            Value::Date(d) => Some(*d),
            Value::LocalDateTime(dt) => Some(dt.date()),
            Value::DateTime(z) => Some(z.zoned.date()),
            _ => None,
        };
        match a.as_slice() {
            [x, y] => match (date(x), date(y)) {
                (Some(from), Some(to)) => Ok(Value::YearMonth(t::months_between(from, to))),
                _ => bad(),
            },
            _ => bad(),
        }
    }),
    f("now", &[], |_, _| Ok(Value::DateTime(Arc::new(t::now())))),
    f("today", &[], |_, _| Ok(Value::Date(t::now().zoned.date()))),
    f("to json", &["value"], |e, a| match a.as_slice() {
        [v] => {
            e.charge(v.weight() / 16)?;
            let text = serde_json::to_string(&v.to_json())
                .map_err(|_| Fail::Invalid("not JSON".into()))?;
            Ok(Value::String(Arc::from(text)))
        }
        _ => bad(),
    }),
    f("from json", &["json"], from_json),
];

/// `time(hour, minute, second[, offset])`: seconds may have a fraction; a null offset gives a
/// local time.
fn time_of_parts(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let (h, m, sec, offset) = match a.as_slice() {
        [Value::Number(h), Value::Number(m), Value::Number(s)] => (h, m, s, None),
        [
            Value::Number(h),
            Value::Number(m),
            Value::Number(s),
            Value::Null,
        ] => (h, m, s, None),
        [
            Value::Number(h),
            Value::Number(m),
            Value::Number(s),
            Value::DayTime(o),
        ] => (h, m, s, Some(*o)),
        _ => return bad(),
    };
    let nanos = sec
        .sub(
            &sec.with_scale(0, crate::number::Rounding::Down)
                .ok_or_else(|| Fail::Invalid("second".into()))?,
        )
        .and_then(|f| f.mul(&Number::from(1_000_000_000)))
        .map(|f| int_value(&f))
        .unwrap_or(0);
    let part = |n: &Number| i8::try_from(int_value(n)).ok();
    let time = match (part(h), part(m), part(sec)) {
        (Some(h), Some(m), Some(s)) => jiff::civil::Time::new(h, m, s, nanos as i32).ok(),
        _ => None,
    }
    .ok_or_else(|| Fail::Invalid("not a time".into()))?;
    match offset {
        None => Ok(Value::LocalTime(time)),
        Some(o) => {
            let secs =
                i32::try_from(o / 1_000_000_000).map_err(|_| Fail::Invalid("offset".into()))?;
            let offset =
                jiff::tz::Offset::from_seconds(secs).map_err(|_| Fail::Invalid("offset".into()))?;
            Ok(Value::Time(Arc::new(t::ZonedTime {
                time,
                offset,
                zone: None,
            })))
        }
    }
}

fn parsed(v: Option<Value>, what: &str, text: &str) -> Outcome {
    v.ok_or_else(|| Fail::Invalid(format!("Failed to parse {what} from '{text}'")))
}

/// An `@"..."` literal: the first of date, time with offset, date-time with offset, local
/// date-time, years-months duration, days-time duration, local time that reads it; else null.
pub fn temporal_literal(s: &str) -> Value {
    if let Some(d) = t::parse_date(s) {
        return Value::Date(d);
    }
    if let Some(z) = t::parse_zoned_time(s) {
        return Value::Time(Arc::new(z));
    }
    date_time(s)
        .or_else(|| duration(s))
        .or_else(|| t::parse_local_time(s).map(Value::LocalTime))
        .unwrap_or(Value::Null)
}

/// `date and time("...")`: a date alone is its midnight.
fn date_time(s: &str) -> Option<Value> {
    if let Some(d) = t::parse_date(s) {
        return Some(Value::LocalDateTime(
            d.to_datetime(jiff::civil::Time::midnight()),
        ));
    }
    if let Some(z) = t::parse_zoned_date_time(s) {
        return Some(Value::DateTime(Arc::new(z)));
    }
    t::parse_local_date_time(s).map(Value::LocalDateTime)
}

fn time(s: &str) -> Option<Value> {
    if let Some(z) = t::parse_zoned_time(s) {
        return Some(Value::Time(Arc::new(z)));
    }
    t::parse_local_time(s).map(Value::LocalTime)
}

fn duration(s: &str) -> Option<Value> {
    t::parse_year_month(s)
        .map(Value::YearMonth)
        .or_else(|| t::parse_day_time(s).map(Value::DayTime))
}

fn date_and_time(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    use Value::*;
    let date = |v: &Value| match v {
        Date(d) => Some(*d),
        LocalDateTime(dt) => Some(dt.date()),
        DateTime(z) => Some(z.zoned.date()),
        _ => None,
    };
    let [x, y] = a.as_slice() else { return bad() };
    let Some(day) = date(x) else { return bad() };
    match (x, y) {
        (_, LocalTime(time)) => Ok(LocalDateTime(day.to_datetime(*time))),
        (_, Time(time)) => t::zoned_time_on(time, day)
            .map(|z| DateTime(Arc::new(z)))
            .ok_or_else(|| Fail::Invalid("not a date and time".into())),
        (LocalDateTime(dt), String(zone)) => t::zoned_in(*dt, zone)
            .map(|z| DateTime(Arc::new(z)))
            .ok_or_else(|| Fail::Invalid(format!("unknown time zone '{zone}'"))),
        (DateTime(z), String(zone)) => t::with_zone(z, zone)
            .map(|z| DateTime(Arc::new(z)))
            .ok_or_else(|| Fail::Invalid(format!("unknown time zone '{zone}'"))),
        _ => bad(),
    }
}

/// `number(from[, grouping separator[, decimal separator]])`.
fn number(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let grouping_ok = |g: &str| matches!(g, " " | "," | ".");
    let decimal_ok = |d: &str| matches!(d, "," | ".");
    let text = match a.as_slice() {
        [Value::String(s)] => s.to_string(),
        [Value::String(s), Value::String(g)] if grouping_ok(g) => s.replace(&**g, ""),
        [Value::String(s), Value::String(g), Value::String(d)]
            if grouping_ok(g) && decimal_ok(d) && g != d =>
        {
            s.replace(&**g, "").replace(&**d, ".")
        }
        [Value::String(s), Value::Null, Value::String(d)] if decimal_ok(d) => s.replace(&**d, "."),
        [Value::String(s), Value::String(g), Value::Null] if grouping_ok(g) => s.replace(&**g, ""),
        _ => return bad(),
    };
    Number::parse(&text)
        .map(Value::Number)
        .ok_or_else(|| Fail::Invalid(format!("Can't parse '{text}' as a number")))
}

fn from_json(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::Null] => Ok(Value::Null),
        [Value::String(s)] => {
            e.charge(s.len() as u64 / 16)?;
            let json: serde_json::Value = serde_json::from_str(s)
                .map_err(|_| Fail::Invalid("Failed to parse JSON".into()))?;
            Ok(Value::from_json(&json))
        }
        _ => bad(),
    }
}
