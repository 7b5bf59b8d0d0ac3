//! fill(): a call's windows walked as InfluxDB's fill iterator walks them.

use sundial_influxql::select::Fill;

use crate::error::{Error, Result};
use crate::functions::Out;

/// What one filled window holds, for the memory limit.
const WINDOW_BYTES: u128 = 64;
use crate::plan::{Plan, MIN_TIME};
use crate::value::Value;
use crate::window::{offset_at, window};

/// Calls whose points are never filled (InfluxDB reads them without its fill
/// iterator).
pub(super) fn unfilled(name: &str) -> bool {
    matches!(name, "distinct" | "top" | "bottom" | "sample" | "integral")
}

/// fill(), as InfluxDB's fill iterator walks a series' windows in output
/// order: from the window of `min` (or of the first point when the range has
/// no start) to the window of the end, a window without a point filled with a
/// value of the call's type; the step corrected where the `tz()` offset
/// changes.
pub(super) fn fill_walk(
    plan: &Plan,
    name: &str,
    list: Vec<(i64, Out)>,
    min: i64,
) -> Result<Vec<(i64, Out)>> {
    if plan.interval == 0 || plan.fill == Fill::None || list.is_empty() {
        return Ok(list);
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
    // The windows the walk makes (a minute's windows over years are billions):
    // counted against the statement's memory before any is made.
    // The walk ends at the range's last window, or (descending with no lower
    // bound) at the earliest point.
    let final_point = list[list.len() - 1].0;
    let last = match (asc, end == MIN_TIME) {
        (true, _) => end.max(final_point),
        (false, true) => final_point,
        (false, false) => end.min(final_point),
    };
    let windows =
        (i128::from(last) - i128::from(expected)).unsigned_abs() / d.unsigned_abs() as u128 + 1;
    if windows.saturating_mul(WINDOW_BYTES) > plan.memory_limit as u128 {
        return Err(Error::MemoryLimit {
            limit: plan.memory_limit,
        });
    }
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
    Ok(out)
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
