//! Partial aggregates: what count, sum, mean, min, max, first and last need of
//! one field in one window, computed where the data lives (the stores, from
//! block statistics where they can) and merged by the gateway across series,
//! blocks and shards with the same tie rules as [`crate::functions`].

use std::cmp::Ordering;

use crate::seam::ReadRequest;
use crate::value::Value;

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
                    let mut out: Vec<(i64, Partial)> = Vec::new();
                    for (i, &t) in c.times.iter().enumerate() {
                        add(&mut out, req.window(t), Partial::point(t, c.values.get(i)));
                    }
                    (name, out)
                })
                .collect(),
        })
        .collect()
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
    fn windows_floor_towards_the_past() {
        assert_eq!(window_start(-1, 10, 0, 0), -10);
        assert_eq!(window_start(25, 10, 3, 0), 23);
        assert_eq!(window_start(25, 0, 0, 7), 7);
    }
}
