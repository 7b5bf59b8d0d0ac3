//! Embedded [`KvBackend`](crate::kv::KvBackend): an in-memory ordered map made durable on
//! local disk.
//!
//! # File format
//!
//! A data directory holds `LOCK` (an exclusive `flock` held while open, so only one
//! handle in one process ever appends to the log; released by the OS on exit or
//! kill -9) and two data files:
//!
//! * `wal` — the magic `SDLWAL01` followed by frames. A frame is
//!   `[len: u32 LE][crc32c(payload): u32 LE][payload: len bytes]`; the payload is the
//!   JSON of one log record: a sequence number, the store revision after it and the
//!   primitive changes (put key/value/lease, delete key, grant lease, revoke lease).
//!   Every mutating call appends one frame and `fsync`s before it returns (and before
//!   the change becomes visible to readers and watchers), so an acknowledged change
//!   survives `kill -9` and power loss.
//! * `snapshot` — the magic `SDLSNAP1` and one frame (same framing) holding the JSON
//!   of the whole state (keys with their revisions, leases, revision, last sequence).
//!
//! When the log grows past [`EmbeddedOptions::compact_after_records`] records the state
//! is written to `snapshot.tmp`, fsynced, renamed over `snapshot` (directory fsynced),
//! and a fresh empty `wal` is installed the same way. Recovery loads the snapshot, then
//! replays log records with a sequence number above the snapshot's; a torn or corrupt
//! tail (short frame, CRC mismatch) is truncated away with a warning — it can only be a
//! change that was never acknowledged.
//!
//! Revisions are monotonic across restarts. Leases are persisted (id and TTL); after a
//! restart their deadline restarts at now + TTL (as etcd does). Watch history is kept
//! in memory for the last [`EmbeddedOptions::history_revisions`] revisions; older start
//! revisions (and any after a restart) get [`Error::Compacted`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{KeyValue, LeaseId, WatchEvent};
use crate::error::{Error, Result};

mod format;
mod kv_backend;
mod state;

use format::{
    decode_frames, io_err, write_atomic, LogRecord, SnapshotFile, LOCK_FILE, SNAP_FILE, SNAP_MAGIC,
    WAL_FILE, WAL_MAGIC,
};

/// Tuning of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Compact the log into a snapshot after this many records.
    pub compact_after_records: u64,
    /// Revisions of watch history kept in memory.
    pub history_revisions: usize,
    /// How often expired leases are checked.
    pub lease_check_interval: Duration,
    /// Fsync the log before acknowledging (only tests of throughput turn this off).
    pub fsync: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            compact_after_records: 10_000,
            history_revisions: 10_000,
            lease_check_interval: Duration::from_millis(100),
            fsync: true,
        }
    }
}

#[derive(Debug)]
struct Lease {
    ttl: i64,
    deadline: Instant,
    keys: BTreeSet<Vec<u8>>,
}

type Batch = Arc<(i64, Vec<WatchEvent>)>;

#[derive(Debug)]
struct State {
    dir: PathBuf,
    opts: EmbeddedOptions,
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    revision: i64,
    seq: u64,
    records_since_snapshot: u64,
    next_lease: LeaseId,
    leases: HashMap<LeaseId, Lease>,
    history: VecDeque<Batch>,
    /// Oldest revision a watch may start at (older ones are compacted).
    oldest_watchable: i64,
    wal: File,
    /// Set when a write to disk failed: memory and disk may disagree, refuse writes.
    poisoned: Option<String>,
    /// Exclusive `flock` on `dir/LOCK`, held while open (released by the OS on exit).
    _lock: File,
    tx: broadcast::Sender<Batch>,
}

/// The embedded backend. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    inner: Arc<Mutex<State>>,
    dir: PathBuf,
}

impl EmbeddedBackend {
    /// Opens (creating if needed) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`.
    #[tracing::instrument(name = "embedded_meta_open", skip(opts), fields(dir = %dir.as_ref().display()))]
    pub fn open_with(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create dir", &dir, e))?;
        let lock = lock_dir(&dir)?;
        let (tx, _) = broadcast::channel(1024);
        let snap_path = dir.join(SNAP_FILE);
        let wal_path = dir.join(WAL_FILE);

        let mut kvs = BTreeMap::new();
        let mut leases = HashMap::new();
        let (mut seq, mut revision, mut next_lease) = (0u64, 0i64, 1i64);
        match std::fs::read(&snap_path) {
            Ok(bytes) => {
                let body = bytes
                    .strip_prefix(SNAP_MAGIC.as_slice())
                    .ok_or_else(|| Error::Storage(format!("{}: bad magic", snap_path.display())))?;
                let (frames, _) = decode_frames(body);
                let payload = frames.first().ok_or_else(|| {
                    Error::Storage(format!("{}: corrupt snapshot", snap_path.display()))
                })?;
                let snap: SnapshotFile = serde_json::from_slice(payload)
                    .map_err(|e| Error::Storage(format!("{}: {e}", snap_path.display())))?;
                seq = snap.seq;
                revision = snap.revision;
                next_lease = snap.next_lease;
                for l in snap.leases {
                    leases.insert(
                        l.id,
                        Lease {
                            ttl: l.ttl,
                            deadline: Instant::now() + Duration::from_secs(l.ttl.unsigned_abs()),
                            keys: BTreeSet::new(),
                        },
                    );
                }
                for kv in snap.kvs {
                    if kv.lease != 0 {
                        if let Some(l) = leases.get_mut(&kv.lease) {
                            l.keys.insert(kv.key.clone());
                        }
                    }
                    kvs.insert(kv.key.clone(), kv);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &snap_path, e)),
        }

        // Read (or create) the log.
        let mut wal_bytes = Vec::new();
        match File::open(&wal_path) {
            Ok(mut f) => {
                f.read_to_end(&mut wal_bytes)
                    .map_err(|e| io_err("read", &wal_path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&dir, WAL_FILE, WAL_MAGIC)?;
                wal_bytes = WAL_MAGIC.to_vec();
            }
            Err(e) => return Err(io_err("open", &wal_path, e)),
        }
        if wal_bytes.len() < WAL_MAGIC.len() {
            // Crashed while creating the log: nothing in it was acknowledged.
            write_atomic(&dir, WAL_FILE, WAL_MAGIC)?;
            wal_bytes = WAL_MAGIC.to_vec();
        }
        if &wal_bytes[..WAL_MAGIC.len()] != WAL_MAGIC {
            return Err(Error::Storage(format!("{}: bad magic", wal_path.display())));
        }
        let body = &wal_bytes[WAL_MAGIC.len()..];
        let (frames, valid) = decode_frames(body);
        let mut records = Vec::with_capacity(frames.len());
        for f in frames {
            let r: LogRecord = serde_json::from_slice(f)
                .map_err(|e| Error::Storage(format!("{}: bad record: {e}", wal_path.display())))?;
            records.push(r);
        }
        let wal = OpenOptions::new()
            .write(true)
            .open(&wal_path)
            .map_err(|e| io_err("open", &wal_path, e))?;
        if valid < body.len() {
            tracing::warn!(
                path = %wal_path.display(),
                dropped_bytes = body.len() - valid,
                "embedded meta log has a torn/corrupt tail (unacknowledged write); truncating"
            );
            wal.set_len((WAL_MAGIC.len() + valid) as u64)
                .and_then(|_| wal.sync_all())
                .map_err(|e| io_err("truncate", &wal_path, e))?;
        }
        drop(wal);
        let wal = OpenOptions::new()
            .append(true)
            .open(&wal_path)
            .map_err(|e| io_err("open", &wal_path, e))?;

        let mut state = State {
            dir: dir.clone(),
            opts: opts.clone(),
            kvs,
            revision,
            seq,
            records_since_snapshot: 0,
            next_lease,
            leases,
            history: VecDeque::new(),
            oldest_watchable: 0,
            wal,
            poisoned: None,
            _lock: lock,
            tx,
        };
        let mut replayed = 0u64;
        for r in records {
            state.records_since_snapshot += 1;
            if r.seq <= state.seq {
                continue;
            }
            for op in &r.ops {
                state.apply_op(op, r.rev);
            }
            state.seq = r.seq;
            state.revision = r.rev;
            replayed += 1;
        }
        state.oldest_watchable = state.revision + 1;
        tracing::info!(
            revision = state.revision,
            keys = state.kvs.len(),
            replayed,
            "embedded meta store opened"
        );
        let inner = Arc::new(Mutex::new(state));
        spawn_lease_reaper(Arc::downgrade(&inner), opts.lease_check_interval);
        Ok(EmbeddedBackend { inner, dir })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.inner.lock().revision
    }

    /// Close: compacts the log into a snapshot so the next open is quick. Optional —
    /// every acknowledged change is already durable; dropping the last clone is enough.
    #[tracing::instrument(name = "embedded_meta_close", skip(self), fields(dir = %self.dir.display()))]
    pub fn close(&self) -> Result<()> {
        let mut st = self.inner.lock();
        if st.records_since_snapshot > 0 && st.poisoned.is_none() {
            st.write_snapshot()?;
        }
        Ok(())
    }

    /// Forces a snapshot + log compaction now.
    pub fn compact(&self) -> Result<()> {
        self.inner.lock().write_snapshot()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut inner.lock()))
            .await
            .map_err(|e| Error::Internal(format!("embedded meta task: {e}")))?
    }
}

/// Takes an exclusive, non-blocking `flock` on `dir/LOCK`, so two processes (or two
/// opens in one process) never append to the same log.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("open", &path, e))?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        // A handle being dropped in this process (e.g. by the lease reaper thread that
        // briefly holds it) releases the lock within moments: retry a little.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(Error::Storage(format!(
                        "meta directory {} is in use by another process or handle",
                        dir.display()
                    )))
                }
                Err(e) => return Err(io_err("lock", &path, e.into())),
            }
        }
    }
    Ok(f)
}

fn spawn_lease_reaper(weak: Weak<Mutex<State>>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("meta-lease-reaper".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let res = inner.lock().expire_leases();
            if let Err(e) = res {
                tracing::warn!(error = %e, "embedded meta lease expiry failed");
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the embedded meta lease reaper");
    }
}
