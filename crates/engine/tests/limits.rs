//! Series limits, the per-database series catalog, shards opened on demand, and the
//! store's resource guards (index memory, open files, free disk).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{dump, opts, write};
use sundial_engine::{Error, Store, TagPredicate};
use sundial_lineproto::{parse_lines, ParseOptions};

fn write_lp(
    store: &Store,
    shard: u64,
    lp: &str,
) -> sundial_engine::Result<sundial_engine::WriteOutcome> {
    let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(shard, &pts)
}

#[test]
fn max_series_per_database_counts_distinct_series_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().series_limits(5, 0).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    store.create_shard(2, "db").unwrap();
    store.create_shard(3, "other").unwrap();
    let body: String = (0..4).map(|i| format!("m,h=h{i} v=1 1\n")).collect();
    assert_eq!(write(&store, 1, &body).points_written, 4);
    // The same series in another shard (another time window) count once.
    assert_eq!(write(&store, 2, &body).points_written, 4);
    // Two new series, two points each: one series fits, the other is dropped whole.
    let out = write(
        &store,
        2,
        "m,h=x v=1 1\nm,h=y v=1 1\nm,h=x v=2 2\nm,h=y v=2 2\n",
    );
    assert_eq!((out.points_written, out.points_dropped), (2, 2));
    assert_eq!(
        out.drop_reasons,
        vec!["max-series-per-database limit exceeded: (5)".to_string()]
    );
    // Known series are still written; another database has its own count.
    assert_eq!(write(&store, 1, "m,h=h0 v=3 3\n").points_written, 1);
    assert_eq!(write(&store, 3, &body).points_written, 4);
    assert_eq!(store.series_count("db").unwrap(), 5);
    assert_eq!(store.stats().series_refused, 1);
    // The limit holds after a restart (the catalog is durable).
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().series_limits(5, 0).build()).unwrap();
    let out = write(&store, 1, "m,h=z v=1 1\n");
    assert_eq!(out.points_dropped, 1);
    assert_eq!(store.series_count("db").unwrap(), 5);
    // 0 disables it.
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().series_limits(0, 0).build()).unwrap();
    assert_eq!(write(&store, 1, "m,h=z v=1 1\n").points_written, 1);
    assert_eq!(store.series_count("db").unwrap(), 6);
}

#[test]
fn max_values_per_tag_uses_influxdbs_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().series_limits(0, 3).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let out = write(
        &store,
        1,
        "cpu,host=a,dc=x v=1 1\ncpu,host=b,dc=x v=1 1\ncpu,host=c,dc=y v=1 1\ncpu,host=d,dc=x v=1 1\ncpu,host=a,dc=y v=1 2\n",
    );
    assert_eq!((out.points_written, out.points_dropped), (4, 1));
    assert_eq!(
        out.drop_reasons,
        vec![
            r#"max-values-per-tag limit exceeded (3/3): measurement="cpu" tag="host" value="d""#
                .to_string()
        ]
    );
    // Existing values stay writable in new combinations; other measurements count apart.
    assert_eq!(
        write(&store, 1, "cpu,host=c,dc=x v=1 3\nmem,host=d v=1 1\n").points_written,
        2
    );
    assert_eq!(store.stats().databases[0].max_tag_values, 3);
}

#[test]
fn dropping_the_last_shard_of_a_series_frees_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().series_limits(3, 0).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    store.create_shard(2, "db").unwrap();
    write(
        &store,
        1,
        "m,h=old1 v=1 1\nm,h=old2 v=1 1\nm,h=both v=1 1\n",
    );
    write(&store, 2, "m,h=both v=1 2\n");
    store.flush_shard(2).unwrap();
    assert_eq!(write(&store, 2, "m,h=new v=1 2\n").points_dropped, 1);
    // Retention drops shard 1: only `both` lives on (in shard 2).
    store.drop_shard(1).unwrap();
    assert_eq!(store.series_count("db").unwrap(), 1);
    assert_eq!(
        write(&store, 2, "m,h=new v=1 3\nm,h=old1 v=2 3\n").points_written,
        2
    );
    assert_eq!(
        store.series_keys(2, "m", &TagPredicate::All).unwrap(),
        vec!["m,h=both", "m,h=new", "m,h=old1"]
    );
    // Closed shards count through their snapshots too.
    store.close().unwrap();
    let store = Store::open(dir.path(), opts().series_limits(3, 0).build()).unwrap();
    store.create_shard(3, "db").unwrap();
    write(&store, 3, "m,h=only3 v=1 1\n");
    store.drop_shard(3).unwrap();
    assert_eq!(store.series_count("db").unwrap(), 3);
    // The last shard of a database takes its catalog along.
    store.drop_shard(2).unwrap();
    assert!(!dir.path().join("_series").join("ddb").exists());
}

#[test]
fn shards_open_on_demand_and_close_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let idle = opts().shard_idle_timeout(Duration::from_millis(300));
    let store = Store::open(dir.path(), idle.clone().build()).unwrap();
    for id in 1..=20 {
        store.create_shard(id, "db").unwrap();
        write(&store, id, &format!("m,s=s{id} v={id} {id}\n"));
    }
    store.close().unwrap();
    // Opening the store opens no shard.
    let store = Store::open(dir.path(), idle.build()).unwrap();
    assert_eq!(store.shard_ids().len(), 20);
    assert!(store.open_shard_ids().is_empty());
    let got = dump(&store, 7, "m");
    assert_eq!(got.len(), 1);
    assert_eq!(store.open_shard_ids(), vec![7]);
    // Idle shards are flushed and closed; their data comes back when used again.
    let deadline = Instant::now() + Duration::from_secs(10);
    // (The counter moves just after the slot closes.)
    while !store.open_shard_ids().is_empty() || store.stats().shards_closed_idle == 0 {
        assert!(Instant::now() < deadline, "idle shard still open");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(store.shard_files(7).unwrap().len() <= 1);
    assert_eq!(dump(&store, 7, "m"), got);
}

#[test]
fn the_open_file_budget_closes_least_recently_used_shards() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 24;
    let store = Store::open(dir.path(), opts().max_open_files(budget).build()).unwrap();
    for id in 1..=60 {
        store.create_shard(id, "db").unwrap();
        write(&store, id, &format!("m v={id} {id}\n"));
        store.flush_shard(id).unwrap();
        let st = store.stats();
        assert!(st.open_files <= budget as u64, "{st:?}");
    }
    for id in (1..=60).rev() {
        let got = dump(&store, id, "m");
        assert_eq!(got.values().next().unwrap().len(), 1, "shard {id}");
        assert!(store.stats().open_files <= budget as u64);
    }
    // A shard in use is never closed under it: an open scan keeps its shard.
    let iter = store
        .scan(1, "m", &TagPredicate::All, None, i64::MIN, i64::MAX)
        .unwrap();
    for id in 2..=60 {
        dump(&store, id, "m");
    }
    assert_eq!(iter.count(), 1);
}

#[test]
fn new_series_are_refused_past_the_index_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        opts()
            .series_limits(0, 0)
            .index_memory_limit(256 << 10)
            .build(),
    )
    .unwrap();
    store.create_shard(1, "db").unwrap();
    let mut refused = None;
    for round in 0..100 {
        let body: String = (0..1000)
            .map(|i| format!("m,h=r{round}_{i} v=1 1\n"))
            .collect();
        match write_lp(&store, 1, &body) {
            Ok(_) => {}
            Err(e) => {
                refused = Some((round, e));
                break;
            }
        }
    }
    let (round, e) = refused.expect("the limit was never reached");
    assert!(matches!(e, Error::IndexMemoryFull { .. }), "{e}");
    assert!(e.is_overload());
    assert!(round > 2, "refused too early: round {round}");
    let st = store.stats();
    assert!(st.index_memory_bytes < 2 * (256 << 10), "{st:?}");
    // Known series are still written.
    assert_eq!(write(&store, 1, "m,h=r0_0 v=2 2\n").points_written, 1);
}

/// Past half the index memory limit, data files drop their per-series summaries
/// (IoTDB's time-index degradation): memory falls, every point still reads back,
/// and writes go on.
#[test]
fn file_summaries_leave_memory_past_half_the_index_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fill = |store: &Store, t: i64| {
        for chunk in 0..4 {
            let body: String = (0..1000)
                .map(|i| format!("m,h=s{chunk}_{i} v={i},w={t}i {t}\n"))
                .collect();
            write_lp(store, 1, &body).unwrap();
        }
        store.flush_shard(1).unwrap();
    };
    let (used, want) = {
        let store = Store::open(dir.path(), opts().series_limits(0, 0).build()).unwrap();
        store.create_shard(1, "db").unwrap();
        for t in 1..=4 {
            fill(&store, t);
        }
        store.close().unwrap();
        // What the structures take when the shard is opened again.
        let store = Store::open(dir.path(), opts().auto_compaction(false).build()).unwrap();
        let want = dump(&store, 1, "m");
        let used = store.stats().index_memory_bytes;
        store.close().unwrap();
        (used, want)
    };
    // Reopened with the same structures above half of the limit, below all of it.
    let store = Store::open(
        dir.path(),
        opts()
            .series_limits(0, 0)
            .auto_compaction(false)
            .index_memory_limit(used as usize * 3 / 2)
            .shard_idle_timeout(Duration::from_millis(400))
            .build(),
    )
    .unwrap();
    assert_eq!(dump(&store, 1, "m"), want);
    write(&store, 1, "m,h=s0_0 v=0,w=0i 0\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.stats().files_degraded == 0 {
        assert!(Instant::now() < deadline, "{:?}", store.stats());
        // Keep the shard in use so the janitor does not close it as idle.
        write(&store, 1, "m,h=s0_0 v=0,w=0i 0\n");
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = store.stats();
    assert!(st.index_memory_bytes < used * 3 / 4, "{used} → {st:?}");
    // Reads load the summaries back from disk while they need them.
    let mut want = want;
    want.get_mut(&("m,h=s0_0".into(), "v".into()))
        .unwrap()
        .insert(0, sundial_engine::Value::Float(0.0));
    want.get_mut(&("m,h=s0_0".into(), "w".into()))
        .unwrap()
        .insert(0, sundial_engine::Value::Integer(0));
    assert_eq!(dump(&store, 1, "m"), want);
    // Writes into known series go on, in and out of order.
    write(&store, 1, "m,h=s1_7 v=9,w=9i 9\nm,h=s1_7 v=2.5 2\n");
    let got = dump(&store, 1, "m");
    let v = &got[&("m,h=s1_7".to_string(), "v".to_string())];
    assert_eq!(v.get(&9), Some(&sundial_engine::Value::Float(9.0)));
    assert_eq!(v.get(&2), Some(&sundial_engine::Value::Float(2.5)));
    assert_eq!(v.len(), 5);
    // A delete's tombstone is retired by compaction even though the files it
    // touches are degraded (their time range alone would keep it alive, and the
    // compaction running again and again).
    store.flush_shard(1).unwrap();
    store
        .delete(1, "m", &TagPredicate::eq("h", "s2_5"), i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(store.tombstone_count(1).unwrap(), 1);
    store.compact_shard(1, false).unwrap();
    assert_eq!(store.tombstone_count(1).unwrap(), 0);
    assert!(!dump(&store, 1, "m").contains_key(&("m,h=s2_5".to_string(), "v".to_string())));
    assert!(store.stats().files_degraded > 0);
}

#[test]
fn writes_stop_before_the_disk_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().disk_free_reserve(u64::MAX / 2).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    let e = write_lp(&store, 1, "m v=1 1\n").unwrap_err();
    assert!(matches!(e, Error::DiskFull { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("writes are refused until space is freed"),
        "{e}"
    );
    let h = store.health();
    assert!(!h.disk_ok());
    assert_eq!(store.stats().writes_refused_disk, 1);
}

#[test]
fn shards_of_an_older_version_learn_their_database() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), opts().build()).unwrap();
        store.create_shard(1, "db").unwrap();
        write(&store, 1, "cpu,host=a v=1 1\ncpu,host=b v=2 2\n");
        store.flush_shard(1).unwrap();
        write(&store, 1, "cpu,host=c v=3 3\n");
        store.close().unwrap();
    }
    // Make it look like a shard of the previous release: no DATABASE file, a
    // key-list index snapshot, no catalog.
    std::fs::remove_file(dir.path().join("1/DATABASE")).unwrap();
    std::fs::remove_dir_all(dir.path().join("_series")).unwrap();
    let mut snap = b"SDIDX001".to_vec();
    let keys = ["cpu,host=a", "cpu,host=b"];
    snap.push(keys.len() as u8);
    for k in keys {
        snap.push(k.len() as u8);
        snap.extend_from_slice(k.as_bytes());
    }
    snap.extend_from_slice(&[1, 3]);
    snap.extend_from_slice(b"cpu");
    snap.extend_from_slice(&[1, 1, b'v', 1]);
    let crc = crc32c(&snap);
    snap.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(dir.path().join("1/index.snap"), snap).unwrap();

    let store = Store::open(dir.path(), opts().build()).unwrap();
    assert_eq!(store.shard_database(1), None);
    assert!(store.measurements(1).is_err());
    store.ensure_shard(1, "db").unwrap();
    assert_eq!(store.shard_database(1).as_deref(), Some("db"));
    assert_eq!(
        store.series_keys(1, "cpu", &TagPredicate::All).unwrap(),
        vec!["cpu,host=a", "cpu,host=b", "cpu,host=c"]
    );
    assert_eq!(dump(&store, 1, "cpu").len(), 3);
    assert!(store.ensure_shard(1, "other").is_err());
}

/// crc32c (Castagnoli), bitwise: the engine's framing of snapshots.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
