//! Damaged data files and manifests never cause a panic: opening and scanning either
//! work or return a clear error, and the shard keeps serving.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::path::PathBuf;

use common::{opts, write};
use proptest::prelude::*;
use sundial_engine::{Store, TagPredicate};

fn make_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().max_points_per_block(16).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let mut lp = String::new();
    for i in 0..200 {
        lp.push_str(&format!(
            "k,h=h{} f={}.5,i={}i,b={},s=\"v{}\" {}\n",
            i % 3,
            i,
            i * 7,
            i % 2 == 0,
            i % 5,
            i * 10
        ));
    }
    write(&store, 1, &lp);
    store.flush_shard(1).unwrap();
    let id = store.shard_files(1).unwrap()[0].id;
    store.close().unwrap();
    let path = dir.path().join("1/data").join(format!("{id:010}.tsf"));
    (dir, path)
}

fn write_to(store: &Store, lp: &str) -> Result<(), sundial_engine::Error> {
    let batch = sundial_lineproto::parse_lines(lp.as_bytes(), &Default::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(1, &pts).map(|_| ())
}

fn scan_all(store: &Store) -> Result<usize, sundial_engine::Error> {
    let mut n = 0;
    for s in store.scan(1, "k", &TagPredicate::All, None, i64::MIN, i64::MAX)? {
        n += s?.fields.len();
    }
    Ok(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_damage_never_panics(flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4), cut in prop::option::of(any::<prop::sample::Index>())) {
        let (dir, path) = make_store();
        let mut data = std::fs::read(&path).unwrap();
        for (at, x) in &flips {
            let i = at.index(data.len());
            data[i] ^= x;
        }
        if let Some(c) = cut {
            data.truncate(c.index(data.len()));
        }
        std::fs::write(&path, &data).unwrap();
        let store = Store::open(dir.path(), opts().build()).unwrap();
        // Scans either work or fail with a corruption error, every time (nothing is
        // moved aside); when the file still opens, writes and flushes go on, and a
        // compaction either works or fails leaving its inputs.
        let first = scan_all(&store);
        if let Err(e) = &first {
            prop_assert!(e.is_corruption(), "{e}");
        }
        prop_assert_eq!(scan_all(&store).is_ok(), first.is_ok());
        let files = store.shard_files(1);
        match write_to(&store, "k,h=h0 f=1.0 5\n") {
            Ok(()) => {
                store.flush_shard(1).unwrap();
                let before = store.shard_files(1).unwrap();
                if let Err(e) = store.compact_shard(1, true) {
                    prop_assert!(e.is_corruption(), "{e}");
                    prop_assert_eq!(store.shard_files(1).unwrap(), before);
                }
            }
            Err(e) => {
                // The shard did not open: the damaged file does not.
                prop_assert!(e.is_corruption(), "{e}");
                prop_assert!(files.is_err());
            }
        }
        store.close().unwrap();
    }
}

#[test]
fn corrupt_manifest_is_a_clear_error() {
    let (dir, _) = make_store();
    let m = dir.path().join("1/MANIFEST");
    let mut data = std::fs::read(&m).unwrap();
    data[3] ^= 1;
    std::fs::write(&m, data).unwrap();
    // The store opens (shards open on demand); the shard's first use fails clearly.
    let store = Store::open(dir.path(), opts().build()).unwrap();
    let err = store.shard_files(1).unwrap_err();
    assert!(err.to_string().contains("manifest"), "{err}");
}

/// A data file the manifest names but the disk lost holds acknowledged points
/// whose WAL entries are gone: the shard refuses to open (naming the file)
/// instead of dropping it from the manifest, and opens again once it is back.
#[test]
fn a_missing_data_file_stops_the_shard_until_it_is_back() {
    let (dir, path) = make_store();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    let before = scan_all(&store).unwrap();
    store.close().unwrap();
    let aside = dir.path().join("aside.tsf");
    std::fs::rename(&path, &aside).unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    let err = store.shard_files(1).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(!store.health().degraded_shards.is_empty());
    drop(store);
    std::fs::rename(&aside, &path).unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    assert_eq!(scan_all(&store).unwrap(), before);
    store.close().unwrap();
}

#[test]
fn corrupt_index_snapshot_is_rebuilt() {
    let (dir, _) = make_store();
    std::fs::write(dir.path().join("1/index.snap"), b"garbage").unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    assert_eq!(
        store.series_keys(1, "k", &TagPredicate::All).unwrap().len(),
        3
    );
    assert_eq!(store.field_keys(1, "k").unwrap().len(), 4);
    assert_eq!(scan_all(&store).unwrap(), 12);
}
