//! Timestamp precision of a write request.

use crate::error::InvalidPrecision;
use std::str::FromStr;

/// Unit of the timestamps in a write body; everything is stored in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
}

impl Precision {
    /// Nanoseconds in one unit.
    pub const fn multiplier(self) -> i64 {
        match self {
            Precision::Nanosecond => 1,
            Precision::Microsecond => 1_000,
            Precision::Millisecond => 1_000_000,
            Precision::Second => 1_000_000_000,
            Precision::Minute => 60_000_000_000,
            Precision::Hour => 3_600_000_000_000,
        }
    }

    /// `t` (ns) truncated toward negative infinity to this precision, as InfluxDB
    /// does with the default time of lines that carry no timestamp.
    pub fn truncate(self, t: i64) -> i64 {
        let m = self.multiplier();
        t - t.rem_euclid(m)
    }
}

impl FromStr for Precision {
    type Err = InvalidPrecision;

    /// Accepts InfluxDB 1.x's `n ns u us µ ms s m h`; the empty string is nanoseconds.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "" | "n" | "ns" => Precision::Nanosecond,
            "u" | "us" | "µ" | "µs" => Precision::Microsecond,
            "ms" => Precision::Millisecond,
            "s" => Precision::Second,
            "m" => Precision::Minute,
            "h" => Precision::Hour,
            other => return Err(InvalidPrecision(other.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_influx_precisions() {
        for (s, m) in [
            ("", 1),
            ("n", 1),
            ("ns", 1),
            ("u", 1_000),
            ("us", 1_000),
            ("ms", 1_000_000),
            ("s", 1_000_000_000),
            ("m", 60_000_000_000),
            ("h", 3_600_000_000_000),
        ] {
            assert_eq!(s.parse::<Precision>().unwrap().multiplier(), m, "{s}");
        }
        let err = "x".parse::<Precision>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid precision \"x\" (use n, u, ms, s, m or h)"
        );
    }

    #[test]
    fn truncates_toward_negative_infinity() {
        assert_eq!(Precision::Second.truncate(1_999_999_999), 1_000_000_000);
        assert_eq!(Precision::Second.truncate(-1), -1_000_000_000);
        assert_eq!(Precision::Nanosecond.truncate(-7), -7);
    }
}
