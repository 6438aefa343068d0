//! The evaluator: walks the parsed expression against the scope within the bounds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value as Json;

use crate::ast::{Arith, Cmp, Expr, Kind, Test};
use crate::ops;
use crate::value::{Context, Entries, Value};
use crate::{Evaluation, FeelError, Limits};

/// One name binding: a variable, or a context whose entries are all in scope (a filter's item).
#[derive(Clone, Debug)]
pub enum Binding {
    One(Arc<str>, Value),
    Entries(Arc<Context>),
}

pub struct Eval<'a> {
    /// Variables by name, looked up first.
    variables: &'a [(&'a str, Json)],
    /// Then the entries of these objects: a name is looked up in the first that has it.
    layers: &'a [&'a Json],
    /// Scope variables already converted, by name: an expression names a few, so a list
    /// searched in order costs less than a hash map's setup and hashing.
    converted: Vec<(&'a str, Value)>,
    pub locals: Vec<Binding>,
    pub limits: &'a Limits,
    steps: u64,
    started: Instant,
    pub warnings: Vec<String>,
    pub regexes: HashMap<String, regex::Regex>,
}

pub type Result<T> = std::result::Result<T, FeelError>;

/// The nodes of a chain of names and keys below its last key.
fn path_length(e: &Expr) -> u64 {
    match &e.kind {
        Kind::Path(base, _) => 2 + path_length(base),
        _ => 1,
    }
}

/// Warnings kept per evaluation; beyond, they are counted, not stored.
const MAX_WARNINGS: usize = 100;

/// Evaluates `root` with `variables`, then the entries of `layers` (objects only; the first
/// that has a name gives its value).
pub fn evaluate<'a>(
    root: &Expr,
    variables: &'a [(&'a str, Json)],
    layers: &'a [&'a Json],
    limits: &'a Limits,
) -> Result<Evaluation> {
    let mut e = Eval {
        variables,
        layers,
        converted: Vec::new(),
        locals: Vec::new(),
        limits,
        steps: 0,
        started: Instant::now(),
        warnings: Vec::new(),
        regexes: HashMap::new(),
    };
    let value = e.eval(root)?;
    Ok(Evaluation {
        value,
        warnings: e.warnings,
    })
}

impl<'a> Eval<'a> {
    pub fn warn(&mut self, message: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message());
        }
    }

    /// Counts `n` steps of work against the step and time budgets.
    pub fn charge(&mut self, n: u64) -> Result<()> {
        let before = self.steps;
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.limits.max_steps {
            return Err(FeelError::Limit(format!(
                "more than {} evaluation steps",
                self.limits.max_steps
            )));
        }
        if before >> 10 != self.steps >> 10 && self.started.elapsed() > self.limits.max_time {
            return Err(FeelError::Limit(format!(
                "evaluation took longer than {} ms",
                self.limits.max_time.as_millis()
            )));
        }
        Ok(())
    }

    /// A value the evaluation built, checked against the size bounds.
    pub fn built(&self, v: Value) -> Result<Value> {
        if v.weight() > self.limits.max_value_weight {
            return Err(FeelError::Limit(format!(
                "a value larger than {} nodes and bytes",
                self.limits.max_value_weight
            )));
        }
        if v.depth() > self.limits.max_value_depth {
            return Err(FeelError::Limit(format!(
                "lists or contexts nested deeper than {}",
                self.limits.max_value_depth
            )));
        }
        Ok(v)
    }

    pub fn iterations(&self, n: u64) -> Result<()> {
        if n > self.limits.max_iterations {
            return Err(FeelError::Limit(format!(
                "more than {} iterations",
                self.limits.max_iterations
            )));
        }
        Ok(())
    }

    fn lookup(&mut self, name: &str) -> Option<Value> {
        for binding in self.locals.iter().rev() {
            match binding {
                Binding::One(n, v) if &**n == name => return Some(v.clone()),
                Binding::Entries(c) => {
                    if let Some(v) = c.entries.get(name) {
                        return Some(v.clone());
                    }
                }
                Binding::One(..) => {}
            }
        }
        if let Some((_, v)) = self.converted.iter().find(|(n, _)| *n == name) {
            return Some(v.clone());
        }
        let (key, json) = self.scope_entry(name)?;
        let value = Value::from_json(json);
        self.converted.push((key, value.clone()));
        Some(value)
    }

    /// A variable of the scope (not a local binding), with the scope's own copy of its name.
    fn scope_entry(&self, name: &str) -> Option<(&'a str, &'a Json)> {
        if let Some((n, json)) = self.variables.iter().find(|(n, _)| *n == name) {
            let (n, json): (&'a str, &'a Json) = (n, json);
            return Some((n, json));
        }
        let layers = self.layers.iter().filter_map(|layer| layer.as_object());
        layers
            .filter_map(|entries| entries.get_key_value(name))
            .map(|(key, json)| (key.as_str(), json))
            .next()
    }

    /// Whether a local binding (a parameter, an iteration variable, a filter's item) hides
    /// the scope variable `name`.
    fn bound_locally(&self, name: &str) -> bool {
        self.locals.iter().any(|binding| match binding {
            Binding::One(n, _) => &**n == name,
            Binding::Entries(c) => c.entries.contains_key(name),
        })
    }

    /// The scope JSON a chain of names and keys (`response.message.subject`) reaches through
    /// objects alone, and how deep it sits. Such a path reads only its leaf: converting the whole
    /// variable first (a read message's body and attachments) would cost time and memory
    /// out of proportion to the field picked.
    fn scope_json(&self, e: &Expr) -> Option<(&'a Json, usize)> {
        match &e.kind {
            Kind::Name(name) => {
                if self.bound_locally(name) {
                    return None;
                }
                self.scope_entry(name).map(|(_, json)| (json, 0))
            }
            Kind::Path(base, key) => {
                let (json, depth) = self.scope_json(base)?;
                Some((json.as_object()?.get(&**key)?, depth + 1))
            }
            _ => None,
        }
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Value> {
        crate::deep(|| self.eval_here(e))
    }

    fn eval_here(&mut self, e: &Expr) -> Result<Value> {
        self.charge(1)?;
        Ok(match &e.kind {
            Kind::Const(v) => v.clone(),
            Kind::Name(name) => match self.lookup(name) {
                Some(v) => v,
                None => {
                    self.warn(|| format!("No variable found with name '{name}'"));
                    Value::Null
                }
            },
            Kind::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                self.built(Value::list(out))?
            }
            Kind::Context(entries) => self.context(entries)?,
            Kind::Path(base, key) => match self.scope_json(e) {
                Some((json, depth)) => {
                    // The steps the names and keys on the way would have taken.
                    self.charge(path_length(base) + 1)?;
                    Value::from_json_at(json, depth)
                }
                None => {
                    let base = self.eval(base)?;
                    self.path(&base, key)?
                }
            },
            Kind::Filter(base, filter) => {
                let base = self.eval(base)?;
                self.filter(base, filter)?
            }
            Kind::Neg(x) => match self.eval(x)? {
                Value::Number(n) => Value::Number(n.neg()),
                other => {
                    self.warn(|| format!("Can't negate '{}'", other.to_feel_string()));
                    Value::Null
                }
            },
            Kind::Arith(op, x, y) => {
                let (x, y) = (self.eval(x)?, self.eval(y)?);
                match ops::arith(*op, &x, &y) {
                    Some(v) => self.built(v)?,
                    None => {
                        self.warn(|| arith_warning(*op, &x, &y));
                        Value::Null
                    }
                }
            }
            Kind::Compare(op, x, y) => {
                let (x, y) = (self.eval(x)?, self.eval(y)?);
                self.compare(*op, &x, &y)
            }
            Kind::Between(x, low, high) => {
                let x = self.eval(x)?;
                let low = self.eval(low)?;
                let ge = self.compare(Cmp::Ge, &x, &low);
                if matches!(ge, Value::Bool(false)) {
                    return Ok(ge);
                }
                let high = self.eval(high)?;
                let le = self.compare(Cmp::Le, &x, &high);
                match (ge, le) {
                    (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Kind::InstanceOf(x, name) => {
                let x = self.eval(x)?;
                Value::Bool(instance_of(&x, name))
            }
            Kind::In(x, tests) => {
                let x = self.eval(x)?;
                self.in_tests(&x, tests)?
            }
            Kind::And(x, y) => self.logic(x, y, false)?,
            Kind::Or(x, y) => self.logic(x, y, true)?,
            Kind::If(c, t, f) => {
                if matches!(self.eval(c)?, Value::Bool(true)) {
                    self.eval(t)?
                } else {
                    self.eval(f)?
                }
            }
            Kind::For(iterations, body) => self.for_loop(iterations, body)?,
            Kind::Quantified {
                every,
                iterations,
                condition,
            } => self.quantified(*every, iterations, condition)?,
            Kind::Call {
                name,
                builtin,
                args,
            } => self.call(name, *builtin, args, e.at)?,
            Kind::Lambda(params, body) => Value::Function(Arc::new(crate::value::Lambda {
                params: params.clone(),
                body: body.clone(),
                captured: self.locals.clone(),
            })),
        })
    }

    fn context(&mut self, entries: &[(Arc<str>, Expr)]) -> Result<Value> {
        let mark = self.locals.len();
        let mut out = Entries::with_capacity_and_hasher(entries.len(), Default::default());
        for (index, (key, expr)) in entries.iter().enumerate() {
            let value = self.eval(expr);
            let value = match value {
                Ok(v) => v,
                Err(e) => {
                    self.locals.truncate(mark);
                    return Err(e);
                }
            };
            // Later entries see the earlier ones; after the last, none is left to look.
            if index + 1 < entries.len() {
                self.locals.push(Binding::One(key.clone(), value.clone()));
            }
            out.insert(key.clone(), value);
        }
        self.locals.truncate(mark);
        self.built(Value::context(out))
    }

    pub fn compare(&mut self, op: Cmp, x: &Value, y: &Value) -> Value {
        let result = match op {
            Cmp::Eq => x.feel_eq(y),
            Cmp::Ne => x.feel_eq(y).map(|b| !b),
            _ => ops::order(op, x, y),
        };
        match result {
            Some(b) => Value::Bool(b),
            None => {
                self.warn(|| {
                    format!(
                        "Can't compare '{}' with '{}'",
                        x.to_feel_string(),
                        y.to_feel_string()
                    )
                });
                Value::Null
            }
        }
    }

    /// Three-valued `and` (`or` with `any`), short-circuit as feel-scala.
    fn logic(&mut self, x: &Expr, y: &Expr, any: bool) -> Result<Value> {
        let decisive = Value::Bool(any);
        match self.eval(x)? {
            Value::Bool(b) if b == any => Ok(decisive),
            Value::Bool(_) => Ok(match self.eval(y)? {
                Value::Bool(b) => Value::Bool(b),
                _ => Value::Null,
            }),
            _ => Ok(match self.eval(y)? {
                Value::Bool(b) if b == any => decisive,
                _ => Value::Null,
            }),
        }
    }

    pub fn path(&mut self, base: &Value, key: &str) -> Result<Value> {
        self.charge(1)?;
        Ok(match base {
            Value::Context(c) => match c.entries.get(key) {
                Some(v) => v.clone(),
                None => {
                    self.warn(|| format!("No context entry found with key '{key}'"));
                    Value::Null
                }
            },
            Value::List(l) => {
                self.charge(l.items.len() as u64)?;
                let mut out = Vec::with_capacity(l.items.len());
                for item in &l.items {
                    out.push(self.path(item, key)?);
                }
                self.built(Value::list(out))?
            }
            Value::Null => {
                self.warn(|| {
                    format!("No context entry found with key '{key}'. The context is null")
                });
                Value::Null
            }
            other => match other.property(key) {
                Some(v) => v,
                None => {
                    self.warn(|| {
                        format!(
                            "No property found with name '{key}' of value '{}'",
                            other.to_feel_string()
                        )
                    });
                    Value::Null
                }
            },
        })
    }

    fn in_tests(&mut self, x: &Value, tests: &[Test]) -> Result<Value> {
        // Several tests: true if one holds, else null if one was null, else false.
        let mut saw_null = false;
        for test in tests {
            let result = match test {
                Test::Compare(op, e) => {
                    let y = self.eval(e)?;
                    ops::order(*op, x, &y)
                }
                Test::Interval {
                    start_open,
                    start,
                    end,
                    end_open,
                } => {
                    let (s, e) = (self.eval(start)?, self.eval(end)?);
                    ops::in_interval(x, &s, *start_open, &e, *end_open)
                }
                Test::Expr(e) => {
                    let y = self.eval(e)?;
                    ops::in_value(x, &y)
                }
            };
            match result {
                Some(true) => return Ok(Value::Bool(true)),
                Some(false) => {}
                None => {
                    self.warn(|| format!("Can't test '{}' with `in`", x.to_feel_string()));
                    saw_null = true;
                }
            }
        }
        Ok(if saw_null {
            Value::Null
        } else {
            Value::Bool(false)
        })
    }

    pub fn with_bindings<T>(
        &mut self,
        bindings: impl IntoIterator<Item = Binding>,
        f: impl FnOnce(&mut Eval<'a>) -> Result<T>,
    ) -> Result<T> {
        let mark = self.locals.len();
        self.locals.extend(bindings);
        let result = f(self);
        self.locals.truncate(mark);
        result
    }
}

fn arith_warning(op: Arith, x: &Value, y: &Value) -> String {
    let verb = match op {
        Arith::Add => "add",
        Arith::Sub => "subtract",
        Arith::Mul => "multiply",
        Arith::Div => "divide",
        Arith::Pow => "raise",
    };
    format!(
        "Can't {verb} '{}' and '{}'",
        x.to_feel_string(),
        y.to_feel_string()
    )
}

fn instance_of(x: &Value, name: &str) -> bool {
    let actual = x.type_name();
    match name {
        "Any" => !matches!(x, Value::Null),
        "date time" => actual == "date and time",
        "year-month-duration" => actual == "years and months duration",
        "day-time-duration" => actual == "days and time duration",
        other => other == actual,
    }
}
