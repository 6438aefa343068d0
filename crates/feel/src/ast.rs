//! The parsed expression.

use std::sync::Arc;

use crate::builtins::Overloads;
use crate::value::Value;

#[derive(Debug)]
pub struct Expr {
    pub kind: Kind,
    /// Byte offset in the source, for messages.
    pub at: u32,
    /// Levels of this tree: what evaluating it recurses through (bounded when parsing).
    pub depth: u32,
}

impl Kind {
    /// The deepest child's depth.
    pub fn child_depth(&self) -> u32 {
        let d = |e: &Expr| e.depth;
        let iterations = |its: &[Iteration]| {
            its.iter()
                .map(|it| match &it.source {
                    Source::List(e) => d(e),
                    Source::Range(a, b) => d(a).max(d(b)),
                })
                .max()
                .unwrap_or(0)
        };
        match self {
            Kind::Const(_) | Kind::Name(_) => 0,
            Kind::List(items) => items.iter().map(d).max().unwrap_or(0),
            Kind::Context(entries) => entries.iter().map(|(_, e)| d(e)).max().unwrap_or(0),
            Kind::Path(e, _) | Kind::Neg(e) | Kind::InstanceOf(e, _) => d(e),
            Kind::Filter(a, b)
            | Kind::Arith(_, a, b)
            | Kind::Compare(_, a, b)
            | Kind::And(a, b)
            | Kind::Or(a, b) => d(a).max(d(b)),
            Kind::Between(a, b, c) | Kind::If(a, b, c) => d(a).max(d(b)).max(d(c)),
            Kind::In(x, tests) => tests
                .iter()
                .map(|t| match t {
                    Test::Compare(_, e) | Test::Expr(e) => d(e),
                    Test::Interval { start, end, .. } => d(start).max(d(end)),
                })
                .fold(d(x), u32::max),
            Kind::For(its, body) => iterations(its).max(d(body)),
            Kind::Quantified {
                iterations: its,
                condition,
                ..
            } => iterations(its).max(d(condition)),
            Kind::Call { args, .. } => match args {
                Args::Positional(list) => list.iter().map(d).max().unwrap_or(0),
                Args::Named(list) => list.iter().map(|(_, e)| d(e)).max().unwrap_or(0),
            },
            Kind::Lambda(_, body) => d(body),
        }
    }
}

#[derive(Debug)]
pub enum Kind {
    /// Literals, `@"..."` temporal literals included (an invalid one is null, as feel-scala).
    Const(Value),
    List(Vec<Expr>),
    Context(Vec<(Arc<str>, Expr)>),
    Name(Arc<str>),
    Path(Box<Expr>, Arc<str>),
    Filter(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    Compare(Cmp, Box<Expr>, Box<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    InstanceOf(Box<Expr>, Arc<str>),
    In(Box<Expr>, Vec<Test>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    For(Vec<Iteration>, Box<Expr>),
    Quantified {
        every: bool,
        iterations: Vec<Iteration>,
        condition: Box<Expr>,
    },
    Call {
        name: Arc<str>,
        builtin: Option<&'static Overloads>,
        args: Args,
    },
    Lambda(Vec<Arc<str>>, Arc<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
pub enum Args {
    Positional(Vec<Expr>),
    Named(Vec<(Arc<str>, Expr)>),
}

#[derive(Debug)]
pub struct Iteration {
    pub name: Arc<str>,
    pub source: Source,
}

#[derive(Debug)]
pub enum Source {
    List(Expr),
    /// `1..3`: whole steps from one number to the other, either way.
    Range(Expr, Expr),
}

/// One test after `in`.
#[derive(Debug)]
pub enum Test {
    /// `< 5`, `>= x`.
    Compare(Cmp, Expr),
    /// `[1..5]`, `(1..5)`, `]1..5[`.
    Interval {
        start_open: bool,
        start: Expr,
        end: Expr,
        end_open: bool,
    },
    /// Any expression: equal to the input, a list containing it, or `true`.
    Expr(Expr),
}
