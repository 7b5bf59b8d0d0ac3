//! Aggregate queries: the points of each call's field bucketed by window, the
//! function applied per window, the rows assembled (calls combined by window,
//! selector times and auxiliary fields kept where InfluxDB keeps them), then
//! fill() and LIMIT/OFFSET.

mod answer;
mod calls;
mod fill;

use std::collections::BTreeMap;

use sundial_influxql::select::{DataType, Expr};

use self::answer::{answer, bucket, check_types, window_answers};
use self::calls::{aux_refs, extract, Call, CallRow, Kind, SELECTORS};
use crate::error::Result;
use crate::eval::eval;
use crate::exec::Group;
use crate::functions::{Out, Point};
use crate::partial::{Partial, SeriesPartials};
use crate::plan::Plan;
use crate::raw::{eval_field, for_each_passing_row};
use crate::result::Row as OutRow;
use crate::value::Value;

/// The calls of a statement, its field expressions with the calls replaced,
/// and its auxiliary fields (references outside any call: `max(v), host`,
/// `max(v) + other`, read from the selected point).
#[derive(Debug, Clone)]
pub struct Shape {
    calls: Vec<Call>,
    exprs: Vec<Expr>,
    aux: Vec<(String, Expr)>,
}

impl Shape {
    /// Read once per statement (its groups share it).
    pub fn of(plan: &Plan) -> Result<Shape> {
        let mut calls = Vec::new();
        let exprs: Vec<Expr> = plan
            .fields
            .iter()
            .map(|f| extract(&f.expr, plan.interval, &mut calls))
            .collect::<Result<_>>()?;
        let mut aux = Vec::new();
        for e in &exprs {
            aux_refs(e, &mut aux);
        }
        Ok(Shape { calls, exprs, aux })
    }

    /// Whether a call reads the window before the first (a transformation of
    /// an aggregate).
    pub fn needs_previous_window(&self) -> bool {
        self.calls
            .iter()
            .any(|c| matches!(c.kind, Kind::OfAgg { .. }))
    }
}

/// Whether the one selector keeps its point's time (alone, no GROUP BY time).
fn keeps_point_time(plan: &Plan, calls: &[Call]) -> bool {
    plan.interval == 0
        && calls.len() == 1
        && SELECTORS.contains(&calls[0].name.as_str())
        && calls[0].kind == Kind::Window
}

/// The time of a window's row: its start, or 0 when there is no GROUP BY time
/// and no lower bound (InfluxDB's MinTime written as the epoch).
fn window_time(plan: &Plan) -> impl Fn(i64) -> i64 + '_ {
    move |w| {
        if plan.interval == 0 && plan.open_start {
            0
        } else {
            w
        }
    }
}

pub fn run(plan: &Plan, sh: &Shape, g: &Group) -> Result<Vec<OutRow>> {
    let calls = &sh.calls;
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
                let aux = sh
                    .aux
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
    let keep = keeps_point_time(plan, calls);
    let wt = window_time(plan);
    let mut lists = Vec::with_capacity(calls.len());
    for (c, b) in calls.iter().zip(buckets) {
        lists.push(answer(plan, g, c, b, keep, &wt)?);
    }
    Ok(rows(plan, sh, lists))
}

/// Whether the statement can be answered from partial aggregates (the stores
/// then send a few numbers per window and series, whole blocks answered from
/// their statistics): only count/sum/mean/min/max/first/last of numeric
/// fields, no auxiliary fields, a condition on tags alone, no `tz()`, no
/// subquery. The fields to read when it can.
pub fn pushdown(plan: &Plan, sh: &Shape) -> Option<Vec<String>> {
    if plan.tz.is_some() || plan.sources.iter().any(|s| s.rows.is_some()) {
        return None;
    }
    if !sh.aux.is_empty() || sh.calls.is_empty() {
        return None;
    }
    if let Some(c) = &plan.condition {
        if !crate::plan::tags_only(c, plan) {
            return None;
        }
    }
    let mut fields = Vec::new();
    for c in &sh.calls {
        if c.kind != Kind::Window || !crate::partial::PARTIAL_FUNCTIONS.contains(&c.name.as_str()) {
            return None;
        }
        // Every source must hold the field as the number the statement reads.
        let want = match c.ty {
            Some(DataType::Float) => crate::value::FieldType::Float,
            Some(DataType::Integer) => crate::value::FieldType::Integer,
            Some(DataType::Unsigned) => crate::value::FieldType::Unsigned,
            _ => return None,
        };
        for s in &plan.sources {
            let types: Vec<_> = s
                .schema
                .fields
                .iter()
                .filter(|(n, _)| *n == c.field)
                .collect();
            if types.iter().any(|(_, t)| *t != want) {
                return None;
            }
        }
        if !fields.contains(&c.field) {
            fields.push(c.field.clone());
        }
    }
    Some(fields)
}

/// [`run`] over partial aggregates (see [`pushdown`]).
pub fn run_partials(plan: &Plan, sh: &Shape, series: &[SeriesPartials]) -> Result<Vec<OutRow>> {
    let keep = keeps_point_time(plan, &sh.calls);
    let wt = window_time(plan);
    // Each field merged once, however many calls read it.
    let mut merged: Vec<(&str, Vec<(i64, Partial)>)> = Vec::new();
    let at: Vec<usize> = sh
        .calls
        .iter()
        .map(|c| match merged.iter().position(|(f, _)| *f == c.field) {
            Some(i) => i,
            None => {
                merged.push((&c.field, merge_field(series, &c.field)));
                merged.len() - 1
            }
        })
        .collect();
    let mut lists = Vec::with_capacity(sh.calls.len());
    for (c, &i) in sh.calls.iter().zip(&at) {
        let per_window: BTreeMap<i64, Vec<Out>> = merged[i]
            .1
            .iter()
            .map(|(w, p)| {
                let (value, time) = p.answer(&c.name);
                (
                    *w,
                    vec![Out {
                        time,
                        value,
                        aux: Vec::new(),
                    }],
                )
            })
            .collect();
        lists.push(window_answers(plan, c, per_window, keep, &wt)?);
    }
    Ok(rows(plan, sh, lists))
}

/// One field's partials merged over a group's series per window: every
/// series' windows sorted together (stably: series order within a window),
/// then folded run by run.
fn merge_field(series: &[SeriesPartials], field: &str) -> Vec<(i64, Partial)> {
    let mut all: Vec<(i64, &Partial)> = series
        .iter()
        .flat_map(|s| &s.fields)
        .filter(|(name, _)| name == field)
        .flat_map(|(_, windows)| windows.iter().map(|(w, p)| (*w, p)))
        .collect();
    all.sort_by_key(|(w, _)| *w);
    let mut merged: Vec<(i64, Partial)> = Vec::new();
    for (w, p) in all {
        match merged.last_mut() {
            Some((lw, lp)) if *lw == w => lp.merge(p),
            _ => merged.push((w, p.clone())),
        }
    }
    merged
}

/// Rows from the calls' answers: LIMIT/OFFSET per call, then merged by time
/// (InfluxDB's multi-cursor: a row for each time, from every call with a
/// point there), the field expressions evaluated.
fn rows(plan: &Plan, sh: &Shape, lists: Vec<Vec<(i64, Out)>>) -> Vec<OutRow> {
    let lists: Vec<Vec<(i64, Out)>> = lists
        .into_iter()
        .map(|l| {
            let l = l.into_iter().skip(plan.offset_rows);
            if plan.limit > 0 {
                l.take(plan.limit).collect()
            } else {
                l.collect()
            }
        })
        .collect();
    let aux_names: Vec<String> = sh.aux.iter().map(|(n, _)| n.clone()).collect();
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
        let values: Vec<Value> = sh
            .exprs
            .iter()
            .map(|e| eval(e, &row, &plan.regexes))
            .collect();
        rows.push(OutRow { time, values });
    }
    rows
}
