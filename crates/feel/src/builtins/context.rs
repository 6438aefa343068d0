//! Context built-ins.

use std::sync::Arc;

use super::{Builtin, Fail, Outcome, bad, f, var};
use crate::eval::Eval;
use crate::value::{Context, Entries, Value};

pub static FUNCTIONS: &[Builtin] = &[
    f("get value", &["context", "key"], get_value),
    f("get value", &["m", "key"], get_value),
    f("get value", &["context", "keys"], get_value),
    f("get entries", &["context"], get_entries),
    f("get entries", &["m"], get_entries),
    f("context put", &["context", "key", "value"], context_put),
    f("context put", &["context", "keys", "value"], context_put),
    var("context merge", &["contexts"], |_, a| {
        let Some(Value::List(list)) = a.first() else {
            return Ok(Value::Null);
        };
        let mut out = Entries::default();
        for c in &list.items {
            let Value::Context(c) = c else {
                return Ok(Value::Null);
            };
            for (k, v) in &c.entries {
                out.insert(k.clone(), v.clone());
            }
        }
        Ok(Value::context(out))
    }),
    f("context", &["entries"], |_, a| {
        let Some(Value::List(list)) = a.first() else {
            return Ok(Value::Null);
        };
        let mut out = Entries::default();
        for entry in &list.items {
            let Value::Context(c) = entry else {
                return Ok(Value::Null);
            };
            match (c.entries.get("key"), c.entries.get("value")) {
                (Some(Value::String(k)), Some(v)) => {
                    out.insert(Arc::from(&**k), v.clone());
                }
                _ => return Ok(Value::Null),
            }
        }
        Ok(Value::context(out))
    }),
];

fn get_value(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::Context(c), Value::String(key)] => {
            Ok(c.entries.get(&**key).cloned().unwrap_or(Value::Null))
        }
        [Value::Context(c), Value::List(keys)] => {
            let mut current: &Context = c;
            let mut found = Value::Null;
            for (i, key) in keys.items.iter().enumerate() {
                let Value::String(key) = key else {
                    return Ok(Value::Null);
                };
                match current.entries.get(&**key) {
                    None => return Ok(Value::Null),
                    Some(v) if i + 1 == keys.items.len() => found = v.clone(),
                    Some(Value::Context(next)) => current = next,
                    Some(_) => return Ok(Value::Null),
                }
            }
            Ok(found)
        }
        _ => bad(),
    }
}

fn get_entries(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::Context(c)] => Ok(Value::list(
            c.entries
                .iter()
                .map(|(k, v)| {
                    let mut entry = Entries::with_capacity_and_hasher(2, Default::default());
                    entry.insert(Arc::from("key"), Value::String(k.clone()));
                    entry.insert(Arc::from("value"), v.clone());
                    Value::context(entry)
                })
                .collect(),
        )),
        _ => bad(),
    }
}

fn context_put(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    match a.as_slice() {
        [Value::Context(c), Value::String(key), value] => Ok(put(c, key, value.clone())),
        [Value::Context(c), Value::List(keys), value] => {
            let mut names = Vec::with_capacity(keys.items.len());
            for k in &keys.items {
                let Value::String(k) = k else { return bad() };
                names.push(k.clone());
            }
            if names.is_empty() {
                return Ok(Value::Null);
            }
            Ok(put_path(c, &names, value.clone()))
        }
        _ => Err(Fail::Invalid("illegal arguments".into())),
    }
}

fn put(c: &Context, key: &str, value: Value) -> Value {
    let mut entries = c.entries.clone();
    entries.insert(Arc::from(key), value);
    Value::context(entries)
}

/// `context put(c, ["a", "b"], v)`: nested contexts made or replaced along the path.
fn put_path(c: &Context, keys: &[Arc<str>], value: Value) -> Value {
    match keys {
        [] => Value::Context(Arc::new(c.clone())),
        [key] => put(c, key, value),
        [key, rest @ ..] => {
            let inner = match c.entries.get(&**key) {
                Some(Value::Context(inner)) => put_path(inner, rest, value),
                _ => put_path(&Context::default(), rest, value),
            };
            put(c, key, inner)
        }
    }
}
