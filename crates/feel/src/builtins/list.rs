//! List built-ins (with `and`, `all`, `or`, `any`, which fold lists).

use std::cmp::Ordering;
use std::sync::Arc;

use super::{Builtin, Fail, Outcome, bad, f, var};
use crate::eval::Eval;
use crate::number::Number;
use crate::ops::int_value;
use crate::value::{List, Value};

pub static FUNCTIONS: &[Builtin] = &[
    f("list contains", &["list", "element"], |_, a| {
        match a.as_slice() {
            [Value::List(l), x] => Ok(Value::Bool(
                l.items.iter().any(|i| i.feel_eq(x) == Some(true)),
            )),
            _ => bad(),
        }
    }),
    f("count", &["list"], |_, a| match a.as_slice() {
        [Value::List(l)] => Ok(number(l.items.len() as i64)),
        _ => bad(),
    }),
    var("min", &["list"], |e, a| extreme(e, a, Ordering::Less)),
    var("max", &["list"], |e, a| extreme(e, a, Ordering::Greater)),
    var("sum", &["list"], |_, a| fold_numbers(a, |x, y| x.add(y))),
    var("product", &["list"], |_, a| {
        fold_numbers(a, |x, y| x.mul(y))
    }),
    var("mean", &["list"], |_, a| {
        let n = items(&a)?.len() as i64;
        match fold_numbers(a, |x, y| x.add(y))? {
            Value::Number(sum) => Ok(sum.div(&Number::from(n)).map_or(Value::Null, Value::Number)),
            other => Ok(other),
        }
    }),
    var("median", &["list"], median),
    var("stddev", &["list"], stddev),
    var("mode", &["list"], mode),
    var("and", &["list"], |_, a| logic(a, false)),
    var("all", &["list"], |_, a| logic(a, false)),
    var("or", &["list"], |_, a| logic(a, true)),
    var("any", &["list"], |_, a| logic(a, true)),
    f("sublist", &["list", "start position"], sublist),
    f("sublist", &["list", "start position", "length"], sublist),
    var("append", &["list", "items"], |_, a| match a.as_slice() {
        [Value::List(l), Value::List(more)] => Ok(Value::list(
            l.items.iter().chain(&more.items).cloned().collect(),
        )),
        _ => bad(),
    }),
    var("concatenate", &["lists"], |_, a| {
        Ok(Value::list(spread(items(&a)?)))
    }),
    f(
        "insert before",
        &["list", "position", "newItem"],
        |_, a| match a.as_slice() {
            [Value::List(l), Value::Number(p), x] => {
                let at = list_index(l, p)?;
                let mut out = take(l, at);
                out.push(x.clone());
                out.extend(drop(l, at));
                Ok(Value::list(out))
            }
            _ => bad(),
        },
    ),
    f("remove", &["list", "position"], |_, a| match a.as_slice() {
        [Value::List(l), Value::Number(p)] => {
            let at = list_index(l, p)?;
            let q = int_value(p) + 1;
            let next = if q > 0 {
                q - 1
            } else {
                l.items.len() as i64 + q
            };
            let mut out = take(l, at);
            out.extend(drop(l, next));
            Ok(Value::list(out))
        }
        _ => bad(),
    }),
    f("reverse", &["list"], |_, a| match a.as_slice() {
        [Value::List(l)] => Ok(Value::list(l.items.iter().rev().cloned().collect())),
        _ => bad(),
    }),
    f("index of", &["list", "match"], |_, a| match a.as_slice() {
        [Value::List(l), x] => Ok(Value::list(
            (1..)
                .zip(&l.items)
                .filter(|(_, i)| i.feel_eq(x) == Some(true))
                .map(|(n, _)| number(n))
                .collect(),
        )),
        _ => bad(),
    }),
    var("union", &["lists"], |e, a| {
        let all = spread(items(&a)?);
        distinct(e, all)
    }),
    f("distinct values", &["list"], |e, a| {
        let all = items(&a)?.to_vec();
        distinct(e, all)
    }),
    f("duplicate values", &["list"], |e, a| {
        let all = items(&a)?.to_vec();
        e.charge((all.len() as u64).saturating_mul(all.len() as u64))?;
        let Value::List(unique) = distinct(e, all.clone())? else {
            return bad();
        };
        Ok(Value::list(
            unique
                .items
                .iter()
                .filter(|x| all.iter().filter(|y| x.feel_eq(y) == Some(true)).count() > 1)
                .cloned()
                .collect(),
        ))
    }),
    f("flatten", &["list"], |e, a| {
        let mut out = Vec::new();
        flatten(e, items(&a)?, &mut out)?;
        Ok(Value::list(out))
    }),
    f("sort", &["list", "precedes"], sort),
    f("is empty", &["list"], |_, a| {
        Ok(Value::Bool(items(&a)?.is_empty()))
    }),
    f("partition", &["list", "size"], |_, a| match a.as_slice() {
        [Value::List(l), Value::Number(n)] if int_value(n) > 0 => Ok(Value::list(
            l.items
                .chunks(int_value(n) as usize)
                .map(|c| Value::list(c.to_vec()))
                .collect(),
        )),
        _ => bad(),
    }),
];

fn number(n: i64) -> Value {
    Value::Number(Number::from(n))
}

fn items(a: &[Value]) -> Result<&[Value], Fail> {
    match a.first() {
        Some(Value::List(l)) => Ok(&l.items),
        _ => bad(),
    }
}

/// Lists' items in order, other values as themselves (`concatenate`, `union`).
fn spread(values: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for v in values {
        match v {
            Value::List(l) => out.extend(l.items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out
}

fn extreme(e: &mut Eval<'_>, a: Vec<Value>, want: Ordering) -> Outcome {
    let list = items(&a)?;
    let Some(first) = list.first() else {
        return Ok(Value::Null);
    };
    e.charge(list.len() as u64)?;
    let mut best = first;
    for x in &list[1..] {
        if !x.same_kind(first) {
            return Err(Fail::Invalid("the items are not comparable".into()));
        }
        match x.feel_cmp(best) {
            Some(o) if o == want => best = x,
            Some(_) => {}
            None => return Err(Fail::Invalid("the items are not comparable".into())),
        }
    }
    if first.feel_cmp(first).is_none() {
        return Err(Fail::Invalid("the items are not comparable".into()));
    }
    Ok(best.clone())
}

fn numbers(list: &[Value]) -> Result<Vec<&Number>, Fail> {
    list.iter()
        .map(|v| match v {
            Value::Number(n) => Ok(n),
            other => Err(Fail::Invalid(format!(
                "expected number but found '{}'",
                other.to_feel_string()
            ))),
        })
        .collect()
}

fn fold_numbers(a: Vec<Value>, op: impl Fn(&Number, &Number) -> Option<Number>) -> Outcome {
    let list = numbers(items(&a)?)?;
    let Some((first, rest)) = list.split_first() else {
        return Ok(Value::Null);
    };
    let mut acc = (*first).clone();
    for n in rest {
        acc = op(&acc, n).ok_or_else(|| Fail::Invalid("number out of range".into()))?;
    }
    Ok(Value::Number(acc))
}

fn median(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let mut list: Vec<Number> = numbers(items(&a)?)?.into_iter().cloned().collect();
    if list.is_empty() {
        return Ok(Value::Null);
    }
    e.charge(list.len() as u64 * 8)?;
    list.sort();
    let mid = list.len() / 2;
    if list.len() % 2 == 1 {
        return Ok(Value::Number(list[mid].clone()));
    }
    let sum = list[mid - 1]
        .add(&list[mid])
        .ok_or_else(|| Fail::Invalid("out of range".into()))?;
    Ok(sum.div(&Number::from(2)).map_or(Value::Null, Value::Number))
}

/// The sample standard deviation, through a double as feel-scala.
fn stddev(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let list = numbers(items(&a)?)?;
    if list.is_empty() {
        return Ok(Value::Null);
    }
    e.charge(list.len() as u64 * 4)?;
    let out_of_range = || Fail::Invalid("out of range".into());
    let n = Number::from(list.len() as i64);
    let mut sum = Number::zero();
    for x in &list {
        sum = sum.add(x).ok_or_else(out_of_range)?;
    }
    let mean = sum.div(&n).ok_or_else(out_of_range)?;
    let mut squares = Number::zero();
    for x in &list {
        let d = x.sub(&mean).ok_or_else(out_of_range)?;
        squares = squares
            .add(&d.mul(&d).ok_or_else(out_of_range)?)
            .ok_or_else(out_of_range)?;
    }
    let variance = squares
        .div(&Number::from(list.len() as i64 - 1))
        .ok_or_else(out_of_range)?;
    Ok(Number::from_f64(variance.to_f64().sqrt()).map_or(Value::Null, Value::Number))
}

/// The most frequent numbers, ascending.
fn mode(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let mut list: Vec<Number> = numbers(items(&a)?)?.into_iter().cloned().collect();
    e.charge(list.len() as u64 * 8)?;
    list.sort();
    let mut runs: Vec<(Number, usize)> = Vec::new();
    for x in list {
        match runs.last_mut() {
            Some((y, count)) if *y == x => *count += 1,
            _ => runs.push((x, 1)),
        }
    }
    let most = runs.iter().map(|(_, c)| *c).max().unwrap_or(0);
    Ok(Value::list(
        runs.into_iter()
            .filter(|(_, c)| *c == most)
            .map(|(x, _)| Value::Number(x))
            .collect(),
    ))
}

/// `and`/`all` (`any` false) and `or`/`any`: feel-scala's fold over the items.
fn logic(a: Vec<Value>, any: bool) -> Outcome {
    let mut acc = Value::Bool(!any);
    for item in items(&a)? {
        acc = match (&acc, item) {
            (Value::Bool(b), _) if *b == any => acc,
            (Value::Bool(_), Value::Bool(_)) => item.clone(),
            (Value::Null, Value::Bool(b)) if *b == any => item.clone(),
            _ => Value::Null,
        };
    }
    Ok(acc)
}

/// feel-scala's `listIndex`: a 1-based (negative from the end) position as a 0-based index,
/// which may lie outside the list; 0 is refused.
fn list_index(l: &List, p: &Number) -> Result<i64, Fail> {
    let p = int_value(p);
    match p {
        0 => Err(Fail::Invalid("position must be a non-zero number".into())),
        p if p > 0 => Ok(p - 1),
        p => Ok(l.items.len() as i64 + p),
    }
}

/// Scala's `take` and `drop`, which clamp.
fn take(l: &List, n: i64) -> Vec<Value> {
    l.items[..n.clamp(0, l.items.len() as i64) as usize].to_vec()
}

fn drop(l: &List, n: i64) -> Vec<Value> {
    l.items[n.clamp(0, l.items.len() as i64) as usize..].to_vec()
}

fn sublist(_: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let (l, start, len) = match a.as_slice() {
        [Value::List(l), Value::Number(s)] => (l, s, None),
        [Value::List(l), Value::Number(s), Value::Number(n)] => (l, s, Some(int_value(n))),
        _ => return bad(),
    };
    let n = l.items.len() as i64;
    let s = int_value(start);
    if s == 0 {
        return Err(Fail::Invalid(
            "start position must be a non-zero number".into(),
        ));
    }
    let from = if s > 0 { s - 1 } else { n + s };
    let to = len.map_or(n, |len| from + len);
    // Scala's `slice` clamps both ends.
    let (from, to) = (from.clamp(0, n) as usize, to.clamp(0, n) as usize);
    Ok(Value::list(if from < to {
        l.items[from..to].to_vec()
    } else {
        Vec::new()
    }))
}

fn distinct(e: &mut Eval<'_>, all: Vec<Value>) -> Outcome {
    e.charge((all.len() as u64).saturating_mul(all.len() as u64) / 4)?;
    let mut out: Vec<Value> = Vec::new();
    for x in all {
        if !out.iter().any(|y| x.feel_eq(y) == Some(true)) {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

fn flatten(e: &mut Eval<'_>, list: &[Value], out: &mut Vec<Value>) -> Result<(), Fail> {
    e.charge(list.len() as u64)?;
    for v in list {
        match v {
            Value::List(l) => flatten(e, &l.items, out)?,
            other => out.push(other.clone()),
        }
    }
    Ok(())
}

/// `sort(list, precedes)`: `precedes(a, b)` says whether `a` comes first; a result that is not
/// a boolean makes the call fail (null).
fn sort(e: &mut Eval<'_>, a: Vec<Value>) -> Outcome {
    let [Value::List(l), f @ Value::Function(lambda)] = a.as_slice() else {
        return bad();
    };
    if lambda.params.len() != 2 {
        return Err(Fail::Invalid(
            "expected a function with 2 parameters".into(),
        ));
    }
    let mut out = l.items.clone();
    let mut failure: Option<Fail> = None;
    // A merge sort that asks `precedes` as Scala's `sortWith` does (stable).
    let mut scratch = out.clone();
    let n = out.len();
    let mut width = 1;
    while width < n && failure.is_none() {
        let mut i = 0;
        while i < n {
            let (mid, end) = ((i + width).min(n), (i + 2 * width).min(n));
            let (mut x, mut y, mut k) = (i, mid, i);
            while x < mid && y < end {
                let before = match e.invoke(f, vec![out[y].clone(), out[x].clone()]) {
                    Ok(Value::Bool(b)) => b,
                    Ok(_) => {
                        failure.get_or_insert(Fail::Invalid("precedes gave no boolean".into()));
                        false
                    }
                    Err(err) => {
                        failure.get_or_insert(Fail::Fatal(err));
                        false
                    }
                };
                if before {
                    scratch[k] = out[y].clone();
                    y += 1;
                } else {
                    scratch[k] = out[x].clone();
                    x += 1;
                }
                k += 1;
            }
            scratch[k..k + mid - x].clone_from_slice(&out[x..mid]);
            k += mid - x;
            scratch[k..k + end - y].clone_from_slice(&out[y..end]);
            i += 2 * width;
        }
        std::mem::swap(&mut out, &mut scratch);
        width *= 2;
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(Value::List(Arc::new(List {
            weight: l.weight,
            depth: l.depth,
            items: out,
        }))),
    }
}
