//! Expressions: InfluxDB 1.6's precedence climbing, unary signs, literals, variable
//! references with casts, calls, and duration literals.

use super::ast::{BinOp, DataType, Expr};
use super::parser::{at, found, plain, Parser, Result};
use super::token::T;

impl Parser {
    pub(super) fn expr(&mut self) -> Result<Expr> {
        let mut root = self.unary()?;
        loop {
            let op = self.s.scan_ignore_ws();
            if !op.t.is_operator() {
                self.s.unscan();
                return Ok(root);
            }
            let rhs = if matches!(op.t, T::EqRegex | T::NeqRegex) {
                match self.regex()? {
                    Some(r) => Expr::Regex(r),
                    None => {
                        let t = self.s.scan_ignore_ws();
                        return Err(found(&t, &["regex"]));
                    }
                }
            } else {
                self.unary()?
            };
            root = insert_binary(root, BinOp(op.t), rhs);
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        let t = self.s.scan_ignore_ws();
        if t.t == T::LParen {
            let e = self.expr()?;
            self.expect(T::RParen)?;
            return Ok(Expr::Paren(Box::new(e)));
        }
        self.s.unscan();
        let t = self.s.scan_ignore_ws();
        match t.t {
            T::Ident => {
                if self.s.scan().t == T::LParen {
                    return self.call(&t.lit);
                }
                self.s.unscan();
                self.s.unscan();
                self.var_ref()
            }
            T::Kw("DISTINCT") => {
                let n = self.s.scan();
                match n.t {
                    T::LParen => self.call("distinct"),
                    T::Ws => {
                        let v = self.s.scan_ignore_ws();
                        if v.t != T::Ident {
                            return Err(found(&v, &["identifier"]));
                        }
                        Ok(Expr::Distinct(v.lit))
                    }
                    _ => Err(found(&n, &["(", "identifier"])),
                }
            }
            T::Str => Ok(Expr::Str(t.lit)),
            T::Number => t
                .lit
                .parse::<f64>()
                .map(Expr::Number)
                .map_err(|_| at("unable to parse number", t.pos)),
            T::Integer => match t.lit.parse::<i64>() {
                Ok(i) => Ok(Expr::Integer(i)),
                Err(_) => t
                    .lit
                    .parse::<u64>()
                    .map(Expr::Unsigned)
                    .map_err(|_| at("unable to parse integer", t.pos)),
            },
            T::True | T::False => Ok(Expr::Bool(t.t == T::True)),
            T::DurationVal => parse_duration(&t.lit).map(Expr::Duration),
            T::Mul => {
                let n = self.s.scan();
                if n.t != T::DoubleColon {
                    self.s.unscan();
                    return Ok(Expr::Wildcard(None));
                }
                let ty = self.s.scan();
                match ty.t {
                    T::Kw("FIELD") => Ok(Expr::Wildcard(Some(DataType::AnyField))),
                    T::Kw("TAG") => Ok(Expr::Wildcard(Some(DataType::Tag))),
                    _ => Err(found(&ty, &["field", "tag"])),
                }
            }
            T::BoundParam => {
                let key = t.lit.trim_start_matches('$');
                if key.is_empty() {
                    return Err(plain("empty bound parameter"));
                }
                Err(plain(format!("missing parameter: {key}")))
            }
            T::Add | T::Sub => {
                let n = self.s.scan_ignore_ws();
                if !matches!(
                    n.t,
                    T::Number | T::Integer | T::DurationVal | T::LParen | T::Ident
                ) {
                    return Err(found(&n, &["identifier", "number", "duration", "("]));
                }
                self.s.unscan();
                let e = self.unary()?;
                let neg = t.t == T::Sub;
                Ok(match e {
                    Expr::Number(v) if neg => Expr::Number(-v),
                    Expr::Integer(v) if neg => Expr::Integer(v.wrapping_neg()),
                    Expr::Duration(v) if neg => Expr::Duration(v.wrapping_neg()),
                    Expr::Unsigned(u) if neg => {
                        if u == 1 << 63 {
                            Expr::Integer(i64::MIN)
                        } else {
                            return Err(plain(format!("constant -{u} underflows int64")));
                        }
                    }
                    e @ (Expr::VarRef { .. } | Expr::Call { .. } | Expr::Paren(_)) => {
                        Expr::Binary {
                            op: BinOp(T::Mul),
                            lhs: Box::new(Expr::Integer(if neg { -1 } else { 1 })),
                            rhs: Box::new(e),
                        }
                    }
                    e => e,
                })
            }
            _ => Err(found(&t, &["identifier", "string", "number", "bool"])),
        }
    }

    fn var_ref(&mut self) -> Result<Expr> {
        let name = self.segmented_idents()?.join(".");
        let t = self.s.scan();
        if t.t != T::DoubleColon {
            self.s.unscan();
            return Ok(Expr::VarRef { name, ty: None });
        }
        let ty = self.s.scan();
        let dt = match ty.t {
            T::Ident => match ty.lit.to_ascii_lowercase().as_str() {
                "float" => DataType::Float,
                "integer" => DataType::Integer,
                "unsigned" => DataType::Unsigned,
                "string" => DataType::String,
                "boolean" => DataType::Boolean,
                _ => {
                    return Err(found(
                        &ty,
                        &[
                            "float", "integer", "unsigned", "string", "boolean", "field", "tag",
                        ],
                    ))
                }
            },
            T::Kw("FIELD") => DataType::AnyField,
            T::Kw("TAG") => DataType::Tag,
            _ => {
                return Err(found(
                    &ty,
                    &["float", "integer", "string", "boolean", "field", "tag"],
                ))
            }
        };
        Ok(Expr::VarRef { name, ty: Some(dt) })
    }

    fn call(&mut self, name: &str) -> Result<Expr> {
        let name = name.to_lowercase();
        let mut args = Vec::new();
        match self.regex()? {
            Some(r) => args.push(Expr::Regex(r)),
            None => {
                if self.s.scan().t == T::RParen {
                    return Ok(Expr::Call { name, args });
                }
                self.s.unscan();
                args.push(self.expr()?);
            }
        }
        while self.accept(T::Comma) {
            match self.regex()? {
                Some(r) => args.push(Expr::Regex(r)),
                None => args.push(self.expr()?),
            }
        }
        let t = self.s.scan();
        if t.t != T::RParen {
            return Err(found(&t, &[")"]));
        }
        Ok(Expr::Call { name, args })
    }
}

/// Adds `op rhs` to a left-associative tree, below every binary node on the right
/// spine that binds less tightly.
pub(super) fn insert_binary(root: Expr, op: BinOp, rhs: Expr) -> Expr {
    match root {
        Expr::Binary { op: o, lhs, rhs: r } if o.precedence() < op.precedence() => Expr::Binary {
            op: o,
            lhs,
            rhs: Box::new(insert_binary(*r, op, rhs)),
        },
        root => Expr::Binary {
            op,
            lhs: Box::new(root),
            rhs: Box::new(rhs),
        },
    }
}

/// The condition operator InfluxDB's SELECT-field check reports: pre-order, not
/// descending below one, the last found wins.
pub(super) fn last_condition_op(e: &Expr) -> Option<BinOp> {
    fn walk(e: &Expr, bad: &mut Option<BinOp>) {
        match e {
            Expr::Binary { op, lhs, rhs } => {
                if op.is_condition() {
                    *bad = Some(*op);
                    return;
                }
                walk(lhs, bad);
                walk(rhs, bad);
            }
            Expr::Paren(x) => walk(x, bad),
            Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, bad)),
            _ => {}
        }
    }
    let mut bad = None;
    walk(e, &mut bad);
    bad
}

/// InfluxQL's duration literal: `<digits><unit>` groups, summed (wrapping).
pub fn parse_duration(s: &str) -> Result<i64> {
    let invalid = || plain("invalid duration");
    if s.len() < 2 {
        return Err(invalid());
    }
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last = String::new();
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(invalid());
        }
        let digits: String = chars[start..i].iter().collect();
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        let u0 = chars.get(i).copied();
        let (mul, unit) = match (u0, chars.get(i + 1).copied()) {
            (Some('n'), Some('s')) => (1, "ns"),
            (Some('m'), Some('s')) => (1_000_000, "ms"),
            (Some('u'), _) => (1_000, "u"),
            (Some('µ'), _) => (1_000, "µ"),
            (Some('s'), _) => (1_000_000_000, "s"),
            (Some('m'), _) => (60_000_000_000, "m"),
            (Some('h'), _) => (3_600_000_000_000, "h"),
            (Some('d'), _) => (86_400_000_000_000, "d"),
            (Some('w'), _) => (604_800_000_000_000, "w"),
            _ => return Err(invalid()),
        };
        i += unit.chars().count();
        total = total.wrapping_add(n.wrapping_mul(mul));
        last = format!("{digits}{unit}");
    }
    if negative {
        total = total.wrapping_neg();
    }
    if total < 0 && !negative {
        return Err(plain(format!(
            "overflowed duration {last}: choose a smaller duration or INF"
        )));
    }
    Ok(total)
}
