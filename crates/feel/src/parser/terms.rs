//! The value level of the grammar: literals, names, paths and filters, lists, contexts,
//! calls and function definitions.

use std::sync::Arc;

use super::{Parsed, Parser, RESERVED_NAMES, boxed};
use crate::FeelError;
use crate::ast::{Args, Expr, Kind};
use crate::builtins;
use crate::number::Number;
use crate::value::Value;

impl<'s> Parser<'s> {
    /// A terminal followed by paths (`.name`) and filters (`[...]`).
    pub(super) fn value(&mut self) -> Parsed {
        let mut base = self.terminal()?;
        loop {
            self.cur.skip()?;
            let at = self.cur.pos;
            if self.cur.rest().starts_with('.') && !self.cur.rest().starts_with("..") {
                self.cur.pos += 1;
                self.cur.skip()?;
                let key = if self.cur.eat_word("time offset")? {
                    "time offset".to_string()
                } else {
                    self.cur
                        .name()?
                        .ok_or_else(|| self.cur.syntax(self.cur.pos, "expected a name after `.`"))?
                };
                self.cur.skip()?;
                if self.cur.rest().starts_with('(') {
                    return Err(self
                        .cur
                        .unsupported(at, "calling a function of a context (`a.f()`)"));
                }
                base = self.checked(self.node(Kind::Path(boxed(base), Arc::from(key)), at))?;
            } else if self.cur.rest().starts_with('[') {
                // Not a filter when no `expression]` follows: the `[` may close an interval
                // (`x in ]1..5[`), as feel-scala's parser backtracks.
                let depth = self.depth;
                self.cur.pos += 1;
                let filter = match self.expression() {
                    Ok(f) if self.cur.eat("]")? => f,
                    Err(e) if !matches!(e, FeelError::Syntax { .. }) => return Err(e),
                    _ => {
                        self.cur.pos = at;
                        self.depth = depth;
                        return Ok(base);
                    }
                };
                base = self.checked(self.node(Kind::Filter(boxed(base), boxed(filter)), at))?;
            } else {
                return Ok(base);
            }
        }
    }

    fn terminal(&mut self) -> Parsed {
        self.tick()?;
        self.cur.skip()?;
        let at = self.cur.pos;
        let rest = self.cur.rest();
        let e = if rest.starts_with("@\"") {
            self.cur.pos += 1;
            let text = self.cur.string()?;
            self.node(
                Kind::Const(builtins::conversion::temporal_literal(&text)),
                at,
            )
        } else if rest.starts_with('"') {
            let text = self.cur.string()?;
            self.node(Kind::Const(Value::str(&text)), at)
        } else if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            let text = self
                .cur
                .number()
                .ok_or_else(|| self.cur.syntax(at, "expected a value"))?;
            let n = Number::parse(text).ok_or_else(|| self.cur.syntax(at, "invalid number"))?;
            self.node(Kind::Const(Value::Number(n)), at)
        } else if rest.starts_with('(') {
            self.cur.pos += 1;
            let e = self.expression()?;
            self.cur.expect(")")?;
            e
        } else if rest.starts_with('[') {
            self.cur.pos += 1;
            let items = self.separated("]", Parser::expression)?;
            self.node(Kind::List(items), at)
        } else if rest.starts_with('{') {
            self.cur.pos += 1;
            let entries = self.separated("}", Parser::context_entry)?;
            self.node(Kind::Context(entries), at)
        } else if rest.starts_with('?') {
            return Err(self.cur.unsupported(at, "`?` (decision tables only)"));
        } else if self.cur.eat_word("null")? {
            self.node(Kind::Const(Value::Null), at)
        } else if self.cur.eat_word("true")? {
            self.node(Kind::Const(Value::Bool(true)), at)
        } else if self.cur.eat_word("false")? {
            self.node(Kind::Const(Value::Bool(false)), at)
        } else if self.cur.eat_word("function")? {
            self.lambda(at)?
        } else if let Some(name) = self.call_name()? {
            self.call(name, at)?
        } else if let Some(name) = self.cur.name()? {
            self.node(Kind::Name(Arc::from(name)), at)
        } else {
            return Err(self.cur.syntax(at, "expected a value"));
        };
        Ok(e)
    }

    fn call_name(&mut self) -> Result<Option<String>, FeelError> {
        for name in RESERVED_NAMES.iter().chain(&["and", "or"]) {
            let save = self.cur.pos;
            if self.cur.eat_word(name)? && self.cur.rest().trim_start().starts_with('(') {
                return Ok(Some(name.to_string()));
            }
            self.cur.pos = save;
        }
        if self.cur.rest().starts_with('`') {
            let save = self.cur.pos;
            if let Some(name) = self.cur.name()? {
                self.cur.skip()?;
                if self.cur.rest().starts_with('(') {
                    return Ok(Some(name));
                }
            }
            self.cur.pos = save;
            return Ok(None);
        }
        self.cur.spaced_name('(')
    }

    fn call(&mut self, name: String, at: usize) -> Parsed {
        let builtin = builtins::lookup(&name);
        if builtin.is_none() && builtins::known_unsupported(&name) {
            return Err(self.cur.unsupported(at, format!("the function `{name}`")));
        }
        self.cur.expect("(")?;
        let args = if self.named_args_ahead()? {
            Args::Named(self.separated(")", |p| {
                let name = p.param_name()?;
                p.cur.expect(":")?;
                Ok((Arc::from(name), p.argument()?))
            })?)
        } else {
            Args::Positional(self.separated(")", Parser::argument)?)
        };
        Ok(self.node(
            Kind::Call {
                name: Arc::from(name),
                builtin,
                args,
            },
            at,
        ))
    }

    fn argument(&mut self) -> Parsed {
        self.cur.skip()?;
        let save = self.cur.pos;
        if self.cur.rest().starts_with(['[', '(', ']']) && self.try_interval()?.is_some() {
            return Err(self
                .cur
                .unsupported(save, "ranges as values (range functions)"));
        }
        self.cur.pos = save;
        self.expression()
    }

    fn named_args_ahead(&mut self) -> Result<bool, FeelError> {
        let save = self.cur.pos;
        let named = self.param_name().is_ok() && self.cur.eat(":")?;
        self.cur.pos = save;
        Ok(named)
    }

    pub(super) fn param_name(&mut self) -> Result<String, FeelError> {
        self.cur.skip()?;
        let at = self.cur.pos;
        if let Some(name) = self.cur.spaced_name(':')? {
            return Ok(name);
        }
        self.cur
            .name()?
            .ok_or_else(|| self.cur.syntax(at, "expected a parameter name"))
    }

    fn context_entry(&mut self) -> Result<(Arc<str>, Expr), FeelError> {
        self.cur.skip()?;
        let at = self.cur.pos;
        let key = if self.cur.rest().starts_with('"') {
            self.cur.string()?
        } else if self.cur.rest().starts_with('`') {
            self.cur
                .name()?
                .ok_or_else(|| self.cur.syntax(at, "expected a key"))?
        } else {
            self.cur
                .loose_key()
                .ok_or_else(|| self.cur.syntax(at, "expected a key and `:`"))?
        };
        self.cur.expect(":")?;
        Ok((Arc::from(key), self.expression()?))
    }

    fn lambda(&mut self, at: usize) -> Parsed {
        self.cur.expect("(")?;
        let params = self.separated(")", |p| p.param_name())?;
        if self.cur.eat_word("external")? {
            return Err(self.cur.unsupported(at, "external functions"));
        }
        let body = self.expression()?;
        Ok(self.node(
            Kind::Lambda(params.into_iter().map(Arc::from).collect(), Arc::new(body)),
            at,
        ))
    }

    /// Items separated by `,` up to `close` (consumed); the opening symbol is already read.
    pub(super) fn separated<T>(
        &mut self,
        close: &str,
        mut item: impl FnMut(&mut Parser<'s>) -> Result<T, FeelError>,
    ) -> Result<Vec<T>, FeelError> {
        let mut out = Vec::new();
        if self.cur.eat(close)? {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.cur.eat(close)? {
                return Ok(out);
            }
            self.cur.expect(",")?;
        }
    }
}
