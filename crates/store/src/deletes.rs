//! Deletes on a node (DROP MEASUREMENT, DROP SERIES, DELETE): a request
//! applied to a shard of the local engine, each delete once, and remembered.
//!
//! Why remembered: a write that hinted handoff queued before a delete was
//! issued can reach this node after the delete (its gateway was draining a
//! queue); the points it holds that the delete covers must not come back. So
//! every applied delete goes into a journal kept as long as hints live
//! (`[data] delete-journal-max-age`, hinted handoff's `max-age`), and a hinted
//! write loses the points of every delete of its shard issued since it was
//! queued. A delete this node missed while it was down waits in meta
//! (`pdel/<node>/…`); it is applied before the next write to its shard and by
//! a background pass, then cleared from meta.
//!
//! ```text
//! <data dir>/DELETES   "SDDJ0001" | record*
//! record               u32 len | u32 crc32c(payload) | payload (a DeleteSeriesRequest)
//! ```
//! Appended and fsynced after the engine applied the delete (a crash in
//! between applies it again, which deletes the same points); a torn tail is
//! ignored; rewritten without expired records when the node starts.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prost::Message as _;
use sundial_cluster::read_wire::{delete_from_pb, DeleteId};
use sundial_engine::Store;
use sundial_lineproto::Point;
use sundial_meta::{MetaClient, NodeId};
use sundial_proto::store as pb;
use sundial_query::{DeleteRequest, NameMatch, TagMatcher};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"SDDJ0001";
const FILE: &str = "DELETES";
/// A record larger than this is damage (requests are a few hundred bytes).
const MAX_RECORD: usize = 16 << 20;

/// The measurements of a delete, compiled.
#[derive(Debug)]
enum Names {
    All,
    Some(Vec<NameMatch>, Vec<regex::Regex>),
}

impl Names {
    fn new(ms: &[NameMatch]) -> Result<Names> {
        if ms.is_empty() {
            return Ok(Names::All);
        }
        let mut res = Vec::new();
        for m in ms {
            if let NameMatch::Regex(r) = m {
                res.push(regex::Regex::new(r).map_err(|e| Error::BadRequest(e.to_string()))?);
            }
        }
        Ok(Names::Some(ms.to_vec(), res))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Names::All => true,
            Names::Some(ms, res) => {
                ms.iter()
                    .any(|m| matches!(m, NameMatch::Name(n) if n == name))
                    || res.iter().any(|r| r.is_match(name))
            }
        }
    }
}

/// A delete as this node holds it: its request compiled.
#[derive(Debug)]
struct Applied {
    at: DeleteId,
    req: DeleteRequest,
    names: Names,
    tags: TagMatcher,
}

impl Applied {
    fn compile(msg: &pb::DeleteSeriesRequest) -> Result<Applied> {
        let (at, req) = delete_from_pb(msg).map_err(Error::BadRequest)?;
        Applied::new(at, req)
    }

    fn new(at: DeleteId, req: DeleteRequest) -> Result<Applied> {
        let names = Names::new(&req.measurements)?;
        let tags = req
            .tags
            .matcher()
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        Ok(Applied {
            at,
            req,
            names,
            tags,
        })
    }

    /// Whether a point of a hinted write is one this delete took.
    fn covers(&self, p: &Point<'_>) -> bool {
        if p.timestamp < self.req.min
            || p.timestamp > self.req.max
            || !self.names.matches(p.measurement)
        {
            return false;
        }
        let tags: Vec<(String, String)> = p
            .tags
            .iter()
            .map(|t| (t.key.to_string(), t.value.to_string()))
            .collect();
        self.tags.matches(&tags)
    }
}

#[derive(Debug, Default)]
struct Journal {
    file: Option<File>,
    done: HashSet<(u64, u64)>,
    by_shard: HashMap<u64, Vec<Arc<Applied>>>,
}

/// The node's deletes: applied once each, remembered for hinted writes.
#[derive(Debug)]
pub struct Deletes {
    store: Arc<Store>,
    journal: Mutex<Journal>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads the journal's records; a torn or damaged tail ends it.
fn read_records(path: &Path) -> Result<Vec<pb::DeleteSeriesRequest>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        if !bytes.is_empty() {
            tracing::error!(path = %path.display(), "delete journal has no header; starting a new one");
        }
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut at = MAGIC.len();
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = bytes
            .get(at + 8..at + 8 + len)
            .filter(|_| len <= MAX_RECORD)
        else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            tracing::error!(path = %path.display(), offset = at, "delete journal damaged; the rest is ignored");
            break;
        }
        match pb::DeleteSeriesRequest::decode(payload) {
            Ok(r) => out.push(r),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "delete journal record undecodable; the rest is ignored");
                break;
            }
        }
        at += 8 + len;
    }
    Ok(out)
}

fn record(msg: &pb::DeleteSeriesRequest) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

impl Deletes {
    /// Deletes without a journal (the all-in-one: no hinted writes arrive).
    pub fn unjournaled(store: Arc<Store>) -> Arc<Deletes> {
        Arc::new(Deletes {
            store,
            journal: Mutex::new(Journal::default()),
        })
    }

    /// Opens the journal in `dir`, dropping records issued more than
    /// `max_age` ago.
    pub fn open(store: Arc<Store>, dir: &Path, max_age: Duration) -> Result<Arc<Deletes>> {
        let path = dir.join(FILE);
        let records = read_records(&path)?;
        let horizon = now_ms().saturating_sub(max_age.as_millis() as i64);
        let kept: Vec<pb::DeleteSeriesRequest> = records
            .into_iter()
            .filter(|r| r.issued_ms >= horizon)
            .collect();
        // Rewritten whole: expired records go, and a torn tail with them.
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            let mut bytes = MAGIC.to_vec();
            for r in &kept {
                bytes.extend_from_slice(&record(r));
            }
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = File::open(dir) {
            d.sync_all()?;
        }
        let mut journal = Journal {
            file: Some(OpenOptions::new().append(true).open(&path)?),
            ..Journal::default()
        };
        for r in &kept {
            match Applied::compile(r) {
                Ok(a) => {
                    journal.done.insert((a.at.id, a.at.shard_id));
                    journal
                        .by_shard
                        .entry(a.at.shard_id)
                        .or_default()
                        .push(Arc::new(a));
                }
                Err(e) => tracing::error!(error = %e, "delete journal record ignored"),
            }
        }
        Ok(Arc::new(Deletes {
            store,
            journal: Mutex::new(journal),
        }))
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one delete to its shard, once (blocking: the engine writes its
    /// WAL); the answer is the series it touched (0 when applied before).
    pub fn apply(&self, msg: &pb::DeleteSeriesRequest) -> Result<u64> {
        let applied = Applied::compile(msg)?;
        // One delete at a time: a delete is applied and recorded as one step.
        let mut j = self.journal();
        let key = (applied.at.id, applied.at.shard_id);
        if applied.at.id != 0 && j.done.contains(&key) {
            return Ok(0);
        }
        let series = apply_to_engine(&self.store, applied.at.shard_id, &applied)?;
        if let Some(f) = j.file.as_mut() {
            f.write_all(&record(msg))?;
            f.sync_data()?;
        }
        j.done.insert(key);
        j.by_shard
            .entry(applied.at.shard_id)
            .or_default()
            .push(Arc::new(applied));
        Ok(series)
    }

    /// The deletes in meta this node has yet to apply to `shard` (all shards
    /// with `None`), applied now; the answer lists those to clear from meta.
    pub fn apply_pending(
        &self,
        meta: &MetaClient,
        node: NodeId,
        shard: Option<u64>,
    ) -> Vec<(NodeId, u64, u64)> {
        let snap = meta.snapshot();
        let pending = match shard {
            Some(s) => snap.pending_deletes_for(node, s),
            None => snap.pending_deletes_of(node),
        };
        let mut cleared = Vec::new();
        for d in pending {
            let msg = d
                .request_bytes()
                .and_then(|b| pb::DeleteSeriesRequest::decode(b.as_slice()).ok());
            let outcome = match msg {
                Some(m) if m.delete_id == d.id && m.shard_id == d.shard => self.apply(&m),
                _ => Err(Error::BadRequest("undecodable pending delete".into())),
            };
            match outcome {
                Ok(series) => {
                    tracing::info!(id = d.id, shard = d.shard, series, "pending delete applied");
                    cleared.push((node, d.shard, d.id));
                }
                Err(e) if e.class() == sundial_common::ErrorClass::BadRequest => {
                    tracing::error!(id = d.id, shard = d.shard, error = %e, "pending delete cannot be applied; dropped");
                    cleared.push((node, d.shard, d.id));
                }
                Err(e) => {
                    tracing::warn!(id = d.id, shard = d.shard, error = %e, "pending delete not applied yet")
                }
            }
        }
        cleared
    }

    /// Whether this node applied delete `id` to `shard`.
    pub fn is_applied(&self, id: u64, shard: u64) -> bool {
        self.journal().done.contains(&(id, shard))
    }

    /// Whether meta holds deletes this node has yet to apply to `shard`.
    pub fn has_pending(meta: &MetaClient, node: NodeId, shard: u64) -> bool {
        meta.snapshot().pending_deletes.contains_key(&(node, shard))
    }

    /// A hinted write's points without those a delete of `shard` issued since
    /// `hinted_ms` took.
    pub fn filter_hinted<'p>(
        &self,
        shard: u64,
        hinted_ms: i64,
        points: Vec<Point<'p>>,
    ) -> Vec<Point<'p>> {
        let covering: Vec<Arc<Applied>> = self
            .journal()
            .by_shard
            .get(&shard)
            .map(|v| {
                v.iter()
                    .filter(|a| a.at.issued_ms >= hinted_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if covering.is_empty() {
            return points;
        }
        let before = points.len();
        let kept: Vec<Point<'p>> = points
            .into_iter()
            .filter(|p| !covering.iter().any(|a| a.covers(p)))
            .collect();
        if kept.len() < before {
            tracing::info!(
                shard,
                dropped = before - kept.len(),
                "hinted points deleted since they were queued left out"
            );
        }
        kept
    }
}

/// Applies `req` to shard `shard` of the local engine at once (the
/// all-in-one: one owner, no hinted writes); the answer is the series touched.
pub fn apply_local(store: &Store, shard: u64, req: &DeleteRequest) -> Result<u64> {
    let at = DeleteId {
        id: 0,
        shard_id: shard,
        issued_ms: now_ms(),
    };
    apply_to_engine(store, shard, &Applied::new(at, req.clone())?)
}

/// Applies the delete to shard `shard` of the local engine (a shard this node
/// does not hold has nothing to delete); the answer is the series touched.
fn apply_to_engine(store: &Store, shard: u64, a: &Applied) -> Result<u64> {
    if !store.has_shard(shard) {
        return Ok(0);
    }
    let req = &a.req;
    if req.drop_measurement {
        let Some(NameMatch::Name(m)) = req.measurements.first() else {
            return Err(Error::BadRequest(
                "DROP MEASUREMENT names one measurement".into(),
            ));
        };
        let n = store
            .series_keys(shard, m, &sundial_engine::TagPredicate::All)?
            .len();
        store.drop_measurement(shard, m)?;
        return Ok(n as u64);
    }
    let mut keys = Vec::new();
    for m in store.measurements(shard)? {
        if !a.names.matches(&m) {
            continue;
        }
        for key in store.series_keys(shard, &m, &sundial_engine::TagPredicate::All)? {
            let (_, mut tags) = sundial_engine::index::parse_series_key(&key);
            tags.sort();
            if a.tags.matches(&tags) {
                keys.push(key);
            }
        }
    }
    if !keys.is_empty() {
        store.delete_series(shard, &keys, req.min, req.max)?;
    }
    Ok(keys.len() as u64)
}

/// Applies what meta holds for this node every `every`, and clears it from
/// meta (a store that was down catches up here).
pub fn spawn_pending_applier(
    deletes: Arc<Deletes>,
    meta: MetaClient,
    node: NodeId,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if meta.snapshot().pending_deletes_of(node).is_empty() {
                continue;
            }
            let (d, m) = (deletes.clone(), meta.clone());
            let cleared = tokio::task::spawn_blocking(move || d.apply_pending(&m, node, None))
                .await
                .unwrap_or_default();
            if let Err(e) = meta.clear_pending_deletes(&cleared).await {
                tracing::warn!(error = %e, "applied deletes stay listed in meta for now");
            }
        }
    })
}

#[cfg(test)]
mod tests;
