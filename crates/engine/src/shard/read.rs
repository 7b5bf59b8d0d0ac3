//! Reads (series selection, scans) and deletes of a shard.

use std::sync::Arc;

use roaring::RoaringBitmap;

use super::{ReadState, Shard};
use crate::batch;
use crate::error::{Error, Result};
use crate::index::{ShardIndex, TagPredicate};
use crate::manifest::Tombstone;
use crate::tsfile::TimeCache;
use crate::types::Column;
use crate::wal::{self, KIND_DELETE};

/// One field of a series returned by a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldData {
    pub name: String,
    pub column: Column,
}

/// One field of one series for an aggregate ([`Shard::read_series_summarized`]):
/// whole blocks as their statistics, the rest as points.
#[derive(Debug, Clone, PartialEq)]
pub struct Summarized {
    pub stats: Vec<crate::tsfile::BlockStats>,
    pub points: Option<Column>,
}

/// One series returned by a scan: its fields' columns in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub key: String,
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<FieldData>,
}

impl Shard {
    // ---------------------------------------------------------------- deletes

    /// Delete points of the matching series in `[min, max]`. With the full time range the
    /// series also leave the index (InfluxDB's DROP SERIES).
    pub fn delete(
        self: &Arc<Self>,
        measurement: &str,
        pred: &TagPredicate,
        min: i64,
        max: i64,
    ) -> Result<()> {
        self.check_open()?;
        let keys: Vec<Box<str>> = self
            .select(measurement, pred)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.delete_keys(&keys, min, max, None)
    }

    /// Delete points of exactly these series in `[min, max]` (keys the shard
    /// does not hold are skipped); the full range also removes them from the index.
    pub fn delete_series(self: &Arc<Self>, keys: &[String], min: i64, max: i64) -> Result<()> {
        self.check_open()?;
        let mut held: Vec<Box<str>> = keys
            .iter()
            .filter(|k| self.catalog.get(k).is_some())
            .map(|k| k.as_str().into())
            .collect();
        held.sort_unstable();
        held.dedup();
        self.delete_keys(&held, min, max, None)
    }

    pub fn drop_measurement(self: &Arc<Self>, measurement: &str) -> Result<()> {
        self.check_open()?;
        let keys: Vec<Box<str>> = self
            .select(measurement, &TagPredicate::All)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.delete_keys(&keys, i64::MIN, i64::MAX, Some(measurement))
    }

    /// Deletes points of `keys` in `[min, max]`; with `forget`, that measurement's
    /// field types go in the same step under the write lock (writes validated
    /// against them check again; see `Shard::write`). What leaves the index
    /// (the series of a full-range delete, a forgotten schema) is persisted.
    fn delete_keys(
        self: &Arc<Self>,
        keys: &[Box<str>],
        min: i64,
        max: i64,
        forget: Option<&str>,
    ) -> Result<()> {
        if keys.is_empty() || min > max {
            if let Some(m) = forget {
                {
                    let _ws = self.write.lock();
                    self.index.write().drop_measurement_schema(m);
                }
                return self.persist_index();
            }
            return Ok(());
        }
        let refs: Vec<&str> = keys.iter().map(|k| &**k).collect();
        let mut frame = wal::new_frame(KIND_DELETE, keys.len() * 64);
        batch::encode_delete(&mut frame, &refs, min, max);
        let seq = {
            let _ws = self.write.lock();
            let seq = self.wal.append(&mut frame)?;
            let sids: Vec<u32> = refs.iter().filter_map(|k| self.catalog.get(k)).collect();
            let active = self.state.read().active.clone();
            {
                let mut mem = active.write();
                mem.seq.delete(&sids, min, max);
                mem.unseq.delete(&sids, min, max);
                mem.max_seq = seq;
            }
            let tomb = Arc::new(Tombstone {
                seq,
                min,
                max,
                keys: refs.iter().map(|k| k.to_string()).collect(),
            });
            // Durable before the delete is acknowledged; the manifest is untouched.
            let _ms = self.manifest.lock();
            self.tomb_log.add(&tomb)?;
            self.state.write().tombstones.push(tomb);
            if min == i64::MIN && max == i64::MAX {
                let mut bm = RoaringBitmap::new();
                bm.extend(sids);
                self.index.write().remove_series(&bm);
            }
            if let Some(m) = forget {
                self.index.write().drop_measurement_schema(m);
            }
            seq
        };
        self.wal.commit(seq)?;
        if min != i64::MIN || max != i64::MAX {
            self.forget_emptied(&refs)?;
        } else {
            self.persist_index()?;
        }
        // Reclaim the space: files holding what it hides are rewritten.
        if self.opts.auto_compaction {
            self.sched.compact(Arc::downgrade(self));
        }
        Ok(())
    }

    /// After a delete of part of their time: the series of `keys` left with no
    /// point leave the index (InfluxDB 1.6 drops a series whose last point a
    /// DELETE removed: SHOW SERIES and SHOW MEASUREMENTS no longer list it).
    fn forget_emptied(self: &Arc<Self>, keys: &[&str]) -> Result<()> {
        self.forget_unheld(keys.iter().copied(), |snap, key, sid| {
            self.has_points(snap, key, sid)
        })
    }

    /// Removes from the index the series of `keys` that `held` says hold no
    /// point any more. Under the write lock, so no write lands between the
    /// check and the removal.
    pub(super) fn forget_unheld<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
        held: impl Fn(&ReadState, &str, u32) -> Result<bool>,
    ) -> Result<()> {
        let mut gone = RoaringBitmap::new();
        {
            let _ws = self.write.lock();
            let snap = self.snapshot();
            for key in keys {
                let Some(sid) = self.catalog.get(key) else {
                    continue;
                };
                if !held(&snap, key, sid)? {
                    gone.insert(sid);
                }
            }
            if gone.is_empty() {
                return Ok(());
            }
            self.index.write().remove_series(&gone);
        }
        self.persist_index()
    }

    /// Does the series still hold a point, after tombstones? Memtables are read;
    /// files are judged by their blocks' time ranges (as InfluxDB judges by its
    /// TSM index): a block not wholly under tombstones counts as holding points.
    fn has_points(&self, snap: &ReadState, key: &str, sid: u32) -> Result<bool> {
        let all = |_: &str| true;
        let visible = |mut c: Column, seq: Option<u64>| {
            if let Some(seq) = seq {
                for t in &snap.tombstones {
                    if t.applies(key, seq) {
                        c.delete_range(t.min, t.max);
                    }
                }
            }
            !c.is_empty()
        };
        if snap
            .active
            .read()
            .read_series(sid, &all, i64::MIN, i64::MAX)
            .into_iter()
            .any(|(_, c)| visible(c, None))
        {
            return Ok(true);
        }
        for fz in &snap.frozen {
            let cols = fz.mem.read().read_series(sid, &all, i64::MIN, i64::MAX);
            if cols.into_iter().any(|(_, c)| visible(c, Some(fz.max_seq))) {
                return Ok(true);
            }
        }
        for f in &snap.files {
            if !f.file.may_contain(key, i64::MIN, i64::MAX) {
                continue;
            }
            let si = match f.file.series_index(key) {
                Ok(Some(si)) => si,
                Ok(None) => continue,
                Err(e) => return Err(self.on_read_error(e)),
            };
            let mut hiding: Vec<(i64, i64)> = snap
                .tombstones
                .iter()
                .filter(|t| t.applies(key, f.meta.max_seq))
                .map(|t| (t.min, t.max))
                .collect();
            hiding.sort_unstable();
            let covered = |lo: i64, hi: i64| {
                let mut from = lo;
                for &(a, b) in &hiding {
                    if a > from {
                        break;
                    }
                    if b >= hi {
                        return true;
                    }
                    from = from.max(b.saturating_add(1));
                }
                false
            };
            let mut blocks = si.fields.iter().flat_map(|fi| fi.blocks.iter());
            if blocks.any(|b| !covered(b.min_time, b.max_time)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ---------------------------------------------------------------- reads

    pub fn snapshot(&self) -> ReadState {
        self.state.read().clone()
    }

    pub fn index(&self) -> &parking_lot::RwLock<ShardIndex> {
        &self.index
    }

    /// Series keys matching a predicate, sorted, with their ids.
    pub fn select(&self, measurement: &str, pred: &TagPredicate) -> Vec<(Box<str>, u32)> {
        let ids: RoaringBitmap = {
            let idx = self.index.read();
            self.catalog.select(measurement, pred, &idx.present)
        };
        let mut v = self.catalog.keys_of(ids);
        v.sort_unstable();
        v
    }

    pub fn measurements(&self) -> Vec<String> {
        let idx = self.index.read();
        self.catalog.measurements_in(&idx.present)
    }

    pub fn tag_keys(&self, measurement: &str) -> Vec<String> {
        let idx = self.index.read();
        self.catalog.tag_keys_in(measurement, &idx.present)
    }

    pub fn tag_values(&self, measurement: &str, key: &str) -> Vec<String> {
        let idx = self.index.read();
        self.catalog.tag_values_in(measurement, key, &idx.present)
    }

    /// Read one series from a snapshot: files oldest first, then frozen memtables, then
    /// the active one; newer sources win on equal timestamps; tombstones hide data of
    /// sources older than themselves.
    pub fn read_series(
        &self,
        snap: &ReadState,
        key: &str,
        sid: u32,
        want: &dyn Fn(&str) -> bool,
        min: i64,
        max: i64,
    ) -> Result<Vec<(String, Column)>> {
        let mut out: Vec<(String, Column)> = self
            .read_fields(snap, key, sid, want, min, max, None)?
            .into_iter()
            .filter_map(|(n, s)| s.points.map(|c| (n, c)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Fields of one series for an aggregate: per field, the statistics of
    /// every block that lies wholly inside `[min, max]` and inside one window
    /// (`same_window`), that no other source's data of the series overlaps and
    /// no tombstone touches — those blocks are not decoded — and the points of
    /// everything else, merged as [`Shard::read_series`] merges them.
    #[allow(clippy::too_many_arguments)]
    pub fn read_series_summarized(
        &self,
        snap: &ReadState,
        key: &str,
        sid: u32,
        fields: &[&str],
        min: i64,
        max: i64,
        same_window: &dyn Fn(i64, i64) -> bool,
    ) -> Result<Vec<(String, Summarized)>> {
        let want = |n: &str| fields.contains(&n);
        self.read_fields(snap, key, sid, &want, min, max, Some(same_window))
    }

    /// The fields `want` accepts of one series in `[min, max]`, each source's
    /// points merged in age order (newer wins on equal times, tombstones hide
    /// older sources' points); no field is empty. With `same_window`, a block
    /// that can stand for itself — wholly in the range and in one window,
    /// overlapped by no other source of the series and by no tombstone — is
    /// given as its statistics instead of being decoded. Each file's index
    /// entry for the series is read once for all the fields.
    #[allow(clippy::too_many_arguments)]
    fn read_fields(
        &self,
        snap: &ReadState,
        key: &str,
        sid: u32,
        want: &dyn Fn(&str) -> bool,
        min: i64,
        max: i64,
        same_window: Option<&dyn Fn(i64, i64) -> bool>,
    ) -> Result<Vec<(String, Summarized)>> {
        // The memtables' points, and where each file may hold the series (by
        // its summaries, when blocks may stand for themselves).
        let mut mem: Vec<(std::sync::Arc<str>, Column, Option<u64>)> = Vec::new();
        for fz in &snap.frozen {
            for (n, c) in fz.mem.read().read_series(sid, want, min, max) {
                mem.push((n, c, Some(fz.max_seq)));
            }
        }
        for (n, c) in snap.active.read().read_series(sid, want, min, max) {
            mem.push((n, c, None));
        }
        let ranges: Vec<Option<(i64, i64)>> = snap
            .files
            .iter()
            .map(|f| {
                if f.file.max_time < min
                    || f.file.min_time > max
                    || !f.file.may_contain(key, min, max)
                {
                    None
                } else if same_window.is_some() {
                    f.file.series_range(key)
                } else {
                    Some((min, max))
                }
            })
            .collect();
        // Another source holds the series in [lo, hi]: its points may replace
        // or be replaced by the block's, so the block is decoded and merged.
        let overlaps = |i: usize, lo: i64, hi: i64| {
            ranges
                .iter()
                .enumerate()
                .any(|(j, r)| j != i && r.is_some_and(|(a, b)| a <= hi && b >= lo))
                || mem.iter().any(|(_, c, _)| {
                    c.times.first().is_some_and(|&a| a <= hi)
                        && c.times.last().is_some_and(|&b| b >= lo)
                })
        };
        let hide = |c: &mut Column, seq: u64| {
            for t in &snap.tombstones {
                if t.applies(key, seq) {
                    c.delete_range(t.min, t.max);
                }
            }
        };
        let hidden = |lo: i64, hi: i64, seq: u64| {
            snap.tombstones
                .iter()
                .any(|t| t.applies(key, seq) && t.min <= hi && t.max >= lo)
        };
        let mut out: Vec<(String, Summarized)> = Vec::new();
        let slot = |out: &mut Vec<(String, Summarized)>, name: &str| -> usize {
            match out.iter().position(|(n, _)| n == name) {
                Some(k) => k,
                None => {
                    out.push((
                        name.to_owned(),
                        Summarized {
                            stats: Vec::new(),
                            points: None,
                        },
                    ));
                    out.len() - 1
                }
            }
        };
        let merge_in = |s: &mut Summarized, c: Column| {
            s.points = Some(match s.points.take() {
                None => c,
                Some(prev) => Column::merge(prev, c),
            });
        };
        for (i, f) in snap.files.iter().enumerate() {
            if ranges[i].is_none() {
                continue;
            }
            let si = match f.file.series_index(key) {
                Ok(Some(si)) => si,
                Ok(None) => continue,
                Err(e) => return Err(self.on_read_error(e)),
            };
            let mut times = TimeCache::default();
            for fi in si.fields.iter().filter(|fi| want(&fi.name)) {
                let k = slot(&mut out, &fi.name);
                for b in &fi.blocks {
                    if b.max_time < min || b.min_time > max {
                        continue;
                    }
                    let whole = same_window.is_some_and(|same| {
                        b.min_time >= min
                            && b.max_time <= max
                            && same(b.min_time, b.max_time)
                            && !overlaps(i, b.min_time, b.max_time)
                            && !hidden(b.min_time, b.max_time, f.meta.max_seq)
                    });
                    if let (true, Some(st)) = (whole, &b.stats) {
                        self.metrics.add(&self.metrics.blocks_from_stats, 1);
                        out[k].1.stats.push(st.clone());
                        continue;
                    }
                    self.metrics.add(&self.metrics.blocks_decoded, 1);
                    let mut c = f
                        .file
                        .read_block_cached(fi.ty, b, &mut times)
                        .map_err(|e| self.on_read_error(e))?;
                    if b.min_time < min || b.max_time > max {
                        c = c.slice_time(min, max);
                    }
                    hide(&mut c, f.meta.max_seq);
                    merge_in(&mut out[k].1, c);
                }
            }
        }
        for (n, mut c, seq) in mem {
            if let Some(seq) = seq {
                hide(&mut c, seq);
            }
            let k = slot(&mut out, &n);
            merge_in(&mut out[k].1, c);
        }
        out.retain(|(_, s)| {
            !s.stats.is_empty() || s.points.as_ref().is_some_and(|c| !c.is_empty())
        });
        Ok(out)
    }

    fn on_read_error(&self, e: Error) -> Error {
        if e.is_corruption() {
            self.corrupt_read(&e);
        }
        e
    }

    /// A read or compaction met damaged data: it fails (naming the file) and is
    /// counted; nothing is moved or dropped, so no acknowledged point silently
    /// disappears from answers.
    pub(super) fn corrupt_read(&self, e: &Error) {
        tracing::error!(shard_id = self.id, error = %e, "damaged data file");
        self.metrics.add(&self.metrics.corrupt_reads, 1);
    }
}
