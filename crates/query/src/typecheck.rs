//! Types of the selected expressions, as InfluxDB checks them before running
//! (`validateTypes`): references take their field's type (the widest across
//! the sources) or `tag`, functions give theirs, and a binary operation whose
//! operand types do not combine fails with InfluxDB's `type error: …`.

use sundial_influxql::select::{is_literal, DataType, Expr, Field};

use crate::error::{query_err, Result};
use crate::eval::binary;
use crate::seam::Schema;
use crate::value::{FieldType, Value};

fn data_type(t: FieldType) -> DataType {
    match t {
        FieldType::Float => DataType::Float,
        FieldType::Integer => DataType::Integer,
        FieldType::Unsigned => DataType::Unsigned,
        FieldType::String => DataType::String,
        FieldType::Boolean => DataType::Boolean,
    }
}

/// Writes each reference's type into the fields (`usage` → `usage::float`), as
/// InfluxDB's rewrite does: a field's type wins over a tag of the same name.
pub fn annotate(fields: &mut [Field], schema: &Schema) {
    for f in fields {
        annotate_expr(&mut f.expr, schema);
    }
}

fn annotate_expr(e: &mut Expr, schema: &Schema) {
    match e {
        Expr::VarRef { name, ty } if ty.is_none() => {
            *ty = match schema.field_type(name) {
                Some(t) => Some(data_type(t)),
                None if schema.has_tag(name) => Some(DataType::Tag),
                None => None,
            };
        }
        Expr::Binary { lhs, rhs, .. } => {
            annotate_expr(lhs, schema);
            annotate_expr(rhs, schema);
        }
        Expr::Paren(x) => annotate_expr(x, schema),
        Expr::Call { args, .. } => args.iter_mut().for_each(|a| annotate_expr(a, schema)),
        _ => {}
    }
}

/// A type as InfluxDB names it; `None` is its `unknown`.
type Ty = Option<DataType>;

fn name(t: Ty) -> &'static str {
    match t {
        None => "unknown",
        Some(DataType::Float) => "float",
        Some(DataType::Integer) => "integer",
        Some(DataType::Unsigned) => "unsigned",
        Some(DataType::String) => "string",
        Some(DataType::Boolean) => "boolean",
        Some(DataType::Tag) => "tag",
        Some(DataType::AnyField) => "field",
    }
}

fn zero(t: DataType) -> Value {
    match t {
        DataType::Float => Value::Float(0.0),
        DataType::Integer => Value::Integer(0),
        DataType::Unsigned => Value::Unsigned(0),
        DataType::String | DataType::Tag => Value::String(String::new()),
        DataType::Boolean => Value::Boolean(false),
        DataType::AnyField => Value::Null,
    }
}

/// Checks every field.
pub fn check(fields: &[Field]) -> Result<()> {
    for f in fields {
        eval_type(&f.expr).map_err(query_err)?;
    }
    Ok(())
}

fn numeric(t: Ty) -> bool {
    matches!(
        t,
        None | Some(DataType::Float) | Some(DataType::Integer) | Some(DataType::Unsigned)
    )
}

/// InfluxDB asks its function mapper first — which answers the first
/// argument's type for any function it does not know, math ones included —
/// and its math mapper (with the argument checks) only when that is unknown.
fn call_type(f: &str, args: &[Ty]) -> std::result::Result<Ty, String> {
    let arg0 = args.first().copied().flatten();
    let known = match f {
        "mean"
        | "median"
        | "integral"
        | "stddev"
        | "derivative"
        | "non_negative_derivative"
        | "moving_average" => Some(DataType::Float),
        "count" | "elapsed" => Some(DataType::Integer),
        _ => arg0,
    };
    if known.is_some() {
        return Ok(known);
    }
    math_type(f, args)
}

fn math_type(f: &str, args: &[Ty]) -> std::result::Result<Ty, String> {
    let arg0 = args.first().copied().flatten();
    let bad = |which: &str, t: Ty| {
        Err(format!(
            "invalid argument type for the {which} argument in {f}(): {}",
            name(t)
        ))
    };
    Ok(match f {
        "sin" | "cos" | "tan" | "atan" | "exp" | "log" | "ln" | "log2" | "log10" | "sqrt" => {
            if !numeric(arg0) {
                return bad("first", arg0);
            }
            Some(DataType::Float)
        }
        "asin" | "acos" => {
            if !matches!(arg0, None | Some(DataType::Float)) {
                return bad("first", arg0);
            }
            Some(DataType::Float)
        }
        "atan2" | "pow" => {
            if !numeric(arg0) {
                return bad("first", arg0);
            }
            let arg1 = args.get(1).copied().flatten();
            if !numeric(arg1) {
                return bad("second", arg1);
            }
            Some(DataType::Float)
        }
        "abs" | "floor" | "ceil" | "round" => {
            if !numeric(arg0) {
                return bad("first", arg0);
            }
            arg0
        }
        _ => None,
    })
}

fn eval_type(e: &Expr) -> std::result::Result<Ty, String> {
    Ok(match e {
        Expr::VarRef { ty, .. } => *ty,
        Expr::Paren(x) => eval_type(x)?,
        Expr::Integer(_) | Expr::Duration(_) | Expr::Time(_) => Some(DataType::Integer),
        Expr::Unsigned(_) => Some(DataType::Unsigned),
        Expr::Number(_) => Some(DataType::Float),
        Expr::Str(_) => Some(DataType::String),
        Expr::Bool(_) => Some(DataType::Boolean),
        Expr::Call { name, args } => {
            let types = args
                .iter()
                .map(eval_type)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            call_type(name, &types)?
        }
        Expr::Distinct(_) | Expr::Regex(_) | Expr::Wildcard(_) => None,
        Expr::Binary { op, lhs, rhs } => {
            let (l, r) = (eval_type(lhs)?, eval_type(rhs)?);
            let sym = op.symbol();
            let type_error = |m: String| Err(format!("type error: {e}: {m}"));
            let int_uint = matches!(
                (l, r),
                (Some(DataType::Unsigned), Some(DataType::Integer))
                    | (Some(DataType::Integer), Some(DataType::Unsigned))
            );
            if int_uint {
                let (u_side, i_side) = if l == Some(DataType::Unsigned) {
                    (lhs, rhs)
                } else {
                    (rhs, lhs)
                };
                if is_literal(u_side) {
                    return type_error(format!(
                        "cannot use {sym} with an integer and unsigned literal"
                    ));
                }
                if !is_literal(i_side) {
                    return type_error(format!(
                        "cannot use {sym} between an integer and unsigned, an explicit cast is required"
                    ));
                }
            }
            let (Some(lt), Some(rt)) = (l, r) else {
                return Ok(l.or(r));
            };
            match binary(sym, zero(lt), zero(rt)).field_type() {
                Some(t) => Some(data_type(t)),
                None => {
                    return type_error(format!("incompatible types: {} and {}", name(l), name(r)))
                }
            }
        }
    })
}
