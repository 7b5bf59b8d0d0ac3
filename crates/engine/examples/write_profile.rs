//! Write-path profile helper: TSBS cpu-only batches of 5,000 lines into one shard with
//! fsync `always`; prints values/s. `cargo run --release --example write_profile [secs]`.

use std::time::{Duration, Instant};

use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_lineproto::{parse_lines, ParseOptions, ParsedBatch, Point};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let hosts: usize = std::env::var("HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut gen = sundial_tsbs::CpuOnly::new(hosts, 1_451_606_400_000_000_000, 1);
    let bodies: Vec<String> = (0..40)
        .map(|_| {
            let mut s = String::with_capacity(5000 * 500);
            gen.write_lines(5000, &mut s);
            s
        })
        .collect();
    let parsed: Vec<ParsedBatch<'_>> = bodies
        .iter()
        .map(|b| parse_lines(b.as_bytes(), &ParseOptions::default()))
        .collect();
    let points: Vec<Vec<Point<'_>>> = parsed.iter().map(|p| p.iter().collect()).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        EngineOptions::builder()
            .fsync(if std::env::var_os("NO_FSYNC").is_some() {
                FsyncPolicy::Never
            } else {
                FsyncPolicy::Always
            })
            .memtable_size(
                std::env::var("MEMTABLE_MB")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(64)
                    << 20,
            )
            .build(),
    )
    .expect("open");
    store.create_shard(1, "db").expect("shard");
    let start = Instant::now();
    let mut values = 0;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        values += store
            .write_to_shard(1, &points[i % points.len()])
            .expect("write")
            .values_written;
        i += 1;
    }
    let el = start.elapsed().as_secs_f64();
    let st = store.stats();
    println!(
        "{:.2} M values/s ({} batches, {:.2} ms/batch, {} fsyncs, {} flushes)",
        values as f64 / el / 1e6,
        i,
        el * 1000.0 / i as f64,
        st.wal_fsyncs,
        st.flushes
    );
    store.close().expect("close");
}
