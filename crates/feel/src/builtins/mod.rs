//! Built-in functions under feel-scala's names and parameter names, and how a call picks one
//! (by the number of positional arguments, or by the names of named ones).

pub mod boolean;
pub mod context;
pub mod conversion;
pub mod list;
pub mod numeric;
pub mod string;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;

use crate::FeelError;
use crate::ast::{Args, Expr};
use crate::eval::{Binding, Eval, Result};
use crate::value::Value;

/// Why a built-in gave no value: `Invalid` becomes null with a warning (feel-scala's rule for
/// a failing function); `Fatal` fails the evaluation.
pub enum Fail {
    Invalid(String),
    Fatal(FeelError),
}

impl From<FeelError> for Fail {
    fn from(e: FeelError) -> Fail {
        Fail::Fatal(e)
    }
}

pub type Outcome = std::result::Result<Value, Fail>;
pub type Body = fn(&mut Eval<'_>, Vec<Value>) -> Outcome;

pub struct Builtin {
    pub name: &'static str,
    pub params: &'static [&'static str],
    /// The last parameter collects the remaining positional arguments as a list (or takes a
    /// single list as it is).
    pub varargs: bool,
    pub body: Body,
}

pub type Overloads = Vec<&'static Builtin>;

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name, self.params.join(", "))
    }
}

pub const fn f(name: &'static str, params: &'static [&'static str], body: Body) -> Builtin {
    Builtin {
        name,
        params,
        varargs: false,
        body,
    }
}

pub const fn var(name: &'static str, params: &'static [&'static str], body: Body) -> Builtin {
    Builtin {
        name,
        params,
        varargs: true,
        body,
    }
}

/// The arguments did not fit any case of the function.
pub fn bad<T>() -> std::result::Result<T, Fail> {
    Err(Fail::Invalid("illegal arguments".into()))
}

fn table() -> &'static HashMap<&'static str, Overloads> {
    static TABLE: OnceLock<HashMap<&'static str, Overloads>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map: HashMap<&'static str, Overloads> = HashMap::new();
        for family in [
            string::FUNCTIONS,
            list::FUNCTIONS,
            boolean::FUNCTIONS,
            context::FUNCTIONS,
            conversion::FUNCTIONS,
            numeric::FUNCTIONS,
            crate::connector::FUNCTIONS,
        ] {
            for b in family {
                map.entry(b.name).or_default().push(b);
            }
        }
        map
    })
}

pub fn lookup(name: &str) -> Option<&'static Overloads> {
    table().get(name)
}

/// feel-scala built-ins (and Camunda runtime functions) this evaluator does not have: a call
/// to one is refused when parsing rather than quietly giving null.
pub fn known_unsupported(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "uuid",
        "to base64",
        "from base64",
        "random number",
        "day of year",
        "day of week",
        "month of year",
        "week of year",
        "last day of month",
        "put",
        "put all",
        "before",
        "after",
        "meets",
        "met by",
        "overlaps",
        "overlaps before",
        "overlaps after",
        "finishes",
        "finished by",
        "includes",
        "during",
        "starts",
        "started by",
        "coincides",
        "is",
        "range",
        "list replace",
        "backoff",
        "createDocument",
    ];
    NAMES.contains(&name)
}

impl Eval<'_> {
    pub fn call(
        &mut self,
        name: &Arc<str>,
        builtin: Option<&'static Overloads>,
        args: &Args,
        _at: u32,
    ) -> Result<Value> {
        // A function value bound to the name (a context entry or a parameter) comes first.
        let local = self.locals.iter().rev().find_map(|b| match b {
            Binding::One(n, Value::Function(f)) if n == name => Some(f.clone()),
            Binding::Entries(c) => match c.entries.get(&**name) {
                Some(Value::Function(f)) => Some(f.clone()),
                _ => None,
            },
            _ => None,
        });
        if let Some(lambda) = local {
            let values = match args {
                Args::Positional(list) if list.len() == lambda.params.len() => self.values(list)?,
                Args::Named(named) => {
                    let mut values = vec![Value::Null; lambda.params.len()];
                    for (n, e) in named {
                        let v = self.eval(e)?;
                        match lambda.params.iter().position(|p| p == n) {
                            Some(i) => values[i] = v,
                            None => return Ok(self.no_function(name)),
                        }
                    }
                    values
                }
                Args::Positional(_) => return Ok(self.no_function(name)),
            };
            return self.invoke(&Value::Function(lambda), values);
        }
        let Some(overloads) = builtin else {
            return Ok(self.no_function(name));
        };
        let (chosen, values) = match args {
            Args::Positional(list) => {
                let values = self.values(list)?;
                match pick_positional(overloads, values) {
                    Some(found) => found,
                    None => return Ok(self.no_function(name)),
                }
            }
            Args::Named(named) => {
                let Some(chosen) = overloads
                    .iter()
                    .copied()
                    .find(|b| named.iter().all(|(n, _)| b.params.contains(&&**n)))
                else {
                    return Ok(self.no_function(name));
                };
                let mut values = vec![Value::Null; chosen.params.len()];
                for (n, e) in named {
                    let v = self.eval(e)?;
                    if let Some(i) = chosen.params.iter().position(|p| *p == &**n) {
                        values[i] = v;
                    }
                }
                (chosen, values)
            }
        };
        self.charge(values.len() as u64)?;
        match (chosen.body)(self, values) {
            Ok(v) => self.built(v),
            Err(Fail::Invalid(why)) => {
                self.warn(|| format!("Failed to invoke function '{name}': {why}"));
                Ok(Value::Null)
            }
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    fn values(&mut self, list: &[Expr]) -> Result<Vec<Value>> {
        list.iter().map(|e| self.eval(e)).collect()
    }

    fn no_function(&mut self, name: &str) -> Value {
        self.warn(|| format!("No function found with name '{name}'"));
        Value::Null
    }

    /// Calls a function value (`sort`'s `precedes`, a context's function) with `args`.
    pub fn invoke(&mut self, f: &Value, args: Vec<Value>) -> Result<Value> {
        let Value::Function(lambda) = f else {
            return Ok(Value::Null);
        };
        if args.len() != lambda.params.len() {
            return Ok(Value::Null);
        }
        let mut bindings = lambda.captured.clone();
        bindings.extend(
            lambda
                .params
                .iter()
                .cloned()
                .zip(args)
                .map(|(n, v)| Binding::One(n, v)),
        );
        let saved = std::mem::replace(&mut self.locals, bindings);
        let result = self.eval(&lambda.body);
        self.locals = saved;
        result
    }
}

fn pick_positional(
    overloads: &Overloads,
    mut values: Vec<Value>,
) -> Option<(&'static Builtin, Vec<Value>)> {
    if let Some(b) = overloads
        .iter()
        .find(|b| !b.varargs && b.params.len() == values.len())
    {
        return Some((b, values));
    }
    let b = overloads.iter().find(|b| b.varargs)?;
    let fixed = b.params.len() - 1;
    if values.len() < fixed {
        return None;
    }
    let rest: Vec<Value> = values.split_off(fixed);
    let collected = match rest.as_slice() {
        [Value::List(_)] if fixed == 0 => rest.into_iter().next().unwrap_or(Value::Null),
        _ => Value::list(rest),
    };
    values.push(collected);
    Some((b, values))
}
