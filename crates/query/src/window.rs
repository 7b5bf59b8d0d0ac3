//! GROUP BY time() windows as InfluxDB's `IteratorOptions.Window` computes
//! them: truncated in the zone of `tz()` (so a day starts at local midnight,
//! and a DST change lengthens or shortens the window it falls in), shifted by
//! the offset.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::plan::{Plan, MAX_TIME, MIN_TIME};

/// The zone's offset from UTC at `t`, in ns.
pub(crate) fn zone_offset(tz: &TimeZone, t: i64) -> i64 {
    let ts = Timestamp::from_nanosecond(i128::from(t)).unwrap_or(Timestamp::UNIX_EPOCH);
    i64::from(tz.to_offset(ts).seconds()) * 1_000_000_000
}

/// The window holding `t`: `[start, end)`.
pub fn window(plan: &Plan, t: i64) -> (i64, i64) {
    let interval = plan.interval;
    if interval <= 0 {
        return (plan.min, plan.max.saturating_add(1));
    }
    let t = t.saturating_sub(plan.offset);
    let zone = plan.tz.as_ref().map_or(0, |tz| zone_offset(tz, t));
    let dt = t.wrapping_add(zone).rem_euclid(interval);
    let mut start = if MIN_TIME.saturating_add(dt) >= t {
        MIN_TIME
    } else {
        t - dt
    };
    if let Some(tz) = &plan.tz {
        // A change of offset inside the window moves its start.
        let o = zone - zone_offset(tz, start);
        if o != 0 && o.abs() < interval {
            start += o;
        }
    }
    start = start.saturating_add(plan.offset);
    let rest = interval - dt;
    let mut end = if MAX_TIME.saturating_sub(rest) <= t {
        MAX_TIME
    } else {
        t + rest
    };
    if let Some(tz) = &plan.tz {
        let end_zone = zone_offset(tz, end);
        let o = zone - end_zone;
        // Clocks going back add time to this window; going forward, the
        // skipped time belongs here only if the switch is inside it.
        if o != 0 && o.abs() < interval && (o > 0 || zone_offset(tz, end + o) == end_zone) {
            end += o;
        }
    }
    (start, end.saturating_add(plan.offset))
}

/// The zone offset at `t` (ns), or 0 without `tz()`.
pub fn offset_at(plan: &Plan, t: i64) -> i64 {
    plan.tz.as_ref().map_or(0, |tz| zone_offset(tz, t))
}
