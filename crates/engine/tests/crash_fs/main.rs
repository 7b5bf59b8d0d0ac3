//! Crash consistency at the file-system-call level.
//!
//! A workload (writes in and out of order, overwrites, deletes, flushes,
//! compactions, a reopen, a shard created and dropped, a graceful close) runs with
//! every file-system call of the engine recorded (`sundial_engine::vfs`). From the
//! log, a model of a POSIX file system rebuilds the states a power cut could leave:
//! file data is durable once the file is fsynced, a directory entry (create, rename,
//! unlink) once its directory is; anything not yet durable may or may not have
//! reached the disk, page by page, in any combination. At each point just before an
//! fsync (where the most is unsynced) and at the end, it takes every subset of the
//! unsynced operations when there are few, and when they explode a sample: prefixes
//! (write-back in order) and random subsets. Each state is written to a directory,
//! opened as a store and read whole: it must open, and hold exactly what the
//! acknowledged operations left, or that plus the one in flight.
//!
//! The second test replays the same kind of log with the data directory's fsyncs
//! left out — the omission the engine once had — and must find states that lose data.
//! `CRASH_FS_SAMPLES` sets the random subsets per crash point (default 16),
//! `CRASH_FS_SEED` the workload's seed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod posix;

use posix::{FsModel, Image};

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sundial_engine::vfs::{self, FsEvent};
use sundial_engine::{EngineOptions, FsyncPolicy, Store, TagPredicate, Value};
use sundial_lineproto::{parse_lines, ParseOptions};

// ---------------------------------------------------------------------------
// Workload and its model
// ---------------------------------------------------------------------------

const HOSTS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    CreateShard(u64),
    /// (shard, host, time, value; even values carry both fields)
    Write(u64, Vec<(usize, i64, i64)>),
    Delete(u64, usize, i64, i64),
    DropShard(u64),
    Flush(u64),
    Compact(u64, bool),
    Reopen,
    Close,
}

/// (series key, field) → time → value
type Dump = BTreeMap<(String, String), BTreeMap<i64, Value>>;
/// shard → its data (None: no such shard)
type State = BTreeMap<u64, Option<Dump>>;

fn workload(seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ops = vec![Op::CreateShard(1)];
    let write = |rng: &mut StdRng, shard| {
        let pts = (0..rng.random_range(1..10))
            .map(|_| {
                (
                    rng.random_range(0..HOSTS.len()),
                    rng.random_range(0..400i64),
                    rng.random_range(-500..500i64),
                )
            })
            .collect();
        Op::Write(shard, pts)
    };
    for i in 0..90 {
        let op = match i {
            // Shard 2 is created, written, dropped and created again.
            10 | 60 => Op::CreateShard(2),
            11..=16 | 61..=66 => write(&mut rng, 2),
            17 => Op::Flush(2),
            22 | 70 => Op::Reopen,
            30 => Op::DropShard(2),
            _ => match rng.random_range(0..12) {
                0 => {
                    let a = rng.random_range(0..400);
                    Op::Delete(1, rng.random_range(0..HOSTS.len()), a, a + 60)
                }
                1 => Op::Flush(1),
                2 => Op::Compact(1, rng.random_bool(0.5)),
                _ => write(&mut rng, 1),
            },
        };
        ops.push(op);
    }
    ops.push(Op::Close);
    ops
}

fn line((h, t, v): (usize, i64, i64)) -> String {
    let host = HOSTS[h];
    if v % 2 == 0 {
        format!("m,host={host} f={},i={v}i {t}\n", v as f64 / 4.0)
    } else {
        format!("m,host={host} f={} {t}\n", v as f64 / 4.0)
    }
}

fn apply(state: &mut State, op: &Op) {
    match op {
        Op::CreateShard(s) => {
            state.insert(*s, Some(Dump::new()));
        }
        Op::DropShard(s) => {
            state.insert(*s, None);
        }
        Op::Write(s, pts) => {
            let d = state.get_mut(s).and_then(Option::as_mut).unwrap();
            for &(h, t, v) in pts {
                let key = format!("m,host={}", HOSTS[h]);
                let mut put = |f: &str, val| {
                    d.entry((key.clone(), f.into())).or_default().insert(t, val);
                };
                put("f", Value::Float(v as f64 / 4.0));
                if v % 2 == 0 {
                    put("i", Value::Integer(v));
                }
            }
        }
        Op::Delete(s, h, a, b) => {
            let d = state.get_mut(s).and_then(Option::as_mut).unwrap();
            let key = format!("m,host={}", HOSTS[*h]);
            for ((k, _), m) in d.iter_mut() {
                if *k == key {
                    m.retain(|t, _| t < a || t > b);
                }
            }
            d.retain(|_, m| !m.is_empty());
        }
        _ => {}
    }
}

fn options() -> EngineOptions {
    EngineOptions::builder()
        .fsync(FsyncPolicy::Always)
        .memtable_size(3000) // flushes happen on their own too
        .compaction_trigger(2)
        .max_points_per_block(8)
        .build()
}

/// Runs the workload with the engine's calls recorded; `Mark(2i)` is logged when op
/// `i` starts and `Mark(2i + 1)` when it is acknowledged.
fn record(root: &Path, ops: &[Op]) -> Vec<FsEvent> {
    let rec = vfs::record(root);
    let mut store = Store::open(root, options()).unwrap();
    for (i, op) in ops.iter().enumerate() {
        rec.mark(2 * i as u64);
        match op {
            Op::CreateShard(s) => store.create_shard(*s, "db").unwrap(),
            Op::DropShard(s) => store.drop_shard(*s).unwrap(),
            Op::Write(s, pts) => {
                let lp: String = pts.iter().map(|p| line(*p)).collect();
                let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
                let points: Vec<_> = batch.iter().collect();
                let out = store.write_to_shard(*s, &points).unwrap();
                assert_eq!(out.points_dropped, 0);
            }
            Op::Delete(s, h, a, b) => store
                .delete(*s, "m", &TagPredicate::eq("host", HOSTS[*h]), *a, *b)
                .unwrap(),
            Op::Flush(s) => store.flush_shard(*s).unwrap(),
            Op::Compact(s, full) => store.compact_shard(*s, *full).unwrap(),
            Op::Reopen => {
                store.close().unwrap();
                store = Store::open(root, options()).unwrap();
            }
            Op::Close => store.close().unwrap(),
        }
        rec.mark(2 * i as u64 + 1);
    }
    vfs::stop_recording();
    rec.events()
}

// ---------------------------------------------------------------------------
// Crash states and their check
// ---------------------------------------------------------------------------

struct Job {
    image: Image,
    /// Operations acknowledged before the crash; whether the next had started.
    acked: usize,
    in_flight: bool,
    /// Index of the event the crash came before.
    at: usize,
}

/// Which subsets of `n` pending changes to try.
fn subsets(n: usize, rng: &mut StdRng, samples: usize) -> Vec<Vec<bool>> {
    if n <= 6 {
        return (0..1u32 << n)
            .map(|m| (0..n).map(|i| m >> i & 1 == 1).collect())
            .collect();
    }
    let mut out = vec![vec![false; n], vec![true; n]];
    for _ in 0..4 {
        let k = rng.random_range(1..n);
        out.push((0..n).map(|i| i < k).collect());
    }
    for _ in 0..samples {
        out.push((0..n).map(|_| rng.random_bool(0.5)).collect());
    }
    out
}

/// Crash states of a log; `skip` drops events (to play an engine that omits them).
fn crash_jobs(events: &[FsEvent], skip: &dyn Fn(&FsEvent) -> bool, seed: u64) -> Vec<Job> {
    let samples = std::env::var("CRASH_FS_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fs = FsModel::new();
    let (mut acked, mut started) = (0usize, 0usize);
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for (at, e) in events
        .iter()
        .enumerate()
        .chain([(events.len(), &FsEvent::Mark(u64::MAX))])
    {
        let crash_point =
            at == events.len() || matches!(e, FsEvent::Sync { .. } | FsEvent::SyncPath { .. });
        if crash_point {
            fs.prune();
            for keep in subsets(fs.pending(), &mut rng, samples) {
                let image = fs.crash_image(&keep);
                let mut h = DefaultHasher::new();
                (&image, acked, started > acked).hash(&mut h);
                if seen.insert(h.finish()) {
                    jobs.push(Job {
                        image,
                        acked,
                        in_flight: started > acked,
                        at,
                    });
                }
            }
        }
        match e {
            FsEvent::Mark(m) if *m == u64::MAX => {}
            FsEvent::Mark(m) if m % 2 == 0 => started = *m as usize / 2 + 1,
            FsEvent::Mark(m) => acked = *m as usize / 2 + 1,
            e if skip(e) => {}
            e => fs.event(e),
        }
    }
    jobs
}

fn read_state(dir: &Path) -> Result<State, String> {
    let store = Store::open(dir, options_check()).map_err(|e| format!("open: {e}"))?;
    let mut out = State::new();
    for shard in [1, 2] {
        if !store.has_shard(shard) {
            out.insert(shard, None);
            continue;
        }
        let mut d = Dump::new();
        let scan = store
            .scan(shard, "m", &TagPredicate::All, None, i64::MIN, i64::MAX)
            .map_err(|e| format!("shard {shard}: {e}"))?;
        for s in scan {
            let s = s.map_err(|e| format!("shard {shard}: {e}"))?;
            for f in s.fields {
                let m = d.entry((s.key.clone(), f.name.clone())).or_default();
                for (i, t) in f.column.times.iter().enumerate() {
                    m.insert(*t, f.column.values.get(i).unwrap());
                }
            }
        }
        out.insert(shard, Some(d));
    }
    store.close().map_err(|e| format!("close: {e}"))?;
    Ok(out)
}

fn options_check() -> EngineOptions {
    EngineOptions::builder()
        .fsync(FsyncPolicy::Always)
        .auto_compaction(false)
        .build()
}

fn materialize(dir: &Path, image: &Image) {
    for (p, c) in image {
        let p = dir.join(p);
        match c {
            None => std::fs::create_dir_all(&p).unwrap(),
            Some(b) => {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, b).unwrap();
            }
        }
    }
}

/// Checks the jobs on two threads; returns the failures (event index, message).
/// With `until`, stops at the first failure whose message holds it.
fn check_all(jobs: &[Job], expected: &[State], until: Option<&str>) -> Vec<(usize, String)> {
    let next = AtomicUsize::new(0);
    let found = AtomicBool::new(false);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..2 {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i).filter(|_| !found.load(Ordering::Relaxed)) else {
                    break;
                };
                let dir = tempfile::tempdir().unwrap();
                materialize(dir.path(), &job.image);
                let ok = [Some(job.acked), job.in_flight.then_some(job.acked + 1)];
                let verdict = read_state(dir.path()).and_then(|got| {
                    if ok.iter().flatten().any(|&k| expected[k] == got) {
                        Ok(())
                    } else {
                        let mut why = diff(&expected[job.acked], &got);
                        if job.in_flight {
                            why += &format!(
                                "; against the op in flight done: {}",
                                diff(&expected[job.acked + 1], &got)
                            );
                        }
                        Err(why)
                    }
                });
                if let Err(why) = verdict {
                    if until.is_some_and(|u| why.contains(u)) {
                        found.store(true, Ordering::Relaxed);
                    }
                    let files: Vec<_> = job.image.keys().map(|p| p.display().to_string()).collect();
                    failures.lock().unwrap().push((
                        job.at,
                        format!(
                            "crash before event {} ({} ops acked, one in flight: {}): {why}\n  files: {files:?}",
                            job.at, job.acked, job.in_flight
                        ),
                    ));
                }
            });
        }
    });
    let mut f = failures.into_inner().unwrap();
    f.sort();
    f
}

fn diff(want: &State, got: &State) -> String {
    for (shard, w) in want {
        let g = got.get(shard).cloned().flatten();
        match (w, &g) {
            (None, None) => {}
            (Some(w), Some(g)) => {
                for (k, pts) in w {
                    match g.get(k) {
                        None => return format!("shard {shard}: {k:?} missing"),
                        Some(gp) if gp != pts => {
                            let lost = pts.iter().find(|(t, v)| gp.get(t) != Some(v));
                            let extra = gp.iter().find(|(t, v)| pts.get(t) != Some(v));
                            return format!("shard {shard} {k:?}: want {lost:?}, extra {extra:?}");
                        }
                        _ => {}
                    }
                }
                if let Some(k) = g.keys().find(|k| !w.contains_key(k)) {
                    return format!("shard {shard}: {k:?} should not be there");
                }
            }
            _ => {
                return format!(
                    "shard {shard}: exists {} / want {}",
                    g.is_some(),
                    w.is_some()
                )
            }
        }
    }
    "differs".into()
}

fn expected_states(ops: &[Op]) -> Vec<State> {
    let mut s = State::from([(1, None), (2, None)]);
    let mut out = vec![s.clone()];
    for op in ops {
        apply(&mut s, op);
        out.push(s.clone());
    }
    out
}

fn seed() -> u64 {
    std::env::var("CRASH_FS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14)
}

fn recorded_run() -> (Vec<Op>, Vec<FsEvent>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let ops = workload(seed());
    let events = record(&root, &ops);
    (ops, events, dir)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn every_power_cut_state_keeps_every_acknowledged_operation() {
    let (ops, events, _dir) = recorded_run();
    let syncs = events
        .iter()
        .filter(|e| matches!(e, FsEvent::Sync { .. } | FsEvent::SyncPath { .. }))
        .count();
    let jobs = crash_jobs(&events, &|_| false, seed());
    eprintln!(
        "{} events, {syncs} fsyncs, {} distinct crash states",
        events.len(),
        jobs.len()
    );
    assert!(
        syncs > 50 && jobs.len() > syncs,
        "the workload is too small to mean much"
    );
    let failures = check_all(&jobs, &expected_states(&ops), None);
    for (_, f) in failures.iter().take(10) {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} crash states lose or invent data; first: {}",
        failures.len(),
        jobs.len(),
        failures[0].1
    );
}

/// Files a log opened whose path `pred` accepts.
fn files_where(events: &[FsEvent], pred: impl Fn(&Path) -> bool) -> HashSet<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            FsEvent::Open { file, path, .. } if pred(path) => Some(*file),
            _ => None,
        })
        .collect()
}

fn ext_is(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e == ext)
}

/// What is left out, the events that do it, the symptom a state must show.
type Omission<'a> = (&'a str, Box<dyn Fn(&FsEvent) -> bool + 'a>, &'a str);

/// The harness earns its keep only if it notices an fsync the engine leaves out: each
/// omission below, played on the recorded log, must make some state fail with the
/// symptom given.
#[test]
fn the_harness_finds_each_missing_fsync() {
    let (ops, events, _dir) = recorded_run();
    let expected = expected_states(&ops);
    let wal = files_where(&events, |p| ext_is(p, "wal"));
    let tsf = files_where(&events, |p| ext_is(p, "tsf"));
    let manifest_tmp = files_where(&events, |p| p.ends_with("MANIFEST.tmp"));
    let omissions: [Omission<'_>; 4] = [
        (
            // The engine before issue 14: a new data file's name was never fsynced.
            "the data directory's fsync",
            Box::new(|e| matches!(e, FsEvent::SyncPath { path } if path.ends_with("data"))),
            "a data file the manifest lists is missing",
        ),
        (
            "the WAL's fsync",
            Box::new(|e| matches!(e, FsEvent::Sync { file } if wal.contains(file))),
            "want Some",
        ),
        (
            "a data file's fsync before the manifest names it",
            Box::new(|e| matches!(e, FsEvent::Sync { file } if tsf.contains(file))),
            ".tsf",
        ),
        (
            "the new manifest's fsync before its rename",
            Box::new(|e| matches!(e, FsEvent::Sync { file } if manifest_tmp.contains(file))),
            "MANIFEST",
        ),
    ];
    for (what, skip, symptom) in omissions {
        assert!(events.iter().any(&skip), "{what}: never happens");
        let jobs = crash_jobs(&events, &skip, seed());
        let failures = check_all(&jobs, &expected, Some(symptom));
        eprintln!(
            "without {what}: {:?}",
            failures
                .iter()
                .find(|(_, m)| m.contains(symptom))
                .map(|f| &f.1)
        );
        assert!(
            failures.iter().any(|(_, m)| m.contains(symptom)),
            "without {what}, no state shows {symptom:?}"
        );
    }
}
