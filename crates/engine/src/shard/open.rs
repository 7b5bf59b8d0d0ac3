//! Opening a shard: orphaned files removed, data files and tombstones loaded, the
//! series list restored, the WAL replayed into a fresh memtable.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};
use roaring::RoaringBitmap;

use super::index_snapshot::load_index;
use super::write::{self, apply_write};
use super::{
    data_dir, file_path, open_data_file, sort_files, DataFile, ManifestState, ReadState,
    RecoveryReport, Shard, ShardEnv, WriteState, DEGRADE_SUMMARIES_PERCENT,
};
use crate::batch;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Tombstone};
use crate::memtable::MemPair;
use crate::tombstones::TombstoneLog;
use crate::util::FastMap;
use crate::vfs;
use crate::wal::{Wal, KIND_DELETE, KIND_WRITE};

impl Shard {
    pub fn open(id: u64, dir: &Path, env: ShardEnv) -> Result<Arc<Shard>> {
        let ShardEnv {
            opts,
            metrics,
            sched,
            budget,
            index_mem,
            catalog,
        } = env;
        let span = tracing::info_span!("shard.open", shard_id = id);
        let _e = span.enter();
        let started = Instant::now();
        vfs::create_dir_durable(&data_dir(dir))?;
        let mut report = RecoveryReport::default();
        let manifest = Manifest::load(dir)?.unwrap_or(Manifest {
            version: 1,
            next_file_id: 1,
            ..Default::default()
        });

        // Data files listed in the manifest; anything else is an orphan.
        let listed: BTreeSet<u64> = manifest.files.iter().map(|f| f.id).collect();
        for e in std::fs::read_dir(data_dir(dir)).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let orphan = match name
                .strip_suffix(".tsf")
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(fid) => !listed.contains(&fid),
                None => name.ends_with(".tmp"),
            };
            if orphan {
                vfs::remove_file(&e.path()).map_err(|er| Error::io(e.path(), er))?;
                report.orphans_removed += 1;
            }
        }
        let mut files = Vec::new();
        let mut unreported = 0;
        for fm in &manifest.files {
            let path = file_path(dir, fm.id);
            match open_data_file(&path, &index_mem, &mut unreported) {
                Ok(f) => {
                    files.push(Arc::new(DataFile {
                        meta: fm.clone(),
                        file: f,
                    }));
                }
                // Its points were acknowledged and its WAL entries are gone: dropping
                // it from the manifest would lose them silently. The shard stays
                // closed (degraded in /health) until the file is put back.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    tracing::error!(path = %path.display(), "data file listed in manifest is missing");
                    return Err(Error::Corrupt {
                        path,
                        reason: "a data file the manifest lists is missing (restore it from a backup or a replica; the shard stays closed until then)".into(),
                    });
                }
                // Damaged beyond opening: its points are acknowledged too, so the
                // shard stays closed (naming the file) rather than answering without
                // them. `sundial verify` reports; a replica restores.
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "data file does not open");
                    return Err(e);
                }
            }
        }
        sort_files(&mut files);
        // Tombstones live in their own log; a manifest written by an earlier version
        // still carries them, and they move to the log (then leave the manifest).
        let (tomb_log, mut logged) = TombstoneLog::open(dir)?;
        let legacy: Vec<Tombstone> = manifest
            .tombstones
            .iter()
            .filter(|t| !logged.iter().any(|l| l.seq == t.seq))
            .cloned()
            .collect();
        for t in &legacy {
            tomb_log.add(t)?;
        }
        logged.extend(legacy);
        logged.sort_by_key(|t| t.seq);
        let migrated = !manifest.tombstones.is_empty();
        let tomb_seen = tomb_log.max_seen();
        let tombstones: Vec<Arc<Tombstone>> = logged.into_iter().map(Arc::new).collect();
        let (index, snap_state) = load_index(dir, &catalog, &files, &tombstones, &mut report)?;

        let active = Arc::new(RwLock::new(MemPair::default()));
        let mut ws = WriteState {
            fields: FastMap::default(),
            watermarks: FastMap::default(),
        };
        let state = ReadState {
            active: active.clone(),
            frozen: VecDeque::new(),
            files,
            tombstones,
        };
        let index = RwLock::new(index);
        // Replay the WAL into the fresh memtable.
        let flushed = manifest.flushed_seq;
        let mut new_tombs = Vec::new();
        // A delete's tombstone is fsynced before its WAL entry, so a power cut can
        // keep the one without the other: logged tombstones newer than the flush are
        // applied to the replayed memtable at their place in the sequence (unless
        // their WAL entry survived and applies itself), so no delete comes back
        // half done.
        let mut logged_deletes: VecDeque<Arc<Tombstone>> = state
            .tombstones
            .iter()
            .filter(|t| t.seq > flushed)
            .cloned()
            .collect();
        let replay_delete = |min: i64, max: i64, keys: &mut dyn Iterator<Item = &str>| {
            let sids: Vec<u32> = keys.filter_map(|k| catalog.get(k)).collect();
            {
                let mut mem = active.write();
                mem.seq.delete(&sids, min, max);
                mem.unseq.delete(&sids, min, max);
            }
            if min == i64::MIN && max == i64::MAX {
                let mut bm = RoaringBitmap::new();
                bm.extend(sids.iter().copied());
                index.write().remove_series(&bm);
            }
        };
        let (wal, wal_rec) = Wal::open(
            &dir.join("wal"),
            opts.fsync,
            opts.wal_segment_size,
            opts.wal_strict_recovery,
            metrics.clone(),
            &mut |seq, kind, body| {
                if seq <= flushed {
                    return Ok(());
                }
                while logged_deletes.front().is_some_and(|t| t.seq < seq) {
                    if let Some(t) = logged_deletes.pop_front() {
                        replay_delete(t.min, t.max, &mut t.keys.iter().map(String::as_str));
                    }
                }
                match kind {
                    KIND_WRITE => {
                        let b = batch::decode_write(body)?;
                        let sids: Vec<u32> = catalog
                            .create(&b.keys, None)?
                            .into_iter()
                            .map(|r| r.unwrap_or(u32::MAX))
                            .collect();
                        {
                            let mut idx = index.write();
                            idx.add_series(sids.iter().copied().filter(|&s| s != u32::MAX));
                            // Field types normally come from validation; here from the log.
                            write::register_replayed_fields(&b, &sids, &mut idx)?;
                        }
                        for (k, &sid) in b.keys.iter().zip(&sids) {
                            if sid != u32::MAX && !ws.watermarks.contains_key(&sid) {
                                ws.watermarks.insert(sid, state.persisted_max(k, sid));
                            }
                        }
                        let mut mem = active.write();
                        apply_write(&mut ws, &mut mem, seq, &b, &sids)
                    }
                    KIND_DELETE => {
                        let (min, max, keys) = batch::decode_delete(body)?;
                        replay_delete(min, max, &mut keys.iter().copied());
                        active.write().max_seq = seq;
                        // Its logged tombstone, if any, need not be applied again.
                        if logged_deletes.front().is_some_and(|t| t.seq == seq) {
                            logged_deletes.pop_front();
                        }
                        // At or below max_seen the log has it, or had it and
                        // found it hides nothing any more.
                        if seq > tomb_seen {
                            new_tombs.push(Arc::new(Tombstone {
                                seq,
                                min,
                                max,
                                keys: keys.iter().map(|k| k.to_string()).collect(),
                            }));
                        }
                        Ok(())
                    }
                    k => Err(Error::CorruptBlock(format!("unknown WAL entry kind {k}"))),
                }
            },
        )?;
        for t in logged_deletes {
            replay_delete(t.min, t.max, &mut t.keys.iter().map(String::as_str));
        }
        // Above every tombstone ever logged too: a delete whose tombstone reached
        // the log but whose WAL entry did not must not lend its sequence number to
        // a later write (its tombstone would then hide that write at the next
        // replay).
        wal.bump_seq(flushed.max(tomb_seen));
        report.wal = wal_rec;
        let state = RwLock::new(state);
        let shard = Arc::new(Shard {
            id,
            dir: dir.to_path_buf(),
            opts,
            metrics,
            sched,
            budget,
            index_mem,
            catalog,
            mem_reported: Mutex::new(0),
            index_reported: Mutex::new(0),
            wal,
            write: Mutex::new(ws),
            stall: Condvar::new(),
            manifest: Mutex::new(ManifestState {
                next_file_id: manifest.next_file_id.max(1),
                flushed_seq: flushed,
            }),
            state,
            index,
            flush_lock: Mutex::new(()),
            compact_lock: Mutex::new(()),
            persist: Mutex::new(snap_state),
            frames: Mutex::new(Vec::new()),
            flush_queued: AtomicBool::new(false),
            compact_queued: AtomicBool::new(false),
            compaction_halted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tomb_log,
            recovery: report,
        });
        for t in &new_tombs {
            shard.tomb_log.add(t)?;
        }
        if !new_tombs.is_empty() {
            shard.state.write().tombstones.extend(new_tombs);
        }
        if migrated {
            let ms = shard.manifest.lock();
            let files = shard.state.read().files.clone();
            shard.manifest_of(&ms, &files).store(dir)?;
        }
        if shard.recovery.index_rebuilt {
            shard.persist_index()?;
        }
        tracing::info!(
            shard_id = id,
            files = shard.state.read().files.len(),
            series = shard.index.read().present.len(),
            wal_entries = shard.recovery.wal.entries,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shard opened"
        );
        // Replayed WAL entries sit in the memtables now.
        shard.report_mem();
        shard.report_index_mem();
        // A large shard opening past half the index memory limit sheds its files'
        // summaries now rather than at the janitor's next pass.
        let over = || shard.index_mem.above(DEGRADE_SUMMARIES_PERCENT);
        if over() {
            shard.degrade_summaries(&over);
        }
        Ok(shard)
    }
}
