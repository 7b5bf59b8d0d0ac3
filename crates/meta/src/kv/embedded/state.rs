//! [`State`]'s operations: applying and committing log records (durable first, then
//! visible and broadcast to watchers), snapshots, lease expiry, ranges and
//! transactions.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{
    encode_frame, io_err, write_atomic, LogOp, LogRecord, SnapshotFile, SnapshotLease, SNAP_FILE,
    SNAP_MAGIC, WAL_FILE, WAL_MAGIC,
};
use super::{Lease, State};
use crate::error::{Error, Result};
use crate::kv::{
    prefix_end, EventKind, KeyValue, LeaseId, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchEvent,
};

impl State {
    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(m) => Err(Error::Storage(format!(
                "embedded meta store is read-only after a disk error: {m}"
            ))),
            None => Ok(()),
        }
    }

    /// Applies a primitive op to memory; returns the watch event it produced.
    pub(super) fn apply_op(&mut self, op: &LogOp, rev: i64) -> Option<WatchEvent> {
        match op {
            LogOp::Put { key, value, lease } => {
                let (create_revision, version, old_lease) = match self.kvs.get(key) {
                    Some(old) => (old.create_revision, old.version + 1, old.lease),
                    None => (rev, 1, 0),
                };
                if old_lease != 0 && old_lease != *lease {
                    if let Some(l) = self.leases.get_mut(&old_lease) {
                        l.keys.remove(key);
                    }
                }
                if *lease != 0 {
                    if let Some(l) = self.leases.get_mut(lease) {
                        l.keys.insert(key.clone());
                    }
                }
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision,
                    mod_revision: rev,
                    version,
                    lease: *lease,
                };
                self.kvs.insert(key.clone(), kv.clone());
                Some(WatchEvent {
                    kind: EventKind::Put,
                    kv,
                })
            }
            LogOp::Delete { key } => {
                let old = self.kvs.remove(key)?;
                if old.lease != 0 {
                    if let Some(l) = self.leases.get_mut(&old.lease) {
                        l.keys.remove(key);
                    }
                }
                Some(WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: rev,
                        version: 0,
                        lease: 0,
                    },
                })
            }
            LogOp::Grant { id, ttl } => {
                self.leases.insert(
                    *id,
                    Lease {
                        ttl: *ttl,
                        deadline: Instant::now() + Duration::from_secs(ttl.unsigned_abs()),
                        keys: BTreeSet::new(),
                    },
                );
                self.next_lease = self.next_lease.max(id + 1);
                None
            }
            LogOp::Revoke { id } => {
                self.leases.remove(id);
                None
            }
        }
    }

    /// Makes `ops` durable (one log frame, fsync) and then visible. Bumps the revision
    /// when the ops change keys. Returns the new revision.
    pub(super) fn commit(&mut self, ops: Vec<LogOp>) -> Result<i64> {
        self.check_writable()?;
        if ops.is_empty() {
            return Ok(self.revision);
        }
        let changes_keys = ops
            .iter()
            .any(|o| matches!(o, LogOp::Put { .. } | LogOp::Delete { .. }));
        let rev = if changes_keys {
            self.revision + 1
        } else {
            self.revision
        };
        let record = LogRecord {
            seq: self.seq + 1,
            rev,
            ops,
        };
        let payload =
            serde_json::to_vec(&record).map_err(|e| Error::Internal(format!("encode: {e}")))?;
        let frame = encode_frame(&payload)?;
        let wal_path = self.dir.join(WAL_FILE);
        let res = self.wal.write_all(&frame).and_then(|_| {
            if self.opts.fsync {
                self.wal.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = res {
            let err = io_err("append", &wal_path, e);
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        self.seq = record.seq;
        self.revision = rev;
        self.records_since_snapshot += 1;
        let events: Vec<WatchEvent> = record
            .ops
            .iter()
            .filter_map(|op| self.apply_op(op, rev))
            .collect();
        if !events.is_empty() {
            let batch = Arc::new((rev, events));
            self.history.push_back(batch.clone());
            while self.history.len() > self.opts.history_revisions {
                if let Some(old) = self.history.pop_front() {
                    self.oldest_watchable = old.0 + 1;
                }
            }
            // No receivers is fine.
            let _ = self.tx.send(batch);
        }
        if self.records_since_snapshot >= self.opts.compact_after_records {
            if let Err(e) = self.write_snapshot() {
                // The log still holds everything; compaction is retried next time.
                tracing::warn!(error = %e, "embedded meta snapshot failed");
            }
        }
        Ok(rev)
    }

    fn snapshot_bytes(&self) -> Result<Vec<u8>> {
        let snap = SnapshotFile {
            seq: self.seq,
            revision: self.revision,
            next_lease: self.next_lease,
            kvs: self.kvs.values().cloned().collect(),
            leases: self
                .leases
                .iter()
                .map(|(id, l)| SnapshotLease {
                    id: *id,
                    ttl: l.ttl,
                })
                .collect(),
        };
        let payload =
            serde_json::to_vec(&snap).map_err(|e| Error::Internal(format!("encode: {e}")))?;
        let mut out = SNAP_MAGIC.to_vec();
        out.extend_from_slice(&encode_frame(&payload)?);
        Ok(out)
    }

    /// Writes the snapshot atomically, then replaces the log with an empty one.
    pub(super) fn write_snapshot(&mut self) -> Result<()> {
        let bytes = self.snapshot_bytes()?;
        write_atomic(&self.dir, SNAP_FILE, &bytes)?;
        write_atomic(&self.dir, WAL_FILE, WAL_MAGIC)?;
        let path = self.dir.join(WAL_FILE);
        self.wal = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, e))?;
        self.records_since_snapshot = 0;
        tracing::debug!(
            seq = self.seq,
            revision = self.revision,
            "embedded meta compacted"
        );
        Ok(())
    }

    pub(super) fn expire_leases(&mut self) -> Result<()> {
        let now = Instant::now();
        let expired: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::debug!(lease = id, "embedded meta lease expired");
            self.revoke(id)?;
        }
        Ok(())
    }

    pub(super) fn revoke(&mut self, id: LeaseId) -> Result<()> {
        let Some(lease) = self.leases.get(&id) else {
            return Err(Error::LeaseNotFound(id));
        };
        let mut ops: Vec<LogOp> = lease
            .keys
            .iter()
            .map(|k| LogOp::Delete { key: k.clone() })
            .collect();
        ops.push(LogOp::Revoke { id });
        self.commit(ops)?;
        Ok(())
    }

    pub(super) fn range(&self, prefix: &[u8]) -> Vec<KeyValue> {
        let end = prefix_end(prefix);
        let iter = self.kvs.range(prefix.to_vec()..);
        iter.take_while(|(k, _)| end.is_empty() || k.as_slice() < end.as_slice())
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(super) fn txn(&mut self, txn: Txn) -> Result<TxnResponse> {
        self.check_writable()?;
        let succeeded = txn.compares.iter().all(|c| c.matches(self.kvs.get(&c.key)));
        let branch = if succeeded { txn.success } else { txn.failure };
        let mut ops = Vec::new();
        let mut responses = Vec::with_capacity(branch.len());
        let mut written: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut dup = |k: &[u8]| -> Result<()> {
            if !written.insert(k.to_vec()) {
                return Err(Error::InvalidArgument(
                    "duplicate key given in txn request".into(),
                ));
            }
            Ok(())
        };
        for op in branch {
            match op {
                TxnOp::Put { key, value, lease } => {
                    dup(&key)?;
                    let lease = lease.unwrap_or(0);
                    if lease != 0 && !self.leases.contains_key(&lease) {
                        return Err(Error::LeaseNotFound(lease));
                    }
                    ops.push(LogOp::Put { key, value, lease });
                    responses.push(TxnOpResponse::Put);
                }
                TxnOp::Delete { key } => {
                    dup(&key)?;
                    let n = u64::from(self.kvs.contains_key(&key));
                    if n > 0 {
                        ops.push(LogOp::Delete { key });
                    }
                    responses.push(TxnOpResponse::Delete(n));
                }
                TxnOp::DeletePrefix { prefix } => {
                    let keys: Vec<Vec<u8>> =
                        self.range(&prefix).into_iter().map(|kv| kv.key).collect();
                    for k in &keys {
                        dup(k)?;
                    }
                    responses.push(TxnOpResponse::Delete(keys.len() as u64));
                    ops.extend(keys.into_iter().map(|key| LogOp::Delete { key }));
                }
                TxnOp::Get { key } => {
                    responses.push(TxnOpResponse::Get(self.kvs.get(&key).cloned()));
                }
            }
        }
        let revision = self.commit(ops)?;
        Ok(TxnResponse {
            succeeded,
            revision,
            responses,
        })
    }
}
