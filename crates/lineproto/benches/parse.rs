//! Line-protocol parsing throughput on TSBS "devops cpu-only" lines, ours next
//! to the published `influxdb-line-protocol` crate, in the same run.
//!
//! `cargo bench -p sundial-lineproto --bench parse`

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use sundial_tsbs::cpu_only_body;

// The allocator the `sundial` server runs with; both parsers below share it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LINES: usize = 5_000;

fn bench(c: &mut Criterion) {
    // 100 hosts: each series key comes back 50 times in a body, as in a TSBS
    // load. Then 5,000 hosts: every line is a new series, the worst case for
    // the parser's series-key reuse.
    let repeated = cpu_only_body(LINES, 100);
    let unique = cpu_only_body(LINES, LINES);
    let opts = sundial_lineproto::ParseOptions::default();
    for body in [&repeated, &unique] {
        // Both parsers must agree on the body before we time them.
        let ours = sundial_lineproto::parse_lines(body.as_bytes(), &opts);
        assert_eq!(ours.len(), LINES);
        assert!(ours.errors().is_empty());
        let theirs = influxdb_line_protocol::parse_lines(body).filter(|r| r.is_ok());
        assert_eq!(theirs.count(), LINES);
    }

    for (group, body, tp) in [
        (
            "parse_tsbs_cpu_bytes",
            &repeated,
            Throughput::Bytes(repeated.len() as u64),
        ),
        (
            "parse_tsbs_cpu_lines",
            &repeated,
            Throughput::Elements(LINES as u64),
        ),
        (
            "parse_tsbs_cpu_unique_series_bytes",
            &unique,
            Throughput::Bytes(unique.len() as u64),
        ),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(tp);
        g.bench_function("sundial", |b| {
            b.iter(|| {
                let batch = sundial_lineproto::parse_lines(black_box(body.as_bytes()), &opts);
                black_box(batch.value_count())
            })
        });
        g.bench_function("influxdb-line-protocol", |b| {
            b.iter(|| {
                let mut n = 0;
                for l in influxdb_line_protocol::parse_lines(black_box(body)) {
                    n += l.map(|l| l.field_set.len()).unwrap_or(0);
                }
                black_box(n)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
