//! Constant folding as InfluxDB's `Reduce` does it before checking a statement:
//! parentheses unwrapped, arithmetic on literals and math functions of literals
//! evaluated.

use crate::select::ast::{BinOp, Expr};
use crate::select::condition::{is_time_literal, parse_time_literal, Clock};
use crate::select::token::T;

/// Folds constants (InfluxDB's `Reduce` without a valuer).
pub fn reduce(e: Expr) -> Expr {
    reduce_with(e, None)
}

/// Folds constants; with a clock, `now()` becomes the query's start time and time
/// arithmetic folds too (strings that read as times included). Parentheses stay
/// only around binary expressions.
pub fn reduce_with(e: Expr, clock: Option<&Clock>) -> Expr {
    match e {
        Expr::Paren(inner) => match reduce_with(*inner, clock) {
            b @ Expr::Binary { .. } => Expr::Paren(Box::new(b)),
            e => e,
        },
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (reduce_with(*lhs, clock), reduce_with(*rhs, clock));
            fold(op, &l, &r, clock).unwrap_or(Expr::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            })
        }
        Expr::Call { name, args } if name == "now" && args.is_empty() && clock.is_some() => {
            Expr::Time(clock.map_or(0, |c| c.now))
        }
        Expr::Call { name, args } => {
            let args: Vec<Expr> = args.into_iter().map(|a| reduce_with(a, clock)).collect();
            fold_math(&name, &args).unwrap_or(Expr::Call { name, args })
        }
        e => e,
    }
}

/// A string read as a time when it is one (only with a clock: in conditions).
fn as_time(e: &Expr, clock: Option<&Clock>) -> Option<i64> {
    match (e, clock) {
        (Expr::Time(t), _) => Some(*t),
        (Expr::Str(s), Some(c)) if is_time_literal(s) => parse_time_literal(s, &c.tz),
        _ => None,
    }
}

fn compare<O: PartialOrd>(op: T, a: O, b: O) -> Option<Expr> {
    Some(Expr::Bool(match op {
        T::Eq => a == b,
        T::Neq => a != b,
        T::Lt => a < b,
        T::Lte => a <= b,
        T::Gt => a > b,
        T::Gte => a >= b,
        _ => return None,
    }))
}

/// One binary operation on reduced operands, when InfluxDB folds it.
fn fold(op: BinOp, l: &Expr, r: &Expr, clock: Option<&Clock>) -> Option<Expr> {
    use Expr::{Bool, Duration, Integer, Number, Str, Time};
    // Logic with a known side.
    match (op.0, l, r) {
        (T::And, Bool(false), _) | (T::And, _, Bool(false)) => return Some(Bool(false)),
        (T::Or, Bool(true), _) | (T::Or, _, Bool(true)) => return Some(Bool(true)),
        (T::And | T::Or, Bool(_), x) | (T::And | T::Or, x, Bool(_)) => return Some(x.clone()),
        _ => {}
    }
    let f = |x: f64, y: f64| -> Option<Expr> {
        Some(Number(match op.0 {
            T::Add => x + y,
            T::Sub => x - y,
            T::Mul => x * y,
            T::Div => {
                if y == 0.0 {
                    0.0
                } else {
                    x / y
                }
            }
            t => return compare(t, x, y),
        }))
    };
    match (l, r) {
        (Integer(a), Integer(b)) => Some(match op.0 {
            T::Add => Integer(a.wrapping_add(*b)),
            T::Sub => Integer(a.wrapping_sub(*b)),
            T::Mul => Integer(a.wrapping_mul(*b)),
            T::Div => Number(if *b == 0 { 0.0 } else { *a as f64 / *b as f64 }),
            T::Mod => Integer(if *b == 0 { 0 } else { a.wrapping_rem(*b) }),
            T::BitAnd => Integer(a & b),
            T::BitOr => Integer(a | b),
            T::BitXor => Integer(a ^ b),
            t => return compare(t, a, b),
        }),
        (Number(a), Number(b)) => f(*a, *b),
        (Integer(a), Number(b)) => f(*a as f64, *b),
        (Number(a), Integer(b)) => f(*a, *b as f64),
        (Duration(a), Duration(b)) => match op.0 {
            T::Add => Some(Duration(a.wrapping_add(*b))),
            T::Sub => Some(Duration(a.wrapping_sub(*b))),
            t => compare(t, a, b),
        },
        (Duration(a), Integer(b)) => match op.0 {
            T::Mul => Some(Duration(a.wrapping_mul(*b))),
            T::Div => Some(Duration(if *b == 0 { 0 } else { a / b })),
            _ => None,
        },
        (Duration(a), Number(b)) => match op.0 {
            T::Mul => Some(Duration((*a as f64 * b) as i64)),
            T::Div => Some(Duration(if *b == 0.0 { 0 } else { (*a as f64 / b) as i64 })),
            _ => None,
        },
        (Integer(a), Duration(d)) if clock.is_some() => match op.0 {
            T::Add => Some(Time(a.wrapping_add(*d))),
            T::Sub => Some(Time(a.wrapping_sub(*d))),
            _ => None,
        },
        (Duration(d), x) if op.0 == T::Add => as_time(x, clock).map(|t| Time(t.wrapping_add(*d))),
        (x, Duration(d)) => {
            let t = as_time(x, clock)?;
            match op.0 {
                T::Add => Some(Time(t.wrapping_add(*d))),
                T::Sub => Some(Time(t.wrapping_sub(*d))),
                _ => None,
            }
        }
        (Time(_), _) | (_, Time(_)) => {
            let (a, b) = (as_time(l, clock)?, as_time(r, clock)?);
            match op.0 {
                T::Sub => Some(Duration(a.wrapping_sub(b))),
                t => compare(t, a, b),
            }
        }
        (Str(a), Str(b)) => match op.0 {
            T::Add => Some(Str(format!("{a}{b}"))),
            T::Eq => Some(Bool(a == b)),
            T::Neq => Some(Bool(a != b)),
            _ => None,
        },
        (Bool(a), Bool(b)) => match op.0 {
            T::Eq => Some(Bool(a == b)),
            T::Neq => Some(Bool(a != b)),
            _ => None,
        },
        _ => None,
    }
}

/// A math function of number literals, evaluated (InfluxDB's `MathValuer`).
fn fold_math(name: &str, args: &[Expr]) -> Option<Expr> {
    let num = |e: &Expr| match e {
        Expr::Integer(i) => Some(*i as f64),
        Expr::Number(n) => Some(*n),
        _ => None,
    };
    let x = num(args.first()?)?;
    let y = match args.get(1) {
        Some(a) => Some(num(a)?),
        None => None,
    };
    math(name, x, y).map(Expr::Number)
}

/// A math function on floats (`y` for the two-argument ones), as Go's math
/// package computes it; `None` for an unknown name or a wrong arity.
pub fn math(name: &str, x: f64, y: Option<f64>) -> Option<f64> {
    Some(match (name, y) {
        ("abs", None) => x.abs(),
        ("sin", None) => x.sin(),
        ("cos", None) => x.cos(),
        ("tan", None) => x.tan(),
        ("asin", None) => x.asin(),
        ("acos", None) => x.acos(),
        ("atan", None) => x.atan(),
        ("exp", None) => x.exp(),
        ("ln", None) => x.ln(),
        ("log2", None) => x.log2(),
        ("log10", None) => x.log10(),
        ("sqrt", None) => x.sqrt(),
        ("floor", None) => x.floor(),
        ("ceil", None) => x.ceil(),
        ("round", None) => x.round(),
        ("atan2", Some(y)) => x.atan2(y),
        ("log", Some(b)) => x.ln() / b.ln(),
        ("pow", Some(y)) => x.powf(y),
        _ => return None,
    })
}
