//! FEEL values: what evaluation reads from the scope, builds and returns.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::civil::{Date, DateTime, Time};
use serde_json::Value as Json;

use crate::ast::Expr;
use crate::eval::Binding;
use crate::number::Number;
use crate::temporal::{self, ZonedDateTime, ZonedTime};

/// A FEEL value. Lists and contexts are shared, so copying a value is cheap; each carries its
/// weight (nodes and string bytes, counted as if nothing were shared) so that what an expression
/// builds is bounded however it nests and shares.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(Arc<str>),
    Date(Date),
    LocalTime(Time),
    Time(Arc<ZonedTime>),
    LocalDateTime(DateTime),
    DateTime(Arc<ZonedDateTime>),
    /// A years-and-months duration, in months.
    YearMonth(i64),
    /// A days-and-time duration, in nanoseconds.
    DayTime(i128),
    List(Arc<List>),
    Context(Arc<Context>),
    Function(Arc<Lambda>),
}

#[derive(Debug, Default, Clone)]
pub struct List {
    pub items: Vec<Value>,
    pub weight: u64,
    pub depth: u32,
}

/// A context's entries, in the order they were written.
pub type Entries = IndexMap<Arc<str>, Value, foldhash::fast::RandomState>;

#[derive(Debug, Default, Clone)]
pub struct Context {
    pub entries: Entries,
    pub weight: u64,
    pub depth: u32,
}

/// A function written in the expression (`function(a, b) a < b`), with the names it saw.
#[derive(Debug)]
pub struct Lambda {
    pub params: Vec<Arc<str>>,
    pub body: Arc<Expr>,
    pub captured: Vec<Binding>,
}

/// Deeper scope JSON than this is read as null (serde_json itself stops at 128).
const MAX_JSON_DEPTH: usize = 256;

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Arc::from(s))
    }

    pub fn list(items: Vec<Value>) -> Value {
        let weight = 1 + items
            .iter()
            .map(Value::weight)
            .fold(0u64, u64::saturating_add);
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        Value::List(Arc::new(List {
            items,
            weight,
            depth,
        }))
    }

    pub fn context(entries: Entries) -> Value {
        let weight = 1 + entries
            .iter()
            .map(|(k, v)| k.len() as u64 + v.weight())
            .fold(0u64, u64::saturating_add);
        let depth = 1 + entries.values().map(Value::depth).max().unwrap_or(0);
        Value::Context(Arc::new(Context {
            entries,
            weight,
            depth,
        }))
    }

    /// How deeply lists and contexts nest in this value.
    pub fn depth(&self) -> u32 {
        match self {
            Value::List(l) => l.depth,
            Value::Context(c) => c.depth,
            _ => 0,
        }
    }

    /// Nodes plus string bytes, as if nothing were shared.
    pub fn weight(&self) -> u64 {
        match self {
            Value::String(s) => 1 + s.len() as u64,
            Value::List(l) => l.weight,
            Value::Context(c) => c.weight,
            _ => 1,
        }
    }

    pub fn from_json(json: &Json) -> Value {
        Value::from_json_at(json, 0)
    }

    pub(crate) fn from_json_at(json: &Json, depth: usize) -> Value {
        crate::deep(|| Value::from_json_here(json, depth))
    }

    fn from_json_here(json: &Json, depth: usize) -> Value {
        if depth > MAX_JSON_DEPTH {
            return Value::Null;
        }
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Number::from_json(n).map_or(Value::Null, Value::Number),
            Json::String(s) => Value::str(s),
            Json::Array(a) => Value::list(
                a.iter()
                    .map(|v| Value::from_json_at(v, depth + 1))
                    .collect(),
            ),
            Json::Object(o) => Value::context(
                o.iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Value::from_json_at(v, depth + 1)))
                    .collect(),
            ),
        }
    }

    /// JSON as Camunda's runtime writes a FEEL result: whole numbers in the long range as
    /// integers, other numbers as doubles, temporal values and functions as their FEEL text.
    pub fn to_json(&self) -> Json {
        crate::deep(|| self.to_json_here())
    }

    fn to_json_here(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => n.to_json(),
            Value::String(s) => Json::String(s.to_string()),
            Value::List(l) => Json::Array(l.items.iter().map(Value::to_json).collect()),
            Value::Context(c) => Json::Object(
                c.entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            other => Json::String(other.to_feel_string()),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Date(_) => "date",
            Value::LocalTime(_) | Value::Time(_) => "time",
            Value::LocalDateTime(_) | Value::DateTime(_) => "date and time",
            Value::YearMonth(_) => "years and months duration",
            Value::DayTime(_) => "days and time duration",
            Value::List(_) => "list",
            Value::Context(_) => "context",
            Value::Function(_) => "function",
        }
    }

    /// The same variant (feel-scala compares only values of one class).
    pub fn same_kind(&self, other: &Value) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// What `string(x)` gives: strings as they are, others as feel-scala prints them.
    pub fn to_feel_string(&self) -> String {
        match self {
            Value::String(s) => s.to_string(),
            other => {
                let mut out = String::new();
                other.write_feel(&mut out);
                out
            }
        }
    }

    fn write_feel(&self, out: &mut String) {
        crate::deep(|| self.write_feel_here(out))
    }

    fn write_feel_here(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Value::String(s) => {
                let _ = write!(out, "\"{s}\"");
            }
            Value::Date(d) => out.push_str(&temporal::format_date(*d)),
            Value::LocalTime(t) => out.push_str(&temporal::format_time(*t)),
            Value::Time(t) => out.push_str(&temporal::format_zoned_time(t)),
            Value::LocalDateTime(dt) => out.push_str(&temporal::format_local_date_time(*dt)),
            Value::DateTime(z) => out.push_str(&temporal::format_zoned_date_time(z)),
            Value::YearMonth(m) => out.push_str(&temporal::format_year_month(*m)),
            Value::DayTime(n) => out.push_str(&temporal::format_day_time(*n)),
            Value::List(l) => {
                out.push('[');
                for (i, item) in l.items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_feel(out);
                }
                out.push(']');
            }
            Value::Context(c) => {
                out.push('{');
                for (i, (k, v)) in c.entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_feel(out);
                }
                out.push('}');
            }
            Value::Function(f) => {
                let _ = write!(out, "function({})", f.params.join(", "));
            }
        }
    }

    /// feel-scala's equality: `null = null`, null against a value is false, values of one type
    /// compare by value (lists and contexts deeply), other pairs are not comparable (`None`).
    pub fn feel_eq(&self, other: &Value) -> Option<bool> {
        crate::deep(|| self.feel_eq_here(other))
    }

    fn feel_eq_here(&self, other: &Value) -> Option<bool> {
        Some(match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::LocalTime(a), Value::LocalTime(b)) => a == b,
            (Value::Time(a), Value::Time(b)) => a == b,
            (Value::LocalDateTime(a), Value::LocalDateTime(b)) => a == b,
            (Value::DateTime(a), Value::DateTime(b)) => a == b,
            (Value::YearMonth(a), Value::YearMonth(b)) => a == b,
            (Value::DayTime(a), Value::DayTime(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.items.len() == b.items.len()
                    && a.items
                        .iter()
                        .zip(&b.items)
                        .all(|(x, y)| x.feel_eq(y) == Some(true))
            }
            (Value::Context(a), Value::Context(b)) => {
                a.entries.len() == b.entries.len()
                    && a.entries
                        .iter()
                        .all(|(k, v)| b.entries.get(k).is_some_and(|w| v.feel_eq(w) == Some(true)))
            }
            _ => return None,
        })
    }

    /// Order for `<`, `>`, `between` and ranges: numbers, strings, dates, times, durations of
    /// one kind; anything else is not comparable.
    pub fn feel_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(match (self, other) {
            (Value::Number(a), Value::Number(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => cmp_utf16(a, b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::LocalTime(a), Value::LocalTime(b)) => a.cmp(b),
            (Value::Time(a), Value::Time(b)) => temporal::compare_zoned_time(a, b),
            (Value::LocalDateTime(a), Value::LocalDateTime(b)) => a.cmp(b),
            (Value::DateTime(a), Value::DateTime(b)) => temporal::compare_zoned(a, b),
            (Value::YearMonth(a), Value::YearMonth(b)) => a.cmp(b),
            (Value::DayTime(a), Value::DayTime(b)) => a.cmp(b),
            _ => return None,
        })
    }

    /// The properties of temporal values (`date.year`, `duration.hours`, ...).
    pub fn property(&self, name: &str) -> Option<Value> {
        let n = |i: i64| Some(Value::Number(Number::from(i)));
        let date_part = |d: Date| match name {
            "year" => n(d.year() as i64),
            "month" => n(d.month() as i64),
            "day" => n(d.day() as i64),
            "weekday" => n(d.weekday().to_monday_one_offset() as i64),
            _ => None,
        };
        let time_part = |t: Time| match name {
            "hour" => n(t.hour() as i64),
            "minute" => n(t.minute() as i64),
            "second" => n(t.second() as i64),
            _ => None,
        };
        match self {
            Value::Date(d) => date_part(*d),
            Value::LocalTime(t) => time_part(*t).or_else(|| local_zone(name)),
            Value::Time(t) => time_part(t.time).or_else(|| match name {
                "time offset" => Some(Value::DayTime(t.offset.seconds() as i128 * 1_000_000_000)),
                "timezone" => Some(
                    t.zone
                        .as_ref()
                        .and_then(|z| z.iana_name())
                        .map_or(Value::Null, Value::str),
                ),
                _ => None,
            }),
            Value::LocalDateTime(dt) => date_part(dt.date())
                .or_else(|| time_part(dt.time()))
                .or_else(|| local_zone(name)),
            Value::DateTime(z) => date_part(z.zoned.date())
                .or_else(|| time_part(z.zoned.time()))
                .or_else(|| match name {
                    "time offset" => Some(Value::DayTime(
                        z.zoned.offset().seconds() as i128 * 1_000_000_000,
                    )),
                    "timezone" => Some(
                        z.zoned
                            .time_zone()
                            .iana_name()
                            .filter(|_| z.named)
                            .map_or(Value::Null, Value::str),
                    ),
                    _ => None,
                }),
            Value::YearMonth(m) => match name {
                "years" => n(m / 12),
                "months" => n(m % 12),
                _ => None,
            },
            Value::DayTime(nanos) => {
                let secs = (nanos / 1_000_000_000) as i64;
                match name {
                    "days" => n(secs / 86_400),
                    "hours" => n(secs / 3600 % 24),
                    "minutes" => n(secs / 60 % 60),
                    "seconds" => n(secs % 60),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn local_zone(name: &str) -> Option<Value> {
    matches!(name, "time offset" | "timezone").then_some(Value::Null)
}

/// Java compares strings by UTF-16 code units; Rust's order (code points) differs only above
/// the surrogate range, so compare as Java does.
fn cmp_utf16(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}
