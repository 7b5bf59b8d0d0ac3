//! The series catalog of one database on one store (InfluxDB's series file plus its
//! in-memory index): every series key gets a dense id shared by all shards of the
//! database, and measurement → tag key → tag value → ids answers tag predicates.
//!
//! Shards keep only the set of ids they hold (a bitmap) and their field types, so a
//! series costs its key once per database however many shards (time windows) it
//! spans. The catalog is also where InfluxDB's cardinality limits are enforced,
//! counted per database on this store as InfluxDB counts them per node:
//! `max-series-per-database` and `max-values-per-tag`.
//!
//! Concurrency: lookups take the state's read lock. Creations and drops are
//! serialized by the log's mutex: limits are checked, the records are made durable,
//! and only then are the new ids published, so no shard can use an id whose record
//! could still be lost.

mod dict;
mod log;
mod tags;

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;

use crate::budget::IndexMemory;
use crate::error::Result;
use crate::index::{split_series_key, TagPredicate};
use crate::util::{FastMap, FastSet};
use dict::{Dict, MAX_STRING};
use log::{Record, SeriesLog};
use tags::MAX_SERIES_ID;
pub(crate) use tags::{MeasurementIndex, TagValues};

/// InfluxDB's cardinality limits; 0 disables one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesLimits {
    pub max_series_per_database: usize,
    pub max_values_per_tag: usize,
}

#[derive(Debug, Default)]
struct State {
    keys: Dict,
    /// Series with a live id.
    live: usize,
    measurements: FastMap<Box<str>, MeasurementIndex>,
    /// Heap bytes of `measurements`, kept up to date by the mutations.
    measurement_bytes: usize,
}

impl State {
    fn add<S: AsRef<str>>(&mut self, id: u32, key: &str, m: &str, tags: &[(S, S)]) {
        self.keys.insert_at(id, key);
        self.live += 1;
        if !self.measurements.contains_key(m) {
            self.measurements
                .insert(m.into(), MeasurementIndex::default());
        }
        if let Some(mi) = self.measurements.get_mut(m) {
            mi.series.insert(id);
            for (k, v) in tags {
                let (k, v) = (k.as_ref(), v.as_ref());
                match mi.tags.get_mut(k) {
                    Some(t) => t.add(v, id),
                    None => {
                        let mut t = TagValues::default();
                        t.add(v, id);
                        mi.tags.insert(k.into(), t);
                    }
                }
            }
        }
    }

    fn remove(&mut self, id: u32) {
        let key = self.keys.get(id).to_owned();
        if self.keys.find(&key) != Some(id) {
            return;
        }
        self.keys.unlink(id);
        self.live -= 1;
        let (m, tags) = split_series_key(&key);
        let Some(mi) = self.measurements.get_mut(&*m) else {
            return;
        };
        mi.series.remove(id);
        for (k, v) in &tags {
            if let Some(t) = mi.tags.get_mut(&**k) {
                t.remove(v, id);
            }
        }
        if mi.series.is_empty() {
            self.measurements.remove(&*m);
        }
    }

    fn recount_measurement_bytes(&mut self) {
        self.measurement_bytes = self.measurements_bytes(self.measurements.keys().map(|k| &**k));
    }

    /// Heap bytes of the named measurements' indexes.
    fn measurements_bytes<'a>(&self, names: impl Iterator<Item = &'a str>) -> usize {
        names
            .filter_map(|m| {
                self.measurements
                    .get(m)
                    .map(|mi| m.len() + 96 + mi.heap_bytes())
            })
            .sum()
    }

    fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes() + self.measurement_bytes + self.measurements.capacity() * 16
    }
}

/// A new series being created: its key parsed once.
struct NewSeries<'a> {
    id: u32,
    key: &'a str,
    measurement: String,
    tags: Vec<(String, String)>,
}

/// The series catalog of one database (see the module docs).
#[derive(Debug)]
pub(crate) struct Catalog {
    pub database: Arc<str>,
    state: RwLock<State>,
    log: Mutex<SeriesLog>,
    generation: u64,
    /// Whether additions are fsynced as they are made (otherwise before any shard
    /// persists ids: [`Catalog::sync`]).
    sync_adds: bool,
    mem: Arc<IndexMemory>,
    reported: Mutex<usize>,
    /// Writers hold it shared from looking a series up until their shard records
    /// it; dropping series from the catalog holds it exclusively.
    gc: RwLock<()>,
}

impl Catalog {
    /// Opens the catalog stored in `dir`. `void` in the result: ids of an earlier
    /// generation are no longer valid (shards holding them rebuild their lists).
    pub fn open(
        dir: &Path,
        database: &str,
        sync_adds: bool,
        mem: Arc<IndexMemory>,
    ) -> Result<Arc<Catalog>> {
        let started = std::time::Instant::now();
        let mut st = State::default();
        let (log, _void) = SeriesLog::open(dir, &mut |rec| match rec {
            Record::Add(id, key) => {
                if (id as usize) < st.keys.len() || id > MAX_SERIES_ID {
                    tracing::warn!(id, "series catalog: out-of-order id ignored");
                    return;
                }
                let (m, tags) = split_series_key(key);
                st.add(id, key, &m, &tags);
            }
            Record::Drop(id) => st.remove(id),
        })?;
        st.recount_measurement_bytes();
        let generation = log.generation;
        tracing::info!(
            database,
            series = st.live,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "series catalog loaded"
        );
        let c = Arc::new(Catalog {
            database: database.into(),
            state: RwLock::new(st),
            log: Mutex::new(log),
            generation,
            sync_adds,
            mem,
            reported: Mutex::new(0),
            gc: RwLock::new(()),
        });
        c.report_mem();
        Ok(c)
    }

    /// Identifies this numbering of series: shards store it next to their ids.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Held by a writer while its shard records the ids it resolved.
    pub fn use_guard(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.gc.read()
    }

    /// Held while series are dropped for good.
    pub fn gc_guard(&self) -> parking_lot::RwLockWriteGuard<'_, ()> {
        self.gc.write()
    }

    /// The largest number of live values of one tag key (what
    /// `max-values-per-tag` limits).
    pub fn max_tag_values(&self) -> usize {
        let st = self.state.read();
        st.measurements
            .values()
            .flat_map(|m| m.tags.values().map(TagValues::live_values))
            .max()
            .unwrap_or(0)
    }

    /// Ids handed out so far (every valid id is below this).
    pub fn id_bound(&self) -> u32 {
        self.state.read().keys.len() as u32
    }

    pub fn series_count(&self) -> usize {
        self.state.read().live
    }

    /// The id of a live series.
    pub fn get(&self, key: &str) -> Option<u32> {
        self.state.read().keys.find(key)
    }

    /// Ids of `keys` in order; `u32::MAX` for unknown ones. One lock for the batch.
    pub fn lookup(&self, keys: &[&str], out: &mut Vec<u32>) {
        let st = self.state.read();
        out.clear();
        out.extend(keys.iter().map(|k| st.keys.find(k).unwrap_or(u32::MAX)));
    }

    /// Creates the series of `keys` that do not exist yet and returns every key's id,
    /// or the reason it was refused (InfluxDB's limit texts) when `limits` says so.
    /// Replayed data passes `None`: what was accepted once is never refused later.
    pub fn create(
        &self,
        keys: &[&str],
        limits: Option<SeriesLimits>,
    ) -> Result<Vec<std::result::Result<u32, String>>> {
        let mut log = self.log.lock();
        let mut out = Vec::with_capacity(keys.len());
        let mut new: Vec<NewSeries<'_>> = Vec::new();
        {
            let st = self.state.read();
            let mut next = st.keys.len() as u32;
            let mut batch: FastMap<&str, u32> = FastMap::default();
            // Tag values this batch makes live, per (measurement, tag key).
            let mut pending: FastMap<(String, String), FastSet<String>> = FastMap::default();
            'keys: for &key in keys {
                if let Some(id) = st.keys.find(key).or_else(|| batch.get(key).copied()) {
                    out.push(Ok(id));
                    continue;
                }
                if key.len() > MAX_STRING {
                    out.push(Err(format!("max key length exceeded: {}", key.len())));
                    continue;
                }
                if next > MAX_SERIES_ID {
                    out.push(Err("too many series in the database".into()));
                    continue;
                }
                let (m, tags) = crate::index::parse_series_key(key);
                if let Some(l) = limits {
                    let max = l.max_series_per_database;
                    if max > 0 && st.live + new.len() >= max {
                        out.push(Err(format!(
                            "max-series-per-database limit exceeded: ({max})"
                        )));
                        continue;
                    }
                    let max = l.max_values_per_tag;
                    if max > 0 {
                        for (k, v) in &tags {
                            let known = st
                                .measurements
                                .get(m.as_str())
                                .and_then(|mi| mi.tags.get(k.as_str()));
                            let pend = pending.get(&(m.clone(), k.clone()));
                            let live = known.is_some_and(|t| t.is_live(v))
                                || pend.is_some_and(|p| p.contains(v));
                            if live {
                                continue;
                            }
                            let n = known.map_or(0, TagValues::live_values)
                                + pend.map_or(0, |p| p.len());
                            if n >= max {
                                out.push(Err(format!(
                                    "max-values-per-tag limit exceeded ({n}/{max}): measurement={m:?} tag={k:?} value={v:?}"
                                )));
                                continue 'keys;
                            }
                        }
                        for (k, v) in &tags {
                            let live = st
                                .measurements
                                .get(m.as_str())
                                .and_then(|mi| mi.tags.get(k.as_str()))
                                .is_some_and(|t| t.is_live(v));
                            if !live {
                                pending
                                    .entry((m.clone(), k.clone()))
                                    .or_default()
                                    .insert(v.clone());
                            }
                        }
                    }
                }
                batch.insert(key, next);
                out.push(Ok(next));
                new.push(NewSeries {
                    id: next,
                    key,
                    measurement: m,
                    tags,
                });
                next += 1;
            }
        }
        if new.is_empty() {
            return Ok(out);
        }
        let recs: Vec<(u32, Option<&str>)> = new.iter().map(|n| (n.id, Some(n.key))).collect();
        log.append(&recs, self.sync_adds)?;
        {
            let mut touched: Vec<&str> = new.iter().map(|n| n.measurement.as_str()).collect();
            touched.sort_unstable();
            touched.dedup();
            let mut st = self.state.write();
            // Only the measurements this batch touched are measured again.
            let before = st.measurements_bytes(touched.iter().copied());
            for n in &new {
                st.add(n.id, n.key, &n.measurement, &n.tags);
            }
            let after = st.measurements_bytes(touched.iter().copied());
            st.measurement_bytes = (st.measurement_bytes + after).saturating_sub(before);
        }
        drop(log);
        self.report_mem();
        Ok(out)
    }

    /// Removes series for good (no shard of the database holds them any more).
    pub fn drop_series(&self, ids: &RoaringBitmap) -> Result<usize> {
        let mut log = self.log.lock();
        let doomed: Vec<u32> = {
            let st = self.state.read();
            ids.iter()
                .filter(|&id| {
                    let k = st.keys.get(id);
                    !k.is_empty() && st.keys.find(k) == Some(id)
                })
                .collect()
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        let recs: Vec<(u32, Option<&str>)> = doomed.iter().map(|&id| (id, None)).collect();
        log.append(&recs, true)?;
        let mut st = self.state.write();
        for &id in &doomed {
            st.remove(id);
        }
        st.recount_measurement_bytes();
        drop(st);
        drop(log);
        self.report_mem();
        Ok(doomed.len())
    }

    /// Makes every addition durable (before a shard persists ids).
    pub fn sync(&self) -> Result<()> {
        self.log.lock().sync()
    }

    /// The key of `id` (also of a dropped id, until the catalog is rewritten).
    pub fn key(&self, id: u32) -> Option<Box<str>> {
        let st = self.state.read();
        let k = st.keys.get(id);
        (!k.is_empty()).then(|| k.into())
    }

    /// `ids` sorted by (key, id), without copying the keys.
    pub fn sorted_by_key(&self, ids: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut v: Vec<u32> = ids.into_iter().collect();
        let st = self.state.read();
        v.sort_unstable_by(|&a, &b| st.keys.get(a).cmp(st.keys.get(b)).then(a.cmp(&b)));
        v
    }

    /// Keys of `ids`, in the same order (one lock for the batch).
    pub fn keys_of(&self, ids: impl IntoIterator<Item = u32>) -> Vec<(Box<str>, u32)> {
        let st = self.state.read();
        ids.into_iter()
            .filter_map(|id| {
                let k = st.keys.get(id);
                (!k.is_empty()).then(|| (k.into(), id))
            })
            .collect()
    }

    /// Series of `measurement` matching `pred`, among `present`.
    pub fn select(
        &self,
        measurement: &str,
        pred: &TagPredicate,
        present: &RoaringBitmap,
    ) -> RoaringBitmap {
        let st = self.state.read();
        match st.measurements.get(measurement) {
            Some(mi) => match pred {
                TagPredicate::All => &mi.series & present,
                p => p.eval(mi) & present,
            },
            None => RoaringBitmap::new(),
        }
    }

    /// Measurements with series among `present`, sorted.
    pub fn measurements_in(&self, present: &RoaringBitmap) -> Vec<String> {
        let st = self.state.read();
        let mut v: Vec<String> = st
            .measurements
            .iter()
            .filter(|(_, mi)| !mi.series.is_disjoint(present))
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Tag keys of `measurement` carried by series among `present`, sorted.
    pub fn tag_keys_in(&self, measurement: &str, present: &RoaringBitmap) -> Vec<String> {
        let st = self.state.read();
        let Some(mi) = st.measurements.get(measurement) else {
            return Vec::new();
        };
        let mut v: Vec<String> = mi
            .tags
            .iter()
            .filter(|(_, t)| {
                let mut hit = false;
                t.for_each(|_, p| hit |= !hit && p.intersects(present));
                hit
            })
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Values of tag `key` of `measurement` carried by series among `present`, sorted.
    pub fn tag_values_in(
        &self,
        measurement: &str,
        key: &str,
        present: &RoaringBitmap,
    ) -> Vec<String> {
        let st = self.state.read();
        let Some(t) = st
            .measurements
            .get(measurement)
            .and_then(|mi| mi.tags.get(key))
        else {
            return Vec::new();
        };
        let mut v = Vec::new();
        t.for_each(|val, p| {
            if p.intersects(present) {
                v.push(val.to_string());
            }
        });
        v.sort();
        v
    }

    pub fn heap_bytes(&self) -> usize {
        self.state.read().heap_bytes()
    }

    fn report_mem(&self) {
        let mut r = self.reported.lock();
        let now = self.heap_bytes();
        self.mem.adjust(*r, now);
        *r = now;
    }
}

impl Drop for Catalog {
    fn drop(&mut self) {
        let r = std::mem::take(&mut *self.reported.lock());
        self.mem.adjust(r, 0);
    }
}

/// A database name as a directory name: anything but `[A-Za-z0-9_-]` is `%XX`, so
/// `..`, `/` and the like cannot escape the catalog directory.
pub(crate) fn dir_name(database: &str) -> String {
    let mut s = String::with_capacity(database.len() + 1);
    s.push('d');
    for b in database.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}
