//! The checks of each function call (`INFLUXQL-1.6.md` §5.2, step 4).

use super::{args_error, is_literal, Compiled, Result, MATH};
use crate::select::ast::{format_duration, Expr};

impl Compiled {
    /// A field argument of an aggregate or selector.
    fn symbol(&mut self, name: &str, arg: &Expr, in_binary: bool) -> Result<()> {
        match arg {
            Expr::VarRef { .. } => Ok(()),
            Expr::Wildcard(_) if in_binary => {
                Err(format!("unsupported expression with wildcard: {name}()"))
            }
            Expr::Regex(_) if in_binary => {
                Err(format!("unsupported expression with regex field: {name}()"))
            }
            Expr::Wildcard(_) | Expr::Regex(_) => {
                self.only_selectors = false;
                Ok(())
            }
            _ => Err(format!("expected field argument in {name}()")),
        }
    }

    pub(super) fn call(
        &mut self,
        e: &Expr,
        nested: bool,
        in_binary: bool,
        limit: i64,
    ) -> Result<()> {
        let Expr::Call { name, args } = e else {
            return Ok(());
        };
        let n = args.len();
        if MATH.contains(&name.as_str()) {
            let want = if matches!(name.as_str(), "atan2" | "pow" | "log") {
                2
            } else {
                1
            };
            if n != want {
                return Err(args_error(name, &want.to_string(), n));
            }
            for a in args.iter().filter(|a| !is_literal(a)) {
                self.expr(a, in_binary, limit)?;
            }
            return Ok(());
        }
        if !nested {
            self.calls.push(e.clone());
        }
        match name.as_str() {
            "max" | "min" | "first" | "last" | "count" | "sum" | "mean" | "median" | "mode"
            | "stddev" | "spread" => {
                if !matches!(name.as_str(), "max" | "min" | "first" | "last") {
                    self.only_selectors = false;
                }
                if n != 1 {
                    return Err(args_error(name, "1", n));
                }
                if name == "count" {
                    match &args[0] {
                        c @ Expr::Call { name: d, .. } if d == "distinct" => {
                            return self.call(c, true, in_binary, limit)
                        }
                        Expr::Distinct(_) => return Ok(()),
                        _ => {}
                    }
                }
                self.symbol(name, &args[0], in_binary)
            }
            "percentile" => {
                if n != 2 {
                    return Err(args_error(name, "2", n));
                }
                if !matches!(args[1], Expr::Integer(_) | Expr::Number(_)) {
                    return Err("expected float argument in percentile()".into());
                }
                self.symbol(name, &args[0], in_binary)
            }
            "sample" => {
                if n != 2 {
                    return Err(args_error(name, "2", n));
                }
                match args[1] {
                    Expr::Integer(k) if k <= 0 => {
                        return Err(format!("sample window must be greater than 1, got {k}"))
                    }
                    Expr::Integer(_) => {}
                    _ => return Err("expected integer argument in sample()".into()),
                }
                self.symbol(name, &args[0], in_binary)
            }
            "distinct" => {
                if n == 0 {
                    return Err("distinct function requires at least one argument".into());
                }
                if n > 1 {
                    return Err("distinct function can only have one argument".into());
                }
                if !matches!(args[0], Expr::VarRef { .. }) {
                    return Err("expected field argument in distinct()".into());
                }
                if !nested {
                    self.has_distinct = true;
                }
                self.only_selectors = false;
                Ok(())
            }
            "top" | "bottom" => self.top_bottom(name, args, limit),
            "derivative" | "non_negative_derivative" | "elapsed" => {
                self.only_selectors = false;
                if n == 0 || n > 2 {
                    return Err(args_error(name, "at least 1 but no more than 2", n));
                }
                if let Some(d) = args.get(1) {
                    positive_duration(d, || {
                        format!(
                            "second argument to {name} must be a duration, got {}",
                            go_type(d)
                        )
                    })?;
                }
                self.transform_arg(name, &args[0], limit)
            }
            "difference" | "non_negative_difference" | "cumulative_sum" => {
                self.only_selectors = false;
                if n != 1 {
                    return Err(args_error(name, "1", n));
                }
                self.transform_arg(name, &args[0], limit)
            }
            "moving_average" => {
                self.only_selectors = false;
                if n != 2 {
                    return Err(args_error(name, "2", n));
                }
                match &args[1] {
                    Expr::Integer(w) if *w <= 1 => {
                        return Err(format!(
                            "moving_average window must be greater than 1, got {w}"
                        ))
                    }
                    Expr::Integer(_) => {}
                    other => {
                        return Err(format!(
                            "second argument for moving_average must be an integer, got {}",
                            go_type(other)
                        ))
                    }
                }
                self.transform_arg(name, &args[0], limit)
            }
            "integral" => {
                self.only_selectors = false;
                if n == 0 || n > 2 {
                    return Err(args_error(name, "at least 1 but no more than 2", n));
                }
                if let Some(d) = args.get(1) {
                    positive_duration(d, || "second argument must be a duration".into())?;
                }
                self.symbol(name, &args[0], in_binary)
            }
            "holt_winters" | "holt_winters_with_fit" => {
                self.only_selectors = false;
                if n != 3 {
                    return Err(args_error(name, "3", n));
                }
                match args[1] {
                    Expr::Integer(k) if k <= 0 => {
                        return Err(format!(
                            "second arg to {name} must be greater than 0, got {k}"
                        ))
                    }
                    Expr::Integer(_) => {}
                    _ => return Err(format!("expected integer argument as second arg in {name}")),
                }
                match args[2] {
                    Expr::Integer(k) if k < 0 => {
                        return Err(format!("third arg to {name} cannot be negative, got {k}"))
                    }
                    Expr::Integer(_) => {}
                    _ => return Err(format!("expected integer argument as third arg in {name}")),
                }
                let Expr::Call { .. } = &args[0] else {
                    return Err(format!("must use aggregate function with {name}"));
                };
                if self.interval == 0 {
                    return Err(format!("{name} aggregate requires a GROUP BY interval"));
                }
                self.call(&args[0], true, in_binary, limit)
            }
            "exponential_moving_average"
            | "double_exponential_moving_average"
            | "triple_exponential_moving_average"
            | "relative_strength_index"
            | "triple_exponential_derivative"
            | "kaufmans_efficiency_ratio"
            | "kaufmans_adaptive_moving_average"
            | "chande_momentum_oscillator" => {
                self.only_selectors = false;
                self.trading_args(name, args)?;
                if let Expr::Call { .. } = &args[0] {
                    if self.interval == 0 {
                        return Err(format!("{name} aggregate requires a GROUP BY interval"));
                    }
                    return self.expr(&args[0], in_binary, limit);
                }
                if self.interval != 0 && !self.inherited_interval {
                    return Err(format!(
                        "aggregate function required inside the call to {name}"
                    ));
                }
                self.symbol(name, &args[0], in_binary)
            }
            _ => Err(format!("undefined function {name}()")),
        }
    }

    /// Period, hold and warm-up arguments of the technical-analysis functions.
    fn trading_args(&self, name: &str, args: &[Expr]) -> Result<()> {
        let n = args.len();
        let kaufmans = name.starts_with("kaufmans_");
        let max = if kaufmans { 3 } else { 4 };
        if !(2..=max).contains(&n) {
            return Err(args_error(
                name,
                &format!("at least 2 but no more than {max}"),
                n,
            ));
        }
        match args[1] {
            Expr::Integer(p) if p < 1 => {
                return Err(format!("{name} period must be greater than or equal to 1"))
            }
            Expr::Integer(_) => {}
            _ => return Err(format!("{name} period must be an integer")),
        }
        if let Some(h) = args.get(2) {
            let Expr::Integer(h) = *h else {
                return Err(format!("{name} hold period must be an integer"));
            };
            if name == "triple_exponential_derivative" && h < 1 && h != -1 {
                return Err(format!(
                    "{name} hold period must be greater than or equal to 1"
                ));
            }
            if h < 0 && h != -1 {
                return Err(format!(
                    "{name} hold period must be greater than or equal to 0"
                ));
            }
        }
        if let Some(w) = args.get(3) {
            let Expr::Str(w) = w else {
                return Err(format!("{name} warmup type must be a string"));
            };
            let ok: &[&str] = if name == "chande_momentum_oscillator" {
                &["none", "exponential", "simple"]
            } else {
                &["exponential", "simple"]
            };
            if !ok.contains(&w.as_str()) {
                let list: Vec<String> = ok.iter().map(|o| format!("'{o}'")).collect();
                return Err(format!(
                    "{name} warmup type must be one of: {}",
                    list.join(" ")
                ));
            }
        }
        Ok(())
    }

    /// The argument of a transformation: an aggregate (which needs a GROUP BY
    /// interval) or a field (which must not have one of its own).
    fn transform_arg(&mut self, name: &str, arg: &Expr, limit: i64) -> Result<()> {
        if let Expr::Call { .. } = arg {
            if self.interval == 0 {
                return Err(format!("{name} aggregate requires a GROUP BY interval"));
            }
            return self.call(arg, true, false, limit);
        }
        if self.interval != 0 && !self.inherited_interval {
            return Err(format!(
                "aggregate function required inside the call to {name}"
            ));
        }
        self.symbol(name, arg, false)
    }

    fn top_bottom(&mut self, name: &str, args: &[Expr], limit: i64) -> Result<()> {
        if let Some(prev) = &self.top_bottom {
            return Err(format!(
                "selector function {prev}() cannot be combined with other functions"
            ));
        }
        let n = args.len();
        if n < 2 {
            return Err(args_error(name, "at least 2", n));
        }
        let Expr::Integer(k) = args[n - 1] else {
            return Err(format!(
                "expected integer as last argument in {name}(), found {}",
                args[n - 1]
            ));
        };
        if k <= 0 {
            return Err(format!("limit ({k}) in {name} function must be at least 1"));
        }
        if limit > 0 && k > limit {
            return Err(format!(
                "limit ({k}) in {name} function can not be larger than the LIMIT ({limit}) in the select statement"
            ));
        }
        if !matches!(args[0], Expr::VarRef { .. }) {
            return Err(format!(
                "expected first argument to be a field in {name}(), found {}",
                args[0]
            ));
        }
        for a in &args[1..n - 1] {
            if !matches!(a, Expr::VarRef { .. }) {
                return Err(format!(
                    "only fields or tags are allowed in {name}(), found {a}"
                ));
            }
        }
        self.top_bottom = Some(name.to_string());
        Ok(())
    }
}

/// A duration argument must be a positive duration literal; `not_one` words the
/// error for anything else.
fn positive_duration(d: &Expr, not_one: impl FnOnce() -> String) -> Result<()> {
    match d {
        Expr::Duration(v) if *v <= 0 => Err(format!(
            "duration argument must be positive, got {}",
            format_duration(*v)
        )),
        Expr::Duration(_) => Ok(()),
        _ => Err(not_one()),
    }
}

/// The Go type name InfluxDB prints for an expression (`%T`).
pub(crate) fn go_type(e: &Expr) -> &'static str {
    match e {
        Expr::VarRef { .. } => "*influxql.VarRef",
        Expr::Call { .. } => "*influxql.Call",
        Expr::Distinct(_) => "*influxql.Distinct",
        Expr::Binary { .. } => "*influxql.BinaryExpr",
        Expr::Paren(_) => "*influxql.ParenExpr",
        Expr::Integer(_) => "*influxql.IntegerLiteral",
        Expr::Unsigned(_) => "*influxql.UnsignedLiteral",
        Expr::Number(_) => "*influxql.NumberLiteral",
        Expr::Str(_) => "*influxql.StringLiteral",
        Expr::Bool(_) => "*influxql.BooleanLiteral",
        Expr::Duration(_) => "*influxql.DurationLiteral",
        Expr::Time(_) => "*influxql.TimeLiteral",
        Expr::Regex(_) => "*influxql.RegexLiteral",
        Expr::Wildcard(_) => "*influxql.Wildcard",
    }
}
