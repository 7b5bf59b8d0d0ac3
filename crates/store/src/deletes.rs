//! Deletes on a node (DROP MEASUREMENT, DROP SERIES, DELETE): a request
//! applied to a shard of the local engine, each delete once, and remembered.
//!
//! Why remembered: a write accepted before a delete was issued can reach
//! this node after the delete (a hint drained late, a slow call, a shard
//! copy); the points it holds that the delete covers must not come back. So
//! every applied delete goes into a journal kept as long as hints live
//! (`[store] delete-journal-max-age`, hinted handoff's `max-age`), and a write
//! loses the points of every delete of its shard issued since it was
//! accepted (`WriteToShardRequest.accepted_ms`). A delete this node missed while it was down waits in meta
//! (`pdel/<node>/…`); it is applied before the next write to its shard and by
//! a background pass, then cleared from meta.
//!
//! ```text
//! <data dir>/DELETES   "SDDJ0001" | record*
//! record               u32 len | u32 crc32c(payload) | payload (a DeleteSeriesRequest)
//! ```
//! Appended and fsynced after the engine applied the delete: a crash in
//! between applies it again at the next catch-up (or the gateway's retry),
//! which also takes points of the shard the delete covers that were written
//! in that moment — the one window where a write concurrent with a delete can
//! lose to it. A torn tail is ignored; the file is rewritten without expired
//! records when the node starts and once mostly expired.
//!
//! Writes and deletes are ordered by the gateways' clocks (`accepted_ms`
//! against `issued_ms`): with clocks a few ms apart, a write within those ms
//! of a delete may fall on either side of it, as concurrent operations do.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use prost::Message as _;
use sundial_cluster::read_wire::{delete_from_pb, delete_to_pb, DeleteId};
use sundial_common::now_ms;
use sundial_engine::Store;
use sundial_lineproto::Point;
use sundial_meta::{MetaClient, NodeId};
use sundial_proto::store as pb;
use sundial_query::{DeleteRequest, NameMatch, TagFilter, TagMatcher};

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
    database: String,
    req: DeleteRequest,
    names: Names,
    tags: TagMatcher,
}

impl Applied {
    fn compile(msg: &pb::DeleteSeriesRequest) -> Result<Applied> {
        let (at, req) = delete_from_pb(msg).map_err(Error::BadRequest)?;
        Applied::new(at, &msg.database, req)
    }

    fn new(at: DeleteId, database: &str, req: DeleteRequest) -> Result<Applied> {
        let names = Names::new(&req.measurements)?;
        let tags = req
            .tags
            .matcher()
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        Ok(Applied {
            at,
            database: database.to_string(),
            req,
            names,
            tags,
        })
    }

    /// Whether a point (its tags given) of a late write is one this delete took.
    fn covers(&self, p: &Point<'_>, tags: &[(String, String)]) -> bool {
        p.timestamp >= self.req.min
            && p.timestamp <= self.req.max
            && self.names.matches(p.measurement)
            && self.tags.matches(tags)
    }
}

#[derive(Debug, Default)]
struct Journal {
    file: Option<File>,
    path: Option<PathBuf>,
    /// Records in the file (expired ones included until it is rewritten).
    records: usize,
    /// Applied (or refused for good): (id, shard) → issue time.
    done: HashMap<(u64, u64), i64>,
}

/// A shard's applied deletes, and its gate: writes hold it shared from
/// their filter to their engine write, a delete holds it alone while it
/// applies — so no write filtered before a delete lands after it.
type ShardDeletes = Arc<RwLock<Vec<Arc<Applied>>>>;

/// The node's deletes: applied once each, remembered for writes that
/// arrive late.
#[derive(Debug)]
pub struct Deletes {
    store: Arc<Store>,
    /// The file and what was applied: held briefly, never across an engine call.
    journal: Mutex<Journal>,
    shards: DashMap<u64, ShardDeletes>,
    /// How long applied deletes are remembered.
    max_age: Duration,
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

/// Replaces the journal at `path` with `records` (written aside, renamed).
fn rewrite(path: &Path, records: &[Vec<u8>]) -> Result<File> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        let mut bytes = MAGIC.to_vec();
        for r in records {
            bytes.extend_from_slice(r);
        }
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(OpenOptions::new().append(true).open(path)?)
}

impl Deletes {
    /// Deletes without a journal file (the all-in-one: nothing arrives late).
    pub fn unjournaled(store: Arc<Store>) -> Arc<Deletes> {
        Arc::new(Deletes {
            store,
            journal: Mutex::new(Journal::default()),
            shards: DashMap::new(),
            max_age: Duration::from_secs(7 * 24 * 3600),
        })
    }

    /// Opens the journal in `dir`, dropping records issued more than
    /// `max_age` ago.
    pub fn open(store: Arc<Store>, dir: &Path, max_age: Duration) -> Result<Arc<Deletes>> {
        let path = dir.join(FILE);
        let horizon = now_ms().saturating_sub(max_age.as_millis() as i64);
        let kept: Vec<pb::DeleteSeriesRequest> = read_records(&path)?
            .into_iter()
            .filter(|r| r.issued_ms >= horizon)
            .collect();
        // Rewritten whole: expired records go, and a torn tail with them.
        let file = rewrite(&path, &kept.iter().map(record).collect::<Vec<_>>())?;
        let deletes = Deletes {
            store,
            journal: Mutex::new(Journal {
                file: Some(file),
                path: Some(path),
                records: kept.len(),
                ..Journal::default()
            }),
            shards: DashMap::new(),
            max_age,
        };
        for r in &kept {
            match Applied::compile(r) {
                Ok(a) => deletes.remember(Arc::new(a), &mut deletes.shard(r.shard_id).write_lock()),
                Err(e) => tracing::error!(error = %e, "delete journal record ignored"),
            }
        }
        Ok(Arc::new(deletes))
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shard `shard`'s deletes and gate (made on first use).
    fn shard(&self, shard: u64) -> ShardDeletes {
        if let Some(s) = self.shards.get(&shard) {
            return s.clone();
        }
        self.shards.entry(shard).or_default().clone()
    }

    /// Records an applied delete (its shard's list held alone by the caller).
    fn remember(&self, a: Arc<Applied>, list: &mut Vec<Arc<Applied>>) {
        self.journal()
            .done
            .insert((a.at.id, a.at.shard_id), a.at.issued_ms);
        list.push(a);
    }

    /// Applies one delete to its shard, once (blocking: the engine writes its
    /// WAL); the answer is the series it touched (0 when applied before).
    pub fn apply(&self, msg: &pb::DeleteSeriesRequest) -> Result<u64> {
        let key = (msg.delete_id, msg.shard_id);
        if msg.delete_id != 0 && self.journal().done.contains_key(&key) {
            return Ok(0);
        }
        let applied = Applied::compile(msg)?;
        let shard = self.shard(msg.shard_id);
        // Alone on the shard: no filtered write is between its filter and
        // the engine, and no other delete of it runs.
        let mut list = shard.write_lock();
        if msg.delete_id != 0 && self.journal().done.contains_key(&key) {
            return Ok(0);
        }
        let series = apply_to_engine(&self.store, msg.shard_id, &applied)?;
        {
            let mut j = self.journal();
            if let Some(f) = j.file.as_mut() {
                f.write_all(&record(msg))?;
                f.sync_data()?;
                j.records += 1;
            }
        }
        self.remember(Arc::new(applied), &mut list);
        Ok(series)
    }

    /// Whether this node applied delete `id` to `shard` (or refused it for
    /// good).
    pub fn is_applied(&self, id: u64, shard: u64) -> bool {
        self.journal().done.contains_key(&(id, shard))
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
                    // Writes to the shard need not wait for it.
                    self.journal().done.insert((d.id, d.shard), d.issued_ms);
                    cleared.push((node, d.shard, d.id));
                }
                Err(e) => {
                    tracing::warn!(id = d.id, shard = d.shard, error = %e, "pending delete not applied yet")
                }
            }
        }
        cleared
    }

    /// Applies the deletes meta holds for `node` on `shard`; `Unavailable`
    /// while one cannot be applied (reads and writes of the shard then go
    /// elsewhere or wait: they must not see, or add to, what it deletes).
    pub fn catch_up(&self, meta: &MetaClient, node: NodeId, shard: u64) -> Result<()> {
        if !Deletes::has_pending(meta, node, shard) {
            return Ok(());
        }
        // Cleared from meta by the background pass.
        self.apply_pending(meta, node, Some(shard));
        let missed = meta
            .snapshot()
            .pending_deletes_for(node, shard)
            .iter()
            .any(|d| !self.is_applied(d.id, shard));
        if missed {
            return Err(Error::Unavailable(format!(
                "shard {shard} has a delete this node could not apply yet"
            )));
        }
        Ok(())
    }

    /// Whether meta holds deletes this node has yet to apply to `shard`.
    pub fn has_pending(meta: &MetaClient, node: NodeId, shard: u64) -> bool {
        meta.snapshot().pending_deletes.contains_key(&(node, shard))
    }

    /// Runs `write` with `points` of shard `shard` accepted at `accepted_ms`
    /// (0: unknown), without those a delete of the shard issued since took,
    /// and no delete of the shard applied in between.
    pub fn write_guarded<'p, T>(
        &self,
        shard: u64,
        accepted_ms: i64,
        points: Vec<Point<'p>>,
        write: impl FnOnce(&[Point<'p>]) -> T,
    ) -> T {
        let deletes = self.shard(shard);
        let list = deletes.read_lock();
        let covering: Vec<&Arc<Applied>> = list
            .iter()
            .filter(|a| accepted_ms > 0 && a.at.issued_ms >= accepted_ms)
            .collect();
        if covering.is_empty() {
            return write(&points);
        }
        let before = points.len();
        let kept: Vec<Point<'p>> = points
            .into_iter()
            .filter(|p| {
                let tags: Vec<(String, String)> = p
                    .tags
                    .iter()
                    .map(|t| (t.key.to_string(), t.value.to_string()))
                    .collect();
                !covering.iter().any(|a| a.covers(p, &tags))
            })
            .collect();
        if kept.len() < before {
            tracing::info!(
                shard,
                dropped = before - kept.len(),
                "points of a write accepted before a delete of them left out"
            );
        }
        write(&kept)
    }

    /// Forgets deletes older than the journal's age, and rewrites the file
    /// once most of it is expired.
    pub fn prune(&self) -> Result<()> {
        let horizon = now_ms().saturating_sub(self.max_age.as_millis() as i64);
        let mut live = Vec::new();
        // A shard with nothing left and in no one's hands goes.
        self.shards.retain(|_, s| {
            let mut list = s.write_lock();
            list.retain(|a| a.at.issued_ms >= horizon);
            live.extend(list.iter().cloned());
            !list.is_empty() || Arc::strong_count(s) > 1
        });
        let mut j = self.journal();
        j.done.retain(|_, issued| *issued >= horizon);
        if let Some(path) = j.path.clone() {
            if j.records > 2 * live.len() + 64 {
                let recs: Vec<Vec<u8>> = live
                    .iter()
                    .map(|a| record(&delete_to_pb(a.at, &a.database, &a.req)))
                    .collect();
                j.file = Some(rewrite(&path, &recs)?);
                j.records = recs.len();
            }
        }
        Ok(())
    }
}

/// Poison-tolerant locking: a panic under a shard's lock leaves a list of
/// whole entries.
trait Locks {
    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Applied>>>;
    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Applied>>>;
}

impl Locks for RwLock<Vec<Arc<Applied>>> {
    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Applied>>> {
        self.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Applied>>> {
        self.write().unwrap_or_else(|p| p.into_inner())
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
    apply_to_engine(store, shard, &Applied::new(at, "", req.clone())?)
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
    let named = filter_keys(&req.tags);
    for m in store.measurements(shard)? {
        if !a.names.matches(&m) {
            continue;
        }
        // 1.6's refusal, rather than taking a field's condition as a tag's.
        let fields = store.field_keys(shard, &m)?;
        if fields.iter().any(|(f, _)| named.contains(&f.as_str())) {
            return Err(Error::BadRequest(
                "fields not supported in WHERE clause during deletion".into(),
            ));
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
        // No time bound: the whole range (the series leave the index at once).
        let (min, max) = if req.all_time() {
            (i64::MIN, i64::MAX)
        } else {
            (req.min, req.max)
        };
        store.delete_series(shard, &keys, min, max)?;
    }
    Ok(keys.len() as u64)
}

/// The tag keys a filter names.
fn filter_keys(f: &TagFilter) -> Vec<&str> {
    match f {
        TagFilter::All => Vec::new(),
        TagFilter::Eq(k, _)
        | TagFilter::NotEq(k, _)
        | TagFilter::Regex(k, _)
        | TagFilter::NotRegex(k, _) => vec![k.as_str()],
        TagFilter::And(a, b) | TagFilter::Or(a, b) => {
            let mut v = filter_keys(a);
            v.extend(filter_keys(b));
            v
        }
    }
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
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            ticks += 1;
            if ticks.is_multiple_of(60) {
                let d = deletes.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || d.prune()).await {
                    tracing::warn!(error = %e, "delete journal not pruned");
                }
            }
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
