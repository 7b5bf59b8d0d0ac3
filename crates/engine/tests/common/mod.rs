#![allow(dead_code)]

use std::collections::BTreeMap;

use sundial_engine::{EngineOptions, Store, TagPredicate, Value};
use sundial_lineproto::{parse_lines, ParseOptions};

/// Parse line protocol and write it; panics on parse errors (test input is valid).
pub fn write(store: &Store, shard: u64, lp: &str) -> sundial_engine::WriteOutcome {
    let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
    assert!(batch.errors().is_empty(), "{:?}", batch.errors());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(shard, &pts).expect("write")
}

/// (series key, field) -> time -> value
pub type Dump = BTreeMap<(String, String), BTreeMap<i64, Value>>;

pub fn dump(store: &Store, shard: u64, measurement: &str) -> Dump {
    let mut out = Dump::new();
    for s in store
        .scan(
            shard,
            measurement,
            &TagPredicate::All,
            None,
            i64::MIN,
            i64::MAX,
        )
        .expect("scan")
    {
        let s = s.expect("series");
        for f in s.fields {
            let m = out.entry((s.key.clone(), f.name.clone())).or_default();
            for (i, t) in f.column.times.iter().enumerate() {
                m.insert(*t, f.column.values.get(i).expect("value"));
            }
        }
    }
    out
}

pub fn opts() -> sundial_engine::EngineOptionsBuilder {
    EngineOptions::builder().fsync(sundial_engine::FsyncPolicy::Never)
}
