//! When a continuous query runs and over which time range, as InfluxDB 1.6's
//! continuous querier decides it (`ExecuteContinuousQuery`, `shouldRun`; the
//! rules are in `EXECUTION-1.6.md` §17). Times are ns since the epoch,
//! windows epoch-aligned in UTC (1.6 aligns them in a `tz()` zone; such CQs
//! are refused at CREATE for now).

use sundial_influxql::select::{Expr, SelectStatement};

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

/// The tick at `now` of a CQ grouped by `time(interval, offset)` that last
/// ran at `last` (`None`: not since this process started — it runs at once).
pub fn tick(now: i64, last: Option<i64>, interval: i64, offset: i64, r: Resample) -> Tick {
    if interval <= 0 {
        return Tick::Wait;
    }
    let every = if r.every > 0 { r.every } else { interval };
    let next = match last {
        None => now,
        Some(l) if l.saturating_add(every) <= now => l.saturating_add(every),
        Some(_) => return Tick::Wait,
    };
    // In i128: intervals of thousands of years must not overflow.
    let trunc = |t: i128, d: i64| t - t.rem_euclid(i128::from(d));
    let clamp = |t: i128| t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let (now_, next, interval_, offset_) = (
        i128::from(now),
        i128::from(next),
        i128::from(interval),
        i128::from(offset),
    );
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

    const S: i64 = 1_000_000_000;
    const M: i64 = 60 * S;
    /// A time aligned to 10 minutes.
    const T: i64 = 1_700_000_400 * S;

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
        assert_eq!(tick(T, None, M, 0, none), due(T, T - M, T));
        // First tick mid-interval: nothing yet, next run covers that minute.
        let mid = T + 30 * S;
        assert_eq!(
            tick(mid, None, M, 0, none),
            Tick::Due { last: T, run: None }
        );
        assert_eq!(tick(T + 50 * S, Some(T), M, 0, none), Tick::Wait);
        assert_eq!(tick(T + M, Some(T), M, 0, none), due(T + M, T, T + M));
        // Late tick: the missed minutes in one query.
        assert_eq!(
            tick(T + 5 * M, Some(T), M, 0, none),
            due(T + 5 * M, T, T + 5 * M)
        );
        // RESAMPLE EVERY 10s FOR 2m, time(1m).
        let r = Resample {
            every: 10 * S,
            for_: 2 * M,
        };
        assert_eq!(tick(T, None, M, 0, r), due(T, T - 2 * M, T));
        assert_eq!(
            tick(T + 10 * S, Some(T), M, 0, r),
            due(T + 10 * S, T - M, T + M)
        );
        // RESAMPLE EVERY 10s FOR 2m, late by ten minutes.
        assert_eq!(
            tick(T + 10 * M, Some(T), M, 0, r),
            due(T + 10 * M, T - M, T + 10 * M)
        );
        // RESAMPLE EVERY 1m, time(30s).
        let r = Resample { every: M, for_: 0 };
        assert_eq!(tick(T, None, 30 * S, 0, r), due(T, T - M, T));
        assert_eq!(tick(T + 30 * S, Some(T), 30 * S, 0, r), Tick::Wait);
        assert_eq!(tick(T + M, Some(T), 30 * S, 0, r), due(T + M, T, T + M));
        // time(1m, 30s), first run at T+30s.
        assert_eq!(
            tick(T + 30 * S, None, M, 30 * S, none),
            due(T + 30 * S, T - 30 * S, T + 30 * S)
        );
        // No GROUP BY time(): never.
        assert_eq!(tick(T, None, 0, 0, none), Tick::Wait);
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
