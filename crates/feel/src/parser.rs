//! FEEL's grammar as feel-scala parses it (operator levels, what may follow what), for the
//! supported subset: anything else is refused here, with its position, so nothing outside the
//! subset is ever evaluated half-way. Operator levels here; values, calls and contexts in
//! `terms`.

mod terms;

use std::sync::Arc;

use crate::FeelError;
use crate::ast::{Arith, Cmp, Expr, Iteration, Kind, Source, Test};
use crate::lexer::Cursor;

/// Built-in names that contain a reserved word, which the general name rule would split.
pub(super) const RESERVED_NAMES: &[&str] =
    &["date and time", "years and months duration", "get or else"];

pub struct Parser<'s> {
    pub(super) cur: Cursor<'s>,
    depth: usize,
    max_depth: usize,
    work: usize,
}

pub(super) type Parsed = Result<Expr, FeelError>;

pub(super) fn boxed(e: Expr) -> Box<Expr> {
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

    pub(super) fn node(&self, kind: Kind, at: usize) -> Expr {
        let depth = 1 + kind.child_depth();
        Expr {
            kind,
            at: at as u32,
            depth,
        }
    }

    /// A tree no deeper than the bound (chains such as `a + b + ...` or `a.b.c...` deepen it
    /// without nesting).
    pub(super) fn checked(&self, e: Expr) -> Parsed {
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
    pub(super) fn tick(&mut self) -> Result<(), FeelError> {
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
                name: Arc::from(name),
                source,
            });
            if !self.cur.eat(",")? {
                return Ok(out);
            }
        }
    }

    fn disjunction(&mut self) -> Parsed {
        self.chain("or", Parser::conjunction, Kind::Or)
    }

    fn conjunction(&mut self) -> Parsed {
        self.chain("and", Parser::comparison, Kind::And)
    }

    /// `operand (word operand)*`, left-associative.
    fn chain(
        &mut self,
        word: &str,
        operand: fn(&mut Parser<'s>) -> Parsed,
        kind: fn(Box<Expr>, Box<Expr>) -> Kind,
    ) -> Parsed {
        let mut left = operand(self)?;
        loop {
            let at = self.cur.pos;
            if !self.cur.eat_word(word)? {
                return Ok(left);
            }
            let right = operand(self)?;
            left = self.checked(self.node(kind(boxed(left), boxed(right)), at))?;
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
            return Ok(self.node(Kind::InstanceOf(boxed(left), Arc::from(name)), at));
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
    pub(super) fn try_interval(&mut self) -> Result<Option<Test>, FeelError> {
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
}
