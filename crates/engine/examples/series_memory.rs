//! One shard with millions of series: write throughput, memory, and the time to
//! reopen it.
//!
//! ```sh
//! cargo run --release -p sundial-engine --example series_memory -- 1000000 4
//! ```
//!
//! Writes N new series (the tag set `ser,host=h<round>_<i>,region=r<i%100>`) in
//! batches of 50,000, then ROUNDS−1 more rounds of one point into every series (a
//! flush after each round, so data files holding every series pile up as they do
//! over a day, compaction merging them by its own rules), reporting the write
//! rates and RSS; then closes the store. A fresh process (this example again) opens
//! it, times the first acknowledged write into the shard (catalog and shard opened
//! on demand), reports RSS per series at rest (catalog, series list, file summaries;
//! empty memtables: RSS a second after the write minus RSS before the open; no
//! compaction runs in that process), and writes one more round into the existing
//! series. `SERIES_MEMORY_INDEX_LIMIT=<bytes>` sets the index memory limit (past
//! half of it files keep only their time range); `SERIES_MEMORY_DIR` keeps the store.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_lineproto::{parse_lines, ParseOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// SERIES_MEMORY_INDEX_LIMIT (bytes, default none) sets the index memory limit:
/// past half of it data files keep only their time range in memory.
fn opts() -> EngineOptions {
    let limit = std::env::var("SERIES_MEMORY_INDEX_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    EngineOptions::builder()
        .fsync(FsyncPolicy::Always)
        .series_limits(0, 0)
        .index_memory_limit(limit)
        .build()
}

fn batch_body(start: usize, end: usize, ts: i64) -> String {
    (start..end)
        .map(|i| {
            format!(
                "ser,host=h{}_{i},region=r{} v={i}i {ts}\n",
                i / 400_000,
                i % 100,
            )
        })
        .collect()
}

/// One point into each of the N series at `ts`; returns points per second.
fn round(store: &Store, n: usize, ts: i64, peak: &mut u64) -> f64 {
    let started = Instant::now();
    for start in (0..n).step_by(50_000) {
        let body = batch_body(start, (start + 50_000).min(n), ts);
        let batch = parse_lines(body.as_bytes(), &ParseOptions::default());
        let pts: Vec<_> = batch.iter().collect();
        store.write_to_shard(1, &pts).unwrap();
        *peak = (*peak).max(rss_kb());
    }
    n as f64 / started.elapsed().as_secs_f64()
}

const T0: i64 = 1_700_000_000_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("open") {
        return reopen(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
    }
    let n: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: i64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    // SERIES_MEMORY_DIR keeps the store (to open it again under a profiler).
    let tmp = tempfile::tempdir().unwrap();
    let path =
        std::env::var_os("SERIES_MEMORY_DIR").map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let store = Store::open(&path, opts()).unwrap();
    store.create_shard(1, "db").unwrap();
    let mut peak = 0;
    let rate = round(&store, n, T0, &mut peak);
    let st = store.stats();
    println!(
        "{n} new series: {:.0} series/s; RSS peak {} MB, now {} MB; index {} MB, memtables {} MB",
        rate,
        peak / 1024,
        rss_kb() / 1024,
        st.index_memory_bytes >> 20,
        st.memtable_bytes >> 20
    );
    store.flush_shard(1).unwrap();
    for r in 1..rounds {
        let rate = round(&store, n, T0 + r * 10_000_000_000, &mut peak);
        let flush = Instant::now();
        store.flush_shard(1).unwrap();
        println!(
            "round {r} into existing series: {:.0} points/s; flush {:.2} s; {} data files",
            rate,
            flush.elapsed().as_secs_f64(),
            store.shard_files(1).unwrap().len()
        );
    }
    let files = store.shard_files(1).unwrap().len();
    store.close().unwrap();
    drop(store);
    println!(
        "closed with {files} data files; RSS peak {} MB",
        peak / 1024
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "open",
            &path.display().to_string(),
            &n.to_string(),
            &rounds.to_string(),
        ])
        .status()
        .unwrap();
    assert!(out.success());
}

fn reopen(dir: &str, n: usize, rounds: i64) {
    let before = rss_kb();
    let t = Instant::now();
    // No compaction in this process: its buffers would blur memory at rest.
    let mut o = opts();
    o.auto_compaction = false;
    let store = Store::open(dir, o).unwrap();
    if std::env::var_os("SERIES_MEMORY_STEPS").is_some() {
        store.series_count("db").unwrap();
        eprintln!("catalog loaded: RSS {} MB", rss_kb() / 1024);
    }
    let body = batch_body(5, 6, T0 + rounds * 10_000_000_000);
    let batch = parse_lines(body.as_bytes(), &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(1, &pts).unwrap();
    let first = t.elapsed();
    // Memory freed during the open (summaries dropped past the limit, parse
    // buffers) goes back to the system in the allocator's own time.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = rss_kb();
    let st = store.stats();
    println!(
        "new process: first acknowledged write {:.2} s after the open; RSS {} MB ({} MB before the open); index estimate {} MB",
        first.as_secs_f64(),
        after / 1024,
        before / 1024,
        st.index_memory_bytes >> 20
    );
    println!(
        "memory per series at rest: {:.0} bytes; {} data files, {} with summaries on disk only",
        (after.saturating_sub(before) * 1024) as f64 / n as f64,
        st.files_per_level.iter().sum::<u64>(),
        st.files_degraded
    );
    let mut peak = 0;
    let rate = round(&store, n, T0 + (rounds + 1) * 10_000_000_000, &mut peak);
    println!(
        "one round into the {n} existing series after the open: {rate:.0} points/s; RSS peak {} MB",
        peak / 1024
    );
    store.close().unwrap();
}
