//! One call's answer over a group: its points windowed as InfluxDB's reduce
//! windows them, the function per window, fill(), transformations.

use std::collections::BTreeMap;

use super::fill::{fill_walk, unfilled};
use super::{Call, Kind};
use crate::error::{query_err, Result};
use crate::exec::Group;
use crate::functions::{apply, Out, Point};
use crate::plan::Plan;
use crate::transform::{integral, transform, TPoint};
use crate::value::Value;
use crate::window::window;

/// One call's points over the group, in output order.
pub(super) fn answer(
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
            let list = fill_walk(plan, &c.name, in_order(per_window), read_from)?;
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
            window_answers(plan, c, per_window, own_time, window_time)
        }
    }
}

/// A window function's answers in output order: a selector's row put in the
/// window of the point it picked, fill() applied, times as InfluxDB gives them.
pub(super) fn window_answers(
    plan: &Plan,
    c: &Call,
    per_window: BTreeMap<i64, Vec<Out>>,
    own_time: bool,
    window_time: &dyn Fn(i64) -> i64,
) -> Result<Vec<(i64, Out)>> {
    let mut list: Vec<(i64, Out)> = per_window
        .into_iter()
        .flat_map(|(w, outs)| outs.into_iter().map(move |o| (w, o)))
        .collect();
    if !plan.ascending {
        list.reverse();
    }
    if plan.interval > 0 {
        // A selector's row belongs to the window of the point it picked
        // (which differs from the window its first point opened only across
        // a DST change).
        for (w, o) in &mut list {
            if let Some(t) = o.time {
                *w = window(plan, t).0;
            }
        }
    }
    let list = if unfilled(&c.name) || c.kind == Kind::CountDistinct {
        list
    } else {
        fill_walk(plan, &c.name, list, plan.min)?
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

/// The call's function applied to each window's points.
pub(super) fn windows(
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
pub(super) fn check_types(c: &Call, b: &BTreeMap<i64, Vec<Point>>) -> Result<()> {
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

/// Points into windows as InfluxDB's reduce does: in output order, a window
/// taken from its first point and holding every point up to its end (across
/// a DST change the window a point opens can differ from its own window).
pub(super) fn bucket(plan: &Plan, mut pts: Vec<Point>) -> BTreeMap<i64, Vec<Point>> {
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
