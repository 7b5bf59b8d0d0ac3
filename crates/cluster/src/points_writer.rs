//! `PointsWriter` (InfluxDB's coordinator): maps each point to the shard group
//! for its time and to a shard by FNV-64a of its series key, then writes every
//! shard's points through the [`ShardWriter`] seam, shards in parallel.

use crate::error::{Error, Result};
use crate::seam::{Batch, Consistency, ShardWriter};
use std::collections::HashMap;
use std::sync::Arc;
use sundial_common::WriteOutcome;
use sundial_meta::{MetaClient, ShardGroupInfo, ShardInfo};
use sundial_query::DeletePlan;

/// What a write did, summed over shards.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    pub points_written: usize,
    pub values_written: usize,
    pub points_dropped: usize,
    /// InfluxDB's texts for the drops (type conflicts, retention, …), distinct.
    pub drop_reasons: Vec<String>,
}

impl WriteSummary {
    /// Adds the summary of another chunk of the same request.
    pub fn merge(&mut self, o: WriteSummary) {
        self.points_written += o.points_written;
        self.values_written += o.values_written;
        self.points_dropped += o.points_dropped;
        for r in o.drop_reasons {
            // A limit is reported once, by its first refusal (InfluxDB's way), not
            // once per chunk with another value in it.
            let limit = r.split([' ', ':']).next().filter(|k| k.starts_with("max-"));
            let known = self
                .drop_reasons
                .iter()
                .any(|x| *x == r || limit.is_some_and(|k| x.split([' ', ':']).next() == Some(k)));
            if !known {
                self.drop_reasons.push(r);
            }
        }
    }

    fn absorb(&mut self, o: WriteOutcome) {
        self.merge(WriteSummary {
            points_written: o.points_written,
            values_written: o.values_written,
            points_dropped: o.points_dropped,
            drop_reasons: o.drop_reasons,
        });
    }
}

#[derive(Debug, Clone)]
pub struct PointsWriter {
    meta: MetaClient,
    writer: Arc<dyn ShardWriter>,
    max_new_groups: usize,
}

/// Shard groups one write may create unless configured otherwise: a backfill of two
/// years of weekly groups, not the thousands a stray timestamp range can ask for.
pub const DEFAULT_MAX_NEW_SHARD_GROUPS: usize = 100;

/// The `[coordinator]` section (InfluxDB's name for the points writer's settings).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CoordinatorConfig {
    /// Shard groups one write may create; points that would create more are dropped
    /// with a partial-write error (0: no limit).
    pub max_shard_groups_per_write: usize,
    /// Bytes of data one SELECT may hold while it runs; a statement that would
    /// need more ends with an error (0: no limit).
    pub query_memory_limit: usize,
    /// How long one `/query` request may run before it ends with
    /// "query-timeout limit exceeded" (0s: no limit; InfluxDB's `query-timeout`).
    #[serde(with = "sundial_common::config::duration")]
    pub query_timeout: std::time::Duration,
    /// GROUP BY time() windows one SELECT may make (0: no limit; InfluxDB's
    /// `max-select-buckets`).
    pub max_select_buckets: usize,
    /// Points (field values) one SELECT may read (0: no limit; InfluxDB's
    /// `max-select-point`).
    pub max_select_point: usize,
    /// Series one SELECT may read from one shard (0: no limit; InfluxDB's
    /// `max-select-series`).
    pub max_select_series: usize,
    /// A query still running this long is logged (`Detected slow query`, with
    /// its text) (0s: never; InfluxDB's `log-queries-after`).
    #[serde(with = "sundial_common::config::duration")]
    pub log_queries_after: std::time::Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            max_shard_groups_per_write: DEFAULT_MAX_NEW_SHARD_GROUPS,
            query_memory_limit: 1 << 30,
            query_timeout: std::time::Duration::ZERO,
            max_select_buckets: 0,
            max_select_point: 0,
            max_select_series: 0,
            log_queries_after: std::time::Duration::ZERO,
        }
    }
}

impl PointsWriter {
    pub fn new(meta: MetaClient, writer: Arc<dyn ShardWriter>) -> Self {
        PointsWriter {
            meta,
            writer,
            max_new_groups: DEFAULT_MAX_NEW_SHARD_GROUPS,
        }
    }

    /// Shard groups one write (one chunk of a request body) may create; 0: no limit.
    /// InfluxDB has none: one request of points a week apart made a thousand shards.
    pub fn with_max_new_shard_groups(mut self, n: usize) -> Self {
        self.max_new_groups = n;
        self
    }

    /// Applies a planned DROP MEASUREMENT / DROP SERIES / DELETE to every owner
    /// of its shards; the answer counts owner-shards that apply it later.
    #[tracing::instrument(name = "points_writer.delete", skip_all, err(level = "debug"), fields(db = %plan.database, shards = plan.shards.len()))]
    pub async fn delete(&self, plan: &DeletePlan) -> Result<usize> {
        if plan.shards.is_empty() {
            return Ok(0);
        }
        self.writer
            .delete_series(&plan.database, &plan.shards, &plan.request)
            .await
    }

    /// Writes the points of `batch` to `db`/`rp` (`rp` empty: the database's default policy).
    #[tracing::instrument(
        name = "points_writer.write",
        skip_all,
        err(level = "debug"),
        fields(db = %db, rp = %rp, points = batch.parsed().len(), consistency = ?consistency)
    )]
    pub async fn write_points(
        &self,
        db: &str,
        rp: &str,
        batch: &Arc<Batch>,
        consistency: Consistency,
    ) -> Result<WriteSummary> {
        let parsed = batch.parsed();
        // By start time. A backfill can touch thousands, so they are found by binary
        // search after the last one used.
        let mut groups: Vec<ShardGroupInfo> = Vec::new();
        let mut last = 0;
        let mut by_shard: HashMap<u64, (ShardInfo, Vec<u32>)> = HashMap::new();
        let mut summary = WriteSummary::default();
        let mut beyond_retention = 0;
        let (mut new_groups, mut over_group_limit) = (0, 0);
        for (i, p) in parsed.iter().enumerate() {
            let t = p.timestamp;
            if !groups.get(last).is_some_and(|g| g.contains(t)) {
                // Like meta's `shard_group_at`: the last group starting at or before
                // `t`, scanning back a little (windows differ after an ALTER).
                let upto = groups.partition_point(|g| g.start <= t);
                let cached = (upto.saturating_sub(4)..upto)
                    .rev()
                    .find(|&i| groups[i].contains(t));
                if let Some(i) = cached {
                    last = i;
                } else {
                    let exists = self.meta.snapshot().shard_group_at(db, rp, t).is_some();
                    if !exists && self.max_new_groups > 0 && new_groups >= self.max_new_groups {
                        over_group_limit += 1;
                        continue;
                    }
                    match self.meta.shard_group_for(db, rp, t).await? {
                        Some(g) if g.contains(t) => {
                            new_groups += usize::from(!exists);
                            last = match groups.iter().position(|h| h.id == g.id) {
                                Some(i) => i,
                                None => {
                                    let at = groups.partition_point(|h| h.start <= g.start);
                                    groups.insert(at, g);
                                    at
                                }
                            };
                        }
                        Some(g) => {
                            return Err(Error::Internal(format!(
                                "meta returned shard group {} [{}, {}) for time {t}",
                                g.id, g.start, g.end
                            )))
                        }
                        None => {
                            beyond_retention += 1;
                            continue;
                        }
                    }
                }
            }
            let group = &groups[last];
            let shard = group.shard_for(p.hash_id()).ok_or_else(|| {
                Error::Internal(format!("shard group {} has no shards", group.id))
            })?;
            let index = u32::try_from(i)
                .map_err(|_| Error::BadRequest("too many points in one request".into()))?;
            by_shard
                .entry(shard.id)
                .or_insert_with(|| (shard.clone(), Vec::new()))
                .1
                .push(index);
        }
        let writes = by_shard.into_values().map(|(shard, indices)| {
            let batch = batch.clone();
            async move {
                self.writer
                    .write_to_shard(db, &shard, batch, indices, consistency)
                    .await
            }
        });
        for outcome in futures::future::join_all(writes).await {
            summary.absorb(outcome?);
        }
        if over_group_limit > 0 {
            summary.points_dropped += over_group_limit;
            summary.drop_reasons.push(format!(
                "max-shard-groups-per-write limit exceeded: ({}) new shard groups in one write; send points far apart in time in separate requests or raise [coordinator] max-shard-groups-per-write",
                self.max_new_groups
            ));
        }
        if beyond_retention > 0 {
            summary.points_dropped += beyond_retention;
            summary
                .drop_reasons
                .push("points beyond retention policy".into());
        }
        Ok(summary)
    }
}
