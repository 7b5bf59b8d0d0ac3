//! Expressions evaluated per row: arithmetic and math functions in SELECT
//! fields, conditions on tags and fields in WHERE — with the rules of InfluxDB's
//! `ValuerEval` (integer ÷ integer is a float, ÷ 0 gives 0, a comparison of
//! values that cannot be compared is false, arithmetic with a null is null).

use std::collections::HashMap;

use regex::Regex;
use sundial_influxql::select::Expr;

use crate::error::{query_err, Result};
use crate::value::Value;

/// A statement's regex, compiled (its syntax was checked when parsed; this
/// reports what Go's engine would have accepted and ours does not).
pub fn compile_regex(r: &str) -> Result<Regex> {
    Regex::new(r).map_err(|e| query_err(format!("invalid regex {r}: {e}")))
}

/// Regexes of an expression, compiled once per statement.
#[derive(Debug, Default, Clone)]
pub struct Regexes(HashMap<String, Regex>);

impl Regexes {
    /// Compiles every regex literal in `e`.
    pub fn add(&mut self, e: &Expr) -> Result<()> {
        let mut found = Vec::new();
        e.walk(&mut |x| {
            if let Expr::Regex(r) = x {
                found.push(r);
            }
        });
        for r in found {
            if !self.0.contains_key(r) {
                self.0.insert(r.clone(), compile_regex(r)?);
            }
        }
        Ok(())
    }

    pub fn get(&self, r: &str) -> Option<&Regex> {
        self.0.get(r)
    }
}

/// What a row offers an expression: a name's value (a field, else a tag).
pub trait Row {
    fn value(&self, name: &str) -> Value;
}

/// Evaluates `e` on `row`.
pub fn eval(e: &Expr, row: &dyn Row, re: &Regexes) -> Value {
    match e {
        Expr::VarRef { name, .. } => row.value(name),
        Expr::Paren(x) => eval(x, row, re),
        Expr::Integer(i) => Value::Integer(*i),
        Expr::Unsigned(u) => Value::Unsigned(*u),
        Expr::Number(n) => Value::Float(*n),
        Expr::Str(s) => Value::String(s.clone()),
        Expr::Bool(b) => Value::Boolean(*b),
        Expr::Duration(d) | Expr::Time(d) => Value::Integer(*d),
        Expr::Call { name, args } => math(name, args, row, re),
        Expr::Binary { op, lhs, rhs } => {
            let sym = op.symbol();
            if let Expr::Regex(r) = &**rhs {
                let matched = match (eval(lhs, row, re), re.get(r)) {
                    (Value::String(s), Some(rx)) => rx.is_match(&s),
                    _ => return Value::Boolean(false),
                };
                return Value::Boolean(match sym {
                    "=~" => matched,
                    "!~" => !matched,
                    _ => false,
                });
            }
            if sym == "AND" || sym == "OR" {
                let l = matches!(eval(lhs, row, re), Value::Boolean(true));
                let r = matches!(eval(rhs, row, re), Value::Boolean(true));
                return Value::Boolean(if sym == "AND" { l && r } else { l || r });
            }
            binary(sym, eval(lhs, row, re), eval(rhs, row, re))
        }
        Expr::Distinct(_) | Expr::Regex(_) | Expr::Wildcard(_) => Value::Null,
    }
}

/// Whether a condition holds for `row`.
pub fn holds(e: &Expr, row: &dyn Row, re: &Regexes) -> bool {
    matches!(eval(e, row, re), Value::Boolean(true))
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "=" | "!=" | "<" | "<=" | ">" | ">=")
}

fn compare<T: PartialOrd>(op: &str, a: T, b: T) -> Value {
    Value::Boolean(match op {
        "=" => a == b,
        "!=" => a != b,
        "<" => a < b,
        "<=" => a <= b,
        ">" => a > b,
        ">=" => a >= b,
        _ => return Value::Null,
    })
}

/// One binary operation on two values.
pub fn binary(op: &str, l: Value, r: Value) -> Value {
    use Value::{Boolean, Float, Integer, String as Str, Unsigned};
    let float = |a: f64, b: f64| -> Value {
        match op {
            "+" => Float(a + b),
            "-" => Float(a - b),
            "*" => Float(a * b),
            "/" => Float(if b == 0.0 { 0.0 } else { a / b }),
            // Go's math.Mod: NaN (null) for a zero divisor.
            "%" => Float(a % b),
            _ => compare(op, a, b),
        }
    };
    let v = match (&l, &r) {
        (Float(a), Float(b)) => float(*a, *b),
        (Float(a), Integer(b)) => float(*a, *b as f64),
        (Integer(a), Float(b)) => float(*a as f64, *b),
        (Float(a), Unsigned(b)) => float(*a, *b as f64),
        (Unsigned(a), Float(b)) => float(*a as f64, *b),
        (Integer(a), Integer(b)) => {
            let (a, b) = (*a, *b);
            match op {
                "+" => Integer(a.wrapping_add(b)),
                "-" => Integer(a.wrapping_sub(b)),
                "*" => Integer(a.wrapping_mul(b)),
                "/" => Float(if b == 0 { 0.0 } else { a as f64 / b as f64 }),
                "%" => Integer(if b == 0 { 0 } else { a.wrapping_rem(b) }),
                "&" => Integer(a & b),
                "|" => Integer(a | b),
                "^" => Integer(a ^ b),
                _ => compare(op, a, b),
            }
        }
        (Unsigned(a), Unsigned(b)) => {
            let (a, b) = (*a, *b);
            match op {
                "+" => Unsigned(a.wrapping_add(b)),
                "-" => Unsigned(a.wrapping_sub(b)),
                "*" => Unsigned(a.wrapping_mul(b)),
                "/" => Float(if b == 0 { 0.0 } else { a as f64 / b as f64 }),
                "%" => Unsigned(if b == 0 { 0 } else { a % b }),
                "&" => Unsigned(a & b),
                "|" => Unsigned(a | b),
                "^" => Unsigned(a ^ b),
                _ => compare(op, a, b),
            }
        }
        (Integer(a), Unsigned(b)) | (Unsigned(b), Integer(a)) if is_comparison(op) => {
            // Compared as numbers: a negative integer is below every unsigned.
            let (x, y) = (*a as i128, *b as i128);
            if matches!(l, Integer(_)) {
                compare(op, x, y)
            } else {
                compare(op, y, x)
            }
        }
        (Boolean(a), Boolean(b)) => match op {
            "&" => Boolean(a & b),
            "|" => Boolean(a | b),
            "^" => Boolean(a ^ b),
            "=" => Boolean(a == b),
            "!=" => Boolean(a != b),
            _ => Value::Null,
        },
        // Strings compare only for (in)equality: `<` on a tag or a string
        // field matches nothing.
        (Str(a), Str(b)) => match op {
            "=" => Boolean(a == b),
            "!=" => Boolean(a != b),
            _ => Value::Null,
        },
        _ => Value::Null,
    };
    if v.is_null() && is_comparison(op) {
        // Values that cannot be compared (a null among them) compare false.
        return Boolean(false);
    }
    v
}

/// A math function; null when an argument is not a number.
fn math(name: &str, args: &[Expr], row: &dyn Row, re: &Regexes) -> Value {
    let Some(first) = args.first() else {
        return Value::Null;
    };
    let x = eval(first, row, re);
    let y = args.get(1).map(|a| eval(a, row, re));
    // abs, floor, ceil and round return integers as they are — abs(-3) is -3
    // in InfluxDB 1.6 (its MathValuer passes integers through).
    if matches!(x, Value::Integer(_) | Value::Unsigned(_))
        && matches!(name, "abs" | "floor" | "ceil" | "round")
    {
        return x;
    }
    let Some(x) = x.as_f64() else {
        return Value::Null;
    };
    let y = match y {
        Some(v) => match v.as_f64() {
            Some(y) => Some(y),
            None => return Value::Null,
        },
        None => None,
    };
    sundial_influxql::select::math(name, x, y).map_or(Value::Null, Value::Float)
}
