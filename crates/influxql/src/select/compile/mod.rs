//! What InfluxDB 1.6 checks of a SELECT before running it (`query.Compile`), with
//! its error texts, and what the check learns on the way: the GROUP BY interval,
//! the function calls, whether raw fields are selected. `INFLUXQL-1.6.md` §5.2.
//!
//! The WHERE clause's comparisons with `time` are set aside here: `condition.rs`
//! turns them into the time range.

mod calls;
mod reduce;

pub(crate) use calls::go_type;
pub use reduce::{math, reduce, reduce_with};

use super::ast::{Expr, Fill, SelectStatement, Source};

/// The GROUP BY time() offset.
#[derive(Debug, Clone, PartialEq)]
pub enum Offset {
    Duration(i64),
    /// `now()`: the query's start time, resolved when it runs.
    Now,
}

/// What compiling a SELECT found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Compiled {
    /// GROUP BY time(interval[, offset]); an interval of 0 means none.
    pub interval: i64,
    pub offset: Option<Offset>,
    /// The interval came from the enclosing query.
    pub inherited_interval: bool,
    /// Function calls, in field order (math functions are not counted).
    pub calls: Vec<Expr>,
    /// Raw fields or tags are selected.
    pub has_auxiliary: bool,
    /// Every call is a selector.
    pub only_selectors: bool,
    pub top_bottom: Option<String>,
    pub has_distinct: bool,
    /// The name of the time column (`SELECT time AS t`).
    pub time_alias: Option<String>,
    pub ascending: bool,
}

pub(super) type Result<T> = std::result::Result<T, String>;

/// The math functions (per row, not aggregates).
pub const MATH: &[&str] = &[
    "abs", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "exp", "log", "ln", "log2",
    "log10", "sqrt", "pow", "floor", "ceil", "round",
];

/// Checks `stmt` as InfluxDB's compiler does; the error text is InfluxDB's.
pub fn compile(stmt: &SelectStatement) -> Result<Compiled> {
    compile_in(stmt, None)
}

/// Checks a subquery of a statement that compiled to `parent` (it may inherit
/// the parent's GROUP BY interval).
pub fn compile_subquery(stmt: &SelectStatement, parent: &Compiled) -> Result<Compiled> {
    compile_in(stmt, Some(parent))
}

fn compile_in(stmt: &SelectStatement, parent: Option<&Compiled>) -> Result<Compiled> {
    let mut c = Compiled {
        only_selectors: true,
        ascending: stmt.sort.first().is_none_or(|s| s.ascending),
        ..Compiled::default()
    };
    if let Some(cond) = &stmt.condition {
        validate_condition(cond)?;
    }
    for d in &stmt.dimensions {
        c.dimension(&reduce(d.clone()))?;
    }
    if c.interval == 0 {
        if let Some(p) = parent {
            if p.interval != 0 {
                c.interval = p.interval;
                c.offset.clone_from(&p.offset);
                c.inherited_interval = true;
            }
        }
    }
    let fill = match parent {
        // A subquery with an interval and no fill fills nothing.
        Some(_) if c.interval != 0 && !c.inherited_interval && stmt.fill == Fill::Null => {
            Fill::None
        }
        _ => stmt.fill.clone(),
    };
    let limit = stmt.limit;
    let mut fields = 0;
    for f in &stmt.fields {
        if let Expr::VarRef { name, .. } = &f.expr {
            if name == "time" {
                c.time_alias.clone_from(&f.alias);
                continue;
            }
        }
        fields += 1;
        let e = reduce(f.expr.clone());
        c.expr(&e, false, limit)?;
    }
    c.validate_fields(fields, &fill)?;
    for s in &stmt.sources {
        if let Source::Subquery(q) = s {
            if !q.sort.is_empty() && q.sort.first().is_none_or(|s| s.ascending) != c.ascending {
                return Err(
                    "subqueries must be ordered in the same direction as the query itself".into(),
                );
            }
            compile_in(q, Some(&c))?;
        }
    }
    Ok(c)
}

/// A literal (number, string, boolean, duration, time).
pub fn is_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Integer(_)
            | Expr::Time(_)
            | Expr::Unsigned(_)
            | Expr::Number(_)
            | Expr::Str(_)
            | Expr::Bool(_)
            | Expr::Duration(_)
    )
}

/// The calls a WHERE clause may hold: math functions with the right arity. Its
/// comparisons with `time` are set aside (they make the time range).
fn validate_condition(e: &Expr) -> Result<()> {
    match e {
        Expr::Binary { lhs, rhs, .. } if lhs.is_time_ref() || rhs.is_time_ref() => Ok(()),
        Expr::Binary { lhs, rhs, .. } => {
            validate_condition(lhs)?;
            validate_condition(rhs)
        }
        Expr::Paren(x) => validate_condition(x),
        // Evaluated to the query's start time before this check.
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(()),
        Expr::Call { name, args } => {
            if !MATH.contains(&name.as_str()) {
                return Err(format!("invalid function call in condition: {e}"));
            }
            let want = if matches!(name.as_str(), "atan2" | "pow") {
                2
            } else {
                1
            };
            if args.len() != want {
                return Err(format!(
                    "invalid number of arguments for {name}, expected {want}, got {}",
                    args.len()
                ));
            }
            args.iter().try_for_each(validate_condition)
        }
        _ => Ok(()),
    }
}

pub(super) fn args_error(name: &str, want: &str, got: usize) -> String {
    format!("invalid number of arguments for {name}, expected {want}, got {got}")
}

impl Compiled {
    fn dimension(&mut self, d: &Expr) -> Result<()> {
        match d {
            Expr::VarRef { name, .. } if name.eq_ignore_ascii_case("time") => {
                Err("time() is a function and expects at least one argument".into())
            }
            Expr::VarRef { .. } | Expr::Wildcard(_) | Expr::Regex(_) => Ok(()),
            Expr::Call { name, .. } if name != "time" => {
                Err("only time() calls allowed in dimensions".into())
            }
            Expr::Call { args, .. } => {
                if args.is_empty() || args.len() > 2 {
                    return Err("time dimension expected 1 or 2 arguments".into());
                }
                let Expr::Duration(interval) = args[0] else {
                    return Err("time dimension must have duration argument".into());
                };
                if self.interval != 0 {
                    return Err("multiple time dimensions not allowed".into());
                }
                self.interval = interval;
                if let Some(off) = args.get(1) {
                    self.offset = Some(match off {
                        Expr::Duration(o) => {
                            Offset::Duration(if interval == 0 { 0 } else { o % interval })
                        }
                        Expr::Call { name, args } if name == "now" => {
                            if !args.is_empty() {
                                return Err(
                                    "time dimension offset now() function requires no arguments"
                                        .into(),
                                );
                            }
                            Offset::Now
                        }
                        Expr::Call { .. } => {
                            return Err("time dimension offset function must be now()".into())
                        }
                        _ => return Err("time dimension offset must be duration or now()".into()),
                    });
                }
                Ok(())
            }
            _ => Err("only time and tag dimensions allowed".into()),
        }
    }

    pub(super) fn expr(&mut self, e: &Expr, in_binary: bool, limit: i64) -> Result<()> {
        match e {
            Expr::VarRef { .. } => {
                self.has_auxiliary = true;
                Ok(())
            }
            Expr::Wildcard(_) if in_binary => {
                Err("unable to use wildcard in a binary expression".into())
            }
            Expr::Regex(_) if in_binary => Err("unable to use regex in a binary expression".into()),
            Expr::Wildcard(_) | Expr::Regex(_) => {
                self.has_auxiliary = true;
                Ok(())
            }
            Expr::Distinct(v) => self.call(
                &Expr::Call {
                    name: "distinct".into(),
                    args: vec![Expr::VarRef {
                        name: v.clone(),
                        ty: None,
                    }],
                },
                false,
                in_binary,
                limit,
            ),
            Expr::Binary { lhs, rhs, .. } => match (is_literal(lhs), is_literal(rhs)) {
                (true, true) => Err("cannot perform a binary expression on two literals".into()),
                (true, false) => self.expr(rhs, true, limit),
                (false, true) => self.expr(lhs, true, limit),
                (false, false) => {
                    self.expr(lhs, true, limit)?;
                    self.expr(rhs, true, limit)
                }
            },
            Expr::Paren(x) => self.expr(x, in_binary, limit),
            Expr::Call { .. } => self.call(e, false, in_binary, limit),
            _ => Err("field must contain at least one variable".into()),
        }
    }

    fn validate_fields(&self, fields: usize, fill: &Fill) -> Result<()> {
        if fields == 0 {
            return Err("at least 1 non-time field must be queried".into());
        }
        let calls = self.calls.len();
        if calls > 1 {
            if let Some(tb) = &self.top_bottom {
                return Err(format!(
                    "selector function {tb}() cannot be combined with other functions"
                ));
            }
        } else if calls == 0 {
            match fill {
                Fill::None => return Err("fill(none) must be used with a function".into()),
                Fill::Linear => return Err("fill(linear) must be used with a function".into()),
                _ => {}
            }
            if self.interval != 0 && !self.inherited_interval {
                return Err("GROUP BY requires at least one aggregate function".into());
            }
        }
        if self.has_distinct && (calls != 1 || self.has_auxiliary) {
            return Err(
                "aggregate function distinct() cannot be combined with other functions or fields"
                    .into(),
            );
        }
        if self.has_auxiliary {
            if !self.only_selectors {
                return Err("mixing aggregate and non-aggregate queries is not supported".into());
            }
            if calls > 1 {
                return Err(
                    "mixing multiple selector functions with tags or fields is not supported"
                        .into(),
                );
            }
        }
        Ok(())
    }
}
