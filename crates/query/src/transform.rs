//! Transformations over a series of points in output order (raw values, or
//! one aggregate per window): derivative, difference, elapsed, moving_average,
//! cumulative_sum — and integral, a reducer that streams across windows. Ported
//! rule for rule from InfluxDB's reducers (`query/functions.go`).

use crate::value::Value;

/// A point in a transformation's input or output.
#[derive(Debug, Clone)]
pub struct TPoint {
    pub time: i64,
    pub value: Value,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `name(input, arg)` where `arg` is the unit (ns) or the window size.
pub fn transform(name: &str, input: &[TPoint], arg: i64, ascending: bool) -> Vec<TPoint> {
    match name {
        "derivative" | "non_negative_derivative" => {
            derivative(input, arg, ascending, name.starts_with("non_"))
        }
        "difference" | "non_negative_difference" => difference(input, name.starts_with("non_")),
        "elapsed" => elapsed(input, arg),
        "moving_average" => moving_average(input, usize::try_from(arg).unwrap_or(2)),
        "cumulative_sum" => cumulative_sum(input),
        _ => Vec::new(),
    }
}

/// Points that do not advance the time are skipped (the first one wins).
fn advancing(input: &[TPoint]) -> impl Iterator<Item = &TPoint> {
    let mut last: Option<i64> = None;
    input.iter().filter(move |p| {
        let keep = last != Some(p.time);
        last = Some(p.time);
        keep
    })
}

fn derivative(input: &[TPoint], unit: i64, ascending: bool, non_negative: bool) -> Vec<TPoint> {
    let mut out = Vec::new();
    let mut prev: Option<&TPoint> = None;
    for p in advancing(input) {
        if let Some(q) = prev {
            let diff = f(&p.value) - f(&q.value);
            let mut elapsed = p.time - q.time;
            if !ascending {
                elapsed = -elapsed;
            }
            if !(non_negative && diff < 0.0) {
                out.push(TPoint {
                    time: p.time,
                    value: Value::Float(diff / (elapsed as f64 / unit as f64)),
                });
            }
        }
        prev = Some(p);
    }
    out
}

fn difference(input: &[TPoint], non_negative: bool) -> Vec<TPoint> {
    let mut out = Vec::new();
    let mut prev: Option<&TPoint> = None;
    for p in advancing(input) {
        if let Some(q) = prev {
            let v = match (&p.value, &q.value) {
                (Value::Integer(a), Value::Integer(b)) => Value::Integer(a.wrapping_sub(*b)),
                (Value::Unsigned(a), Value::Unsigned(b)) => Value::Unsigned(a.wrapping_sub(*b)),
                (a, b) => Value::Float(f(a) - f(b)),
            };
            let negative = match &v {
                Value::Integer(i) => *i < 0,
                Value::Float(x) => *x < 0.0,
                _ => false,
            };
            if !(non_negative && negative) {
                out.push(TPoint {
                    time: p.time,
                    value: v,
                });
            }
        }
        prev = Some(p);
    }
    out
}

fn elapsed(input: &[TPoint], unit: i64) -> Vec<TPoint> {
    input
        .windows(2)
        .map(|w| TPoint {
            time: w[1].time,
            value: Value::Integer((w[1].time - w[0].time) / unit.max(1)),
        })
        .collect()
}

fn moving_average(input: &[TPoint], n: usize) -> Vec<TPoint> {
    let n = n.max(1);
    let mut out = Vec::new();
    let mut buf: Vec<f64> = Vec::with_capacity(n);
    let mut ibuf: Vec<i64> = Vec::with_capacity(n);
    let (mut sum, mut isum, mut pos) = (0.0f64, 0i64, 0usize);
    let ints = input
        .first()
        .is_some_and(|p| matches!(p.value, Value::Integer(_)));
    for p in input {
        if ints {
            let v = match p.value {
                Value::Integer(i) => i,
                _ => 0,
            };
            if ibuf.len() < n {
                ibuf.push(v);
            } else {
                isum = isum.wrapping_sub(ibuf[pos]);
                ibuf[pos] = v;
            }
            isum = isum.wrapping_add(v);
        } else {
            let v = f(&p.value);
            if buf.len() < n {
                buf.push(v);
            } else {
                sum -= buf[pos];
                buf[pos] = v;
            }
            sum += v;
        }
        pos = (pos + 1) % n;
        let len = if ints { ibuf.len() } else { buf.len() };
        if len == n {
            let avg = if ints {
                isum as f64 / n as f64
            } else {
                sum / n as f64
            };
            out.push(TPoint {
                time: p.time,
                value: Value::Float(avg),
            });
        }
    }
    out
}

fn cumulative_sum(input: &[TPoint]) -> Vec<TPoint> {
    let mut acc: Option<Value> = None;
    input
        .iter()
        .map(|p| {
            let next = match (&acc, &p.value) {
                (None, v) => v.clone(),
                (Some(Value::Integer(a)), Value::Integer(b)) => Value::Integer(a.wrapping_add(*b)),
                (Some(Value::Unsigned(a)), Value::Unsigned(b)) => {
                    Value::Unsigned(a.wrapping_add(*b))
                }
                (Some(a), b) => Value::Float(f(a) + f(b)),
            };
            acc = Some(next.clone());
            TPoint {
                time: p.time,
                value: next,
            }
        })
        .collect()
}

/// integral(): the trapezoid area of the points (in output order), per window
/// when there is one — the value interpolated at each window's end, a window
/// emitted when a point past it arrives (or at the end, unless its last
/// point sits on its start). `window` maps a time to `[start, end)`.
pub fn integral(
    input: &[TPoint],
    unit: i64,
    ascending: bool,
    window: Option<&dyn Fn(i64) -> (i64, i64)>,
) -> Vec<TPoint> {
    let mut out = Vec::new();
    let mut prev: Option<(i64, f64)> = None;
    let (mut start, mut end) = (0i64, 0i64);
    let mut sum = 0.0;
    let unit = unit as f64;
    let bounds = |t: i64, w: &dyn Fn(i64) -> (i64, i64)| {
        let (s, e) = w(t);
        if ascending {
            (s, e)
        } else {
            // Descending, the window is walked from its end back to its start.
            (e, s)
        }
    };
    for p in input {
        let v = f(&p.value);
        let Some((pt, pv)) = prev else {
            prev = Some((p.time, v));
            if let Some(w) = window {
                (start, end) = bounds(p.time, w);
            }
            continue;
        };
        if pt == p.time {
            prev = Some((p.time, v));
            continue;
        }
        let (mut pt, mut pv) = (pt, pv);
        if let Some(w) = window {
            if (ascending && p.time >= end) || (!ascending && p.time <= end) {
                if pt != end {
                    let m = (v - pv) / (p.time - pt) as f64;
                    let value = m * (end - pt) as f64 + pv;
                    sum += 0.5 * (value + pv) * ((end - pt) as f64 / unit);
                    (pt, pv) = (end, value);
                }
                out.push(TPoint {
                    time: start,
                    value: Value::Float(sum),
                });
                (start, end) = bounds(p.time, w);
                sum = 0.0;
            }
        }
        sum += 0.5 * (v + pv) * ((p.time - pt) as f64 / unit);
        prev = Some((p.time, v));
    }
    if let Some((pt, _)) = prev {
        if pt != start {
            out.push(TPoint {
                time: start,
                value: Value::Float(sum),
            });
        }
    }
    out
}
