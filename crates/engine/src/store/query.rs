//! What queries ask of one shard of a store: streaming scans, per-series summaries
//! for aggregates, deletes and schema lookups.

use std::sync::Arc;

use super::Store;
use crate::error::Result;
use crate::index::TagPredicate;
use crate::shard::{FieldData, ReadState, SeriesData, Shard, Summarized};
use crate::types::FieldType;

/// A streaming scan: one series per `next()`, read lazily from a consistent snapshot.
#[derive(Debug)]
pub struct SeriesIter {
    shard: Arc<Shard>,
    snap: ReadState,
    keys: std::vec::IntoIter<(Box<str>, u32)>,
    fields: Option<Vec<String>>,
    min: i64,
    max: i64,
}

/// What [`Store::summarize`] calls per series: its tags and its summarized
/// fields; false stops.
pub type SummaryVisitor<'a> =
    dyn FnMut(Vec<(String, String)>, Vec<(String, Summarized)>) -> bool + 'a;

impl Iterator for SeriesIter {
    type Item = Result<SeriesData>;

    fn next(&mut self) -> Option<Self::Item> {
        for (key, sid) in self.keys.by_ref() {
            self.shard.metrics.add(&self.shard.metrics.series_read, 1);
            let want = |n: &str| {
                self.fields
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|x| x == n))
            };
            match self
                .shard
                .read_series(&self.snap, &key, sid, &want, self.min, self.max)
            {
                Ok(cols) if cols.is_empty() => continue,
                Ok(cols) => {
                    let (measurement, tags) = crate::index::parse_series_key(&key);
                    return Some(Ok(SeriesData {
                        key: key.to_string(),
                        measurement,
                        tags,
                        fields: cols
                            .into_iter()
                            .map(|(name, column)| FieldData { name, column })
                            .collect(),
                    }));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }
}

impl Store {
    /// Stream the series of `measurement` matching `pred`, with the requested fields (all
    /// when `None`) in `[min, max]` (inclusive, ns). Series without data are skipped.
    pub fn scan(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
        fields: Option<&[&str]>,
        min: i64,
        max: i64,
    ) -> Result<SeriesIter> {
        let s = self.shard(shard_id)?;
        let keys = s.select(measurement, pred);
        let snap = s.snapshot();
        Ok(SeriesIter {
            shard: s,
            snap,
            keys: keys.into_iter(),
            fields: fields.map(|f| f.iter().map(|x| x.to_string()).collect()),
            min,
            max,
        })
    }

    /// For an aggregate: each series of `measurement` matching `pred`, with its
    /// tags and, per field of `fields`, the statistics of its whole blocks and
    /// its other points in `[min, max]` (see [`Summarized`]); `f` returns false
    /// to stop.
    #[allow(clippy::too_many_arguments)]
    pub fn summarize(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
        fields: &[&str],
        min: i64,
        max: i64,
        same_window: &dyn Fn(i64, i64) -> bool,
        f: &mut SummaryVisitor<'_>,
    ) -> Result<()> {
        let s = self.shard(shard_id)?;
        let keys = s.select(measurement, pred);
        let snap = s.snapshot();
        for (key, sid) in keys {
            s.metrics.add(&s.metrics.series_read, 1);
            let per_field =
                s.read_series_summarized(&snap, &key, sid, fields, min, max, same_window)?;
            if per_field.is_empty() {
                continue;
            }
            let (_, tags) = crate::index::parse_series_key(&key);
            if !f(tags, per_field) {
                break;
            }
        }
        Ok(())
    }

    /// Delete points in `[min, max]` of the matching series. Deleting the full time
    /// range also removes the series from the shard's list.
    pub fn delete(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
        min: i64,
        max: i64,
    ) -> Result<()> {
        self.shard(shard_id)?.delete(measurement, pred, min, max)
    }

    /// Delete points in `[min, max]` of exactly the series `keys` (canonical
    /// series keys; those the shard lacks are skipped).
    pub fn delete_series(&self, shard_id: u64, keys: &[String], min: i64, max: i64) -> Result<()> {
        self.shard(shard_id)?.delete_series(keys, min, max)
    }

    pub fn drop_measurement(&self, shard_id: u64, measurement: &str) -> Result<()> {
        self.shard(shard_id)?.drop_measurement(measurement)
    }

    pub fn measurements(&self, shard_id: u64) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.measurements())
    }

    pub fn tag_keys(&self, shard_id: u64, measurement: &str) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.tag_keys(measurement))
    }

    pub fn tag_values(&self, shard_id: u64, measurement: &str, key: &str) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.tag_values(measurement, key))
    }

    /// The stamp of a shard's schema now (see [`crate::index::SchemaStamp`]):
    /// read before its schema, it names a state no older than what is read.
    pub fn schema_stamp(&self, shard_id: u64) -> Result<u64> {
        Ok(self.shard(shard_id)?.index().read().stamp.0)
    }

    pub fn field_keys(&self, shard_id: u64, measurement: &str) -> Result<Vec<(String, FieldType)>> {
        Ok(self.shard(shard_id)?.index().read().field_keys(measurement))
    }

    /// Series keys of a measurement matching a predicate, sorted.
    pub fn series_keys(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
    ) -> Result<Vec<String>> {
        Ok(self
            .shard(shard_id)?
            .select(measurement, pred)
            .into_iter()
            .map(|(k, _)| k.into_string())
            .collect())
    }
}
