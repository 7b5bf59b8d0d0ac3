//! Engine benchmarks (short by default: 1 s warm-up, 3 s measurement).
//!
//! 1. `write/tsbs_cpu_5000_lines`: TSBS cpu-only batches of 5,000 lines (10 tags, 10
//!    float fields) into one shard with WAL fsync `always`; throughput in values.
//! 2. `codec/*`: float block encode/decode speed for (a) full-precision random walks and
//!    (b) two-decimal sensor walks; prints bytes/value after flush + full compaction,
//!    timestamps at 10 s intervals included.
//! 3. `scan/one_series_hour`: one series' hour out of a shard with 10,000 series and
//!    several files.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sundial_engine::codec::{decode_values, encode_values};
use sundial_engine::{EngineOptions, FieldType, FsyncPolicy, Store, TagPredicate, Values};
use sundial_lineproto::{parse_lines, ParseOptions, ParsedBatch, Point};

fn bench_write(c: &mut Criterion) {
    // TSBS cpu-only: 1000 hosts, batches of 5000 lines (5 timestamps).
    let mut gen = sundial_tsbs::CpuOnly::new(1000, 1_451_606_400_000_000_000, 1);
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
    let values: usize = points[0].iter().map(|p| p.fields.len()).sum();

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        EngineOptions::builder().fsync(FsyncPolicy::Always).build(),
    )
    .expect("open");
    store.create_shard(1, "db").expect("shard");
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(values as u64));
    let mut i = 0;
    g.bench_function("tsbs_cpu_5000_lines", |b| {
        b.iter(|| {
            let out = store
                .write_to_shard(1, &points[i % points.len()])
                .expect("write");
            i += 1;
            black_box(out)
        })
    });
    // Two writers on the same shard: one's CPU work overlaps the other's fsync wait, and
    // group commit lets them share fsyncs (each still acknowledged only after its fsync).
    let n = points.len();
    let (evens, odds): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 2 == 0);
    g.throughput(Throughput::Elements(2 * values as u64));
    let mut j = 0;
    g.bench_function("tsbs_cpu_5000_lines_2_writers", |b| {
        b.iter(|| {
            let (a, c) = (
                &points[evens[j % evens.len()]],
                &points[odds[j % odds.len()]],
            );
            j += 1;
            std::thread::scope(|s| {
                let h = s.spawn(|| store.write_to_shard(1, a).expect("write"));
                let o = store.write_to_shard(1, c).expect("write");
                black_box((h.join().expect("join"), o))
            })
        })
    });
    g.finish();
    let st = store.stats();
    eprintln!(
        "write: {} values, {} WAL fsyncs, {} flushes",
        st.values_written, st.wal_fsyncs, st.flushes
    );
    store.close().expect("close");
}

fn walk(rng: &mut StdRng, n: usize, decimals: Option<i32>) -> Vec<f64> {
    let mut x: f64 = 50.0;
    (0..n)
        .map(|_| {
            x += rng.random_range(-0.5..0.5);
            match decimals {
                Some(d) => {
                    let p = 10f64.powi(d);
                    (x * p).round() / p
                }
                None => x,
            }
        })
        .collect()
}

/// Bytes per value of one float field (plus its timestamps) in a compacted file.
fn bytes_per_value(decimals: Option<i32>) -> f64 {
    let mut rng = StdRng::seed_from_u64(7);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        EngineOptions::builder()
            .fsync(FsyncPolicy::Never)
            .auto_compaction(false)
            .build(),
    )
    .expect("open");
    store.create_shard(1, "db").expect("shard");
    let (series, points) = (20, 8640); // one day at 10 s
    let mut total = 0usize;
    for s in 0..series {
        let v = walk(&mut rng, points, decimals);
        for chunk in 0..4 {
            let mut lp = String::new();
            for (i, x) in v
                .iter()
                .enumerate()
                .skip(chunk * points / 4)
                .take(points / 4)
            {
                lp.push_str(&format!(
                    "sensor,id=s{s} value={x:?} {}\n",
                    1_600_000_000_000_000_000i64 + i as i64 * 10_000_000_000
                ));
            }
            let b = parse_lines(lp.as_bytes(), &ParseOptions::default());
            let pts: Vec<_> = b.iter().collect();
            total += store.write_to_shard(1, &pts).expect("write").values_written;
            store.flush_shard(1).expect("flush");
        }
    }
    store.compact_shard(1, true).expect("compact");
    let bytes: u64 = std::fs::read_dir(dir.path().join("1/data"))
        .expect("data dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    store.close().expect("close");
    bytes as f64 / total as f64
}

fn bench_codec(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(3);
    let a = walk(&mut rng, 1000, None);
    let b = walk(&mut rng, 1000, Some(2));
    let gorilla_a = {
        // Gorilla alone on (a), for the "no worse than Gorilla" comparison.
        let mut buf = Vec::new();
        encode_values(&Values::Float(a.clone()), &mut buf);
        buf.len()
    };
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1000));
    for (name, v) in [("a_full_precision", &a), ("b_two_decimals", &b)] {
        let vals = Values::Float(v.clone());
        let mut buf = Vec::new();
        encode_values(&vals, &mut buf);
        eprintln!(
            "codec {name}: {:.3} bytes/value in one block (values only)",
            buf.len() as f64 / 1000.0
        );
        g.bench_function(format!("encode_{name}"), |bn| {
            bn.iter(|| {
                let mut out = Vec::with_capacity(8192);
                encode_values(black_box(&vals), &mut out);
                out
            })
        });
        g.bench_function(format!("decode_{name}"), |bn| {
            bn.iter(|| decode_values(FieldType::Float, black_box(&buf), 1000).expect("decode"))
        });
    }
    g.finish();
    let bpa = bytes_per_value(None);
    let bpb = bytes_per_value(Some(2));
    eprintln!(
        "bytes/value after compaction incl. timestamps: (a) full-precision walk {bpa:.3} (Gorilla block alone {:.3}), (b) two-decimal walk {bpb:.3}",
        gorilla_a as f64 / 1000.0
    );
}

fn bench_scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        EngineOptions::builder()
            .fsync(FsyncPolicy::Never)
            .auto_compaction(false)
            .build(),
    )
    .expect("open");
    store.create_shard(1, "db").expect("shard");
    let series = 10_000;
    let hour = 3_600_000_000_000i64;
    // Four files, one hour each, one point a minute per series.
    for h in 0..4i64 {
        let mut lp = String::with_capacity(series * 60 * 40);
        for m in 0..60i64 {
            for s in 0..series {
                lp.push_str(&format!(
                    "m,id=s{s} v={}.25 {}\n",
                    (s as i64 + m) % 1000,
                    h * hour + m * 60_000_000_000
                ));
            }
        }
        let b = parse_lines(lp.as_bytes(), &ParseOptions::default());
        let pts: Vec<_> = b.iter().collect();
        for chunk in pts.chunks(50_000) {
            store.write_to_shard(1, chunk).expect("write");
        }
        store.flush_shard(1).expect("flush");
    }
    let files = store.shard_files(1).expect("files").len();
    eprintln!("scan: {series} series, {files} files");
    let pred = TagPredicate::eq("id", "s4242");
    let mut g = c.benchmark_group("scan");
    g.bench_function("one_series_hour", |b| {
        b.iter(|| {
            let n: usize = store
                .scan(1, "m", &pred, None, 2 * hour, 3 * hour - 1)
                .expect("scan")
                .map(|s| s.expect("series").fields[0].column.len())
                .sum();
            assert_eq!(n, 60);
            n
        })
    });
    g.finish();
    store.close().expect("close");
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_write, bench_codec, bench_scan
}
criterion_main!(benches);
