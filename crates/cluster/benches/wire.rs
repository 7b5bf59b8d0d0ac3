//! The `WriteToShard` wire encoding on TSBS "devops cpu-only" lines: parsing
//! the body, encoding its points, and decoding the payload back into points,
//! in one run so the three compare directly.
//!
//! `cargo bench -p sundial-cluster --bench wire`

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use sundial_cluster::wire::{decode_points, encode_points, DecodeLimits};
use sundial_lineproto::{parse_lines, ParseOptions};
use sundial_tsbs::cpu_only_body;

// The allocator the `sundial` server runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LINES: usize = 5_000;

fn bench(c: &mut Criterion) {
    // 100 hosts: each series key comes back 50 times, as in a TSBS load.
    let body = cpu_only_body(LINES, 100);
    let opts = ParseOptions::default();
    let parsed = parse_lines(body.as_bytes(), &opts);
    assert_eq!(parsed.len(), LINES);
    assert!(parsed.errors().is_empty());

    // As the gateway calls it: the indices of one shard's points.
    let indices: Vec<u32> = (0..LINES as u32).collect();
    let mut payload = Vec::new();
    encode_points(
        indices.iter().map(|&i| parsed.get(i as usize)),
        &mut payload,
    );
    let limits = DecodeLimits::default();
    let decoded = decode_points(&payload, &limits).unwrap();
    assert_eq!(decoded.len(), LINES);
    for (a, b) in parsed.iter().zip(decoded.iter()) {
        assert_eq!(a.to_line(), b.to_line());
    }
    drop(decoded);
    eprintln!(
        "line protocol {} bytes ({:.1} a line), payload {} bytes ({:.1} a point, {:.1}% of the text)",
        body.len(),
        body.len() as f64 / LINES as f64,
        payload.len(),
        payload.len() as f64 / LINES as f64,
        100.0 * payload.len() as f64 / body.len() as f64,
    );

    let mut g = c.benchmark_group("wire_tsbs_cpu");
    g.throughput(Throughput::Elements(LINES as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let batch = parse_lines(black_box(body.as_bytes()), &opts);
            black_box(batch.value_count())
        })
    });
    g.bench_function("encode", |b| {
        // A fresh buffer each time, as the gateway has for each call.
        b.iter(|| {
            let mut buf = Vec::new();
            encode_points(
                black_box(&indices).iter().map(|&i| parsed.get(i as usize)),
                &mut buf,
            );
            black_box(buf.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let d = decode_points(black_box(&payload), &limits).unwrap();
            let points = d.points();
            black_box(points.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
