//! Write-ahead log: numbered segment files of checksummed entries, with group commit.
//!
//! ```text
//! segment  "SDWAL\0\0\x01" then entries
//! entry    u32 len | u32 crc32c(payload) | payload          (little-endian)
//! payload  u8 kind | u64 seq | body                         (len = 9 + body length)
//! ```
//!
//! Writers append under the shard's write lock (so WAL order is memtable order) and
//! then wait for durability outside it. The first waiter becomes the sync leader and
//! fsyncs everything written so far; writers that appended meanwhile are covered by
//! that fsync or the next one, so N concurrent writers cost far fewer than N fsyncs.
//! With policy `always` a thread of a process-wide sync pool is woken right after the
//! append and takes the leader role, so the fsync overlaps the writer's memtable
//! apply; the writer is acknowledged only once an fsync covering its entry has
//! completed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Condvar, Mutex};
use sundial_common::telemetry;

use crate::error::{Error, Result};
use crate::options::FsyncPolicy;
use crate::stats::Metrics;
use crate::vfs::{self, sync_dir, VFile};

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"SDWAL\0\0\x01";
/// Bytes before the body in a frame handed to [`Wal::append`].
pub(crate) const FRAME_HEADER: usize = 8 + 1 + 8;
const MAX_ENTRY: u64 = 1 << 31;

/// Replay takes an entry longer than [`MAX_ENTRY`] for damage (a torn tail):
/// such an entry must never be written, let alone acknowledged.
fn check_entry_len(len: usize) -> Result<()> {
    if len as u64 > MAX_ENTRY {
        return Err(Error::InvalidArgument(format!(
            "a write of {len} bytes exceeds the WAL's largest entry ({MAX_ENTRY} bytes); send it in smaller requests"
        )));
    }
    Ok(())
}

pub(crate) const KIND_WRITE: u8 = 1;
pub(crate) const KIND_DELETE: u8 = 2;

/// Start a frame: reserve header space; the body is appended by the caller.
pub(crate) fn new_frame(kind: u8, body_hint: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(FRAME_HEADER + body_hint);
    v.extend_from_slice(&[0u8; 8]);
    v.push(kind);
    v.extend_from_slice(&[0u8; 8]);
    v
}

/// Receives each replayed entry: (seq, kind, body).
pub(crate) type ApplyFn<'a> = dyn FnMut(u64, u8, &[u8]) -> Result<()> + 'a;

/// What recovery found, for logs, metrics and tests.
#[derive(Debug, Clone, Default)]
pub struct WalRecovery {
    pub segments: usize,
    pub entries: usize,
    /// Last segment's damaged tail (`path`, offset, bytes dropped).
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Damage in earlier segments; the valid prefix of each was kept, later segments too.
    pub corrupt: Vec<(PathBuf, u64, u64, String)>,
}

impl WalRecovery {
    pub fn lost_bytes(&self) -> u64 {
        self.torn_tail.as_ref().map_or(0, |t| t.2) + self.corrupt.iter().map(|c| c.2).sum::<u64>()
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    file: Arc<VFile>,
    size: u64,
}

#[derive(Debug)]
struct WalState {
    cur: Segment,
    last_seq: u64,
    /// Sealed segments, oldest first.
    sealed: Vec<u64>,
    /// A sticky fsync/write failure: after one, durability is unknown, so refuse writes.
    failed: Option<String>,
}

#[derive(Debug, Default)]
struct SyncState {
    synced_seq: u64,
    leader: bool,
    /// Set with `WalState::failed`. Linux reports a writeback error to one fsync and
    /// then forgets it, so a later fsync "succeeding" proves nothing: waiters that were
    /// not covered before the failure must fail too, never be acknowledged.
    failed: Option<String>,
    /// The span of the last fsync that completed: writers it covered while they
    /// waited link their `wal.commit` span to it (one fsync serves many writes).
    last_sync: Option<telemetry::SpanContext>,
}

fn unusable(reason: &str) -> Error {
    Error::Internal(format!(
        "WAL unusable after a failed write or fsync: {reason}"
    ))
}

/// State shared with the background sync thread.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: Mutex<WalState>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    metrics: Arc<Metrics>,
    /// Tests: how many of the next fsyncs fail.
    #[cfg(test)]
    inject_fsync_errors: std::sync::atomic::AtomicU32,
}

impl Shared {
    /// Returns once an fsync covering `seq` has completed. With `wait` false (the
    /// sync pool) it returns at once when another thread is already leading: that
    /// fsync or the writer's own will cover `seq`.
    ///
    /// The leader's fsync runs in a `wal.sync` span, a child of `parent` (the write
    /// that asked the sync pool for it) or else of the current span.
    fn sync_to(&self, seq: u64, wait: bool, parent: Option<&tracing::Span>) -> Result<()> {
        let mut s = self.sync.lock();
        let mut waited = false;
        loop {
            if s.synced_seq >= seq {
                let covered_by = if waited { s.last_sync.clone() } else { None };
                drop(s);
                if let Some(sc) = covered_by {
                    telemetry::add_link(&tracing::Span::current(), sc);
                }
                return Ok(());
            }
            if let Some(f) = &s.failed {
                return Err(unusable(f));
            }
            if !s.leader {
                s.leader = true;
                break;
            }
            if !wait {
                return Ok(());
            }
            waited = true;
            self.synced.wait(&mut s);
        }
        drop(s);
        let span = match parent {
            Some(p) => tracing::info_span!(parent: p, "wal.sync", upto = tracing::field::Empty),
            None => tracing::info_span!("wal.sync", upto = tracing::field::Empty),
        };
        let _e = span.enter();
        // Leader: everything appended before this point is covered by this fsync.
        let (file, id, upto) = {
            let st = self.state.lock();
            (st.cur.file.clone(), st.cur.id, st.last_seq)
        };
        span.record("upto", upto);
        let started = std::time::Instant::now();
        let res = self.fsync(&file);
        self.metrics.add(&self.metrics.wal_fsyncs, 1);
        self.metrics
            .observe(&self.metrics.latencies.wal_fsync, started.elapsed());
        if let Err(e) = &res {
            // Lock order is state then sync, as in `append`'s callers.
            self.fail(e.to_string());
        }
        let mut s = self.sync.lock();
        s.leader = false;
        s.last_sync = telemetry::span_context(&span);
        // Another fsync of the same file (a segment roll) may have taken the error
        // meanwhile; the kernel reports it only once, so this one "succeeding" does
        // not make the entries durable.
        let failed_meanwhile = s.failed.clone();
        if res.is_ok() && failed_meanwhile.is_none() {
            s.synced_seq = s.synced_seq.max(upto);
        }
        self.synced.notify_all();
        drop(s);
        match (res, failed_meanwhile) {
            (Err(e), _) => Err(Error::io(seg_path(&self.dir, id), e)),
            (Ok(()), Some(f)) => Err(unusable(&f)),
            (Ok(()), None) => Ok(()),
        }
    }

    /// Make the WAL refuse appends and un-synced commits from now on.
    fn fail(&self, reason: String) {
        self.fail_locked(&mut self.state.lock(), reason);
    }

    /// [`Shared::fail`] with the state lock already held (lock order: state, sync).
    fn fail_locked(&self, st: &mut WalState, reason: String) {
        st.failed.get_or_insert_with(|| reason.clone());
        self.sync.lock().failed.get_or_insert(reason);
    }

    fn fsync(&self, file: &VFile) -> std::io::Result<()> {
        #[cfg(test)]
        if self
            .inject_fsync_errors
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
        {
            return Err(std::io::Error::other("injected fsync error"));
        }
        file.sync_data()
    }
}

#[derive(Debug)]
pub(crate) struct Wal {
    policy: FsyncPolicy,
    segment_size: u64,
    sh: Arc<Shared>,
}

/// A WAL, the sequence number to cover, and the span of the write that asked.
type SyncRequest = (Weak<Shared>, u64, tracing::Span);

/// Early fsyncs for policy `always`, shared by every WAL of the process (a thread
/// per shard would make ten thousand shards ten thousand threads). The pool only
/// starts fsyncs sooner: a writer whose entry no fsync has covered yet leads one
/// itself, so a busy pool slows nobody down.
fn sync_pool() -> &'static Mutex<Sender<SyncRequest>> {
    static POOL: OnceLock<Mutex<Sender<SyncRequest>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SyncRequest>();
        let rx = Arc::new(Mutex::new(rx));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        for _ in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name("sundial-wal-sync".into())
                .spawn(move || sync_worker(&rx));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start a WAL sync thread");
            }
        }
        Mutex::new(tx)
    })
}

fn sync_worker(rx: &Mutex<Receiver<SyncRequest>>) {
    loop {
        let Ok((wal, seq, parent)) = rx.lock().recv() else {
            return;
        };
        // A WAL dropped meanwhile needs nothing.
        if let Some(sh) = wal.upgrade() {
            if let Err(e) = sh.sync_to(seq, false, Some(&parent)) {
                tracing::error!(error = %e, "WAL fsync failed");
            }
        }
    }
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:010}.wal"))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn create_segment(dir: &Path, id: u64) -> Result<Segment> {
    let path = seg_path(dir, id);
    let mut f = VFile::create(&path).map_err(|e| Error::io(&path, e))?;
    f.write_all(SEGMENT_MAGIC)
        .map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)?;
    Ok(Segment {
        id,
        file: Arc::new(f),
        size: SEGMENT_MAGIC.len() as u64,
    })
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(a)
}

/// Parse entries from a segment image; returns the end of the valid prefix and, if
/// the prefix is not the whole file, why.
fn scan_segment(
    data: &[u8],
    mut last_seq: u64,
    f: &mut ApplyFn<'_>,
) -> Result<(usize, u64, Option<String>, usize)> {
    if data.len() < SEGMENT_MAGIC.len() {
        let why = (!data.is_empty()).then(|| "truncated segment header".to_owned());
        return Ok((0, last_seq, why, 0));
    }
    if &data[..8] != SEGMENT_MAGIC {
        return Ok((0, last_seq, Some("bad segment magic".into()), 0));
    }
    let mut pos = 8;
    let mut n = 0;
    while pos < data.len() {
        let rest = data.len() - pos;
        if rest < 8 {
            return Ok((pos, last_seq, Some("truncated entry header".into()), n));
        }
        let len = u64::from(u32_at(data, pos));
        let crc = u32_at(data, pos + 4);
        if !(9..=MAX_ENTRY).contains(&len) {
            return Ok((pos, last_seq, Some(format!("bad entry length {len}")), n));
        }
        if (rest as u64 - 8) < len {
            return Ok((pos, last_seq, Some("truncated entry payload".into()), n));
        }
        let payload = &data[pos + 8..pos + 8 + len as usize];
        if crc32c::crc32c(payload) != crc {
            return Ok((pos, last_seq, Some("entry checksum mismatch".into()), n));
        }
        let kind = payload[0];
        let mut s = [0u8; 8];
        s.copy_from_slice(&payload[1..9]);
        let seq = u64::from_le_bytes(s);
        if seq <= last_seq {
            return Ok((
                pos,
                last_seq,
                Some(format!("sequence {seq} not after {last_seq}")),
                n,
            ));
        }
        f(seq, kind, &payload[9..])?;
        last_seq = seq;
        pos += 8 + len as usize;
        n += 1;
    }
    Ok((pos, last_seq, None, n))
}

impl Wal {
    /// Replay every segment through `apply(seq, kind, body)` and open a fresh segment
    /// for new writes.
    pub fn open(
        dir: &Path,
        policy: FsyncPolicy,
        segment_size: u64,
        strict: bool,
        metrics: Arc<Metrics>,
        apply: &mut ApplyFn<'_>,
    ) -> Result<(Wal, WalRecovery)> {
        vfs::create_dir_durable(dir)?;
        let ids = list_segments(dir)?;
        let mut rec = WalRecovery {
            segments: ids.len(),
            ..Default::default()
        };
        let mut last_seq = 0u64;
        for (i, &id) in ids.iter().enumerate() {
            let path = seg_path(dir, id);
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let (valid, seq, why, n) = scan_segment(&data, last_seq, apply)?;
            last_seq = seq;
            rec.entries += n;
            let Some(why) = why else {
                // What was replayed may sit in the page cache only (a process
                // killed before its fsync, or `wal-fsync = never`): make it
                // durable before it is served as written.
                vfs::sync_path(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            };
            let lost = (data.len() - valid) as u64;
            let is_last = i + 1 == ids.len();
            if is_last {
                tracing::warn!(path = %path.display(), offset = valid, lost_bytes = lost, reason = %why,
                    "WAL: truncating torn or corrupt tail of the last segment");
                metrics.add(&metrics.wal_torn_tails_truncated, 1);
                rec.torn_tail = Some((path.clone(), valid as u64, lost));
            } else {
                tracing::error!(path = %path.display(), offset = valid, lost_bytes = lost, reason = %why,
                    "WAL: corruption in a non-final segment; data after the damage in this segment is lost");
                metrics.add(&metrics.wal_corrupt_segments, 1);
                if strict {
                    return Err(Error::WalCorrupt {
                        path,
                        offset: valid as u64,
                        lost_bytes: lost,
                        reason: why,
                    });
                }
                // Keep the damaged original for forensics before truncating.
                let aside = dir.join("corrupt");
                vfs::create_dir_durable(&aside)?;
                let copy = aside.join(format!("{id:010}.wal"));
                vfs::write_file(&copy, &data).map_err(|e| Error::io(&copy, e))?;
                rec.corrupt.push((path.clone(), valid as u64, lost, why));
            }
            let f = VFile::existing(&path).map_err(|e| Error::io(&path, e))?;
            f.set_len(valid as u64).map_err(|e| Error::io(&path, e))?;
            f.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        let next_id = ids.last().map_or(1, |l| l + 1);
        let cur = create_segment(dir, next_id)?;
        let sh = Arc::new(Shared {
            dir: dir.to_path_buf(),
            state: Mutex::new(WalState {
                cur,
                last_seq,
                sealed: ids,
                failed: None,
            }),
            sync: Mutex::new(SyncState {
                synced_seq: last_seq,
                ..Default::default()
            }),
            synced: Condvar::new(),
            metrics,
            #[cfg(test)]
            inject_fsync_errors: Default::default(),
        });
        let wal = Wal {
            policy,
            segment_size,
            sh,
        };
        Ok((wal, rec))
    }

    /// Raise the sequence floor (sequences already flushed to files must not be reused).
    pub fn bump_seq(&self, seq: u64) {
        let mut st = self.sh.state.lock();
        st.last_seq = st.last_seq.max(seq);
        let mut s = self.sh.sync.lock();
        s.synced_seq = s.synced_seq.max(st.last_seq);
    }

    /// The sticky failure, if a write or fsync failed: the WAL takes nothing more and
    /// the shard must be reopened from disk.
    pub fn failure(&self) -> Option<String> {
        self.sh.state.lock().failed.clone()
    }

    pub fn last_seq(&self) -> u64 {
        self.sh.state.lock().last_seq
    }

    /// Append a frame made with [`new_frame`]; fills in seq, length and CRC. Returns the
    /// entry's sequence number. The entry is written to the OS but not yet synced.
    pub fn append(&self, frame: &mut [u8]) -> Result<u64> {
        let len = frame.len() - 8;
        check_entry_len(len)?;
        let mut st = self.sh.state.lock();
        if let Some(f) = &st.failed {
            return Err(unusable(f));
        }
        if st.cur.size >= self.segment_size {
            self.roll_locked(&mut st)?;
        }
        let seq = st.last_seq + 1;
        frame[9..17].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32c::crc32c(&frame[8..]);
        frame[0..4].copy_from_slice(&(len as u32).to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        let path = seg_path(&self.sh.dir, st.cur.id);
        if let Err(e) = (&*st.cur.file).write_all(frame) {
            // A partial write leaves garbage mid-segment: stop here so recovery sees it
            // as the torn tail.
            self.sh.fail_locked(&mut st, e.to_string());
            return Err(Error::io(&path, e));
        }
        st.cur.size += frame.len() as u64;
        st.last_seq = seq;
        self.sh
            .metrics
            .add(&self.sh.metrics.wal_bytes, frame.len() as u64);
        Ok(seq)
    }

    fn roll_locked(&self, st: &mut WalState) -> Result<u64> {
        if let Some(f) = &st.failed {
            // The current segment may end in a torn entry: it must stay the last one.
            return Err(unusable(f));
        }
        let old = st.cur.id;
        // The sealed segment must be durable before anything depends on the new one.
        if self.policy != FsyncPolicy::Never {
            if let Err(e) = self.sh.fsync(&st.cur.file) {
                self.sh.fail_locked(st, e.to_string());
                return Err(Error::io(seg_path(&self.sh.dir, old), e));
            }
        }
        st.cur = create_segment(&self.sh.dir, old + 1)?;
        st.sealed.push(old);
        Ok(old)
    }

    /// Seal the current segment (at memtable freeze); returns the id of the last segment
    /// holding entries up to now.
    pub fn roll(&self) -> Result<u64> {
        let mut st = self.sh.state.lock();
        self.roll_locked(&mut st)
    }

    /// Delete sealed segments with id <= `upto` (their data is in files now).
    pub fn remove_upto(&self, upto: u64) -> Result<()> {
        let victims: Vec<u64> = {
            let mut st = self.sh.state.lock();
            let (v, keep): (Vec<u64>, Vec<u64>) = st.sealed.iter().partition(|&&id| id <= upto);
            st.sealed = keep;
            v
        };
        for id in victims {
            let p = seg_path(&self.sh.dir, id);
            match vfs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        Ok(())
    }

    /// Wait until `seq` is durable according to the policy (in a `wal.commit`
    /// span, linked to the fsync that covered it when another thread led it).
    pub fn commit(&self, seq: u64) -> Result<()> {
        match self.policy {
            FsyncPolicy::Always => {
                let span = tracing::info_span!("wal.commit", seq);
                let _e = span.enter();
                self.sync_to(seq)
            }
            _ => Ok(()),
        }
    }

    /// Make everything appended so far durable (periodic syncer, close).
    pub fn sync_all(&self) -> Result<()> {
        let seq = self.last_seq();
        self.sync_to(seq)
    }

    fn sync_to(&self, seq: u64) -> Result<()> {
        self.sh.sync_to(seq, true, None)
    }

    /// Start the fsync covering `seq` in the background, so the caller can apply its
    /// batch to the memtable while the disk works; [`Wal::commit`] then waits for it.
    pub fn start_sync(&self, seq: u64) {
        if self.policy == FsyncPolicy::Always {
            let req = (Arc::downgrade(&self.sh), seq, tracing::Span::current());
            let _ = sync_pool().lock().send(req);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn open(dir: &Path) -> Wal {
        let metrics = Arc::new(Metrics::new(false));
        let (wal, _) = Wal::open(
            dir,
            FsyncPolicy::Always,
            1 << 20,
            false,
            metrics,
            &mut |_, _, _| Ok(()),
        )
        .expect("open");
        wal
    }

    #[test]
    fn entries_replay_would_refuse_are_refused_up_front() {
        assert!(check_entry_len(MAX_ENTRY as usize).is_ok());
        let e = check_entry_len(MAX_ENTRY as usize + 1).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    fn append(wal: &Wal) -> Result<u64> {
        let mut frame = new_frame(KIND_WRITE, 4);
        frame.extend_from_slice(b"body");
        wal.append(&mut frame)
    }

    #[test]
    fn fsync_failure_is_sticky() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(dir.path());
        let first = append(&wal).expect("append");
        wal.commit(first).expect("first commit");
        let second = append(&wal).expect("append");
        wal.sh.inject_fsync_errors.store(1, Ordering::SeqCst);
        assert!(wal.commit(second).is_err());
        // The next fsync would succeed, but the page cache may have dropped the data:
        // a retry (or a writer that was waiting on the failed leader) must not be
        // acknowledged, and no new write may be accepted.
        assert!(wal.commit(second).is_err());
        assert!(wal.sync_all().is_err());
        assert!(append(&wal).is_err());
        // What was durable before the failure stays acknowledged.
        wal.commit(first).expect("already synced");
    }

    #[test]
    fn failed_roll_fsync_is_sticky() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = open(dir.path());
        let seq = append(&wal).expect("append");
        wal.sh.inject_fsync_errors.store(1, Ordering::SeqCst);
        assert!(wal.roll().is_err());
        assert!(wal.commit(seq).is_err());
        assert!(append(&wal).is_err());
    }
}
