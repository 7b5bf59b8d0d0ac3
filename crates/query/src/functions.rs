//! Aggregates and selectors over the points of one window, with InfluxDB's
//! rules for their types, ties and times (`query/functions.go`,
//! `call_iterator.go`).

use std::cmp::Ordering;

use crate::error::{query_err, Result};
use crate::value::Value;

/// A point fed to a call: its time, value, and for selectors with auxiliary
/// fields the row it came from.
#[derive(Debug, Clone)]
pub struct Point {
    pub time: i64,
    pub value: Value,
    pub aux: Vec<Value>,
    /// The group's series it came from.
    pub series: usize,
}

/// A call's answer for one window: no point, one, or several (distinct, top,
/// bottom, sample). `time: None` means the window's time.
#[derive(Debug, Clone)]
pub struct Out {
    pub time: Option<i64>,
    pub value: Value,
    pub aux: Vec<Value>,
}

fn agg(value: Value) -> Vec<Out> {
    vec![Out {
        time: None,
        value,
        aux: Vec::new(),
    }]
}

fn sel(p: &Point) -> Vec<Out> {
    vec![Out {
        time: Some(p.time),
        value: p.value.clone(),
        aux: p.aux.clone(),
    }]
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Applies `name(args)` to the points of one window (not empty).
pub fn apply(name: &str, args: &[f64], pts: &mut [Point]) -> Result<Vec<Out>> {
    if pts.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match name {
        "count" => agg(Value::Integer(pts.len() as i64)),
        "sum" => agg(sum(pts)),
        "mean" => agg(Value::Float(
            pts.iter().map(|p| num(&p.value)).sum::<f64>() / pts.len() as f64,
        )),
        "median" => agg(median(pts)),
        "mode" => agg(mode(pts)),
        "spread" => agg(spread(pts)),
        "stddev" => agg(stddev(pts)),
        "min" => sel(best(pts, |a, b| {
            b.value.cmp_same(&a.value).then(b.time.cmp(&a.time))
        })),
        "max" => sel(best(pts, |a, b| {
            a.value.cmp_same(&b.value).then(b.time.cmp(&a.time))
        })),
        "first" => sel(best(pts, |a, b| {
            b.time.cmp(&a.time).then(a.value.cmp_same(&b.value))
        })),
        "last" => sel(best(pts, |a, b| {
            a.time.cmp(&b.time).then(a.value.cmp_same(&b.value))
        })),
        "percentile" => {
            let pct = args.first().copied().unwrap_or(0.0);
            pts.sort_by(|a, b| a.value.cmp_same(&b.value).then(a.time.cmp(&b.time)));
            let i = (pts.len() as f64 * pct / 100.0 + 0.5).floor() as i64 - 1;
            match usize::try_from(i).ok().and_then(|i| pts.get(i)) {
                Some(p) => sel(p),
                None => Vec::new(),
            }
        }
        "distinct" => {
            // In the order values first occur (ties by value).
            pts.sort_by(|a, b| a.time.cmp(&b.time).then(a.value.cmp_same(&b.value)));
            let mut seen: Vec<&Value> = Vec::new();
            let mut out = Vec::new();
            for p in pts.iter() {
                if seen.iter().any(|v| v.cmp_same(&p.value) == Ordering::Equal) {
                    continue;
                }
                seen.push(&p.value);
                out.push(Out {
                    time: None,
                    value: p.value.clone(),
                    aux: Vec::new(),
                });
            }
            out
        }
        "top" | "bottom" => {
            let n = args.last().copied().unwrap_or(1.0) as usize;
            let top = name == "top";
            pts.sort_by(|a, b| {
                let by_value = if top {
                    b.value.cmp_same(&a.value)
                } else {
                    a.value.cmp_same(&b.value)
                };
                by_value.then(a.time.cmp(&b.time))
            });
            let mut kept: Vec<&Point> = pts.iter().take(n).collect();
            kept.sort_by_key(|p| p.time);
            kept.into_iter().flat_map(sel).collect()
        }
        "sample" => {
            let n = args.first().copied().unwrap_or(1.0) as usize;
            pts.sort_by(|a, b| a.time.cmp(&b.time).then(a.value.cmp_same(&b.value)));
            if pts.len() > n {
                // InfluxDB samples at random; any n points of the window are an
                // answer it could give. Spread evenly for a stable one.
                let step = pts.len() as f64 / n as f64;
                (0..n)
                    .flat_map(|i| sel(&pts[(i as f64 * step) as usize]))
                    .collect()
            } else {
                pts.iter().flat_map(sel).collect()
            }
        }
        other => return Err(query_err(format!("undefined function {other}()"))),
    })
}

/// The point `better` ranks highest (first one on ties of the order).
fn best(pts: &[Point], better: impl Fn(&Point, &Point) -> Ordering) -> &Point {
    let mut b = &pts[0];
    for p in &pts[1..] {
        if better(p, b) == Ordering::Greater {
            b = p;
        }
    }
    b
}

fn sum(pts: &[Point]) -> Value {
    match pts[0].value {
        Value::Integer(_) => Value::Integer(pts.iter().fold(0i64, |s, p| match p.value {
            Value::Integer(v) => s.wrapping_add(v),
            _ => s,
        })),
        Value::Unsigned(_) => Value::Unsigned(pts.iter().fold(0u64, |s, p| match p.value {
            Value::Unsigned(v) => s.wrapping_add(v),
            _ => s,
        })),
        _ => Value::Float(pts.iter().map(|p| num(&p.value)).sum()),
    }
}

fn median(pts: &mut [Point]) -> Value {
    pts.sort_by(|a, b| a.value.cmp_same(&b.value));
    let n = pts.len();
    if n.is_multiple_of(2) {
        let (lo, hi) = (num(&pts[n / 2 - 1].value), num(&pts[n / 2].value));
        Value::Float(lo + (hi - lo) / 2.0)
    } else {
        Value::Float(num(&pts[n / 2].value))
    }
}

/// The most frequent value, as InfluxDB's `ModeReduceSlice` finds it: values
/// sorted, runs counted, a run replacing the best when longer, or as long
/// and not later. Booleans: true unless false is strictly more frequent.
fn mode(pts: &mut [Point]) -> Value {
    if matches!(pts[0].value, Value::Boolean(_)) {
        let trues = pts
            .iter()
            .filter(|p| matches!(p.value, Value::Boolean(true)))
            .count();
        return Value::Boolean(trues * 2 >= pts.len());
    }
    if pts.len() == 1 {
        return pts[0].value.clone();
    }
    pts.sort_by(|a, b| a.value.cmp_same(&b.value).then(a.time.cmp(&b.time)));
    let (mut most_freq, mut curr_freq) = (0usize, 0usize);
    let mut curr_mode = &pts[0].value;
    let mut most_mode = &pts[0].value;
    let (mut most_time, mut curr_time) = (pts[0].time, pts[0].time);
    for p in pts.iter() {
        if p.value.cmp_same(curr_mode) != Ordering::Equal {
            curr_freq = 1;
            curr_mode = &p.value;
            curr_time = p.time;
            continue;
        }
        curr_freq += 1;
        if most_freq > curr_freq || (most_freq == curr_freq && curr_time > most_time) {
            continue;
        }
        most_freq = curr_freq;
        most_mode = &p.value;
        most_time = p.time;
    }
    most_mode.clone()
}

fn spread(pts: &[Point]) -> Value {
    match pts[0].value {
        Value::Integer(_) => {
            let it = pts.iter().filter_map(|p| match p.value {
                Value::Integer(v) => Some(v),
                _ => None,
            });
            let (lo, hi) = it.fold((i64::MAX, i64::MIN), |(l, h), v| (l.min(v), h.max(v)));
            Value::Integer(hi.wrapping_sub(lo))
        }
        Value::Unsigned(_) => {
            let it = pts.iter().filter_map(|p| match p.value {
                Value::Unsigned(v) => Some(v),
                _ => None,
            });
            let (lo, hi) = it.fold((u64::MAX, 0), |(l, h), v| (l.min(v), h.max(v)));
            Value::Unsigned(hi.wrapping_sub(lo))
        }
        _ => {
            let (lo, hi) = pts
                .iter()
                .map(|p| num(&p.value))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(v), h.max(v))
                });
            Value::Float(hi - lo)
        }
    }
}

fn stddev(pts: &[Point]) -> Value {
    let n = pts.len();
    if n < 2 {
        return Value::Null;
    }
    let mean = pts.iter().map(|p| num(&p.value)).sum::<f64>() / n as f64;
    let var = pts
        .iter()
        .map(|p| (num(&p.value) - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    Value::Float(var.sqrt())
}
