//! When a continuous query runs and over which time range, as InfluxDB 1.6's
//! continuous querier decides it (`ExecuteContinuousQuery`, `shouldRun`; the
//! rules are in `EXECUTION-1.6.md` §17). Times are ns since the epoch;
//! windows are aligned in the CQ's `tz()` zone (UTC without one), so a
//! `time(1d)` window starts at local midnight and a DST change moves the
//! next run by the change, as 1.6's `truncate` and `shouldRun` do.

use jiff::tz::TimeZone;
use sundial_influxql::select::{Expr, SelectStatement};

use crate::window::zone_offset;

/// `RESAMPLE EVERY … FOR …` (0: not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resample {
    pub every: i64,
    pub for_: i64,
}

/// A run's time range: `time >= start AND time < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// One tick's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Not due yet.
    Wait,
    /// Due: `last` is the new last-run time (recorded whether or not the
    /// query succeeds: 1.6 does not retry), `run` the range to query, if any.
    Due { last: i64, run: Option<Window> },
}

/// The tick at `now` of a CQ grouped by `time(interval, offset)` in zone
/// `tz` (`None`: UTC) that last ran at `last` (`None`: not since this
/// process started — it runs at once).
pub fn tick(
    now: i64,
    last: Option<i64>,
    interval: i64,
    offset: i64,
    r: Resample,
    tz: Option<&TimeZone>,
) -> Tick {
    if interval <= 0 {
        return Tick::Wait;
    }
    let every = if r.every > 0 { r.every } else { interval };
    // In i128: intervals of thousands of years must not overflow.
    let zone = |t: i128| tz.map_or(0, |tz| i128::from(zone_offset(tz, clamp(t))));
    let next = match last {
        None => i128::from(now),
        Some(l) => {
            let (l, every_) = (i128::from(l), i128::from(every));
            let mut next = l + every_;
            // A change of offset between the last run and the next moves
            // the next run by the change (a day stays local midnight).
            let diff = zone(l - 1) - zone(next - 1);
            if diff != 0 && diff.abs() < every_ {
                next += diff;
            }
            if next > i128::from(now) {
                return Tick::Wait;
            }
            next
        }
    };
    // 1.6's `truncate`: to a multiple of `d` in local time; when the offset
    // at the result differs (a DST change inside the window), shifted by it.
    let trunc = |t: i128, d: i64| {
        let (d, z) = (i128::from(d), zone(t));
        let mut out = t - (t + z).rem_euclid(d);
        let diff = z - zone(out);
        if diff != 0 && diff.abs() < d {
            out += diff;
        }
        out
    };
    let (now_, interval_, offset_) = (i128::from(now), i128::from(interval), i128::from(offset));
    let last = clamp(trunc(now_ - offset_, every) + offset_);
    let for_ = i128::from(if r.for_ > 0 {
        r.for_
    } else {
        interval.max(every)
    });
    let every = i128::from(every.min(interval));
    let start = clamp(trunc(next + interval_ - for_ - offset_ - 1, interval) + offset_);
    let end = clamp(trunc(now_ + interval_ - every - offset_, interval) + offset_);
    Tick::Due {
        last,
        run: (end > start).then_some(Window { start, end }),
    }
}

fn clamp(t: i128) -> i64 {
    t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The offset of a statement's `GROUP BY time(interval, offset)`: a
/// duration modulo the interval (its sign kept, as Go's `%` keeps it), or a
/// time's distance from the window it falls in.
pub fn group_by_offset(s: &SelectStatement, interval: i64) -> i64 {
    if interval <= 0 {
        return 0;
    }
    for d in &s.dimensions {
        if let Expr::Call { name, args } = d {
            if name == "time" {
                return match args.get(1) {
                    Some(Expr::Duration(o)) => o % interval,
                    Some(Expr::Time(t)) => t.rem_euclid(interval),
                    _ => 0,
                };
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    /// A time aligned to 10 minutes.
    const T: i64 = 1_700_000_400 * S;

    fn utc(now: i64, last: Option<i64>, interval: i64, offset: i64, r: Resample) -> Tick {
        tick(now, last, interval, offset, r, None)
    }

    /// `y-m-d h:mi` UTC, in ns.
    fn at(y: i16, m: i8, d: i8, h: i8, mi: i8) -> i64 {
        date(y, m, d)
            .at(h, mi, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_nanosecond() as i64
    }

    fn due(last: i64, start: i64, end: i64) -> Tick {
        Tick::Due {
            last,
            run: Some(Window { start, end }),
        }
    }

    #[test]
    fn influxdbs_worked_examples() {
        let none = Resample::default();
        // time(1m), first tick exactly at T: the minute before.
        assert_eq!(utc(T, None, M, 0, none), due(T, T - M, T));
        // First tick mid-interval: nothing yet, next run covers that minute.
        let mid = T + 30 * S;
        assert_eq!(utc(mid, None, M, 0, none), Tick::Due { last: T, run: None });
        assert_eq!(utc(T + 50 * S, Some(T), M, 0, none), Tick::Wait);
        assert_eq!(utc(T + M, Some(T), M, 0, none), due(T + M, T, T + M));
        // Late tick: the missed minutes in one query.
        assert_eq!(
            utc(T + 5 * M, Some(T), M, 0, none),
            due(T + 5 * M, T, T + 5 * M)
        );
        // RESAMPLE EVERY 10s FOR 2m, time(1m).
        let r = Resample {
            every: 10 * S,
            for_: 2 * M,
        };
        assert_eq!(utc(T, None, M, 0, r), due(T, T - 2 * M, T));
        assert_eq!(
            utc(T + 10 * S, Some(T), M, 0, r),
            due(T + 10 * S, T - M, T + M)
        );
        // RESAMPLE EVERY 10s FOR 2m, late by ten minutes.
        assert_eq!(
            utc(T + 10 * M, Some(T), M, 0, r),
            due(T + 10 * M, T - M, T + 10 * M)
        );
        // RESAMPLE EVERY 1m, time(30s).
        let r = Resample { every: M, for_: 0 };
        assert_eq!(utc(T, None, 30 * S, 0, r), due(T, T - M, T));
        assert_eq!(utc(T + 30 * S, Some(T), 30 * S, 0, r), Tick::Wait);
        assert_eq!(utc(T + M, Some(T), 30 * S, 0, r), due(T + M, T, T + M));
        // time(1m, 30s), first run at T+30s.
        assert_eq!(
            utc(T + 30 * S, None, M, 30 * S, none),
            due(T + 30 * S, T - 30 * S, T + 30 * S)
        );
        // No GROUP BY time(): never.
        assert_eq!(utc(T, None, 0, 0, none), Tick::Wait);
    }

    #[test]
    fn windows_follow_the_tz_zone_across_dst() {
        let none = Resample::default();
        let chicago = TimeZone::get("America/Chicago").unwrap();
        let tz = Some(&chicago);
        const H: i64 = 60 * M;
        const D: i64 = 24 * H;
        // Clocks go forward on 2026-03-08 (CST -6 → CDT -5): after the run
        // at local midnight the next one comes 23 h later, at local
        // midnight, over the 23-hour local day.
        let last = at(2026, 3, 8, 6, 0);
        assert_eq!(
            tick(at(2026, 3, 9, 4, 59), Some(last), D, 0, none, tz),
            Tick::Wait
        );
        let now = at(2026, 3, 9, 5, 0);
        assert_eq!(tick(now, Some(last), D, 0, none, tz), due(now, last, now));
        // In UTC it would wait for 24 h and cover a UTC day.
        assert_eq!(utc(now, Some(last), D, 0, none), Tick::Wait);
        // Clocks go back on 2026-11-01 (CDT → CST): a 25-hour day.
        let last = at(2026, 11, 1, 5, 0);
        let now = at(2026, 11, 2, 6, 0);
        assert_eq!(tick(now - 1, Some(last), D, 0, none, tz), Tick::Wait);
        assert_eq!(tick(now, Some(last), D, 0, none, tz), due(now, last, now));
        // A first run mid-day: nothing is due yet; it ran "at" local
        // midnight, so the next run is at the next local midnight.
        let noon = at(2026, 3, 9, 17, 0);
        let midnight = at(2026, 3, 9, 5, 0);
        assert_eq!(
            tick(noon, None, D, 0, none, tz),
            Tick::Due {
                last: midnight,
                run: None
            }
        );
        assert_eq!(
            tick(at(2026, 3, 10, 5, 0), Some(midnight), D, 0, none, tz),
            due(at(2026, 3, 10, 5, 0), midnight, at(2026, 3, 10, 5, 0))
        );
        // A half-hour zone: hourly windows start at :30 UTC.
        let kolkata = TimeZone::get("Asia/Kolkata").unwrap();
        let now = at(2026, 1, 1, 10, 30);
        assert_eq!(
            tick(now, None, H, 0, none, Some(&kolkata)),
            due(now, at(2026, 1, 1, 9, 30), now)
        );
        // In UTC that is mid-hour: nothing yet.
        assert_eq!(
            utc(now, None, H, 0, none),
            Tick::Due {
                last: at(2026, 1, 1, 10, 0),
                run: None
            }
        );
    }

    #[test]
    fn offsets_as_go_computes_them() {
        let stmt = |q: &str| match sundial_influxql::parse_query(q).unwrap().remove(0) {
            sundial_influxql::Statement::Select(s) => *s,
            _ => unreachable!(),
        };
        let s = stmt("SELECT mean(v) INTO x FROM m GROUP BY time(1m, 90s)");
        assert_eq!(group_by_offset(&s, M), 30 * S);
        let s = stmt("SELECT mean(v) INTO x FROM m GROUP BY time(1m, -15s)");
        assert_eq!(group_by_offset(&s, M), -15 * S);
        let s = stmt("SELECT mean(v) INTO x FROM m GROUP BY host, time(1m)");
        assert_eq!(group_by_offset(&s, M), 0);
    }
}
