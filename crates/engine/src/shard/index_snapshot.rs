//! Persisting a shard's series list: the index snapshot and the log of changes
//! appended to it, read back (or rebuilt from the data files) when the shard opens.

use std::path::Path;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::{DataFile, RecoveryReport, Shard};
use crate::applog;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::index::{ShardIndex, Snapshot};
use crate::manifest::Tombstone;
use crate::util::{seal, unseal};
use crate::vfs::{self, write_atomic};

const INDEX_SNAP: &str = "index.snap";

const INDEX_LOG: &str = "index.log";

/// Where the index snapshot and its log stand (`log_id` 0: the next write is a
/// whole snapshot).
#[derive(Debug, Default)]
pub(super) struct SnapState {
    log_id: u64,
    generation: u64,
    base_len: u64,
    log_len: u64,
}

/// The index snapshot with its log applied; `None` when there is none or it is
/// damaged (then the list is rebuilt from the data files). `repair`: the shard
/// opening may cut a torn last record off the log.
fn read_snapshot(dir: &Path, repair: bool) -> Option<(Snapshot, SnapState)> {
    let path = dir.join(INDEX_SNAP);
    let d = std::fs::read(&path).ok()?;
    let snap = match unseal(&d).map(ShardIndex::decode) {
        Some(Ok(s)) => s,
        _ => {
            tracing::warn!(path = %path.display(), "index snapshot is corrupt; rebuilding from data files");
            return None;
        }
    };
    let Snapshot::Ids {
        mut index,
        generation,
        id_bound,
        log_id,
    } = snap
    else {
        return Some((snap, SnapState::default()));
    };
    let mut st = SnapState {
        log_id,
        generation,
        base_len: d.len() as u64,
        log_len: 0,
    };
    let mut bound = id_bound;
    if log_id != 0 {
        let applied = applog::read(&dir.join(INDEX_LOG), "index log", repair).and_then(|recs| {
            for r in recs {
                if let Some(b) = index.apply_record(&r, log_id, generation)? {
                    bound = bound.max(b);
                    st.log_len += r.len() as u64 + 12;
                }
            }
            Ok(())
        });
        if let Err(e) = applied {
            tracing::warn!(path = %path.display(), error = %e, "index log is damaged; rebuilding from data files");
            return None;
        }
    }
    let snap = Snapshot::Ids {
        index,
        generation,
        id_bound: bound,
        log_id,
    };
    Some((snap, st))
}

/// The series list a shard starts from (before WAL replay).
pub(super) fn load_index(
    dir: &Path,
    catalog: &Catalog,
    files: &[Arc<DataFile>],
    tombstones: &[Arc<Tombstone>],
    report: &mut RecoveryReport,
) -> Result<(ShardIndex, SnapState)> {
    let snap_path = dir.join(INDEX_SNAP);
    let (mut index, rebuild) = match read_snapshot(dir, true) {
        Some((
            Snapshot::Ids {
                index,
                generation,
                id_bound,
                ..
            },
            st,
        )) => {
            if generation == catalog.generation() && id_bound <= catalog.id_bound() {
                return Ok((index, st));
            }
            tracing::warn!(path = %snap_path.display(), "index snapshot names another series catalog generation; rebuilding from data files");
            let mut index = index;
            index.present = RoaringBitmap::new();
            (index, true)
        }
        Some((Snapshot::Keys { mut index, keys }, _)) => {
            // Written before the catalog existed: resolve its keys once.
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let ids = catalog.create(&refs, None)?;
            index.add_series(ids.into_iter().flatten());
            index.delta.whole = true;
            (index, false)
        }
        None => (ShardIndex::default(), true),
    };
    let need_fields = index.is_empty_schema();
    for f in files {
        let refs = f.file.series_refs()?;
        let mut keys = Vec::with_capacity(refs.len());
        for r in &refs {
            // Series dropped for good (full-range tombstone newer than the file).
            let dropped = tombstones.iter().any(|t| {
                t.min == i64::MIN && t.max == i64::MAX && t.applies(&r.key, f.meta.max_seq)
            });
            if !dropped {
                keys.push(&*r.key);
            }
        }
        let ids = catalog.create(&keys, None)?;
        index.add_series(ids.into_iter().flatten());
        if rebuild && need_fields {
            // Field types live in the index entries; only needed without a snapshot.
            for r in &refs {
                let si = f.file.series_index_of(r)?;
                let (m, _) = crate::index::parse_series_key(&r.key);
                for fi in &si.fields {
                    index.register_field(&m, &fi.name, fi.ty);
                }
            }
        }
    }
    report.index_rebuilt = rebuild;
    index.delta.whole = true;
    Ok((index, SnapState::default()))
}

impl Shard {
    /// Writes what changed in the index: a record appended to the snapshot's log,
    /// or a whole new snapshot when the log has grown past the snapshot (or a change
    /// needs one).
    pub fn persist_index(&self) -> Result<()> {
        let mut p = self.persist.lock();
        let generation = self.catalog.generation();
        let (delta, whole) = {
            let mut idx = self.index.write();
            if idx.delta.is_empty() {
                return Ok(());
            }
            let delta = std::mem::take(&mut idx.delta);
            let whole = delta.whole
                || p.log_id == 0
                || p.generation != generation
                || p.log_len > p.base_len.max(64 << 10);
            // A whole one is encoded from a copy: writers adding series wait for a
            // memcpy of the bitmap, not for its encoding.
            (delta, whole.then(|| idx.snapshot_copy()))
        };
        // Every id taken above was created before this: the bound covers them, and
        // the catalog's sync makes them durable before the list names them.
        let bound = self.catalog.id_bound();
        let res = self.catalog.sync().and_then(|()| match whole {
            Some(copy) => self.write_whole_index(&mut p, &copy, generation, bound),
            None => {
                let mut buf = Vec::new();
                applog::frame(&delta.encode(p.log_id, generation, bound), &mut buf);
                applog::append(&self.dir.join(INDEX_LOG), &buf)?;
                p.log_len += buf.len() as u64;
                Ok(())
            }
        });
        // Whatever was taken is written whole next time.
        res.inspect_err(|_| self.index.write().delta.whole = true)
    }

    /// A new snapshot under a new log id; the old log is void from then on (its
    /// records name the old id) and removed.
    fn write_whole_index(
        &self,
        p: &mut SnapState,
        copy: &ShardIndex,
        generation: u64,
        bound: u32,
    ) -> Result<()> {
        let log_id = rand::random::<u64>() | 1;
        let body = seal(copy.encode(generation, bound, log_id));
        write_atomic(&self.dir.join(INDEX_SNAP), &body)?;
        let log = self.dir.join(INDEX_LOG);
        match vfs::remove_file(&log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&log, e)),
            _ => {}
        }
        *p = SnapState {
            log_id,
            generation,
            base_len: body.len() as u64,
            log_len: 0,
        };
        Ok(())
    }
}

/// The series ids recorded in a closed shard's snapshot, if it names `generation`.
pub(crate) fn snapshot_series(dir: &Path, generation: u64) -> Option<RoaringBitmap> {
    match read_snapshot(dir, false)?.0 {
        Snapshot::Ids {
            index,
            generation: g,
            ..
        } if g == generation => Some(index.present),
        _ => None,
    }
}
