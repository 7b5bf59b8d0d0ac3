//! Files written by an earlier release (format v1: times and values in one block per
//! field) open and read back exactly, before and after compaction rewrites them as v2.
//!
//! The fixture `tests/fixtures/v1-store` was written by `write_v1_fixture` (ignored)
//! with the release before the v2 format (commit 01d13e8), together with
//! `expected.txt`: what that release's own scan returned. It holds a level-1 file
//! from a compaction, a level-0 sequence file, an unsequence file and a tombstone,
//! all field types, series split into several blocks.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::{opts, write};
use sundial_engine::{Store, TagPredicate};

const SHARD: u64 = 1;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store")
}

/// Every point of the shard as text, series by series, field by field.
fn scan_text(store: &Store) -> String {
    let mut out = String::new();
    for m in store.measurements(SHARD).unwrap() {
        for s in store
            .scan(SHARD, &m, &TagPredicate::All, None, i64::MIN, i64::MAX)
            .unwrap()
        {
            let s = s.unwrap();
            for f in &s.fields {
                for (i, t) in f.column.times.iter().enumerate() {
                    let v = f.column.values.get(i).unwrap();
                    writeln!(out, "{} {} {} {:?}", s.key, f.name, t, v).unwrap();
                }
            }
        }
    }
    out
}

fn lines(from: usize, to: usize, step: i64) -> String {
    let mut lp = String::new();
    for i in from..to {
        let t = i as i64 * step;
        writeln!(
            lp,
            "cpu,host=h{h} usage={i}.25,count={c}i,ok={ok},note=\"n{n}\" {t}",
            h = i % 3,
            c = i * 7,
            ok = i % 2 == 0,
            n = i % 5,
        )
        .unwrap();
        if i % 4 == 0 {
            writeln!(lp, "mem,host=h{} free={}u,used={}.5 {t}", i % 2, i * 3, i).unwrap();
        }
    }
    lp
}

#[test]
#[ignore = "writes the committed fixture; run only with the release that wrote v1 files"]
fn write_v1_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let o = || {
        opts()
            .max_points_per_block(16)
            .auto_compaction(false)
            .build()
    };
    let store = Store::open(dir.join("store"), o()).unwrap();
    store.create_shard(SHARD, "db").unwrap();
    write(&store, SHARD, &lines(0, 120, 10));
    store.flush_shard(SHARD).unwrap();
    write(&store, SHARD, &lines(120, 240, 10));
    store.flush_shard(SHARD).unwrap();
    store.compact_shard(SHARD, true).unwrap();
    write(&store, SHARD, &lines(240, 300, 10));
    // Out of order: overwrites and fills between existing points.
    write(&store, SHARD, &lines(50, 90, 5));
    store
        .delete(
            SHARD,
            "cpu",
            &TagPredicate::Eq("host".into(), "h1".into()),
            1000,
            1500,
        )
        .unwrap();
    store.flush_shard(SHARD).unwrap();
    let expected = scan_text(&store);
    store.close().unwrap();
    std::fs::write(dir.join("expected.txt"), expected).unwrap();
}

#[test]
fn v1_files_open_and_read_back_exactly() {
    let expected = std::fs::read_to_string(fixture_dir().join("expected.txt")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("store");
    copy_dir(&fixture_dir().join("store"), &copy);
    let files_before = {
        let store = Store::open(&copy, opts().auto_compaction(false).build()).unwrap();
        assert_eq!(
            scan_text(&store),
            expected,
            "v1 files read back differently"
        );
        let files = store.shard_files(SHARD).unwrap();
        assert!(
            files.len() >= 3,
            "the fixture should hold several files: {files:?}"
        );
        // A full compaction rewrites the v1 files as one v2 file, tombstone applied.
        store.compact_shard(SHARD, true).unwrap();
        let after = store.shard_files(SHARD).unwrap();
        assert_eq!(after.len(), 1);
        let path = copy.join("1/data").join(format!("{:010}.tsf", after[0].id));
        let file = sundial_engine::tsfile::TsFile::open(&path).unwrap();
        assert_eq!(file.version(), 2);
        file.verify().unwrap();
        assert_eq!(scan_text(&store), expected, "after compaction into v2");
        store.close().unwrap();
        files.len()
    };
    let store = Store::open(&copy, opts().build()).unwrap();
    assert_eq!(scan_text(&store), expected, "v2 file after reopen");
    assert!(files_before > 1);
    store.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
