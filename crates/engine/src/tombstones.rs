//! A shard's tombstones, in an append-only log (`TOMBSTONES`) instead of the
//! manifest, so a delete appends one record rather than rewriting every tombstone.
//!
//! ```text
//! record   framed as in `applog`
//! payload  u8 1 (add)    | uvarint seq | zigzag min | zigzag max | uvarint nkeys |
//!                          (uvarint len, series key)*
//!          u8 2 (remove) | uvarint n | uvarint seq*
//!          u8 3 (seen)   | uvarint seq   (written by a rewrite: the highest seq ever
//!                                         added, so WAL replay does not bring back
//!                                         a delete whose tombstone was removed)
//! ```
//!
//! Each append is fsynced (a new log's directory too) before the delete is
//! acknowledged. At open a torn last record (a crash in the middle of an append) is
//! cut off; damage before the last record is an error: deleted data must never
//! come back. When removed tombstones outnumber the live ones, the log is rewritten
//! with the live ones only (temp file, fsync, rename).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::applog::{self, frame as record};
use crate::codec::{get_uvarint, put_uvarint, take, unzigzag, zigzag};
use crate::error::Result;
use crate::manifest::Tombstone;
use crate::vfs::write_atomic;

pub(crate) const TOMBSTONES: &str = "TOMBSTONES";
const ADD: u8 = 1;
const REMOVE: u8 = 2;
const SEEN: u8 = 3;

#[derive(Debug)]
pub(crate) struct TombstoneLog {
    path: PathBuf,
    inner: Mutex<LogState>,
}

/// No descriptor is kept: deletes are rare, and shards count every descriptor
/// they hold against the store's budget.
#[derive(Debug)]
struct LogState {
    /// Tombstones removed since the log was last rewritten.
    removed: usize,
    /// The highest sequence number ever added.
    max_seen: u64,
}

fn add_record(t: &Tombstone, out: &mut Vec<u8>) {
    let mut p = vec![ADD];
    put_uvarint(&mut p, t.seq);
    put_uvarint(&mut p, zigzag(t.min));
    put_uvarint(&mut p, zigzag(t.max));
    put_uvarint(&mut p, t.keys.len() as u64);
    for k in &t.keys {
        put_uvarint(&mut p, k.len() as u64);
        p.extend_from_slice(k.as_bytes());
    }
    record(&p, out);
}

fn decode(p: &[u8]) -> Result<Entry> {
    let mut pos = 0;
    match take(p, &mut pos, 1)?[0] {
        ADD => {
            let seq = get_uvarint(p, &mut pos)?;
            let min = unzigzag(get_uvarint(p, &mut pos)?);
            let max = unzigzag(get_uvarint(p, &mut pos)?);
            let n = get_uvarint(p, &mut pos)?;
            let mut keys = std::collections::BTreeSet::new();
            for _ in 0..n {
                let len = usize::try_from(get_uvarint(p, &mut pos)?)
                    .map_err(|_| crate::codec::corrupt("key length"))?;
                let k = std::str::from_utf8(take(p, &mut pos, len)?)
                    .map_err(|_| crate::codec::corrupt("key is not UTF-8"))?;
                keys.insert(k.to_owned());
            }
            Ok(Entry::Add(Tombstone {
                seq,
                min,
                max,
                keys,
            }))
        }
        SEEN => Ok(Entry::Seen(get_uvarint(p, &mut pos)?)),
        REMOVE => {
            let n = get_uvarint(p, &mut pos)?;
            let mut seqs = Vec::with_capacity((n as usize).min(p.len()));
            for _ in 0..n {
                seqs.push(get_uvarint(p, &mut pos)?);
            }
            Ok(Entry::Remove(seqs))
        }
        k => Err(crate::codec::corrupt(format!(
            "unknown tombstone record {k}"
        ))),
    }
}

enum Entry {
    Add(Tombstone),
    Remove(Vec<u64>),
    Seen(u64),
}

impl TombstoneLog {
    /// Opens the shard's log (creating it) and returns its live tombstones in the
    /// order they were added.
    pub fn open(dir: &Path) -> Result<(TombstoneLog, Vec<Tombstone>)> {
        let path = dir.join(TOMBSTONES);
        let mut live: Vec<Tombstone> = Vec::new();
        let (mut removed, mut max_seen) = (0, 0u64);
        for body in applog::read(&path, "tombstone", true)? {
            match decode(&body).map_err(|e| e.with_path(&path))? {
                Entry::Seen(seq) => max_seen = max_seen.max(seq),
                Entry::Add(t) => {
                    max_seen = max_seen.max(t.seq);
                    live.retain(|x| x.seq != t.seq);
                    live.push(t);
                }
                Entry::Remove(seqs) => {
                    removed += seqs.len();
                    live.retain(|x| !seqs.contains(&x.seq));
                }
            }
        }
        let log = TombstoneLog {
            path,
            inner: Mutex::new(LogState { removed, max_seen }),
        };
        Ok((log, live))
    }

    /// Appends and fsyncs. Callers hold the state's lock, which orders appends.
    fn append(&self, bytes: &[u8]) -> Result<()> {
        applog::append(&self.path, bytes)
    }

    /// Records a tombstone (durably).
    pub fn add(&self, t: &Tombstone) -> Result<()> {
        let mut buf = Vec::new();
        add_record(t, &mut buf);
        let mut st = self.inner.lock();
        self.append(&buf)?;
        st.max_seen = st.max_seen.max(t.seq);
        Ok(())
    }

    /// The highest sequence number of a tombstone ever recorded: a delete in the
    /// WAL at or below it is in the log already (or was removed from it).
    pub fn max_seen(&self) -> u64 {
        self.inner.lock().max_seen
    }

    /// Records that tombstones `seqs` hide nothing any more; `live` are the ones
    /// left, for rewriting the log when it is mostly dead records.
    pub fn remove(&self, seqs: &[u64], live: &[Arc<Tombstone>]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut st = self.inner.lock();
        if st.removed + seqs.len() > live.len().max(16) {
            let mut buf = Vec::new();
            let mut p = vec![SEEN];
            put_uvarint(&mut p, st.max_seen);
            record(&p, &mut buf);
            for t in live {
                add_record(t, &mut buf);
            }
            write_atomic(&self.path, &buf)?;
            st.removed = 0;
            return Ok(());
        }
        let mut p = vec![REMOVE];
        put_uvarint(&mut p, seqs.len() as u64);
        for s in seqs {
            put_uvarint(&mut p, *s);
        }
        let mut buf = Vec::new();
        record(&p, &mut buf);
        self.append(&buf)?;
        st.removed += seqs.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tomb(seq: u64, key: &str) -> Tombstone {
        Tombstone {
            seq,
            min: -5,
            max: 7,
            keys: [key.to_string()].into_iter().collect(),
        }
    }

    #[test]
    fn adds_removes_rewrites_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, live) = TombstoneLog::open(dir.path()).expect("open");
        assert!(live.is_empty());
        for s in 1..=40 {
            log.add(&tomb(s, &format!("m,k={s}"))).expect("add");
        }
        let keep: Vec<Arc<Tombstone>> = (31..=40)
            .map(|s| Arc::new(tomb(s, &format!("m,k={s}"))))
            .collect();
        log.remove(&[1, 2, 3], &keep).expect("remove");
        let (_, live) = TombstoneLog::open(dir.path()).expect("reopen");
        assert_eq!(live.len(), 37);
        assert_eq!(live[0], tomb(4, "m,k=4"));
        // Removing most of them rewrites the log with the live ones.
        let seqs: Vec<u64> = (4..=30).collect();
        log.remove(&seqs, &keep).expect("remove");
        let size = std::fs::metadata(dir.path().join(TOMBSTONES))
            .expect("meta")
            .len();
        let (reopened, live) = TombstoneLog::open(dir.path()).expect("reopen");
        assert_eq!(
            live.iter().map(|t| t.seq).collect::<Vec<_>>(),
            (31..=40).collect::<Vec<_>>()
        );
        assert_eq!(reopened.max_seen(), 40);
        // A torn append is cut off, whether the crash cut its header or its body;
        // the rest stays.
        let mut cut_body = Vec::new();
        record(b"\x01abcdefgh", &mut cut_body);
        cut_body.truncate(15);
        let mut log = None;
        for torn in [vec![9u8, 0, 0, 0, 1, 2], cut_body] {
            let path = dir.path().join(TOMBSTONES);
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            f.write_all(&torn).expect("write");
            drop(f);
            let (l, live) = TombstoneLog::open(dir.path()).expect("reopen");
            assert_eq!(live.len(), 10);
            assert_eq!(std::fs::metadata(&path).expect("meta").len(), size);
            log = Some(l);
        }
        let log = log.expect("opened");
        log.add(&tomb(50, "m,k=50")).expect("add after the cut");
        assert_eq!(TombstoneLog::open(dir.path()).expect("reopen").1.len(), 11);
        // Damage before the last record is an error, not a silent loss.
        let mut data = std::fs::read(dir.path().join(TOMBSTONES)).expect("read");
        data[10] ^= 0xff;
        std::fs::write(dir.path().join(TOMBSTONES), data).expect("write");
        assert!(TombstoneLog::open(dir.path())
            .expect_err("corrupt")
            .is_corruption());
    }
}
