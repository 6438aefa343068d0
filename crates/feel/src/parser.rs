//! FEEL's grammar as feel-scala parses it (operator levels, what may follow what), for the
//! supported subset: anything else is refused here, with its position, so nothing outside the
//! subset is ever evaluated half-way.

use std::rc::Rc;

use crate::FeelError;
use crate::ast::{Args, Arith, Cmp, Expr, Iteration, Kind, Source, Test};
use crate::builtins;
use crate::lexer::Cursor;
use crate::number::Number;
use crate::value::Value;

/// Built-in names that contain a reserved word, which the general name rule would split.
const RESERVED_NAMES: &[&str] = &["date and time", "years and months duration", "get or else"];

pub struct Parser<'s> {
    cur: Cursor<'s>,
    depth: usize,
    max_depth: usize,
    work: usize,
}

type Parsed = Result<Expr, FeelError>;

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl<'s> Parser<'s> {
    pub fn parse(src: &'s str, max_depth: usize) -> Parsed {
        let mut p = Parser {
            cur: Cursor { src, pos: 0 },
            depth: 0,
            max_depth,
            work: 0,
        };
        p.cur.skip()?;
        if p.cur.rest().starts_with('=') {
            p.cur.pos += 1;
        }
        p.cur.skip()?;
        if p.cur.rest().is_empty() {
            return Err(p.cur.syntax(p.cur.pos, "empty expression"));
        }
        let e = p.expression()?;
        p.cur.skip()?;
        if !p.cur.rest().is_empty() {
            return Err(p.cur.syntax(p.cur.pos, "unexpected input"));
        }
        Ok(e)
    }

    fn node(&self, kind: Kind, at: usize) -> Expr {
        let depth = 1 + kind.child_depth();
        Expr {
            kind,
            at: at as u32,
            depth,
        }
    }

    /// A tree no deeper than the bound (chains such as `a + b + ...` or `a.b.c...` deepen it
    /// without nesting).
    fn checked(&self, e: Expr) -> Parsed {
        if e.depth as usize > self.max_depth {
            let (line, column) = self.cur.line_col(e.at as usize);
            return Err(FeelError::TooDeep {
                line,
                column,
                limit: self.max_depth,
            });
        }
        Ok(e)
    }

    /// Backtracking (filters, intervals) re-reads some input; this caps the total work so no
    /// input makes the parser slow.
    fn tick(&mut self) -> Result<(), FeelError> {
        self.work += 1;
        if self.work > 64 * self.cur.src.len() + 1024 {
            return Err(self.cur.syntax(self.cur.pos, "too complex to parse"));
        }
        Ok(())
    }

    /// One level of nesting: every nested construct goes through `expression`.
    fn enter(&mut self) -> Result<(), FeelError> {
        self.tick()?;
        self.depth += 1;
        if self.depth > self.max_depth {
            let (line, column) = self.cur.line_col(self.cur.pos);
            return Err(FeelError::TooDeep {
                line,
                column,
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    pub fn expression(&mut self) -> Parsed {
        crate::deep(|| self.expression_here())
    }

    fn expression_here(&mut self) -> Parsed {
        self.enter()?;
        self.cur.skip()?;
        let at = self.cur.pos;
        let e = if self.cur.eat_word("if")? {
            let c = self.expression()?;
            self.cur.expect_word("then")?;
            let t = self.expression()?;
            self.cur.expect_word("else")?;
            let e = self.expression()?;
            self.node(Kind::If(boxed(c), boxed(t), boxed(e)), at)
        } else if self.cur.eat_word("for")? {
            let iterations = self.iterations()?;
            self.cur.expect_word("return")?;
            let body = self.expression()?;
            self.node(Kind::For(iterations, boxed(body)), at)
        } else if let Some(every) = self.quantifier()? {
            let iterations = self.iterations()?;
            self.cur.expect_word("satisfies")?;
            let condition = boxed(self.expression()?);
            self.node(
                Kind::Quantified {
                    every,
                    iterations,
                    condition,
                },
                at,
            )
        } else {
            self.disjunction()?
        };
        self.depth -= 1;
        self.checked(e)
    }

    fn quantifier(&mut self) -> Result<Option<bool>, FeelError> {
        for (word, every) in [("some", false), ("every", true)] {
            let save = self.cur.pos;
            if self.cur.eat_word(word)? {
                // `some` alone may be a variable: a quantifier needs `name in`.
                if self.cur.name()?.is_some() && self.cur.eat_word("in")? {
                    self.cur.pos = save;
                    self.cur.eat_word(word)?;
                    return Ok(Some(every));
                }
                self.cur.pos = save;
            }
        }
        Ok(None)
    }

    fn iterations(&mut self) -> Result<Vec<Iteration>, FeelError> {
        let mut out = Vec::new();
        loop {
            self.cur.skip()?;
            let at = self.cur.pos;
            let name = self
                .cur
                .name()?
                .ok_or_else(|| self.cur.syntax(at, "expected a name"))?;
            self.cur.expect_word("in")?;
            let first = self.math()?;
            let source = if self.cur.eat("..")? {
                Source::Range(first, self.math()?)
            } else {
                Source::List(first)
            };
            out.push(Iteration {
                name: Rc::from(name),
                source,
            });
            if !self.cur.eat(",")? {
                return Ok(out);
            }
        }
    }

    fn disjunction(&mut self) -> Parsed {
        let mut left = self.conjunction()?;
        loop {
            let at = self.cur.pos;
            if !self.cur.eat_word("or")? {
                return Ok(left);
            }
            let right = self.conjunction()?;
            left = self.checked(self.node(Kind::Or(boxed(left), boxed(right)), at))?;
        }
    }

    fn conjunction(&mut self) -> Parsed {
        let mut left = self.comparison()?;
        loop {
            let at = self.cur.pos;
            if !self.cur.eat_word("and")? {
                return Ok(left);
            }
            let right = self.comparison()?;
            left = self.checked(self.node(Kind::And(boxed(left), boxed(right)), at))?;
        }
    }

    fn comparison(&mut self) -> Parsed {
        self.cur.skip()?;
        let at = self.cur.pos;
        if self.cur.rest().starts_with(['<', '>']) {
            return Err(self
                .cur
                .unsupported(at, "a unary test outside `in` (decision tables only)"));
        }
        let left = self.math()?;
        self.cur.skip()?;
        let at = self.cur.pos;
        for (symbol, op) in [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("!=", Cmp::Ne),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
            ("=", Cmp::Eq),
        ] {
            if self.cur.eat(symbol)? {
                let right = self.math()?;
                return Ok(self.node(Kind::Compare(op, boxed(left), boxed(right)), at));
            }
        }
        if self.cur.eat_word("between")? {
            let low = self.math()?;
            self.cur.expect_word("and")?;
            let high = self.math()?;
            return Ok(self.node(Kind::Between(boxed(left), boxed(low), boxed(high)), at));
        }
        if self.cur.eat_word("instance")? {
            self.cur.expect_word("of")?;
            let name = self.type_name()?;
            return Ok(self.node(Kind::InstanceOf(boxed(left), Rc::from(name)), at));
        }
        if self.cur.eat_word("in")? {
            let tests = self.in_tests()?;
            return Ok(self.node(Kind::In(boxed(left), tests), at));
        }
        Ok(left)
    }

    fn type_name(&mut self) -> Result<String, FeelError> {
        self.cur.skip()?;
        for special in [
            "years and months duration",
            "days and time duration",
            "date and time",
            "function",
        ] {
            if self.cur.eat_word(special)? {
                return Ok(special.to_string());
            }
        }
        let at = self.cur.pos;
        let mut parts = vec![
            self.cur
                .name()?
                .ok_or_else(|| self.cur.syntax(at, "expected a type name"))?,
        ];
        if self.cur.rest().starts_with('<') {
            return Err(self
                .cur
                .unsupported(self.cur.pos, "parameterised type names"));
        }
        while self.cur.eat(".")? {
            let at = self.cur.pos;
            parts.push(
                self.cur
                    .name()?
                    .ok_or_else(|| self.cur.syntax(at, "expected a type name"))?,
            );
        }
        Ok(parts.join("."))
    }

    fn in_tests(&mut self) -> Result<Vec<Test>, FeelError> {
        self.cur.skip()?;
        if self.cur.rest().starts_with('(') {
            let save = self.cur.pos;
            if let Some(interval) = self.try_interval()? {
                return Ok(vec![interval]);
            }
            self.cur.pos = save + 1;
            let mut tests = vec![self.positive_test()?];
            while self.cur.eat(",")? {
                tests.push(self.positive_test()?);
            }
            self.cur.expect(")")?;
            return Ok(tests);
        }
        Ok(vec![self.positive_test()?])
    }

    fn positive_test(&mut self) -> Result<Test, FeelError> {
        self.cur.skip()?;
        for (symbol, op) in [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ] {
            if self.cur.eat(symbol)? {
                return Ok(Test::Compare(op, self.math()?));
            }
        }
        if self.cur.rest().starts_with(['[', '(', ']']) {
            let save = self.cur.pos;
            if let Some(interval) = self.try_interval()? {
                return Ok(interval);
            }
            self.cur.pos = save;
        }
        if self.cur.rest().starts_with('?') || self.cur.rest().starts_with("not(") {
            return Err(self
                .cur
                .unsupported(self.cur.pos, "`?` and negated tests (decision tables only)"));
        }
        Ok(Test::Expr(self.expression()?))
    }

    /// `[a..b]`, `(a..b)`, `]a..b[` and mixes, or nothing (the cursor is then anywhere).
    fn try_interval(&mut self) -> Result<Option<Test>, FeelError> {
        let start_open = match self.cur.peek() {
            Some('(') | Some(']') => true,
            Some('[') => false,
            _ => return Ok(None),
        };
        self.cur.pos += 1;
        let depth = self.depth;
        let start = match self.math() {
            Ok(start) => start,
            Err(e) if !matches!(e, FeelError::Syntax { .. }) => return Err(e),
            Err(_) => {
                self.depth = depth;
                return Ok(None);
            }
        };
        if !self.cur.eat("..")? {
            return Ok(None);
        }
        let end = self.math()?;
        self.cur.skip()?;
        let end_open = match self.cur.peek() {
            Some(')') | Some('[') => true,
            Some(']') => false,
            _ => {
                return Err(self
                    .cur
                    .syntax(self.cur.pos, "expected the end of an interval"));
            }
        };
        self.cur.pos += 1;
        Ok(Some(Test::Interval {
            start_open,
            start,
            end,
            end_open,
        }))
    }

    pub fn math(&mut self) -> Parsed {
        self.tick()?;
        let mut left = self.product()?;
        loop {
            self.cur.skip()?;
            let at = self.cur.pos;
            let rest = self.cur.rest();
            let op = if rest.starts_with('+') {
                Arith::Add
            } else if rest.starts_with('-') {
                Arith::Sub
            } else {
                break;
            };
            self.cur.pos += 1;
            let right = self.product()?;
            left = self.checked(self.node(Kind::Arith(op, boxed(left), boxed(right)), at))?;
        }
        Ok(left)
    }

    fn product(&mut self) -> Parsed {
        let mut left = self.power()?;
        loop {
            self.cur.skip()?;
            let at = self.cur.pos;
            let rest = self.cur.rest();
            let op = if rest.starts_with('*') && !rest.starts_with("**") {
                Arith::Mul
            } else if rest.starts_with('/') && !rest.starts_with("//") && !rest.starts_with("/*") {
                Arith::Div
            } else {
                return Ok(left);
            };
            self.cur.pos += 1;
            let right = self.power()?;
            left = self.checked(self.node(Kind::Arith(op, boxed(left), boxed(right)), at))?;
        }
    }

    fn power(&mut self) -> Parsed {
        let mut left = self.negation()?;
        loop {
            let at = self.cur.pos;
            if !self.cur.eat("**")? {
                return Ok(left);
            }
            let right = self.negation()?;
            left =
                self.checked(self.node(Kind::Arith(Arith::Pow, boxed(left), boxed(right)), at))?;
        }
    }

    fn negation(&mut self) -> Parsed {
        self.cur.skip()?;
        let at = self.cur.pos;
        if self.cur.eat("-")? {
            let value = self.value()?;
            return Ok(self.node(Kind::Neg(boxed(value)), at));
        }
        self.value()
    }

    /// A terminal followed by paths (`.name`) and filters (`[...]`).
    fn value(&mut self) -> Parsed {
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
                base = self.checked(self.node(Kind::Path(boxed(base), Rc::from(key)), at))?;
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
            self.node(Kind::Name(Rc::from(name)), at)
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
                Ok((Rc::from(name), p.argument()?))
            })?)
        } else {
            Args::Positional(self.separated(")", Parser::argument)?)
        };
        Ok(self.node(
            Kind::Call {
                name: Rc::from(name),
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

    fn param_name(&mut self) -> Result<String, FeelError> {
        self.cur.skip()?;
        let at = self.cur.pos;
        if let Some(name) = self.cur.spaced_name(':')? {
            return Ok(name);
        }
        self.cur
            .name()?
            .ok_or_else(|| self.cur.syntax(at, "expected a parameter name"))
    }

    fn context_entry(&mut self) -> Result<(Rc<str>, Expr), FeelError> {
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
        Ok((Rc::from(key), self.expression()?))
    }

    fn lambda(&mut self, at: usize) -> Parsed {
        self.cur.expect("(")?;
        let params = self.separated(")", |p| p.param_name())?;
        if self.cur.eat_word("external")? {
            return Err(self.cur.unsupported(at, "external functions"));
        }
        let body = self.expression()?;
        Ok(self.node(
            Kind::Lambda(params.into_iter().map(Rc::from).collect(), Rc::new(body)),
            at,
        ))
    }

    /// Items separated by `,` up to `close` (consumed); the opening symbol is already read.
    fn separated<T>(
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
