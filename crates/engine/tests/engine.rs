//! Functional tests of the store: writes, reads, flush, reopen, deletes, validation.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{dump, opts, write};
use sundial_engine::{Error, FieldType, Store, TagPredicate, Value};

#[test]
fn write_scan_flush_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let out = write(
        &store,
        1,
        "cpu,host=a,region=eu usage=1.5,count=3i,ok=true,msg=\"hi\",u=7u 10\n\
         cpu,host=b usage=2.5 10\n\
         cpu,host=a usage=1.75 20\n",
    );
    assert_eq!(
        (out.points_written, out.values_written, out.points_dropped),
        (3, 7, 0)
    );
    let before = dump(&store, 1, "cpu");
    assert_eq!(before.len(), 7);
    assert_eq!(
        before[&("cpu,host=a,region=eu".into(), "usage".into())],
        [(10, Value::Float(1.5))].into_iter().collect()
    );
    store.flush_shard(1).unwrap();
    assert_eq!(dump(&store, 1, "cpu"), before);
    write(&store, 1, "cpu,host=a,region=eu usage=9.0 30\n");
    store.close().unwrap();
    store.close().unwrap(); // twice is harmless
    assert!(matches!(store.measurements(1), Err(Error::Closed)));

    let store = Store::open(dir.path(), opts().build()).unwrap();
    let after = dump(&store, 1, "cpu");
    assert_eq!(
        after[&("cpu,host=a,region=eu".into(), "usage".into())].len(),
        2
    );
    assert_eq!(store.measurements(1).unwrap(), vec!["cpu"]);
    assert_eq!(store.tag_keys(1, "cpu").unwrap(), vec!["host", "region"]);
    assert_eq!(store.tag_values(1, "cpu", "host").unwrap(), vec!["a", "b"]);
    assert_eq!(
        store.field_keys(1, "cpu").unwrap(),
        vec![
            ("count".into(), FieldType::Integer),
            ("msg".into(), FieldType::String),
            ("ok".into(), FieldType::Boolean),
            ("u".into(), FieldType::Unsigned),
            ("usage".into(), FieldType::Float)
        ]
    );
    let sel = store
        .series_keys(1, "cpu", &TagPredicate::regex("host", "^b$").unwrap())
        .unwrap();
    assert_eq!(sel, vec!["cpu,host=b"]);
    store.close().unwrap();
}

#[test]
fn influx_validation_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    write(&store, 1, "cpu v=1.0 1\n");
    let out = write(
        &store,
        1,
        "cpu v=\"x\" 2\ncpu v=2.0 3\nm,time=1 a=1 4\nm time=1 5\nm time=1,b=2 6\n",
    );
    assert_eq!(out.points_written, 2);
    assert_eq!(out.points_dropped, 3);
    assert!(out.drop_reasons.contains(
        &"field type conflict: input field \"v\" on measurement \"cpu\" is type string, already exists as type float".to_string()
    ));
    assert!(out.drop_reasons.contains(
        &"invalid tag key: input tag \"time\" on measurement \"m\" is invalid".to_string()
    ));
    assert!(out.drop_reasons.contains(
        &"invalid field name: input field \"time\" on measurement \"m\" is invalid".to_string()
    ));
    assert!(out.partial_write_error().unwrap().ends_with("dropped=3"));
    let m = dump(&store, 1, "m");
    assert_eq!(m.len(), 1, "{m:?}"); // only field b survived
                                     // A conflict inside one batch: the first type wins.
    let out = write(&store, 1, "n f=1i 1\nn f=1.5 2\n");
    assert_eq!((out.points_written, out.points_dropped), (1, 1));
    // Types survive reopen.
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    let out = write(&store, 1, "cpu v=true 9\n");
    assert_eq!(out.points_dropped, 1);
}

#[test]
fn out_of_order_overwrites_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().auto_compaction(false).build()).unwrap();
    store.create_shard(7, "db").unwrap();
    write(&store, 7, "t,k=1 v=1 100\nt,k=1 v=2 200\n");
    store.flush_shard(7).unwrap();
    // Older than the watermark: goes to the unsequence memtable and file.
    write(&store, 7, "t,k=1 v=10 100\nt,k=1 v=5 150\nt,k=1 v=3 300\n");
    store.flush_shard(7).unwrap();
    let files = store.shard_files(7).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    let expect: Vec<(i64, Value)> = vec![
        (100, Value::Float(10.0)),
        (150, Value::Float(5.0)),
        (200, Value::Float(2.0)),
        (300, Value::Float(3.0)),
    ];
    let got = |s: &Store| -> Vec<(i64, Value)> {
        dump(s, 7, "t")[&("t,k=1".into(), "v".into())]
            .iter()
            .map(|(t, v)| (*t, v.clone()))
            .collect()
    };
    assert_eq!(got(&store), expect);
    store.compact_shard(7, false).unwrap();
    assert_eq!(got(&store), expect);
    assert!(store
        .shard_files(7)
        .unwrap()
        .iter()
        .all(|f| f.kind == sundial_engine::manifest::FileKind::Seq));
    store.compact_shard(7, true).unwrap();
    assert_eq!(store.shard_files(7).unwrap().len(), 1);
    assert_eq!(got(&store), expect);
}

#[test]
fn deletes_and_drop_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().auto_compaction(false).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    write(
        &store,
        1,
        "d,h=a v=1 1\nd,h=a v=2 2\nd,h=b v=3 3\nd,h=a v=4 4\n",
    );
    store.flush_shard(1).unwrap();
    write(&store, 1, "d,h=a v=5 5\n");
    store
        .delete(1, "d", &TagPredicate::eq("h", "a"), 2, 4)
        .unwrap();
    write(&store, 1, "d,h=a v=33 3\n"); // after the delete: visible
    let a = |s: &Store| {
        dump(s, 1, "d")[&("d,h=a".into(), "v".into())]
            .keys()
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(a(&store), vec![1, 3, 5]);
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().auto_compaction(false).build()).unwrap();
    assert_eq!(a(&store), vec![1, 3, 5]);
    assert_eq!(store.tombstone_count(1).unwrap(), 1);
    store.flush_shard(1).unwrap();
    store.compact_shard(1, true).unwrap();
    assert_eq!(a(&store), vec![1, 3, 5]);
    assert_eq!(store.tombstone_count(1).unwrap(), 0);

    store.drop_measurement(1, "d").unwrap();
    assert!(dump(&store, 1, "d").is_empty());
    assert!(store.measurements(1).unwrap().is_empty());
    // The type can change after a drop.
    write(&store, 1, "d,h=a v=\"s\" 9\n");
    let d = dump(&store, 1, "d");
    assert_eq!(d.len(), 1, "{:?}", d.keys().collect::<Vec<_>>());
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    let d = dump(&store, 1, "d");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        store.field_keys(1, "d").unwrap(),
        vec![("v".into(), FieldType::String)]
    );
}

#[test]
fn shard_lifecycle_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    store.create_shard(2, "db").unwrap();
    assert!(matches!(
        store.create_shard(1, "db"),
        Err(Error::ShardExists(1))
    ));
    assert!(matches!(
        store.measurements(3),
        Err(Error::ShardNotFound(3))
    ));
    write(&store, 2, "x v=1 1\n");
    store.drop_shard(2).unwrap();
    assert!(!dir.path().join("2").exists());
    assert!(!dir.path().join("2.dropping").exists());
    assert_eq!(store.shard_ids(), vec![1]);
    // Dropped shards may be created again (meta decides which exist).
    store.create_shard(2, "db").unwrap();
    store.drop_shard(2).unwrap();
    store.close().unwrap();
    // A drop cut short by a crash leaves its renamed directory: the next open
    // removes it and does not take it for a shard.
    std::fs::create_dir_all(dir.path().join("7.dropping/data")).unwrap();
    std::fs::write(dir.path().join("7.dropping/DATABASE"), "db").unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    assert_eq!(store.shard_ids(), vec![1]);
    assert!(!dir.path().join("7.dropping").exists());
}

#[test]
fn a_damaged_block_fails_the_reads_that_touch_it_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let o = || opts().auto_compaction(false).build();
    let store = Store::open(dir.path(), o()).unwrap();
    store.create_shard(1, "db").unwrap();
    write(&store, 1, "q,h=a v=1 1\nq,h=a v=2 2\nq,h=b v=3 3\n");
    store.flush_shard(1).unwrap();
    write(&store, 1, "q,h=b v=4 4\n");
    store.flush_shard(1).unwrap();
    let files = store.shard_files(1).unwrap();
    store.close().unwrap();
    let path = dir
        .path()
        .join("1/data")
        .join(format!("{:010}.tsf", files[0].id));
    let mut data = std::fs::read(&path).unwrap();
    data[10] ^= 0xff; // inside the first block: h=a's times
    std::fs::write(&path, &data).unwrap();
    let store = Store::open(dir.path(), o()).unwrap();
    let scan = |h: &str| -> Result<usize, sundial_engine::Error> {
        let mut n = 0;
        for s in store.scan(1, "q", &TagPredicate::eq("h", h), None, i64::MIN, i64::MAX)? {
            n += s?.fields[0].column.len();
        }
        Ok(n)
    };
    // Every read of the damaged series fails, naming the file; nothing is moved
    // aside, so no later read answers without its points.
    for _ in 0..2 {
        let err = scan("a").unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
    assert_eq!(scan("b").unwrap(), 2, "the other series keeps answering");
    assert_eq!(store.stats().corrupt_reads, 2);
    assert!(path.exists());
    assert_eq!(store.shard_files(1).unwrap(), files);
    // Compaction meeting the damaged block stops with the error; inputs stay.
    let err = store.compact_shard(1, true).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(store.shard_files(1).unwrap(), files);
    let leftovers = std::fs::read_dir(dir.path().join("1/data"))
        .unwrap()
        .count();
    assert_eq!(leftovers, files.len(), "no half-written output left");
    // Writes still work.
    write(&store, 1, "q,h=b v=5 5\n");
    assert_eq!(scan("b").unwrap(), 3);
    store.close().unwrap();

    // A file that no longer opens (cut footer) keeps the shard closed, naming it.
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 5).unwrap();
    let store = Store::open(dir.path(), o()).unwrap();
    let err = store
        .scan(1, "q", &TagPredicate::All, None, i64::MIN, i64::MAX)
        .map(|_| ())
        .unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[test]
fn overloaded_when_flush_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts()
        .memtable_size(1)
        .max_frozen_memtables(1)
        .flush_threads(1)
        .write_stall_timeout(std::time::Duration::from_millis(0))
        .build();
    let store = Store::open(dir.path(), o).unwrap();
    store.create_shard(1, "db").unwrap();
    // Each write freezes; with no time to flush, some write must be refused, not buffered.
    let mut overloaded = 0;
    for i in 0..200 {
        let lp = format!("o v={i} {i}\n");
        let batch = sundial_lineproto::parse_lines(lp.as_bytes(), &Default::default());
        let pts: Vec<_> = batch.iter().collect();
        match store.write_to_shard(1, &pts) {
            Ok(_) => {}
            Err(Error::Overloaded { .. }) => overloaded += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let stats = store.stats();
    assert_eq!(stats.writes_overloaded, overloaded);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stats = store.stats();
    assert!(stats.flushes > 0, "{stats:?} {overloaded}");
}

#[test]
fn stats_count_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        sundial_engine::EngineOptions::builder().build(), // fsync always
    )
    .unwrap();
    store.create_shard(1, "db").unwrap();
    write(&store, 1, "s a=1,b=2 1\ns a=1 2\n");
    let st = store.stats();
    assert_eq!((st.points_written, st.values_written), (2, 3));
    assert!(st.wal_fsyncs >= 1);
}

#[test]
fn group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), sundial_engine::EngineOptions::builder().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let threads = 8;
    let per = 40;
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = &store;
            s.spawn(move || {
                for i in 0..per {
                    write(store, 1, &format!("g,t=t{t} v={i}i {i}\n"));
                }
            });
        }
    });
    let st = store.stats();
    assert_eq!(st.points_written, (threads * per) as u64);
    // Every write waited for an fsync, but concurrent writers shared them.
    assert!(st.wal_fsyncs < (threads * per) as u64, "{st:?}");
    assert_eq!(
        dump(&store, 1, "g")
            .values()
            .map(|m| m.len())
            .sum::<usize>(),
        320
    );
}

#[test]
fn periodic_fsync_policy() {
    let dir = tempfile::tempdir().unwrap();
    let o = sundial_engine::EngineOptions::builder()
        .fsync(sundial_engine::FsyncPolicy::Every(
            std::time::Duration::from_millis(20),
        ))
        .build();
    let store = Store::open(dir.path(), o.clone()).unwrap();
    store.create_shard(1, "db").unwrap();
    write(&store, 1, "p v=1 1\n");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(store.stats().wal_fsyncs >= 1);
    store.close().unwrap();
    let store = Store::open(dir.path(), o).unwrap();
    assert_eq!(dump(&store, 1, "p").len(), 1);
}

/// The two crash windows of a compaction: output written but not in the manifest, and
/// manifest switched but inputs not yet unlinked. Both must open to the same data.
#[test]
fn interrupted_compaction_states() {
    let dir = tempfile::tempdir().unwrap();
    let o = || opts().auto_compaction(false).build();
    let store = Store::open(dir.path(), o()).unwrap();
    store.create_shard(1, "db").unwrap();
    write(&store, 1, "c,h=a v=1 1\nc,h=b v=2 2\n");
    store.flush_shard(1).unwrap();
    write(&store, 1, "c,h=a v=3 1\nc,h=a v=4 4\n");
    store.flush_shard(1).unwrap();
    let expect = dump(&store, 1, "c");
    store.close().unwrap();
    let data = dir.path().join("1/data");
    let listing = |p: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = listing(&data);
    let saved: Vec<(String, Vec<u8>)> = before
        .iter()
        .map(|n| (n.clone(), std::fs::read(data.join(n)).unwrap()))
        .collect();
    let manifest_before = std::fs::read(dir.path().join("1/MANIFEST")).unwrap();

    let store = Store::open(dir.path(), o()).unwrap();
    store.compact_shard(1, true).unwrap();
    store.close().unwrap();
    let after = listing(&data);
    assert_eq!(after.len(), 1);
    let output = std::fs::read(data.join(&after[0])).unwrap();

    // (b) manifest switched, inputs still on disk.
    for (n, d) in &saved {
        std::fs::write(data.join(n), d).unwrap();
    }
    let store = Store::open(dir.path(), o()).unwrap();
    assert_eq!(dump(&store, 1, "c"), expect);
    assert_eq!(
        store.recovery_report(1).unwrap().orphans_removed,
        saved.len()
    );
    store.close().unwrap();
    assert_eq!(listing(&data), after);

    // (a) output written, manifest still the old one.
    std::fs::write(dir.path().join("1/MANIFEST"), &manifest_before).unwrap();
    for (n, d) in &saved {
        std::fs::write(data.join(n), d).unwrap();
    }
    std::fs::write(data.join(&after[0]), &output).unwrap();
    let store = Store::open(dir.path(), o()).unwrap();
    assert_eq!(dump(&store, 1, "c"), expect);
    assert_eq!(store.recovery_report(1).unwrap().orphans_removed, 1);
    assert_eq!(store.shard_files(1).unwrap().len(), saved.len());
}

/// 280 strings of almost 1 MiB in one series: one 1000-point block would hold
/// 280 MiB of raw text, past what the reader will inflate, and compaction used
/// to write exactly that and lose the whole merged file to quarantine.
#[test]
fn huge_strings_survive_flush_and_compaction() {
    const N: usize = 280;
    const LEN: usize = (1 << 20) - 16;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let text = |i: usize| char::from(b'a' + (i % 26) as u8).to_string().repeat(LEN);
    for chunk in (0..N).collect::<Vec<_>>().chunks(40) {
        let mut lp = String::new();
        for &i in chunk {
            lp.push_str(&format!("log,host=a msg=\"{}\" {}\n", text(i), i + 1));
        }
        write(&store, 1, &lp);
        store.flush_shard(1).unwrap();
    }
    store.compact_shard(1, true).unwrap();
    store.close().unwrap();

    let store = Store::open(dir.path(), opts().build()).unwrap();
    let files = store.shard_files(1).unwrap();
    assert_eq!(files.len(), 1, "full compaction leaves one file: {files:?}");
    let got = dump(&store, 1, "log");
    let col = &got[&("log,host=a".into(), "msg".into())];
    assert_eq!(col.len(), N);
    for (i, (t, v)) in col.iter().enumerate() {
        assert_eq!(*t, i as i64 + 1);
        let Value::String(s) = v else {
            panic!("not a string: {v:?}")
        };
        assert!(s.len() == LEN && s.bytes().all(|b| b == b'a' + (i % 26) as u8));
    }
}

/// A series with thousands of fields whose points list them in other orders: the
/// lookups by field id and name (memtable, flush, compaction) keep every value.
#[test]
fn wide_series_in_shuffled_field_orders() {
    const F: usize = 5000;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let line = |t: usize, order: &mut dyn Iterator<Item = usize>| {
        let fields: Vec<String> = order
            .map(|i| format!("f{i}={}i", t * 100_000 + i))
            .collect();
        format!("w,h=a {} {t}\n", fields.join(","))
    };
    write(&store, 1, &line(1, &mut (0..F)));
    write(&store, 1, &line(2, &mut (0..F).rev()));
    // Every other field, from the middle outwards.
    write(
        &store,
        1,
        &line(3, &mut (0..F).step_by(2).map(|i| (i + F / 2) % F)),
    );
    store.flush_shard(1).unwrap();
    write(&store, 1, &line(4, &mut (0..F).rev().step_by(3)));
    write(&store, 1, &line(2, &mut (0..F).step_by(5))); // overwrites t=2 for some
    store.flush_shard(1).unwrap();
    store.compact_shard(1, true).unwrap();
    let got = dump(&store, 1, "w");
    assert_eq!(got.len(), F);
    for i in 0..F {
        let col = &got[&("w,h=a".into(), format!("f{i}"))];
        let mut want = vec![1, 2];
        if i % 2 == 0 {
            want.push(3);
        }
        if (F - 1 - i).is_multiple_of(3) {
            want.push(4);
        }
        let times: Vec<i64> = col.keys().copied().collect();
        assert_eq!(times, want, "f{i}");
        for (t, v) in col {
            assert_eq!(v, &Value::Integer(*t * 100_000 + i as i64), "f{i}@{t}");
        }
    }
}

/// Shards cost no thread each: a write that spreads over hundreds of shard groups
/// (backfill) must not leave hundreds of threads behind.
#[test]
fn many_shards_share_the_fsync_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        opts().fsync(sundial_engine::FsyncPolicy::Always).build(),
    )
    .unwrap();
    // Threads of the WAL (names are cut to 15 bytes in `comm`).
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
            .filter(|name| name.starts_with("sundial-wal"))
            .count()
    };
    let before = threads();
    for id in 1..=300 {
        store.create_shard(id, "db").unwrap();
        write(&store, id, &format!("m v={id} {id}\n"));
    }
    let after = threads();
    assert!(
        after <= before + 8,
        "{before} WAL threads before, {after} after 300 shards"
    );
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    for id in [1, 150, 300] {
        let got = dump(&store, id, "m");
        assert_eq!(
            got[&("m".into(), "v".into())][&(id as i64)],
            Value::Float(id as f64)
        );
    }
}

/// Forty shards each well under their own memtable size, together far over the
/// store's budget: the largest memtables are flushed early, memory comes back
/// under the budget, and nothing is lost.
#[test]
fn the_memtable_budget_bounds_memory_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 1 << 20;
    let store = Store::open(
        dir.path(),
        opts()
            .memtable_size(64 << 20)
            .memtable_budget(budget)
            .build(),
    )
    .unwrap();
    let lines_per_shard = 4000;
    for id in 1..=40u64 {
        store.create_shard(id, "db").unwrap();
        let body: String = (0..lines_per_shard)
            .map(|i| format!("m,s={id},h=h{} a={i},b={id}i {}\n", i % 50, i + 1))
            .collect();
        write(&store, id, &body);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let st = store.stats();
        assert_eq!(st.memtable_budget, budget as u64);
        if st.memtable_bytes <= budget as u64 {
            assert!(st.budget_freezes > 0, "{st:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for id in [1u64, 17, 40] {
        let got = dump(&store, id, "m");
        let n: usize = got.values().map(|c| c.len()).sum();
        assert_eq!(n, 2 * lines_per_shard, "shard {id}");
    }
    // Everything flushed: the budget holds exactly nothing (no bytes left behind
    // by racing reports).
    for id in 1..=40u64 {
        store.flush_shard(id).unwrap();
    }
    assert_eq!(store.stats().memtable_bytes, 0);
    store.close().unwrap();
    assert_eq!(store.stats().memtable_bytes, 0);
}

/// Waits up to 10 s for `cond`.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_write_cold_shard_is_compacted_into_one_file() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        opts()
            .compaction_trigger(100) // only the cold rule merges here
            .shard_idle_timeout(Duration::from_millis(150))
            .compact_full_write_cold(Duration::from_millis(800))
            .build(),
    )
    .unwrap();
    store.create_shard(1, "db").unwrap();
    for i in 0..3 {
        write(&store, 1, &format!("c,h=a v={i} {i}\nc,h=b v={i} {i}\n"));
        store.flush_shard(1).unwrap();
    }
    write(&store, 1, "c,h=a v=9 9\n"); // left in the memtable
    let before = dump(&store, 1, "c");
    assert_eq!(store.shard_files(1).unwrap().len(), 3);
    // Idle: flushed and closed with four files (stats read closed shards too).
    eventually("the idle shard to close", || {
        store.stats().shards_closed_idle >= 1 && store.stats().shards_open == 0
    });
    assert_eq!(store.stats().files_per_level.iter().sum::<u64>(), 4);
    // Cold: reopened, compacted into one file, and closed again.
    eventually("the cold compaction", || {
        store.stats().files_per_level.iter().sum::<u64>() == 1 && store.stats().shards_open == 0
    });
    assert_eq!(dump(&store, 1, "c"), before);
    // Once is enough: a cold shard with one file is left alone.
    let compactions = store.stats().compactions;
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(store.stats().compactions, compactions);
    // A write warms it up again; after the next cold period it is one file again.
    write(&store, 1, "c,h=c v=1 1\n");
    store.flush_shard(1).unwrap();
    assert_eq!(store.shard_files(1).unwrap().len(), 2);
    eventually("the second cold compaction", || {
        store.stats().files_per_level.iter().sum::<u64>() == 1 && store.stats().shards_open == 0
    });
    assert_eq!(dump(&store, 1, "c").len(), before.len() + 1);
    store.close().unwrap();
}

/// A measurement dropped while a write of it is between validation and the WAL:
/// the write checks its types again, so a later write of another type that the
/// shard acknowledges is never lost to the older type (and vice versa).
#[test]
fn a_drop_racing_a_write_never_costs_an_acknowledged_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path(), opts().build()).unwrap());
    store.create_shard(1, "db").unwrap();
    for i in 0..600i64 {
        write(&store, 1, "r f=0.5 0\n");
        let t = i * 10;
        let a = {
            let store = store.clone();
            std::thread::spawn(move || write(&store, 1, &format!("r f=1.5 {}\n", t + 1)))
        };
        store.drop_measurement(1, "r").unwrap();
        let b = write(&store, 1, &format!("r f=7i {}\n", t + 2));
        let a = a.join().unwrap();
        let got = dump(&store, 1, "r");
        let col = got.get(&("r".to_string(), "f".to_string()));
        let has = |t: i64, v: Value| col.is_some_and(|c| c.get(&t) == Some(&v));
        if b.points_written == 1 {
            assert!(
                has(t + 2, Value::Integer(7)),
                "round {i}: acknowledged int lost: {got:?}"
            );
        }
        if a.points_written == 1 && b.points_written == 1 {
            // Both acknowledged: the float came before the drop, which deleted it.
            assert!(
                !has(t + 1, Value::Float(1.5)),
                "round {i}: two types: {got:?}"
            );
        }
        store.drop_measurement(1, "r").unwrap();
    }
}

/// Compaction copies chunks that are whole and overlap nothing without decoding
/// them (the bytes stay the same), and merges small ones into fuller chunks.
#[test]
fn compaction_copies_whole_chunks_and_merges_small_ones() {
    use sundial_engine::tsfile::TsFile;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        opts()
            .max_points_per_block(100)
            .auto_compaction(false)
            .build(),
    )
    .unwrap();
    store.create_shard(1, "db").unwrap();
    let path = |id: u64| dir.path().join("1/data").join(format!("{id:010}.tsf"));
    let blocks = |id: u64| {
        let f = TsFile::open(&path(id)).unwrap();
        let si = f.series_index("k,h=a").unwrap().unwrap();
        let v = si.fields.iter().find(|x| x.name == "v").unwrap().clone();
        let raw: Vec<Vec<u8>> = v
            .blocks
            .iter()
            .map(|b| {
                f.read_range(b.values.offset, u64::from(b.values.size))
                    .unwrap()
            })
            .collect();
        (v.blocks, raw)
    };
    for (from, to) in [(0, 100), (100, 200), (200, 230), (230, 260)] {
        let lp: String = (from..to)
            .map(|i| format!("k,h=a v={}.25,w={i}i {}\n", i * 7 % 13, i * 10))
            .collect();
        write(&store, 1, &lp);
        store.flush_shard(1).unwrap();
    }
    let before = dump(&store, 1, "k");
    let inputs = store.shard_files(1).unwrap();
    assert_eq!(inputs.len(), 4);
    let (_, first_raw) = blocks(inputs[0].id);
    let (_, second_raw) = blocks(inputs[1].id);
    store.compact_shard(1, true).unwrap();
    let out = store.shard_files(1).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(dump(&store, 1, "k"), before);
    let (metas, raw) = blocks(out[0].id);
    let counts: Vec<u32> = metas.iter().map(|b| b.count).collect();
    assert_eq!(
        counts,
        vec![100, 100, 60],
        "two copied chunks, two small ones merged"
    );
    assert_eq!(
        raw[0], first_raw[0],
        "a whole chunk is copied byte for byte"
    );
    assert_eq!(raw[1], second_raw[0]);
    TsFile::open(&path(out[0].id)).unwrap().verify().unwrap();
    store.close().unwrap();
}

/// Files at the top level keep merging while they are small (under half of
/// `max_compaction_bytes`); large ones are left alone.
#[test]
fn small_files_at_the_top_level_merge() {
    for (cap, want) in [(1u64 << 30, 1usize), (64, 2)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            opts()
                .max_level(1)
                .compaction_trigger(2)
                .max_compaction_bytes(cap)
                .auto_compaction(false)
                .build(),
        )
        .unwrap();
        store.create_shard(1, "db").unwrap();
        for round in 0..2i64 {
            for part in 0..2i64 {
                let t = (round * 2 + part) * 1000;
                write(&store, 1, &format!("k,h=a v=1 {t}\nk,h=b v=2 {}\n", t + 1));
                store.flush_shard(1).unwrap();
            }
            store.compact_shard(1, false).unwrap();
        }
        let files = store.shard_files(1).unwrap();
        assert!(files.iter().all(|f| f.level == 1), "{files:?}");
        assert_eq!(files.len(), want, "cap {cap}: {files:?}");
        assert_eq!(
            dump(&store, 1, "k")
                .values()
                .map(|m| m.len())
                .sum::<usize>(),
            8
        );
        store.close().unwrap();
    }
}

/// A delete is one record in the tombstone log (not a manifest rewrite); it drives
/// a compaction that rewrites the files holding what it hides, so the space comes
/// back, the tombstone goes, and a series whose data is all gone leaves the series
/// list. The manifest never carries tombstones.
#[test]
fn deletes_reclaim_space_and_emptied_series_leave_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let lp: String = (0..2000)
        .map(|i| format!("d,h=a v={i}.5 {i}\nd,h=b v={i} {i}\n"))
        .collect();
    write(&store, 1, &lp);
    store.flush_shard(1).unwrap();
    let size = |store: &Store| -> u64 {
        store
            .shard_files(1)
            .unwrap()
            .iter()
            .map(|f| {
                std::fs::metadata(dir.path().join("1/data").join(format!("{:010}.tsf", f.id)))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum()
    };
    let before = size(&store);
    // Every point of h=a, by time range (not DROP SERIES).
    store
        .delete(1, "d", &TagPredicate::eq("h", "a"), 0, 10_000)
        .unwrap();
    let manifest = std::fs::read(dir.path().join("1/MANIFEST")).unwrap();
    assert!(!String::from_utf8_lossy(&manifest).contains("tombstones"));
    assert!(dir.path().join("1/TOMBSTONES").exists());
    eventually("the purge compaction", || {
        store.tombstone_count(1).unwrap() == 0
    });
    assert!(
        size(&store) < before * 2 / 3,
        "{} of {before} bytes left",
        size(&store)
    );
    assert_eq!(
        store.tag_values(1, "d", "h").unwrap(),
        vec!["b".to_string()]
    );
    let d = dump(&store, 1, "d");
    assert_eq!(d.len(), 1, "{:?}", d.keys().collect::<Vec<_>>());
    // A delete that is only in the log (not compacted yet) survives a restart.
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().auto_compaction(false).build()).unwrap();
    store
        .delete(1, "d", &TagPredicate::eq("h", "b"), 0, 999)
        .unwrap();
    store.flush_shard(1).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().auto_compaction(false).build()).unwrap();
    assert_eq!(store.tombstone_count(1).unwrap(), 1);
    let d = dump(&store, 1, "d");
    assert_eq!(d.values().map(|m| m.len()).sum::<usize>(), 1000);
    store.close().unwrap();
}

/// The shard's series list goes to disk as changes appended to `index.log` after
/// a whole `index.snap`; once the log outgrows the snapshot a whole one replaces
/// both. Every state reopens to the same list.
#[test]
fn the_series_list_is_logged_as_changes_then_rewritten_whole() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("1/index.snap");
    let log = dir.path().join("1/index.log");
    let o = || opts().auto_compaction(false).build();
    let store = Store::open(dir.path(), o()).unwrap();
    store.create_shard(1, "db").unwrap();
    let n = std::cell::Cell::new(0usize);
    let add = |store: &Store, count: usize| {
        let body: String = (n.get()..n.get() + count)
            .map(|i| format!("m,h=s{i} v={i} {i}\n"))
            .collect();
        write(store, 1, &body);
        n.set(n.get() + count);
        store.flush_shard(1).unwrap();
    };
    let keys = |store: &Store| store.series_keys(1, "m", &TagPredicate::All).unwrap().len();
    // A new shard writes a whole (empty) snapshot.
    let first = std::fs::read(&snap).unwrap();
    assert!(!log.exists());
    add(&store, 10);
    add(&store, 10);
    add(&store, 10);
    // Only changes were written: the snapshot is the same, the log holds them.
    assert_eq!(std::fs::read(&snap).unwrap(), first);
    let logged = std::fs::metadata(&log).unwrap().len();
    assert!(logged > 0);
    store
        .delete(1, "m", &TagPredicate::eq("h", "s3"), i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(keys(&store), 29);
    store.close().unwrap();
    // The drop went to the log too (at the latest when the shard closed).
    assert!(std::fs::metadata(&log).unwrap().len() > logged);
    assert_eq!(std::fs::read(&snap).unwrap(), first);
    let store = Store::open(dir.path(), o()).unwrap();
    assert_eq!(keys(&store), 29);
    assert!(!store.recovery_report(1).unwrap().index_rebuilt);
    // Thousands of series a flush: the log passes the snapshot's size (and 64 KiB),
    // and the next write is a whole snapshot, the log gone.
    let mut rewritten = false;
    for _ in 0..20 {
        add(&store, 5000);
        if !log.exists() {
            rewritten = true;
            break;
        }
    }
    assert!(rewritten, "the log was never folded into a snapshot");
    assert_ne!(std::fs::read(&snap).unwrap(), first);
    let total = keys(&store);
    assert_eq!(total, n.get() - 1);
    add(&store, 10);
    store.close().unwrap();
    let store = Store::open(dir.path(), o()).unwrap();
    assert_eq!(keys(&store), total + 10);
    assert!(!store.recovery_report(1).unwrap().index_rebuilt);
    store.close().unwrap();
}

/// A shard's schema stamp changes with its fields and series (what a cached
/// schema would miss) and only then; a reopened shard never repeats one.
#[test]
fn schema_stamps_name_schema_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    write(&store, 1, "m,h=a v=1 1\n");
    let s1 = store.schema_stamp(1).unwrap();
    write(&store, 1, "m,h=a v=2 2\n");
    assert_eq!(store.schema_stamp(1).unwrap(), s1, "points alone");
    write(&store, 1, "m,h=a w=2 3\n");
    let s2 = store.schema_stamp(1).unwrap();
    assert_ne!(s2, s1, "a new field");
    write(&store, 1, "m,h=b,dc=x v=1 4\n");
    let s3 = store.schema_stamp(1).unwrap();
    assert_ne!(s3, s2, "a new series (here with a new tag key)");
    store.drop_measurement(1, "m").unwrap();
    let s4 = store.schema_stamp(1).unwrap();
    assert!(![s1, s2, s3].contains(&s4), "a dropped measurement");
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    let s5 = store.schema_stamp(1).unwrap();
    assert!(![s1, s2, s3, s4].contains(&s5), "reopened");
    assert_ne!(s5, 0, "0 means unchecked");
}
