//! Filters, `for`, `some` and `every`: everything that visits items, each within the
//! iteration bound before it starts.

use std::sync::Arc;

use crate::ast::{Expr, Iteration, Kind, Source};
use crate::eval::{Binding, Eval, Result};
use crate::number::Number;
use crate::value::{List, Value};

impl Eval<'_> {
    /// `list[filter]`: an index (1-based, negative from the end) or a condition on `item`.
    pub fn filter(&mut self, base: Value, filter: &Expr) -> Result<Value> {
        let Value::List(list) = base else {
            self.warn(|| format!("Can't filter '{}': not a list", base.to_feel_string()));
            return Ok(Value::Null);
        };
        let by_item = match &filter.kind {
            Kind::Const(Value::Number(n)) => return Ok(self.index(&list, n)),
            Kind::Neg(inner) => match &inner.kind {
                Kind::Const(Value::Number(n)) => return Ok(self.index(&list, &n.neg())),
                _ => false,
            },
            Kind::Compare(..) | Kind::Call { .. } => true,
            _ => false,
        };
        if !by_item {
            // As feel-scala: a filter that is a number without `item` is an index.
            let warnings = self.warnings.len();
            let outer = self.eval(filter)?;
            self.warnings.truncate(warnings);
            if let Value::Number(n) = outer {
                return Ok(self.index(&list, &n));
            }
        }
        self.iterations(list.items.len() as u64)?;
        let mut kept = Vec::new();
        for (i, item) in list.items.iter().enumerate() {
            let mut bindings = vec![Binding::One(Arc::from("item"), item.clone())];
            if let Value::Context(c) = item {
                bindings.push(Binding::Entries(c.clone()));
            }
            let verdict = self.with_bindings(bindings, |e| e.eval(filter))?;
            match verdict {
                Value::Bool(true) => kept.push(item.clone()),
                // The first item decides whether the filter is an index.
                Value::Number(n) if i == 0 => return Ok(self.index(&list, &n)),
                _ => {}
            }
        }
        self.built(Value::list(kept))
    }

    fn index(&mut self, list: &List, n: &Number) -> Value {
        let len = list.items.len() as i64;
        let i = n.to_i64().unwrap_or(i64::MAX);
        let at = if i > 0 { i - 1 } else { len + i };
        match usize::try_from(at).ok().and_then(|at| list.items.get(at)) {
            Some(v) => v.clone(),
            None => {
                self.warn(|| format!("Index {n} out of range of a list of {len}"));
                Value::Null
            }
        }
    }

    /// The lists an iteration runs over (ranges expanded), or `None` when one is not a list.
    fn sources(&mut self, iterations: &[Iteration]) -> Result<Option<Vec<Arc<List>>>> {
        let mut lists = Vec::with_capacity(iterations.len());
        let mut product: u64 = 1;
        for it in iterations {
            let list = match &it.source {
                Source::List(e) => match self.eval(e)? {
                    Value::List(l) => l,
                    other => {
                        self.warn(|| format!("Can't iterate over '{}'", other.to_feel_string()));
                        return Ok(None);
                    }
                },
                Source::Range(a, b) => match (self.eval(a)?, self.eval(b)?) {
                    (Value::Number(a), Value::Number(b)) => match self.range(&a, &b)? {
                        Value::List(l) => l,
                        _ => return Ok(None),
                    },
                    _ => {
                        self.warn(|| "A range needs two numbers".to_string());
                        return Ok(None);
                    }
                },
            };
            product = product.saturating_mul(list.items.len() as u64);
            self.iterations(product)?;
            lists.push(list);
        }
        Ok(Some(lists))
    }

    /// `a..b`: whole steps of one from `a` towards `b`, both included.
    fn range(&mut self, a: &Number, b: &Number) -> Result<Value> {
        let span = b.sub(a).map(|d| d.abs());
        let count = span
            .and_then(|d| d.to_i64())
            .map_or(u64::MAX, |d| d as u64 + 1);
        self.iterations(count)?;
        let step = Number::from(if b < a { -1 } else { 1 });
        let mut items = Vec::with_capacity(count as usize);
        let mut x = a.clone();
        for _ in 0..count {
            self.charge(1)?;
            let next = x.add(&step);
            items.push(Value::Number(x));
            match next {
                Some(n) => x = n,
                None => break,
            }
        }
        self.built(Value::list(items))
    }

    /// Visits the cartesian product of the lists, first list outermost, calling `f` with the
    /// bindings of each combination until it says stop.
    fn product(
        &mut self,
        iterations: &[Iteration],
        lists: &[Arc<List>],
        mut f: impl FnMut(&mut Self) -> Result<bool>,
    ) -> Result<()> {
        if lists.iter().any(|l| l.items.is_empty()) {
            return Ok(());
        }
        let mut at = vec![0usize; lists.len()];
        loop {
            let bindings: Vec<Binding> = iterations
                .iter()
                .zip(lists)
                .zip(&at)
                .map(|((it, l), &i)| Binding::One(it.name.clone(), l.items[i].clone()))
                .collect();
            if !self.with_bindings(bindings, &mut f)? {
                return Ok(());
            }
            // The last list turns fastest.
            let mut k = lists.len();
            loop {
                if k == 0 {
                    return Ok(());
                }
                k -= 1;
                at[k] += 1;
                if at[k] < lists[k].items.len() {
                    break;
                }
                at[k] = 0;
            }
        }
    }

    pub fn for_loop(&mut self, iterations: &[Iteration], body: &Expr) -> Result<Value> {
        let Some(lists) = self.sources(iterations)? else {
            return Ok(Value::Null);
        };
        // `partial`: the results so far, shared with the body and extended in place.
        let mut partial = Arc::new(List {
            items: Vec::new(),
            weight: 1,
            depth: 1,
        });
        let partial_name: Arc<str> = Arc::from("partial");
        self.product(iterations, &lists, |e| {
            let value = e.with_bindings(
                [Binding::One(
                    partial_name.clone(),
                    Value::List(partial.clone()),
                )],
                |e| e.eval(body),
            )?;
            let list = Arc::make_mut(&mut partial);
            list.weight = list.weight.saturating_add(value.weight());
            list.depth = list.depth.max(1 + value.depth());
            list.items.push(value);
            e.built(Value::List(partial.clone()))?;
            Ok(true)
        })?;
        Ok(Value::List(partial))
    }

    /// `some`: true once a condition is true, else null if one was not a boolean, else false;
    /// `every` the other way round.
    pub fn quantified(
        &mut self,
        every: bool,
        iterations: &[Iteration],
        condition: &Expr,
    ) -> Result<Value> {
        let Some(lists) = self.sources(iterations)? else {
            return Ok(Value::Null);
        };
        let decisive = !every;
        let mut result = Value::Bool(every);
        self.product(iterations, &lists, |e| {
            match e.eval(condition)? {
                Value::Bool(b) if b == decisive => {
                    result = Value::Bool(decisive);
                    return Ok(false);
                }
                Value::Bool(_) => {}
                _ => result = Value::Null,
            }
            Ok(true)
        })?;
        Ok(result)
    }
}
