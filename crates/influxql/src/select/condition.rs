//! The WHERE clause split as InfluxDB 1.6 splits it: comparisons of `time` become
//! a time range (intersected even under OR, as 1.x does), the rest is reduced
//! (`now()` evaluated, literals folded) and kept as the condition on tags and
//! fields. Errors and time-literal parsing follow `INFLUXQL-1.6.md` §4.

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

use super::ast::{BinOp, Expr};
use super::compile::reduce_with;
use super::token::T;

/// A time range in nanoseconds since the epoch, both ends inclusive; `None` is
/// unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl TimeRange {
    fn intersect(self, o: TimeRange) -> TimeRange {
        let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, None) => x,
            (None, y) => y,
        };
        TimeRange {
            min: pick(self.min, o.min, i64::max),
            max: pick(self.max, o.max, i64::min),
        }
    }
}

/// Where and how a query's times are read: its start time (`now()`) and its
/// `tz()` zone.
#[derive(Debug, Clone)]
pub struct Clock {
    pub now: i64,
    pub tz: TimeZone,
}

impl Clock {
    pub fn new(now: i64, tz: Option<&str>) -> Result<Clock, String> {
        let tz = match tz {
            None | Some("") | Some("UTC") => TimeZone::UTC,
            Some(name) => {
                load_zone(name).ok_or_else(|| format!("unable to find time zone {name}"))?
            }
        };
        Ok(Clock { now, tz })
    }
}

/// A zone by its IANA name, spelled exactly (as Go's `LoadLocation` on Linux
/// wants it; the bundled database would also take other cases).
pub(crate) fn load_zone(name: &str) -> Option<TimeZone> {
    let tz = TimeZone::get(name).ok()?;
    (tz.iana_name() == Some(name)).then_some(tz)
}

const MAX_TIME: i64 = i64::MAX - 1;
const MIN_TIME: i64 = i64::MIN + 2;

/// Splits `cond` into the condition left for tags and fields (None: none) and the
/// time range.
pub fn condition_expr(cond: &Expr, clock: &Clock) -> Result<(Option<Expr>, TimeRange), String> {
    let (rest, range) = split(cond, clock)?;
    let rest = rest.map(|e| match e {
        Expr::Paren(inner) => *inner,
        e => e,
    });
    Ok((rest.filter(|e| *e != Expr::Bool(true)), range))
}

fn split(e: &Expr, clock: &Clock) -> Result<(Option<Expr>, TimeRange), String> {
    match e {
        Expr::Binary { op, lhs, rhs } if matches!(op.0, T::And | T::Or) => {
            let (l, lr) = split(lhs, clock)?;
            let (r, rr) = split(rhs, clock)?;
            let range = lr.intersect(rr);
            let rest = match (l, r) {
                (None, r) => r,
                (l, None) => l,
                (Some(l), Some(r)) => Some(reduce_with(
                    Expr::Binary {
                        op: *op,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    },
                    Some(clock),
                )),
            };
            Ok((rest, range))
        }
        Expr::Binary { op, lhs, rhs } => {
            if lhs.is_time_ref() {
                return Ok((None, time_range(*op, rhs, clock)?));
            }
            if rhs.is_time_ref() {
                let flipped = match op.0 {
                    T::Gt => T::Lt,
                    T::Lt => T::Gt,
                    T::Gte => T::Lte,
                    T::Lte => T::Gte,
                    t => t,
                };
                return Ok((None, time_range(BinOp(flipped), lhs, clock)?));
            }
            Ok((
                Some(reduce_with(e.clone(), Some(clock))),
                TimeRange::default(),
            ))
        }
        Expr::Paren(inner) => {
            let (rest, range) = split(inner, clock)?;
            let rest = rest.map(|r| match r {
                b @ Expr::Binary { .. } => Expr::Paren(Box::new(b)),
                r => r,
            });
            Ok((rest, range))
        }
        Expr::Bool(_) => Ok((Some(e.clone()), TimeRange::default())),
        _ => Err(format!("invalid condition expression: {e}")),
    }
}

/// The range `time <op> value` allows.
fn time_range(op: BinOp, value: &Expr, clock: &Clock) -> Result<TimeRange, String> {
    let mut v = value.clone();
    if let Expr::Str(s) = &v {
        if is_time_literal(s) {
            let t = parse_time_wide(s, &clock.tz).ok_or("invalid timestamp string")?;
            if t > i128::from(MAX_TIME) {
                return Err(format!("time {} overflows time literal", rfc3339(t)));
            }
            if t < i128::from(MIN_TIME) + 1 {
                return Err(format!("time {} underflows time literal", rfc3339(t)));
            }
            v = Expr::Time(t as i64);
        }
    }
    let t = match reduce_with(v, Some(clock)) {
        Expr::Time(t) => {
            if t > MAX_TIME {
                return Err(format!("time {} overflows time literal", rfc3339(t.into())));
            }
            if t < MIN_TIME + 1 {
                return Err(format!(
                    "time {} underflows time literal",
                    rfc3339(t.into())
                ));
            }
            t
        }
        Expr::Duration(d) | Expr::Integer(d) => d,
        Expr::Number(n) => n as i64,
        other => {
            return Err(format!(
                "invalid operation: time and {} are not compatible",
                super::compile::go_type(&other)
            ))
        }
    };
    Ok(match op.0 {
        T::Gt => TimeRange {
            min: Some(t.saturating_add(1)),
            max: None,
        },
        T::Gte => TimeRange {
            min: Some(t),
            max: None,
        },
        T::Lt => TimeRange {
            min: None,
            max: Some(t.saturating_sub(1)),
        },
        T::Lte => TimeRange {
            min: None,
            max: Some(t),
        },
        T::Eq => TimeRange {
            min: Some(t),
            max: Some(t),
        },
        _ => return Err(format!("invalid time comparison operator: {}", op.symbol())),
    })
}

fn rfc3339(t: i128) -> String {
    Timestamp::from_nanosecond(t)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// Strings InfluxQL reads as times when compared with `time`: a date, or a date
/// followed by anything (which must then parse).
pub fn is_time_literal(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10])
}

/// Parses a time literal as Go's `2006-01-02`, `2006-01-02 15:04:05.999999` (in
/// the query's zone) or RFC 3339 with nanoseconds (its own offset) would, in
/// nanoseconds since the epoch (`None` also past what 64 bits hold).
pub fn parse_time_literal(s: &str, tz: &TimeZone) -> Option<i64> {
    parse_time_wide(s, tz).and_then(|t| i64::try_from(t).ok())
}

fn parse_time_wide(s: &str, tz: &TimeZone) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = b.get(r)?;
        digits(part).then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    let date = Date::new(num(0..4)? as i16, num(5..7)? as i8, num(8..10)? as i8).ok()?;
    if b.len() == 10 {
        return to_ns(date.to_datetime(jiff::civil::Time::midnight()), tz);
    }
    let rfc = match b.get(10)? {
        b' ' => false,
        b'T' => true,
        _ => return None,
    };
    // Hour: one or two digits.
    let mut i = 11;
    let h_len = if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let hour = num(i..i + h_len)?;
    i += h_len;
    (b.get(i) == Some(&b':')).then_some(())?;
    let minute = num(i + 1..i + 3)?;
    (b.get(i + 3) == Some(&b':')).then_some(())?;
    let second = num(i + 4..i + 6)?;
    i += 6;
    let mut nanos = 0i32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        let n = end - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = num(start..end)? * 10i32.pow((9 - n) as u32);
        i = end;
    }
    let t = jiff::civil::Time::new(hour as i8, minute as i8, second as i8, nanos).ok()?;
    let dt = date.to_datetime(t);
    if !rfc {
        return if i == b.len() { to_ns(dt, tz) } else { None };
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => Offset::UTC,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let secs = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            Offset::from_seconds(if *c == b'-' { -secs } else { secs }).ok()?
        }
        _ => return None,
    };
    to_ns(dt, &TimeZone::fixed(offset))
}

fn to_ns(dt: DateTime, tz: &TimeZone) -> Option<i128> {
    let z = dt.to_zoned(tz.clone()).ok()?;
    Some(z.timestamp().as_nanosecond())
}
