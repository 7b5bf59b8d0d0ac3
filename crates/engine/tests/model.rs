//! Model-based test: random writes (in and out of order, overwrites), deletes, flushes,
//! compactions, closes and reopens, checked after every step against a BTreeMap.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeMap;

use common::{dump, Dump};
use proptest::prelude::*;
use sundial_engine::tsfile::{NumStats, TsFile, TypedStats};
use sundial_engine::{EngineOptions, FsyncPolicy, Store, TagPredicate, Value, Values};

const HOSTS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Op {
    /// (host, time, float field?, value)
    Write(Vec<(usize, i64, bool, i64)>),
    Delete(usize, i64, i64),
    DropAll,
    Flush,
    Compact(bool),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0..4usize, 0..120i64, any::<bool>(), -1000..1000i64), 1..30).prop_map(Op::Write),
        1 => (0..4usize, 0..120i64, 0..60i64).prop_map(|(h, a, l)| Op::Delete(h, a, a + l)),
        1 => Just(Op::DropAll),
        2 => Just(Op::Flush),
        1 => any::<bool>().prop_map(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn options() -> EngineOptions {
    EngineOptions::builder()
        .fsync(FsyncPolicy::Never)
        .memtable_size(2048) // background flushes happen on their own too
        .compaction_trigger(2)
        .max_points_per_block(7)
        .build()
}

/// Points that carry both fields (the rest carry one): fields of a series that are
/// written together, apart and partly together all occur.
fn both(v: i64) -> bool {
    v % 5 == 0
}

fn apply(model: &mut Dump, op: &Op) {
    match op {
        Op::Write(pts) => {
            for &(h, t, is_f, v) in pts {
                let mut put = |field: &str, val| {
                    model
                        .entry((format!("m,host={}", HOSTS[h]), field.to_string()))
                        .or_default()
                        .insert(t, val);
                };
                if is_f || both(v) {
                    put("f", Value::Float(v as f64 / 4.0));
                }
                if !is_f || both(v) {
                    put("i", Value::Integer(v));
                }
            }
        }
        Op::Delete(h, a, b) => {
            for ((k, _), m) in model.iter_mut() {
                if *k == format!("m,host={}", HOSTS[*h]) {
                    m.retain(|t, _| t < a || t > b);
                }
            }
        }
        Op::DropAll => model.clear(),
        _ => {}
    }
    model.retain(|_, m| !m.is_empty());
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), options()).unwrap();
    store.create_shard(1, "db").unwrap();
    let mut model: Dump = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Write(pts) => {
                let lp: String = pts
                    .iter()
                    .map(|&(h, t, is_f, v)| {
                        if both(v) {
                            format!("m,host={} f={},i={v}i {t}\n", HOSTS[h], v as f64 / 4.0)
                        } else if is_f {
                            format!("m,host={} f={} {t}\n", HOSTS[h], v as f64 / 4.0)
                        } else {
                            format!("m,host={} i={v}i {t}\n", HOSTS[h])
                        }
                    })
                    .collect();
                common::write(&store, 1, &lp);
            }
            Op::Delete(h, a, b) => store
                .delete(1, "m", &TagPredicate::eq("host", HOSTS[*h]), *a, *b)
                .unwrap(),
            Op::DropAll => store.drop_measurement(1, "m").unwrap(),
            Op::Flush => store.flush_shard(1).unwrap(),
            Op::Compact(full) => store.compact_shard(1, *full).unwrap(),
            Op::Reopen => {
                store.close().unwrap();
                store = Store::open(dir.path(), options()).unwrap();
            }
        }
        apply(&mut model, op);
        let got = dump(&store, 1, "m");
        assert_eq!(got, model, "after step {step}: {op:?}");
        check_block_stats(&store, dir.path(), step);
    }
    store.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40), ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

#[test]
fn model_regression_overwrite_after_compaction() {
    run(vec![
        Op::Write(vec![(0, 10, true, 1), (0, 20, true, 2)]),
        Op::Flush,
        Op::Write(vec![(0, 10, true, 3)]),
        Op::Flush,
        Op::Delete(0, 15, 25),
        Op::Write(vec![(0, 20, true, 4)]),
        Op::Compact(false),
        Op::Reopen,
        Op::Compact(true),
        Op::Write(vec![(0, 5, true, 9)]),
        Op::Flush,
        Op::Reopen,
    ]);
}

/// Every block's statistics against its decoded values, computed here on their own:
/// the query engine answers aggregates from statistics alone.
fn check_block_stats(store: &Store, dir: &std::path::Path, step: usize) {
    for meta in store.shard_files(1).unwrap() {
        let path = dir.join("1/data").join(format!("{:010}.tsf", meta.id));
        // A background compaction may have replaced it since the listing.
        let Ok(file) = TsFile::open(&path) else {
            assert!(
                !path.exists(),
                "{} exists but does not open",
                path.display()
            );
            continue;
        };
        assert_eq!(file.version(), 2);
        for r in file.series_refs().unwrap() {
            let si = file.series_index_of(&r).unwrap();
            for f in &si.fields {
                for b in &f.blocks {
                    let c = file.read_block(f.ty, b).unwrap();
                    let s = b.stats.as_ref().expect("v2 blocks carry statistics");
                    let n = c.times.len();
                    let at = format!(
                        "step {step}, {} {} block at {}",
                        si.key, f.name, b.values.offset
                    );
                    assert_eq!((s.count as usize, b.count as usize), (n, n), "{at}");
                    assert_eq!(
                        (s.first_time, s.last_time),
                        (c.times[0], c.times[n - 1]),
                        "{at}"
                    );
                    assert_eq!(
                        (b.min_time, b.max_time),
                        (c.times[0], c.times[n - 1]),
                        "{at}"
                    );
                    match (&c.values, &s.values) {
                        (Values::Float(v), TypedStats::Float(f)) => {
                            let total: f64 = v.iter().sum();
                            assert_eq!(f.sum.to_bits(), total.to_bits(), "{at}");
                            check_num(&at, &c.times, v, f);
                        }
                        (Values::Integer(v), TypedStats::Integer(f)) => {
                            assert_eq!(f.sum, v.iter().sum::<i64>(), "{at}");
                            check_num(&at, &c.times, v, f);
                        }
                        other => panic!("{at}: unexpected {other:?}"),
                    }
                }
            }
        }
    }
}

/// Min and max (the earliest of equal ones, with their times), first and last.
fn check_num<T: Copy + PartialOrd + std::fmt::Debug>(
    at: &str,
    times: &[i64],
    v: &[T],
    s: &NumStats<T>,
) {
    let n = v.len();
    let lo = (0..n).fold(0, |a, i| if v[i] < v[a] { i } else { a });
    let hi = (0..n).fold(0, |a, i| if v[i] > v[a] { i } else { a });
    assert_eq!(
        (s.min, s.min_time, s.max, s.max_time),
        (v[lo], times[lo], v[hi], times[hi]),
        "{at}"
    );
    assert_eq!((s.first, s.last), (v[0], v[n - 1]), "{at}");
}
