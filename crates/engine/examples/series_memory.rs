//! Memory per series and time to reopen a shard with millions of series.
//!
//! ```sh
//! cargo run --release -p sundial-engine --example series_memory -- 3000000
//! ```
//!
//! Writes N new series (the issue's tag set: `ser,host=h<round>_<i>,region=r<i%100>`)
//! in batches of 50,000, reporting RSS as it goes; flushes, compacts and closes the
//! store. Then a fresh process (this example again) opens the store and times the
//! first acknowledged write into the shard (catalog and shard opened on demand), and
//! reports RSS per series at rest (catalog, series list, file summaries; empty
//! memtables): RSS after the write minus RSS of the process before the open.

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

fn opts() -> EngineOptions {
    EngineOptions::builder()
        .fsync(FsyncPolicy::Always)
        .series_limits(0, 0)
        .index_memory_limit(0)
        .build()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("open") {
        return reopen(&args[2], args[3].parse().unwrap());
    }
    let n: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    store.create_shard(1, "db").unwrap();
    let started = Instant::now();
    let mut peak = 0;
    for start in (0..n).step_by(50_000) {
        let round = start / 400_000;
        let body: String = (start..(start + 50_000).min(n))
            .map(|i| {
                format!(
                    "ser,host=h{round}_{i},region=r{} v={i}i {}\n",
                    i % 100,
                    1_700_000_000_000_000_000i64 + i as i64
                )
            })
            .collect();
        let batch = parse_lines(body.as_bytes(), &ParseOptions::default());
        let pts: Vec<_> = batch.iter().collect();
        store.write_to_shard(1, &pts).unwrap();
        peak = peak.max(rss_kb());
    }
    let st = store.stats();
    println!(
        "wrote {n} series in {:.1} s; RSS peak {} MB, now {} MB; index {} MB, memtables {} MB",
        started.elapsed().as_secs_f64(),
        peak / 1024,
        rss_kb() / 1024,
        st.index_memory_bytes >> 20,
        st.memtable_bytes >> 20
    );
    store.flush_shard(1).unwrap();
    store.compact_shard(1, true).unwrap();
    store.close().unwrap();
    drop(store);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["open", &dir.path().display().to_string(), &n.to_string()])
        .status()
        .unwrap();
    assert!(out.success());
}

fn reopen(dir: &str, n: usize) {
    let before = rss_kb();
    let t = Instant::now();
    let store = Store::open(dir, opts()).unwrap();
    if std::env::var_os("SERIES_MEMORY_STEPS").is_some() {
        store.series_count("db").unwrap();
        eprintln!("catalog loaded: RSS {} MB", rss_kb() / 1024);
    }
    let batch = parse_lines(b"ser,host=h0_5,region=r5 v=1i 1", &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(1, &pts).unwrap();
    let first = t.elapsed();
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
        "memory per series at rest: {:.0} bytes",
        (after.saturating_sub(before) * 1024) as f64 / n as f64
    );
}
