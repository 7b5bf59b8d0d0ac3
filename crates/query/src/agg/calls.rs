//! A statement's function calls: read out of its field expressions (each
//! replaced by a placeholder the rows fill in), with what each needs.

use sundial_influxql::select::{DataType, Expr, MATH};

use crate::error::{query_err, Result};
use crate::eval::Row;
use crate::value::Value;

/// Functions that pick points (their time is the point's when alone and
/// without GROUP BY time()).
pub(super) const SELECTORS: &[&str] = &[
    "first",
    "last",
    "min",
    "max",
    "percentile",
    "sample",
    "top",
    "bottom",
];

const TRANSFORMS: &[&str] = &[
    "derivative",
    "non_negative_derivative",
    "difference",
    "non_negative_difference",
    "elapsed",
    "moving_average",
    "cumulative_sum",
];

const SECOND: i64 = 1_000_000_000;

/// How a call is computed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// An aggregate or selector per window.
    Window,
    /// A transformation of the raw points (`derivative(v)`): `name` is the
    /// transformation, `arg` its unit or size.
    Raw { arg: i64 },
    /// A transformation of an aggregate per window (`derivative(mean(v))`).
    OfAgg { transform: String, arg: i64 },
    /// `count(distinct(v))`.
    CountDistinct,
    /// `integral(v[, unit])`.
    Integral { unit: i64 },
}

/// One function call of the statement.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// The function applied per window (the inner one for `OfAgg`).
    pub(super) name: String,
    pub(super) field: String,
    pub(super) ty: Option<DataType>,
    pub(super) args: Vec<f64>,
    /// top()/bottom() tag arguments.
    pub(super) tags: Vec<String>,
    pub(super) kind: Kind,
}

fn duration_arg(e: Option<&Expr>, default: i64) -> i64 {
    match e {
        Some(Expr::Duration(d)) if *d > 0 => *d,
        Some(Expr::Integer(i)) => *i,
        _ => default,
    }
}

fn number_args(args: &[Expr]) -> Vec<f64> {
    args.iter()
        .filter_map(|a| match a {
            Expr::Integer(i) => Some(*i as f64),
            Expr::Number(n) => Some(*n),
            _ => None,
        })
        .collect()
}

fn field_of(name: &str, arg: Option<&Expr>) -> Result<(String, Option<DataType>)> {
    match arg {
        Some(Expr::VarRef { name, ty }) => Ok((name.clone(), *ty)),
        Some(Expr::Distinct(v)) => Ok((v.clone(), None)),
        _ => Err(query_err(format!("expected field argument in {name}()"))),
    }
}

fn placeholder(calls: &[Call]) -> Expr {
    Expr::VarRef {
        name: format!("\0{}", calls.len() - 1),
        ty: None,
    }
}

/// Reads one call (not a math function) into `calls`.
fn call(name: &str, args: &[Expr], interval: i64, calls: &mut Vec<Call>) -> Result<Expr> {
    let first = args.first();
    let mut c = Call {
        name: name.to_string(),
        field: String::new(),
        ty: None,
        args: Vec::new(),
        tags: Vec::new(),
        kind: Kind::Window,
    };
    if TRANSFORMS.contains(&name) {
        let arg = match name {
            "derivative" | "non_negative_derivative" => {
                duration_arg(args.get(1), if interval > 0 { interval } else { SECOND })
            }
            "elapsed" => duration_arg(args.get(1), 1),
            "moving_average" => duration_arg(args.get(1), 2),
            _ => 0,
        };
        match first {
            Some(Expr::Call {
                name: inner,
                args: inner_args,
            }) => {
                let (field, ty) = field_of(inner, inner_args.first())?;
                c.name = inner.clone();
                c.field = field;
                c.ty = ty;
                c.args = number_args(inner_args.get(1..).unwrap_or_default());
                c.kind = Kind::OfAgg {
                    transform: name.to_string(),
                    arg,
                };
            }
            a => {
                let (field, ty) = field_of(name, a)?;
                c.field = field;
                c.ty = ty;
                c.kind = Kind::Raw { arg };
            }
        }
    } else if name == "count"
        && (matches!(first, Some(Expr::Call { name, .. }) if name == "distinct")
            || matches!(first, Some(Expr::Distinct(_))))
    {
        let inner = match first {
            Some(Expr::Call { args, .. }) => args.first(),
            other => other,
        };
        (c.field, c.ty) = field_of("distinct", inner)?;
        c.kind = Kind::CountDistinct;
    } else if name == "integral" {
        (c.field, c.ty) = field_of(name, first)?;
        c.kind = Kind::Integral {
            unit: duration_arg(args.get(1), SECOND),
        };
    } else {
        (c.field, c.ty) = field_of(name, first)?;
        let rest = args.get(1..).unwrap_or_default();
        if matches!(name, "top" | "bottom") {
            for a in &rest[..rest.len().saturating_sub(1)] {
                if let Expr::VarRef { name, .. } = a {
                    c.tags.push(name.clone());
                }
            }
        }
        c.args = number_args(rest);
    }
    calls.push(c);
    Ok(placeholder(calls))
}

/// Replaces the function calls in `e` by placeholders `\0<n>`, collecting them.
pub(super) fn extract(e: &Expr, interval: i64, calls: &mut Vec<Call>) -> Result<Expr> {
    Ok(match e {
        Expr::Call { name, args } if !MATH.contains(&name.as_str()) => {
            call(name, args, interval, calls)?
        }
        Expr::Distinct(v) => call(
            "distinct",
            &[Expr::VarRef {
                name: v.clone(),
                ty: None,
            }],
            interval,
            calls,
        )?,
        Expr::Call { name, args } => Expr::Call {
            name: name.clone(),
            args: args
                .iter()
                .map(|a| extract(a, interval, calls))
                .collect::<Result<_>>()?,
        },
        Expr::Binary { op, lhs, rhs } => Expr::Binary {
            op: *op,
            lhs: Box::new(extract(lhs, interval, calls)?),
            rhs: Box::new(extract(rhs, interval, calls)?),
        },
        Expr::Paren(x) => Expr::Paren(Box::new(extract(x, interval, calls)?)),
        e => e.clone(),
    })
}

/// A row of call results (and the selected point's auxiliary values).
pub(super) struct CallRow<'a> {
    pub(super) results: &'a [Value],
    pub(super) aux_names: &'a [String],
    pub(super) aux: &'a [Value],
}

impl Row for CallRow<'_> {
    fn value(&self, name: &str) -> Value {
        if let Some(i) = name
            .strip_prefix('\0')
            .and_then(|n| n.parse::<usize>().ok())
        {
            return self.results.get(i).cloned().unwrap_or_default();
        }
        self.aux_names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.aux.get(i).cloned())
            .unwrap_or_default()
    }
}

pub(super) fn aux_refs(e: &Expr, out: &mut Vec<(String, Expr)>) {
    e.walk(&mut |x| match x {
        Expr::VarRef { name, .. }
            if !name.starts_with('\0') && !out.iter().any(|(n, _)| n == name) =>
        {
            out.push((name.clone(), x.clone()));
        }
        _ => {}
    });
}
