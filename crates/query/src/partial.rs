//! Partial aggregates: what count, sum, mean, min, max, first and last need of
//! one field in one window, computed where the data lives (the stores, from
//! block statistics where they can) and merged by the gateway across series,
//! blocks and shards with the same tie rules as [`crate::functions`].

use std::cmp::Ordering;

use crate::seam::ReadRequest;
use crate::value::{Column, Value, Values};

/// The functions partials answer.
pub const PARTIAL_FUNCTIONS: &[&str] = &["count", "sum", "mean", "min", "max", "first", "last"];

/// One window's partial aggregate of one numeric field.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub count: u64,
    /// Float, Integer or Unsigned (integer sums wrap, as InfluxDB's do).
    pub sum: Value,
    /// Values with their times.
    pub min: (Value, i64),
    pub max: (Value, i64),
    pub first: (Value, i64),
    pub last: (Value, i64),
}

impl Partial {
    /// The partial of one point.
    #[cfg(test)]
    pub fn point(t: i64, v: Value) -> Partial {
        Partial {
            count: 1,
            sum: v.clone(),
            min: (v.clone(), t),
            max: (v.clone(), t),
            first: (v.clone(), t),
            last: (v, t),
        }
    }

    /// Folds `o` in: the smaller min (earlier on ties), the larger max (earlier
    /// on ties), the earlier first and later last (the larger value at equal
    /// times).
    pub fn merge(&mut self, o: &Partial) {
        self.count += o.count;
        self.sum = match (&self.sum, &o.sum) {
            (Value::Integer(a), Value::Integer(b)) => Value::Integer(a.wrapping_add(*b)),
            (Value::Unsigned(a), Value::Unsigned(b)) => Value::Unsigned(a.wrapping_add(*b)),
            (a, b) => Value::Float(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
        };
        let c = |a: &Value, b: &Value| a.cmp_same(b);
        if c(&o.min.0, &self.min.0) == Ordering::Less
            || (c(&o.min.0, &self.min.0) == Ordering::Equal && o.min.1 < self.min.1)
        {
            self.min = o.min.clone();
        }
        if c(&o.max.0, &self.max.0) == Ordering::Greater
            || (c(&o.max.0, &self.max.0) == Ordering::Equal && o.max.1 < self.max.1)
        {
            self.max = o.max.clone();
        }
        if o.first.1 < self.first.1
            || (o.first.1 == self.first.1 && c(&o.first.0, &self.first.0) == Ordering::Greater)
        {
            self.first = o.first.clone();
        }
        if o.last.1 > self.last.1
            || (o.last.1 == self.last.1 && c(&o.last.0, &self.last.0) == Ordering::Greater)
        {
            self.last = o.last.clone();
        }
    }

    /// `name`'s answer: its value, and for selectors the time of the point.
    pub fn answer(&self, name: &str) -> (Value, Option<i64>) {
        match name {
            "count" => (Value::Integer(self.count as i64), None),
            "sum" => (self.sum.clone(), None),
            "mean" => (
                Value::Float(self.sum.as_f64().unwrap_or(0.0) / self.count.max(1) as f64),
                None,
            ),
            "min" => (self.min.0.clone(), Some(self.min.1)),
            "max" => (self.max.0.clone(), Some(self.max.1)),
            "first" => (self.first.0.clone(), Some(self.first.1)),
            _ => (self.last.0.clone(), Some(self.last.1)),
        }
    }
}

/// The start of the GROUP BY time() window holding `t` (no `tz()`); with no
/// interval the one window starts at `min`.
pub fn window_start(t: i64, interval: i64, offset: i64, min: i64) -> i64 {
    if interval <= 0 {
        return min;
    }
    let t = t.saturating_sub(offset);
    let dt = t.rem_euclid(interval);
    let start = if crate::MIN_TIME.saturating_add(dt) >= t {
        crate::MIN_TIME
    } else {
        t - dt
    };
    start.saturating_add(offset)
}

/// A read answered with partials per window.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRequest {
    pub read: ReadRequest,
    pub interval: i64,
    pub offset: i64,
}

impl PartialRequest {
    pub fn window(&self, t: i64) -> i64 {
        window_start(t, self.interval, self.offset, self.read.min)
    }

    /// The first time after window `w`, where no bound of time is near
    /// (there `window` clamps and saturates; callers ask it point by point).
    fn window_end(&self, w: i64) -> Option<i64> {
        if self.interval <= 0 {
            return None;
        }
        let margin = self.interval.checked_add(self.offset.checked_abs()?)?;
        let safe = w > crate::MIN_TIME.checked_add(margin)?
            && w < i64::MAX.checked_sub(margin.checked_mul(2)?)?;
        safe.then(|| w + self.interval)
    }

    /// Room for the windows of one series' field that has `parts` blocks
    /// and points: no more windows than the range has, nor than parts.
    pub fn windows_hint(&self, parts: usize) -> usize {
        if self.interval <= 0 {
            return 1;
        }
        let span = self.read.max.saturating_sub(self.read.min) / self.interval;
        usize::try_from(span).map_or(parts, |n| n.saturating_add(2).min(parts))
    }
}

/// Partials of the points of `series` (what a reader without statistics
/// answers).
pub fn of_series(
    req: &PartialRequest,
    series: Vec<crate::seam::SeriesRead>,
) -> Vec<SeriesPartials> {
    series
        .into_iter()
        .map(|s| SeriesPartials {
            tags: s.tags,
            fields: s
                .fields
                .into_iter()
                .map(|(name, c)| {
                    let mut out = Vec::with_capacity(req.windows_hint(c.len()));
                    add_column(&mut out, req, &c);
                    (name, out)
                })
                .collect(),
        })
        .collect()
}

/// A number partials fold without going through [`Value`].
trait Num: Copy {
    fn value(self) -> Value;
    fn plus(self, o: Self) -> Self;
    fn less(self, o: Self) -> bool;
}

impl Num for f64 {
    fn value(self) -> Value {
        Value::Float(self)
    }
    fn plus(self, o: f64) -> f64 {
        self + o
    }
    fn less(self, o: f64) -> bool {
        self.total_cmp(&o) == Ordering::Less
    }
}

/// Integers sum as InfluxDB's do: wrapping.
macro_rules! integer_num {
    ($t:ty, $v:ident) => {
        impl Num for $t {
            fn value(self) -> Value {
                Value::$v(self)
            }
            fn plus(self, o: $t) -> $t {
                self.wrapping_add(o)
            }
            fn less(self, o: $t) -> bool {
                self < o
            }
        }
    };
}
integer_num!(i64, Integer);
integer_num!(u64, Unsigned);

/// One window's run of points (times ascending, none equal) as a partial.
fn fold_run<T: Num>(times: &[i64], vals: &[T]) -> Partial {
    let (mut sum, mut min, mut max) = (vals[0], 0, 0);
    for (i, &v) in vals.iter().enumerate().skip(1) {
        sum = sum.plus(v);
        // Strict comparisons keep the earliest of equal extremes.
        if v.less(vals[min]) {
            min = i;
        }
        if vals[max].less(v) {
            max = i;
        }
    }
    let n = vals.len() - 1;
    Partial {
        count: vals.len() as u64,
        sum: sum.value(),
        min: (vals[min].value(), times[min]),
        max: (vals[max].value(), times[max]),
        first: (vals[0].value(), times[0]),
        last: (vals[n].value(), times[n]),
    }
}

fn add_runs<T: Num>(
    out: &mut Vec<(i64, Partial)>,
    req: &PartialRequest,
    times: &[i64],
    vals: &[T],
) {
    let n = times.len().min(vals.len());
    let mut i = 0;
    while i < n {
        let w = req.window(times[i]);
        // Windows never decrease with time: the run is a prefix, found by search.
        let rest = &times[i..n];
        let j = i + match req.window_end(w) {
            Some(end) => rest.partition_point(|&t| t < end),
            None => rest.partition_point(|&t| req.window(t) == w),
        };
        add(out, w, fold_run(&times[i..j], &vals[i..j]));
        i = j;
    }
}

/// Adds the points of a column (times ascending, none equal, as a series
/// read holds them) to `out` window by window: one partial per run of points
/// in a window instead of one per point. Strings and booleans have no
/// partials and add nothing.
pub fn add_column(out: &mut Vec<(i64, Partial)>, req: &PartialRequest, c: &Column) {
    match &c.values {
        Values::Float(v) => add_runs(out, req, &c.times, v),
        Values::Integer(v) => add_runs(out, req, &c.times, v),
        Values::Unsigned(v) => add_runs(out, req, &c.times, v),
        Values::String(_) | Values::Boolean(_) => {}
    }
}

/// Adds `p` to the window `w` of `out` (windows in time order; `p` in a window
/// at or after the last one, or found by search).
pub fn add(out: &mut Vec<(i64, Partial)>, w: i64, p: Partial) {
    match out.last_mut() {
        Some((lw, lp)) if *lw == w => lp.merge(&p),
        Some((lw, _)) if *lw < w => out.push((w, p)),
        None => out.push((w, p)),
        Some(_) => match out.binary_search_by_key(&w, |(x, _)| *x) {
            Ok(i) => out[i].1.merge(&p),
            Err(i) => out.insert(i, (w, p)),
        },
    }
}

/// One series' partials: its tags and, per field, `(window start, partial)` in
/// time order.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPartials {
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Vec<(i64, Partial)>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_influxdb_ties() {
        let mut p = Partial::point(20, Value::Integer(5));
        p.merge(&Partial::point(10, Value::Integer(5)));
        p.merge(&Partial::point(30, Value::Integer(1)));
        p.merge(&Partial::point(30, Value::Integer(2)));
        assert_eq!(p.count, 4);
        assert_eq!(p.sum, Value::Integer(13));
        assert_eq!(p.max, (Value::Integer(5), 10), "earliest of equal maxima");
        assert_eq!(p.min, (Value::Integer(1), 30));
        assert_eq!(p.first, (Value::Integer(5), 10));
        assert_eq!(
            p.last,
            (Value::Integer(2), 30),
            "larger value at equal times"
        );
        assert_eq!(p.answer("mean").0, Value::Float(3.25));
    }

    #[test]
    fn a_column_folds_as_its_points_merge() {
        let req = |interval, offset| PartialRequest {
            read: ReadRequest {
                measurement: "m".into(),
                tags: crate::seam::TagFilter::All,
                fields: vec!["f".into()],
                min: -100,
                max: 100,
                schema_stamp: 0,
                condition: None,
                max_bytes: 0,
            },
            interval,
            offset,
        };
        // Near zero, and at the bottom of time (where windows clamp).
        let near_zero: Vec<i64> = (-40..60).step_by(3).collect();
        let bottom: Vec<i64> = near_zero.iter().map(|t| crate::MIN_TIME + 40 + t).collect();
        // Repeated extremes, so the earliest-of-equals rule is exercised.
        let vals: Vec<f64> = near_zero.iter().map(|t| ((t * 7) % 5) as f64).collect();
        let ints: Vec<i64> = vals.iter().map(|v| *v as i64 - 2).collect();
        let cases = [(0, 0), (10, 0), (7, 3), (1, 0), (1000, -5)];
        for ((interval, offset), times) in
            cases.iter().flat_map(|c| [(*c, &near_zero), (*c, &bottom)])
        {
            let r = req(interval, offset);
            for values in [Values::Float(vals.clone()), Values::Integer(ints.clone())] {
                let c = Column {
                    times: times.clone(),
                    values,
                };
                let mut want: Vec<(i64, Partial)> = Vec::new();
                for (i, &t) in c.times.iter().enumerate() {
                    add(&mut want, r.window(t), Partial::point(t, c.values.get(i)));
                }
                let mut got = Vec::new();
                add_column(&mut got, &r, &c);
                assert_eq!(got, want, "interval {interval} offset {offset}");
            }
        }
    }

    #[test]
    fn windows_floor_towards_the_past() {
        assert_eq!(window_start(-1, 10, 0, 0), -10);
        assert_eq!(window_start(25, 10, 3, 0), 23);
        assert_eq!(window_start(25, 0, 0, 7), 7);
    }
}
