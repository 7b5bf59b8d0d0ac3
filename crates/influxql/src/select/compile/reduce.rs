//! Constant folding as InfluxDB's `Reduce` does it before checking a statement:
//! parentheses unwrapped, arithmetic on literals and math functions of literals
//! evaluated.

use crate::select::ast::{BinOp, Expr};
use crate::select::token::T;

/// Unwraps parentheses and folds arithmetic on literals (InfluxDB's `Reduce`).
pub fn reduce(e: Expr) -> Expr {
    match e {
        Expr::Paren(inner) => reduce(*inner),
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (reduce(*lhs), reduce(*rhs));
            fold(op, &l, &r).unwrap_or(Expr::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            })
        }
        Expr::Call { name, args } => {
            let args: Vec<Expr> = args.into_iter().map(reduce).collect();
            fold_math(&name, &args).unwrap_or(Expr::Call { name, args })
        }
        e => e,
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
    let y = args.get(1).map(num);
    let v = match (name, y) {
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
        ("atan2", Some(Some(y))) => x.atan2(y),
        ("log", Some(Some(b))) => x.ln() / b.ln(),
        ("pow", Some(Some(y))) => x.powf(y),
        _ => return None,
    };
    Some(Expr::Number(v))
}

/// Arithmetic on two literals, as InfluxDB folds it.
fn fold(op: BinOp, l: &Expr, r: &Expr) -> Option<Expr> {
    use Expr::{Duration, Integer, Number};
    let f = |x: f64, y: f64| -> Option<f64> {
        Some(match op.0 {
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
            _ => return None,
        })
    };
    Some(match (l, r) {
        (Integer(a), Integer(b)) => match op.0 {
            T::Add => Integer(a.wrapping_add(*b)),
            T::Sub => Integer(a.wrapping_sub(*b)),
            T::Mul => Integer(a.wrapping_mul(*b)),
            T::Div => Number(if *b == 0 { 0.0 } else { *a as f64 / *b as f64 }),
            T::Mod => Integer(if *b == 0 { 0 } else { a.wrapping_rem(*b) }),
            T::BitAnd => Integer(a & b),
            T::BitOr => Integer(a | b),
            T::BitXor => Integer(a ^ b),
            _ => return None,
        },
        (Number(a), Number(b)) => Number(f(*a, *b)?),
        (Integer(a), Number(b)) => Number(f(*a as f64, *b)?),
        (Number(a), Integer(b)) => Number(f(*a, *b as f64)?),
        (Duration(a), Duration(b)) => match op.0 {
            T::Add => Duration(a.wrapping_add(*b)),
            T::Sub => Duration(a.wrapping_sub(*b)),
            _ => return None,
        },
        (Duration(a), Integer(b)) => match op.0 {
            T::Mul => Duration(a.wrapping_mul(*b)),
            T::Div => Duration(if *b == 0 { 0 } else { a / b }),
            _ => return None,
        },
        _ => return None,
    })
}
