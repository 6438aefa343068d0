//! The parsed expression.

use std::rc::Rc;

use crate::builtins::Overloads;
use crate::value::Value;

#[derive(Debug)]
pub struct Expr {
    pub kind: Kind,
    /// Byte offset in the source, for messages.
    pub at: u32,
}

#[derive(Debug)]
pub enum Kind {
    /// Literals, `@"..."` temporal literals included (an invalid one is null, as feel-scala).
    Const(Value),
    List(Vec<Expr>),
    Context(Vec<(Rc<str>, Expr)>),
    Name(Rc<str>),
    Path(Box<Expr>, Rc<str>),
    Filter(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    Compare(Cmp, Box<Expr>, Box<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    InstanceOf(Box<Expr>, Rc<str>),
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
        name: Rc<str>,
        builtin: Option<&'static Overloads>,
        args: Args,
    },
    Lambda(Vec<Rc<str>>, Rc<Expr>),
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
    Named(Vec<(Rc<str>, Expr)>),
}

#[derive(Debug)]
pub struct Iteration {
    pub name: Rc<str>,
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
