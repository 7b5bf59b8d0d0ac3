//! Write-path profile helper: TSBS cpu-only batches of 5,000 lines into one shard with
//! fsync `always`; prints values/s. `cargo run --release --example write_profile [secs]`.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_lineproto::{parse_lines, ParseOptions, ParsedBatch, Point};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut rng = StdRng::seed_from_u64(1);
    let hosts: usize = std::env::var("HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let fields = [
        "usage_user",
        "usage_system",
        "usage_idle",
        "usage_nice",
        "usage_iowait",
        "usage_irq",
        "usage_softirq",
        "usage_steal",
        "usage_guest",
        "usage_guest_nice",
    ];
    let mut state = vec![50.0f64; hosts * 10];
    let bodies: Vec<String> = (0..40)
        .map(|b| {
            let mut s = String::new();
            for i in 0..5000 {
                let h = i % hosts;
                s.push_str(&format!("cpu,hostname=host_{h},region=eu-west-1,datacenter=eu-west-1a,rack={},os=Ubuntu16.04LTS,arch=x64,team=SF,service={},service_version=1,service_environment=production ", h % 100, h % 20));
                for (f, name) in fields.iter().enumerate() {
                    let v = &mut state[h * 10 + f];
                    *v = (*v + rng.random_range(-1.0..1.0)).clamp(0.0, 100.0);
                    if f > 0 {
                        s.push(',');
                    }
                    s.push_str(&format!("{name}={v}"));
                }
                s.push_str(&format!(" {}\n", 1_451_606_400_000_000_000i64 + (b * 5 + i / hosts) as i64 * 10_000_000_000));
            }
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
    store.create_shard(1).expect("shard");
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
