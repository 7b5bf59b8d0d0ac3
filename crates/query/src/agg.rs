//! Aggregate queries: the points of each call's field bucketed by window, the
//! function applied per window, the rows assembled (calls combined by window,
//! selector times and auxiliary fields kept where InfluxDB keeps them), then
//! fill() and LIMIT/OFFSET.

use std::collections::BTreeMap;

use sundial_influxql::select::{DataType, Expr, Fill};

use crate::error::{query_err, Result};
use crate::eval::{eval, Row};
use crate::exec::Group;
use crate::functions::{apply, Out, Point};
use crate::plan::Plan;
use crate::plan::MIN_TIME;
use crate::raw::{eval_field, for_each_passing_row};
use crate::result::Row as OutRow;
use crate::transform::{integral, transform, TPoint};
use crate::value::Value;
use crate::window::{offset_at, window};

const MATH: &[&str] = &[
    "abs", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "exp", "log", "ln", "log2",
    "log10", "sqrt", "pow", "floor", "ceil", "round",
];

/// Functions that pick points (their time is the point's when alone and
/// without GROUP BY time()).
const SELECTORS: &[&str] = &[
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
enum Kind {
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
struct Call {
    /// The function applied per window (the inner one for `OfAgg`).
    name: String,
    field: String,
    ty: Option<DataType>,
    args: Vec<f64>,
    /// top()/bottom() tag arguments.
    tags: Vec<String>,
    kind: Kind,
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
fn extract(e: &Expr, interval: i64, calls: &mut Vec<Call>) -> Result<Expr> {
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
struct CallRow<'a> {
    results: &'a [Value],
    aux_names: &'a [String],
    aux: &'a [Value],
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

/// Points into windows as InfluxDB's reduce does: in output order, a window
/// taken from its first point and holding every point up to its end (across
/// a DST change the window a point opens can differ from its own window).
fn bucket(plan: &Plan, mut pts: Vec<Point>) -> BTreeMap<i64, Vec<Point>> {
    pts.sort_by_key(|p| (p.time, p.series));
    if !plan.ascending {
        pts.reverse();
    }
    let mut out: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
    let mut current: Option<(i64, i64)> = None;
    for p in pts {
        let inside = current.is_some_and(|(s, e)| p.time >= s && p.time < e);
        if !inside {
            current = Some(window(plan, p.time));
        }
        let start = current.map_or(p.time, |(s, _)| s);
        out.entry(start).or_default().push(p);
    }
    out
}

fn aux_refs(e: &Expr, out: &mut Vec<(String, Expr)>) {
    match e {
        Expr::VarRef { name, .. }
            if !name.starts_with('\0') && !out.iter().any(|(n, _)| n == name) =>
        {
            out.push((name.clone(), e.clone()));
        }
        Expr::Binary { lhs, rhs, .. } => {
            aux_refs(lhs, out);
            aux_refs(rhs, out);
        }
        Expr::Paren(x) => aux_refs(x, out),
        Expr::Call { args, .. } => args.iter().for_each(|a| aux_refs(a, out)),
        _ => {}
    }
}

/// Whether any call reads an earlier window (a transformation of an aggregate).
pub fn needs_previous_window(plan: &Plan) -> bool {
    let mut calls = Vec::new();
    for f in &plan.fields {
        if extract(&f.expr, plan.interval, &mut calls).is_err() {
            return false;
        }
    }
    calls.iter().any(|c| matches!(c.kind, Kind::OfAgg { .. }))
}

pub fn run(plan: &Plan, g: &Group) -> Result<Vec<OutRow>> {
    let mut calls = Vec::new();
    let exprs: Vec<Expr> = plan
        .fields
        .iter()
        .map(|f| extract(&f.expr, plan.interval, &mut calls))
        .collect::<Result<_>>()?;
    // Auxiliary fields: references outside any call (`max(v), host`,
    // `max(v) + other`), read from the selected point.
    let mut aux_fields: Vec<(String, Expr)> = Vec::new();
    for e in &exprs {
        aux_refs(e, &mut aux_fields);
    }
    let aux_names: Vec<String> = aux_fields.iter().map(|(n, _)| n.clone()).collect();

    // Points of each call.
    let mut points: Vec<Vec<Point>> = calls.iter().map(|_| Vec::new()).collect();
    let drives = |n: &str| calls.iter().any(|c| c.field == n);
    for (si, s) in g.series.iter().enumerate() {
        for_each_passing_row(plan, s, &drives, |t, row| {
            for (ci, c) in calls.iter().enumerate() {
                let v = row.typed(&c.field, c.ty);
                if v.is_null() || matches!(c.ty, Some(DataType::Tag)) {
                    continue;
                }
                // Only a transformation of an aggregate reads the window before.
                if t < plan.min && !matches!(c.kind, Kind::OfAgg { .. }) {
                    continue;
                }
                let aux = aux_fields
                    .iter()
                    .map(|(_, e)| eval_field(e, row, plan))
                    .collect();
                points[ci].push(Point {
                    time: t,
                    value: v,
                    aux,
                    series: si,
                });
            }
        });
    }
    let buckets: Vec<BTreeMap<i64, Vec<Point>>> =
        points.into_iter().map(|p| bucket(plan, p)).collect();
    for (c, b) in calls.iter().zip(&buckets) {
        check_types(c, b)?;
    }

    let keep_point_time = plan.interval == 0
        && calls.len() == 1
        && SELECTORS.contains(&calls[0].name.as_str())
        && calls[0].kind == Kind::Window;
    let window_time = |w: i64| {
        if plan.interval == 0 && plan.open_start {
            0
        } else {
            w
        }
    };
    // Each call's points in output order, LIMIT/OFFSET applied.
    let mut lists: Vec<Vec<(i64, Out)>> = Vec::with_capacity(calls.len());
    for (c, b) in calls.iter().zip(buckets) {
        let list = answer(plan, g, c, b, keep_point_time, &window_time)?;
        let list: Vec<(i64, Out)> = list.into_iter().skip(plan.offset_rows).collect();
        lists.push(if plan.limit > 0 {
            list.into_iter().take(plan.limit).collect()
        } else {
            list
        });
    }

    // Rows: the calls' points merged by time (InfluxDB's multi-cursor).
    let mut pos = vec![0usize; lists.len()];
    let mut rows = Vec::new();
    loop {
        let next = lists
            .iter()
            .zip(&pos)
            .filter_map(|(l, &p)| l.get(p).map(|(t, _)| *t));
        let time = if plan.ascending {
            next.min()
        } else {
            next.max()
        };
        let Some(time) = time else { break };
        let mut vals = vec![Value::Null; lists.len()];
        let mut aux: &[Value] = &[];
        for (i, l) in lists.iter().enumerate() {
            if let Some((t, o)) = l.get(pos[i]) {
                if *t == time {
                    vals[i] = o.value.clone();
                    if aux.is_empty() {
                        aux = &o.aux;
                    }
                    pos[i] += 1;
                }
            }
        }
        let row = CallRow {
            results: &vals,
            aux_names: &aux_names,
            aux,
        };
        let values: Vec<Value> = exprs.iter().map(|e| eval(e, &row, &plan.regexes)).collect();
        rows.push(OutRow { time, values });
    }
    Ok(rows)
}

/// One call's points over the group, in output order.
fn answer(
    plan: &Plan,
    g: &Group,
    c: &Call,
    buckets: BTreeMap<i64, Vec<Point>>,
    keep_point_time: bool,
    window_time: &dyn Fn(i64) -> i64,
) -> Result<Vec<(i64, Out)>> {
    let own_time = keep_point_time || matches!(c.name.as_str(), "top" | "bottom" | "sample");
    // Every point of the group in output order, for the streaming functions.
    let all_points = |buckets: BTreeMap<i64, Vec<Point>>| {
        let mut pts: Vec<Point> = buckets.into_values().flatten().collect();
        pts.sort_by_key(|p| (p.time, p.series));
        if !plan.ascending {
            pts.reverse();
        }
        pts.into_iter()
            .map(|p| TPoint {
                time: p.time,
                value: p.value,
            })
            .collect::<Vec<_>>()
    };
    let timed = |v: Vec<TPoint>| -> Vec<(i64, Out)> {
        v.into_iter()
            .map(|p| {
                (
                    p.time,
                    Out {
                        time: Some(p.time),
                        value: p.value,
                        aux: Vec::new(),
                    },
                )
            })
            .collect()
    };
    let in_order = |m: BTreeMap<i64, Vec<Out>>| -> Vec<(i64, Out)> {
        let mut list: Vec<(i64, Out)> = m
            .into_iter()
            .flat_map(|(w, outs)| outs.into_iter().map(move |o| (w, o)))
            .collect();
        if !plan.ascending {
            list.reverse();
        }
        list
    };
    match &c.kind {
        Kind::Raw { arg } => Ok(timed(transform(
            &c.name,
            &all_points(buckets),
            *arg,
            plan.ascending,
        ))),
        Kind::Integral { unit } => {
            let w = |t: i64| window(plan, t);
            let win: Option<&dyn Fn(i64) -> (i64, i64)> =
                if plan.interval > 0 { Some(&w) } else { None };
            let pts = all_points(buckets);
            let float = pts
                .first()
                .is_some_and(|p| matches!(p.value, Value::Float(_)));
            let mut out = integral(&pts, *unit, plan.ascending, win);
            if plan.interval == 0 && !float {
                for p in &mut out {
                    p.time = window_time(plan.min);
                }
            }
            Ok(timed(out))
        }
        Kind::OfAgg { transform: t, arg } => {
            if plan.open_start {
                // InfluxDB reads from MinTime − interval, which overflows: nothing.
                return Ok(Vec::new());
            }
            let first_window = window(plan, plan.min).0;
            let read_from = if t == "cumulative_sum" {
                plan.min
            } else {
                plan.read_min
            };
            let mut per_window = windows(plan, g, c, buckets)?;
            per_window.retain(|w, _| *w >= window(plan, read_from).0);
            let list = fill_walk(plan, &c.name, in_order(per_window), read_from);
            let seq: Vec<TPoint> = list
                .into_iter()
                .filter(|(_, o)| !o.value.is_null())
                .map(|(w, o)| TPoint {
                    time: w,
                    value: o.value,
                })
                .collect();
            Ok(timed(transform(t, &seq, *arg, plan.ascending))
                .into_iter()
                .filter(|(t, _)| *t >= first_window)
                .collect())
        }
        Kind::Window | Kind::CountDistinct => {
            let per_window = windows(plan, g, c, buckets)?;
            let mut list = in_order(per_window);
            if plan.interval > 0 {
                // A selector's row belongs to the window of the point it
                // picked (which differs from the window its first point
                // opened only across a DST change).
                for (w, o) in &mut list {
                    if let Some(t) = o.time {
                        *w = window(plan, t).0;
                    }
                }
            }
            let list = if unfilled(&c.name) || c.kind == Kind::CountDistinct {
                list
            } else {
                fill_walk(plan, &c.name, list, plan.min)
            };
            Ok(list
                .into_iter()
                .map(|(w, o)| {
                    let t = match o.time {
                        Some(t) if own_time => t,
                        _ => window_time(w),
                    };
                    (t, o)
                })
                .collect())
        }
    }
}

/// The call's function applied to each window's points.
fn windows(
    _plan: &Plan,
    g: &Group,
    c: &Call,
    buckets: BTreeMap<i64, Vec<Point>>,
) -> Result<BTreeMap<i64, Vec<Out>>> {
    let mut m = BTreeMap::new();
    for (w, mut pts) in buckets {
        if !c.tags.is_empty() {
            pts = best_per_tags(g, c, pts);
        }
        let mut out = apply(
            if c.kind == Kind::CountDistinct {
                "distinct"
            } else {
                &c.name
            },
            &c.args,
            &mut pts,
        )?;
        if c.kind == Kind::CountDistinct {
            out = vec![Out {
                time: None,
                value: Value::Integer(out.len() as i64),
                aux: Vec::new(),
            }];
        }
        if !out.is_empty() {
            m.insert(w, out);
        }
    }
    Ok(m)
}

/// top(v, tag…, N): the largest (bottom: smallest) point per value of the tag
/// arguments first, the earliest on ties.
fn best_per_tags(g: &Group, c: &Call, pts: Vec<Point>) -> Vec<Point> {
    let key = |p: &Point| -> Vec<String> {
        let tags = &g.series[p.series].tags;
        c.tags
            .iter()
            .map(|k| {
                tags.iter()
                    .find(|(tk, _)| tk == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut best: BTreeMap<Vec<String>, Point> = BTreeMap::new();
    for p in pts {
        let k = key(&p);
        match best.get(&k) {
            Some(b) => {
                let ord = p.value.cmp_same(&b.value);
                let better = if c.name == "top" {
                    ord.is_gt()
                } else {
                    ord.is_lt()
                };
                if better || (ord.is_eq() && p.time < b.time) {
                    best.insert(k, p);
                }
            }
            None => {
                best.insert(k, p);
            }
        }
    }
    best.into_values().collect()
}

/// The types each function accepts; InfluxDB's error (naming its Go
/// iterator type) when not.
fn check_types(c: &Call, b: &BTreeMap<i64, Vec<Point>>) -> Result<()> {
    let Some(p) = b.values().flat_map(|v| v.first()).next() else {
        return Ok(());
    };
    let numeric = matches!(
        p.value,
        Value::Float(_) | Value::Integer(_) | Value::Unsigned(_)
    );
    let ok = match c.name.as_str() {
        "count" | "first" | "last" | "distinct" | "mode" | "sample" | "elapsed" => true,
        "min" | "max" => numeric || matches!(p.value, Value::Boolean(_)),
        _ => numeric,
    };
    if ok {
        return Ok(());
    }
    let ty = match p.value {
        Value::String(_) => "string",
        _ => "boolean",
    };
    Err(query_err(format!(
        "unsupported {} iterator type: *query.{ty}InterruptIterator",
        c.name
    )))
}

/// Calls whose points are never filled (InfluxDB reads them without its fill
/// iterator).
fn unfilled(name: &str) -> bool {
    matches!(name, "distinct" | "top" | "bottom" | "sample" | "integral")
}

/// fill(), as InfluxDB's fill iterator walks a series' windows in output
/// order: from the window of `min` (or of the first point when the range has
/// no start) to the window of the end, a window without a point filled with a
/// value of the call's type; the step corrected where the `tz()` offset
/// changes.
fn fill_walk(plan: &Plan, name: &str, list: Vec<(i64, Out)>, min: i64) -> Vec<(i64, Out)> {
    if plan.interval == 0 || plan.fill == Fill::None || list.is_empty() {
        return list;
    }
    let d = plan.interval;
    let asc = plan.ascending;
    let open = min <= MIN_TIME;
    let (start, end) = if asc {
        (
            if open { MIN_TIME } else { window(plan, min).0 },
            window(plan, plan.max).0,
        )
    } else {
        (
            window(plan, plan.max).0,
            if open { MIN_TIME } else { window(plan, min).0 },
        )
    };
    let kind = list
        .iter()
        .map(|(_, o)| o.value.clone())
        .find(|v| !v.is_null());
    let mut expected = if start == MIN_TIME {
        window(plan, list[0].0).0
    } else {
        start
    };
    let mut offset = offset_at(plan, expected);
    let mut out = Vec::with_capacity(list.len());
    let mut prev: Option<(i64, Value)> = None;
    let mut it = list.into_iter().peekable();
    loop {
        let construct = match it.peek() {
            None => {
                if asc {
                    expected <= end
                } else {
                    expected >= end && end != MIN_TIME
                }
            }
            Some((t, _)) => {
                if asc {
                    *t > expected
                } else {
                    *t < expected
                }
            }
        };
        if construct {
            let value = match &plan.fill {
                Fill::Null if name == "count" => Value::Integer(0),
                Fill::Integer(i) => cast_fill(Value::Integer(*i), kind.as_ref()),
                Fill::Float(f) => cast_fill(Value::Float(*f), kind.as_ref()),
                Fill::Previous => prev.as_ref().map(|p| p.1.clone()).unwrap_or_default(),
                Fill::Linear => match (&prev, it.peek()) {
                    (Some((pt, pv)), Some((nt, next))) => {
                        linear(expected / d, pt / d, nt / d, pv, &next.value)
                    }
                    _ => Value::Null,
                },
                Fill::Null | Fill::None => Value::Null,
            };
            out.push((
                expected,
                Out {
                    time: None,
                    value,
                    aux: Vec::new(),
                },
            ));
        } else if let Some((t, o)) = it.next() {
            prev = Some((t, o.value.clone()));
            out.push((t, o));
        } else {
            break;
        }
        expected += if asc { d } else { -d };
        if plan.tz.is_some() {
            let now = offset_at(plan, expected - 1);
            if now != offset {
                let diff = offset - now;
                if diff.abs() < d {
                    expected += diff;
                }
                offset = now;
            }
        }
    }
    out
}

/// A fill(N) value in the call's type (`1.5` fills an integer column with 1).
fn cast_fill(v: Value, kind: Option<&Value>) -> Value {
    match (kind, v) {
        (Some(Value::Integer(_)), Value::Float(f)) => Value::Integer(f as i64),
        (Some(Value::Float(_)), Value::Integer(i)) => Value::Float(i as f64),
        (Some(Value::Unsigned(_)), Value::Integer(i)) => Value::Unsigned(i as u64),
        (Some(Value::Unsigned(_)), Value::Float(f)) => Value::Unsigned(f as u64),
        (Some(Value::String(_)), _) => Value::String(String::new()),
        (Some(Value::Boolean(_)), _) => Value::Boolean(false),
        (_, v) => v,
    }
}

/// fill(linear): the value at `x` on the line through `(x0, v0)` and
/// `(x1, v1)` (times already divided by the interval, as InfluxDB does).
fn linear(x: i64, x0: i64, x1: i64, v0: &Value, v1: &Value) -> Value {
    if x1 == x0 {
        return Value::Null;
    }
    let dx = (x - x0) as f64;
    match (v0, v1) {
        (Value::Integer(a), Value::Integer(b)) => {
            let m = b.wrapping_sub(*a) as f64 / (x1 - x0) as f64;
            Value::Integer((m * dx + *a as f64) as i64)
        }
        (Value::Unsigned(a), Value::Unsigned(b)) => {
            let m = b.wrapping_sub(*a) as f64 / (x1 - x0) as f64;
            Value::Unsigned((m * dx + *a as f64) as u64)
        }
        (Value::Float(a), Value::Float(b)) => {
            let m = (b - a) / (x1 - x0) as f64;
            Value::Float(m * dx + a)
        }
        _ => Value::Null,
    }
}
