//! String built-ins. Lengths and positions count UTF-16 code units, as Java's `String` (and
//! so feel-scala) does; regular expressions are the `regex` crate's (see the README for the
//! Java features it lacks).

use std::sync::Arc;

use regex::{Captures, Regex, RegexBuilder};

use super::{Builtin, Fail, Outcome, bad, f};
use crate::FeelError;
use crate::eval::Eval;
use crate::number::Number;
use crate::ops::int_value;
use crate::value::Value;

pub static FUNCTIONS: &[Builtin] = &[
    f("substring", &["string", "start position"], substring),
    f(
        "substring",
        &["string", "start position", "length"],
        substring,
    ),
    f("string length", &["string"], string_length),
    f("upper case", &["string"], |_, a| {
        map_str(a, |s| s.to_uppercase())
    }),
    f("lower case", &["string"], |_, a| {
        map_str(a, |s| s.to_lowercase())
    }),
    f("trim", &["string"], |_, a| {
        map_str(a, |s| s.trim_matches(java_trimmed).to_string())
    }),
    f("is blank", &["string"], |_, a| match a.as_slice() {
        [Value::String(s)] => Ok(Value::Bool(s.chars().all(char::is_whitespace))),
        _ => bad(),
    }),
    f("substring before", &["string", "match"], |_, a| {
        match a.as_slice() {
            [Value::String(s), Value::String(m)] => Ok(Value::str(match s.find(&**m) {
                Some(i) if i > 0 => &s[..i],
                _ => "",
            })),
            _ => bad(),
        }
    }),
    f("substring after", &["string", "match"], |_, a| {
        match a.as_slice() {
            [Value::String(s), Value::String(m)] => Ok(Value::str(match s.find(&**m) {
                Some(i) => &s[i + m.len()..],
                None => "",
            })),
            _ => bad(),
        }
    }),
    f("contains", &["string", "match"], |_, a| {
        test_str(a, |s, m| s.contains(m))
    }),
    f("starts with", &["string", "match"], |_, a| {
        test_str(a, |s, m| s.starts_with(m))
    }),
    f("ends with", &["string", "match"], |_, a| {
        test_str(a, |s, m| s.ends_with(m))
    }),
    f("matches", &["input", "pattern"], matches),
    f("matches", &["input", "pattern", "flags"], matches),
    f("replace", &["input", "pattern", "replacement"], replace),
    f(
        "replace",
        &["input", "pattern", "replacement", "flags"],
        replace,
    ),
    f("split", &["string", "delimiter"], split),
    f("extract", &["string", "pattern"], extract),
    f("string join", &["list"], string_join),
    f("string join", &["list", "delimiter"], string_join),
    f(
        "string join",
        &["list", "delimiter", "prefix", "suffix"],
        string_join,
    ),
];

/// Java's `String.trim` removes code points up to U+0020.
fn java_trimmed(c: char) -> bool {
    c <= ' '
}

fn map_str(a: Vec<Value>, op: impl Fn(&str) -> String) -> Outcome {
    match a.as_slice() {
        [Value::String(s)] => Ok(Value::String(Arc::from(op(s)))),
        _ => bad(),
    }
}

fn test_str(a: Vec<Value>, op: impl Fn(&str, &str) -> bool) -> Outcome {
    match a.as_slice() {
        [Value::String(s), Value::String(m)] => Ok(Value::Bool(op(s, m))),
        _ => bad(),
    }
}

fn string_length(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::String(s)] => Ok(Value::Number(Number::from(s.encode_utf16().count() as i64))),
        _ => bad(),
    }
}

/// `substring(string, start position[, length])`: 1-based, negative from the end.
fn substring(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let (s, start, length) = match a.as_slice() {
        [Value::String(s), Value::Number(start)] => (s, start, None),
        [Value::String(s), Value::Number(start), Value::Number(len)] => (s, start, Some(len)),
        _ => return bad(),
    };
    let units: Vec<u16> = s.encode_utf16().collect();
    e.charge(units.len() as u64 / 64)?;
    let n = units.len() as i64;
    let start = int_value(start);
    let from = if start > 0 { start - 1 } else { n + start };
    if from < 0 || from > n {
        return Err(Fail::Invalid(format!(
            "start position {start} out of range"
        )));
    }
    let to = match length {
        Some(len) => (from + int_value(len)).min(n),
        None => n,
    };
    if to < from {
        return Err(Fail::Invalid("negative length".into()));
    }
    Ok(Value::String(Arc::from(String::from_utf16_lossy(
        &units[from as usize..to as usize],
    ))))
}

/// A pattern with feel-scala's flags (`s`, `m`, `i`, `x`), compiled once per evaluation and
/// within a size bound.
fn pattern(e: &mut Eval<'_>, pattern: &str, flags: &str) -> Result<Regex, Fail> {
    let key = format!("{flags}\u{0}{pattern}");
    if let Some(r) = e.regexes.get(&key) {
        return Ok(r.clone());
    }
    e.charge(pattern.len() as u64)?;
    if e.regexes.len() >= 64 {
        return Err(Fail::Fatal(FeelError::Limit(
            "more than 64 distinct regular expressions".into(),
        )));
    }
    let regex = RegexBuilder::new(pattern)
        .dot_matches_new_line(flags.contains('s'))
        .multi_line(flags.contains('m'))
        .case_insensitive(flags.contains('i'))
        .ignore_whitespace(flags.contains('x'))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|_| Fail::Invalid(format!("invalid pattern '{pattern}'")))?;
    e.regexes.insert(key, regex.clone());
    Ok(regex)
}

fn flags_of(a: &[Value], at: usize) -> Result<&str, Fail> {
    match a.get(at) {
        None => Ok(""),
        Some(Value::String(f)) => Ok(f),
        Some(_) => bad(),
    }
}

fn matches(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let flags = flags_of(&a, 2)?;
    match &a[..2.min(a.len())] {
        [Value::String(input), Value::String(p)] => {
            let r = pattern(e, p, flags)?;
            e.charge(input.len() as u64 / 64)?;
            Ok(Value::Bool(r.is_match(input)))
        }
        _ => bad(),
    }
}

fn replace(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let flags = flags_of(&a, 3)?;
    match &a[..3.min(a.len())] {
        [Value::String(input), Value::String(p), Value::String(with)] => {
            let r = pattern(e, p, flags)?;
            e.charge(input.len() as u64 / 16)?;
            let limit = e.limits.max_value_weight as usize;
            let mut out = String::new();
            let mut last = 0;
            for caps in r.captures_iter(input) {
                let Some(m) = caps.get(0) else { continue };
                out.push_str(&input[last..m.start()]);
                expand_java(&caps, with, &mut out)?;
                last = m.end();
                if out.len() > limit {
                    return Err(Fail::Fatal(FeelError::Limit(format!(
                        "a string longer than {limit} bytes"
                    ))));
                }
            }
            out.push_str(&input[last..]);
            Ok(Value::String(Arc::from(out)))
        }
        _ => bad(),
    }
}

/// Java's replacement syntax: `$n` and `${name}` insert groups, `\x` is `x`.
fn expand_java(caps: &Captures<'_>, with: &str, out: &mut String) -> Result<(), Fail> {
    let mut chars = with.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, next)) => out.push(next),
                None => return Err(Fail::Invalid("trailing \\ in the replacement".into())),
            },
            '$' => {
                let rest = &with[i + 1..];
                if let Some(named) = rest.strip_prefix('{') {
                    let end = named
                        .find('}')
                        .ok_or_else(|| Fail::Invalid("unclosed ${ in the replacement".into()))?;
                    let group = caps
                        .name(&named[..end])
                        .ok_or_else(|| Fail::Invalid("no such group".into()))?;
                    out.push_str(group.as_str());
                    for _ in 0..end + 1 {
                        chars.next();
                    }
                    continue;
                }
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return Err(Fail::Invalid("illegal group reference".into()));
                }
                // Java takes the longest group number that exists.
                let mut take = 1;
                while take < digits
                    && rest[..take + 1]
                        .parse::<usize>()
                        .is_ok_and(|g| g < caps.len())
                {
                    take += 1;
                }
                let g: usize = rest[..take]
                    .parse()
                    .map_err(|_| Fail::Invalid("illegal group reference".into()))?;
                if g >= caps.len() {
                    return Err(Fail::Invalid(format!("no group {g}")));
                }
                out.push_str(caps.get(g).map_or("", |m| m.as_str()));
                for _ in 0..take {
                    chars.next();
                }
            }
            c => out.push(c),
        }
    }
    Ok(())
}

/// `split(string, delimiter)`: the delimiter is a pattern; trailing empty parts stay, a
/// zero-width match at the start adds no empty first part (Java's `split(s, -1)`).
fn split(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::String(s), Value::String(d)] => {
            let r = pattern(e, d, "")?;
            let mut parts = Vec::new();
            let mut last = 0;
            for m in r.find_iter(s) {
                if m.end() == 0 {
                    continue;
                }
                parts.push(Value::str(&s[last..m.start()]));
                last = m.end();
                e.charge(1)?;
            }
            parts.push(Value::str(&s[last..]));
            e.built(Value::list(parts)).map_err(Fail::Fatal)
        }
        _ => bad(),
    }
}

fn extract(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::String(s), Value::String(p)] => {
            let r = pattern(e, p, "")?;
            let found: Vec<Value> = r.find_iter(s).map(|m| Value::str(m.as_str())).collect();
            e.charge(found.len() as u64)?;
            Ok(Value::list(found))
        }
        _ => bad(),
    }
}

/// `string join(list[, delimiter[, prefix, suffix]])`: strings only, nulls skipped.
fn string_join(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    fn text(v: Option<&Value>) -> Result<&str, ()> {
        match v {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(()),
        }
    }
    let Some(Value::List(list)) = a.first() else {
        return bad();
    };
    let (Ok(delimiter), Ok(prefix), Ok(suffix)) = (text(a.get(1)), text(a.get(2)), text(a.get(3)))
    else {
        return bad();
    };
    if a.len() == 4
        && matches!(
            (&a[2], &a[3]),
            (Value::Null, Value::String(_)) | (Value::String(_), Value::Null)
        )
    {
        return bad();
    }
    e.charge(list.items.len() as u64)?;
    let mut out = String::from(prefix);
    let mut first = true;
    for item in &list.items {
        match item {
            Value::Null => {}
            Value::String(s) => {
                if !first {
                    out.push_str(delimiter);
                }
                out.push_str(s);
                first = false;
            }
            _ => return Err(Fail::Invalid("expected a list of strings".into())),
        }
    }
    out.push_str(suffix);
    Ok(Value::String(Arc::from(out)))
}
