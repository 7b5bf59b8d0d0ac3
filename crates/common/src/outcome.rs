//! What a write to a shard did, the same type on both sides of the shard-writer seam.

/// What happened to a write: how much was stored and what was dropped, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub points_written: usize,
    pub values_written: usize,
    pub points_dropped: usize,
    /// Distinct reasons in InfluxDB's wording (at most `MAX_REASONS`, 32).
    pub drop_reasons: Vec<String>,
}

pub const MAX_REASONS: usize = 32;

impl WriteOutcome {
    /// Counts a dropped point and keeps its reason (distinct, at most `MAX_REASONS`).
    pub fn drop_point(&mut self, reason: String) {
        self.points_dropped += 1;
        if self.drop_reasons.len() < MAX_REASONS && !self.drop_reasons.contains(&reason) {
            self.drop_reasons.push(reason);
        }
    }

    /// InfluxDB's partial-write summary, e.g. `partial write: field type conflict: ... dropped=1`.
    pub fn partial_write_error(&self) -> Option<String> {
        (self.points_dropped > 0).then(|| {
            format!(
                "partial write: {} dropped={}",
                self.drop_reasons.first().map_or("", String::as_str),
                self.points_dropped
            )
        })
    }

    /// Adds another outcome of the same write.
    pub fn absorb(&mut self, o: WriteOutcome) {
        self.points_written += o.points_written;
        self.values_written += o.values_written;
        for r in o.drop_reasons {
            if self.drop_reasons.len() < MAX_REASONS && !self.drop_reasons.contains(&r) {
                self.drop_reasons.push(r);
            }
        }
        self.points_dropped += o.points_dropped;
    }
}
