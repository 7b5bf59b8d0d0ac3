//! The write path of a shard: validation, series creation (with the catalog's
//! limits), WAL append with group commit, and the memtable apply shared with replay.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use sundial_lineproto::Point;

use super::{Frozen, Shard, WriteState};
use crate::batch::{self, BodyEncoder, WriteBody};
use crate::error::{Error, Result};
use crate::index::ShardIndex;
use crate::memtable::MemPair;
use crate::types::FieldType;
use crate::util::FastMap;
use crate::wal::{self, FRAME_HEADER, KIND_WRITE};
use sundial_common::WriteOutcome;

impl Shard {
    /// Validate, log and apply a batch. Points rejected by validation or by a series
    /// limit are counted in the outcome; the rest are durable (per the fsync policy)
    /// when this returns `Ok`.
    pub fn write(self: &Arc<Self>, points: &[Point<'_>]) -> Result<WriteOutcome> {
        self.check_open()?;
        if let Some(why) = self.wal.failure() {
            return Err(Error::ShardDegraded {
                shard: self.id,
                reason: why,
            });
        }
        // Types are checked before the write lock; a measurement dropped in between
        // (which forgets its types under that lock) sends the batch round again, so
        // no point of a type the shard no longer agrees with is ever acknowledged.
        loop {
            if let Some(out) = self.try_write(points)? {
                return Ok(out);
            }
        }
    }

    /// One attempt of [`Shard::write`]; `None` when the schema changed after
    /// validation.
    fn try_write(self: &Arc<Self>, points: &[Point<'_>]) -> Result<Option<WriteOutcome>> {
        let mut outcome = WriteOutcome::default();
        let (mut accepted, epoch) = self.validate(points, &mut outcome);
        // Until the shard records the ids, the catalog must not drop them.
        let in_use = self.catalog.use_guard();
        let key_ids = self.resolve_series(points, &mut accepted, &mut outcome)?;
        if accepted.is_empty() {
            self.metrics
                .add(&self.metrics.points_dropped, outcome.points_dropped as u64);
            return Ok(Some(outcome));
        }
        let mut frame = self.take_frame(KIND_WRITE);
        let mut enc = BodyEncoder::new(&mut frame);
        for &i in &accepted {
            outcome.values_written += enc.push(&mut frame, &points[i]);
        }
        outcome.points_written = accepted.len();
        // Ids in the order of the body's key table.
        let sids: Vec<u32> = enc
            .keys()
            .iter()
            .map(|k| key_ids.get(k).copied().unwrap_or(u32::MAX))
            .collect();
        enc.finish(&mut frame);

        let stall = self.opts.write_stall_timeout;
        if !self.budget.wait_for_room(stall) {
            self.metrics.add(&self.metrics.writes_overloaded, 1);
            return Err(Error::Overloaded {
                waited_ms: stall.as_millis() as u64,
            });
        }
        let (seq, added_series) = {
            let mut ws = self.write.lock();
            // The wait above may have spanned a close (drop_shard, shutdown).
            self.check_open()?;
            if self.index.read().schema_epoch != epoch {
                self.give_frame(frame);
                return Ok(None);
            }
            self.make_room(&mut ws)?;
            let seq = self.wal.append(&mut frame)?;
            // The fsync runs while this batch is applied to the memtable.
            self.wal.start_sync(seq);
            let body = batch::decode_write(&frame[FRAME_HEADER..])?;
            self.fill_watermarks(&mut ws, &body, &sids);
            // Checked under the write lock: a compaction may have just taken
            // emptied series out of the list (see `forget_emptied_series`).
            let added_series = self.index.read().misses(&sids);
            if added_series {
                self.index.write().add_series(sids.iter().copied());
            }
            drop(in_use);
            let active = self.state.read().active.clone();
            let mut mem = active.write();
            apply_write(&mut ws, &mut mem, seq, &body, &sids)?;
            drop(mem);
            self.report_mem();
            (seq, added_series)
        };
        self.give_frame(frame);
        self.wal.commit(seq)?;
        if added_series {
            self.report_index_mem();
        }
        let m = &self.metrics;
        m.add(&m.points_written, outcome.points_written as u64);
        m.add(&m.values_written, outcome.values_written as u64);
        m.add(&m.points_dropped, outcome.points_dropped as u64);
        Ok(Some(outcome))
    }

    /// Finds (or creates, within the limits) the catalog id of every accepted point's
    /// series. Points of series that were refused are dropped with InfluxDB's reason.
    fn resolve_series<'p>(
        &self,
        points: &[Point<'p>],
        accepted: &mut Vec<usize>,
        outcome: &mut WriteOutcome,
    ) -> Result<FastMap<&'p str, u32>> {
        let mut ids: FastMap<&'p str, u32> = FastMap::default();
        let mut keys: Vec<&'p str> = Vec::new();
        let mut last: Option<&str> = None;
        for &i in accepted.iter() {
            let k = points[i].series_key;
            // Points of a series often come together: skip the map for repeats.
            if last == Some(k) {
                continue;
            }
            last = Some(k);
            if !ids.contains_key(k) {
                ids.insert(k, u32::MAX);
                keys.push(k);
            }
        }
        let mut found = Vec::with_capacity(keys.len());
        self.catalog.lookup(&keys, &mut found);
        let missing: Vec<&'p str> = keys
            .iter()
            .zip(&found)
            .filter(|(_, &id)| id == u32::MAX)
            .map(|(k, _)| *k)
            .collect();
        for (k, id) in keys.iter().zip(found) {
            ids.insert(k, id);
        }
        if missing.is_empty() {
            return Ok(ids);
        }
        self.wait_for_index_room()?;
        let created = self
            .catalog
            .create(&missing, Some(self.opts.series_limits))?;
        let mut refused: FastMap<&str, String> = FastMap::default();
        for (k, r) in missing.iter().zip(created) {
            match r {
                Ok(id) => {
                    ids.insert(k, id);
                }
                Err(reason) => {
                    refused.insert(k, reason);
                }
            }
        }
        if !refused.is_empty() {
            // Like InfluxDB, one reason (the first) speaks for every refused series.
            let first = missing
                .iter()
                .find_map(|k| refused.get(k))
                .cloned()
                .unwrap_or_default();
            accepted.retain(|&i| {
                if refused.contains_key(points[i].series_key) {
                    outcome.drop_point(first.clone());
                    false
                } else {
                    true
                }
            });
            self.metrics
                .add(&self.metrics.series_refused, refused.len() as u64);
        }
        Ok(ids)
    }

    /// New series need room in the store's index memory: past its limit the store is
    /// asked to close idle shards, and the writer waits a little before giving up.
    fn wait_for_index_room(&self) -> Result<()> {
        let mem = &self.index_mem;
        if !mem.above(100) {
            return Ok(());
        }
        let deadline = Instant::now()
            + self
                .opts
                .write_stall_timeout
                .min(std::time::Duration::from_secs(2));
        self.sched.index_pressure();
        while mem.above(100) {
            if Instant::now() >= deadline {
                self.metrics.add(&self.metrics.writes_overloaded, 1);
                return Err(Error::IndexMemoryFull {
                    used: mem.used(),
                    limit: mem.limit(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }

    /// Watermarks of series first written since the shard opened, from the files and
    /// frozen memtables (taken before any memtable lock: lock order).
    fn fill_watermarks(&self, ws: &mut WriteState, body: &WriteBody<'_>, sids: &[u32]) {
        let mut st = None;
        for (k, &sid) in body.keys.iter().zip(sids) {
            if sid == u32::MAX || ws.watermarks.contains_key(&sid) {
                continue;
            }
            let st = st.get_or_insert_with(|| self.state.read().clone());
            ws.watermarks.insert(sid, st.persisted_max(k, sid));
        }
    }

    /// A reusable frame buffer: WAL frames are megabytes, and fresh allocations of that
    /// size cost page faults on every write.
    fn take_frame(&self, kind: u8) -> Vec<u8> {
        let mut f = self.frames.lock().pop().unwrap_or_default();
        f.clear();
        f.extend_from_slice(&wal::new_frame(kind, 0));
        f
    }

    fn give_frame(&self, f: Vec<u8>) {
        if f.capacity() <= 64 << 20 {
            let mut pool = self.frames.lock();
            if pool.len() < 4 {
                pool.push(f);
            }
        }
    }

    /// Indices of acceptable points; registers new field types. InfluxDB 1.x rules:
    /// a `time` tag drops the point, `time` fields are removed, and a field whose type
    /// differs from the measurement's drops the point.
    /// The points whose types agree with the shard's, and the schema epoch they
    /// were checked against.
    fn validate(&self, points: &[Point<'_>], out: &mut WriteOutcome) -> (Vec<usize>, u64) {
        // Fast pass under the read lock; redo under the write lock only if a field is new.
        {
            let idx = self.index.read();
            let mut ok = Vec::with_capacity(points.len());
            let mut tmp = WriteOutcome::default();
            // Points of a batch mostly share a measurement: look its schema up once.
            let mut cache: Option<(&str, Option<&crate::index::FieldTypes>)> = None;
            if self.validate_with(points, &mut tmp, &mut ok, &mut |m, f, _| {
                let fields = match cache {
                    Some((cm, fl)) if cm == m => fl,
                    _ => {
                        let fl = idx.fields_of(m);
                        cache = Some((m, fl));
                        fl
                    }
                };
                fields?.get(f).copied()
            }) {
                out.absorb(tmp);
                return (ok, idx.schema_epoch);
            }
        }
        let mut idx = self.index.write();
        let mut ok = Vec::with_capacity(points.len());
        self.validate_with(points, out, &mut ok, &mut |m, f, t| {
            Some(idx.register_field(m, f, t))
        });
        (ok, idx.schema_epoch)
    }

    /// Returns false if a field type was unknown (the caller retries with registration).
    fn validate_with<'a>(
        &self,
        points: &[Point<'a>],
        out: &mut WriteOutcome,
        ok: &mut Vec<usize>,
        lookup: &mut dyn FnMut(&'a str, &str, FieldType) -> Option<FieldType>,
    ) -> bool {
        // The previous accepted point: a point with the same measurement and the same
        // field names and types needs no lookups.
        let mut prev: Option<&Point<'a>> = None;
        'points: for (i, p) in points.iter().enumerate() {
            if let Some(q) = prev {
                if q.measurement == p.measurement
                    && q.fields.len() == p.fields.len()
                    && !p.tags.iter().any(|t| t.key == "time")
                    && q.fields.iter().zip(p.fields.iter()).all(|(a, b)| {
                        a.key == b.key
                            && std::mem::discriminant(&a.value) == std::mem::discriminant(&b.value)
                    })
                {
                    ok.push(i);
                    continue;
                }
            }
            if p.tags.iter().any(|t| t.key == "time") {
                out.drop_point(format!(
                    "invalid tag key: input tag \"time\" on measurement \"{}\" is invalid",
                    p.measurement
                ));
                continue;
            }
            let mut nfields = 0;
            for f in p.fields.iter() {
                if f.key == "time" {
                    continue;
                }
                nfields += 1;
                let ty = batch::value_type(&f.value);
                match lookup(p.measurement, &f.key, ty) {
                    None => return false,
                    Some(existing) if existing != ty => {
                        out.drop_point(format!(
                            "field type conflict: input field \"{}\" on measurement \"{}\" is type {}, already exists as type {}",
                            f.key, p.measurement, ty, existing
                        ));
                        continue 'points;
                    }
                    Some(_) => {}
                }
            }
            if nfields == 0 {
                out.drop_point(format!(
                    "invalid field name: input field \"time\" on measurement \"{}\" is invalid",
                    p.measurement
                ));
                continue;
            }
            ok.push(i);
            prev = Some(p);
        }
        true
    }

    /// Freeze the active memtable when it is full; stall (bounded) when flushing is behind.
    pub(super) fn make_room(
        self: &Arc<Self>,
        ws: &mut parking_lot::MutexGuard<'_, WriteState>,
    ) -> Result<()> {
        let started = Instant::now();
        let deadline = started + self.opts.write_stall_timeout;
        let mut stalled = false;
        loop {
            let (bytes, nfrozen) = self.memtable_load();
            if bytes < self.opts.memtable_size {
                return Ok(());
            }
            if nfrozen < self.opts.max_frozen_memtables {
                self.freeze_locked(ws)?;
                self.sched.flush(Arc::downgrade(self));
                return Ok(());
            }
            if !stalled {
                stalled = true;
                self.metrics.add(&self.metrics.write_stalls, 1);
                self.sched.flush(Arc::downgrade(self));
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            if Instant::now() >= deadline {
                self.metrics.add(&self.metrics.writes_overloaded, 1);
                return Err(Error::Overloaded {
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            self.stall.wait_until(ws, deadline);
        }
    }

    /// Swap in a fresh memtable; the old one joins the flush queue.
    pub(super) fn freeze_locked(&self, ws: &mut WriteState) -> Result<bool> {
        let active = self.state.read().active.clone();
        let (empty, max_seq) = {
            let m = active.read();
            (m.is_empty(), m.max_seq)
        };
        if empty {
            return Ok(false);
        }
        let wal_upto = self.wal.roll()?;
        {
            let m = active.read();
            for (sid, t) in m.seq.max_times() {
                let w = ws.watermarks.entry(sid).or_insert(i64::MIN);
                *w = (*w).max(t);
            }
        }
        let mut st = self.state.write();
        st.frozen.push_back(Frozen {
            mem: active,
            max_seq,
            wal_upto,
        });
        st.active = Arc::new(RwLock::new(MemPair::default()));
        Ok(true)
    }
}

/// Field types of a replayed write body (live writes register them in validation).
pub(super) fn register_replayed_fields(
    b: &WriteBody<'_>,
    sids: &[u32],
    idx: &mut ShardIndex,
) -> Result<()> {
    let mut cur = b.cursor();
    let mut last: Option<(usize, String)> = None;
    while let Some((ki, _, nf)) = cur.next_point()? {
        if sids.get(ki).is_none_or(|&s| s == u32::MAX) {
            for _ in 0..nf {
                cur.next_field()?;
            }
            continue;
        }
        if last.as_ref().is_none_or(|l| l.0 != ki) {
            let (m, _) = crate::index::parse_series_key(b.keys[ki]);
            last = Some((ki, m));
        }
        let m = last.as_ref().map_or("", |l| l.1.as_str());
        for _ in 0..nf {
            let (fi, v) = cur.next_field()?;
            idx.register_field(m, b.names[fi], v.field_type());
        }
    }
    Ok(())
}

/// Apply a decoded write body to a memtable (live writes and WAL replay share this).
/// `sids[i]` is the series id of the body's key `i` (`u32::MAX`: skip its points);
/// every id's watermark must be in `ws` already.
pub(super) fn apply_write(
    ws: &mut WriteState,
    mem: &mut MemPair,
    seq: u64,
    b: &WriteBody<'_>,
    sids: &[u32],
) -> Result<()> {
    let fids: Vec<(u32, Arc<str>)> = b
        .names
        .iter()
        .map(|n| {
            if let Some(v) = ws.fields.get(*n) {
                return v.clone();
            }
            let v = (ws.fields.len() as u32, Arc::<str>::from(*n));
            ws.fields.insert((*n).into(), v.clone());
            v
        })
        .collect();
    // Group points by series (stable, so arrival order is kept within a series): the
    // appends of one series then hit warm cache lines instead of one miss per value.
    let mut order: Vec<(u32, i64, u32, u32)> = Vec::with_capacity(sids.len());
    let mut cur = b.cursor();
    while let Some((ki, time, nf)) = cur.next_point()? {
        let pos = cur.skip_fields()?;
        let sid = sids.get(ki).copied().unwrap_or(u32::MAX);
        if sid != u32::MAX {
            order.push((sid, time, pos as u32, nf as u32));
        }
    }
    order.sort_by_key(|p| p.0);
    let mut vals = Vec::with_capacity(16);
    let mut last: Option<(u32, bool)> = None;
    let mut watermark = i64::MIN;
    let mut s: Option<&mut crate::memtable::SeriesBuf> = None;
    let (mut seq_bytes, mut unseq_bytes, mut seq_pts, mut unseq_pts) = (0, 0, 0, 0);
    for &(sid, time, pos, nf) in &order {
        if last.is_none_or(|l| l.0 != sid) {
            watermark = ws.watermarks.get(&sid).copied().unwrap_or(i64::MIN);
        }
        let is_seq = time > watermark;
        if last != Some((sid, is_seq)) {
            let table = if is_seq { &mut mem.seq } else { &mut mem.unseq };
            let (buf, added) = table.series_buf(sid);
            if is_seq {
                seq_bytes += added;
            } else {
                unseq_bytes += added;
            }
            s = Some(buf);
            last = Some((sid, is_seq));
        }
        let Some(sb) = s.as_deref_mut() else { continue };
        let mut fc = cur.fields_at(pos as usize, u64::from(nf));
        vals.clear();
        for _ in 0..nf {
            let (fi, v) = fc.next_field()?;
            let (fid, name) = &fids[fi];
            vals.push((*fid, name, v));
        }
        let bytes = sb.append_point(time, &vals);
        if is_seq {
            seq_bytes += bytes;
            seq_pts += nf as usize;
        } else {
            unseq_bytes += bytes;
            unseq_pts += nf as usize;
        }
    }
    mem.seq.bytes += seq_bytes;
    mem.seq.points += seq_pts;
    mem.unseq.bytes += unseq_bytes;
    mem.unseq.points += unseq_pts;
    mem.max_seq = seq;
    Ok(())
}
