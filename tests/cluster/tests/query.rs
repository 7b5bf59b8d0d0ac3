//! SELECT on a cluster, against the real InfluxDB 1.6.7: the differential
//! corpus through a gateway over three stores (replication 2), again once the
//! stores restarted (their data in files), again with one owner of a shard
//! killed (reads fail over to the other; SELECT … INTO then writes around
//! it), and a statement over
//! a shard whose owners are all down fails with an error naming the shard —
//! never a silently partial answer.

#![allow(clippy::unwrap_used)]

use sundial_cluster_tests::Cluster;
use sundial_testkit::{qdata, qdiff};

/// The corpus' databases, replicated.
const SETUP_RF2: &str = "CREATE DATABASE diff WITH REPLICATION 2; \
     CREATE RETENTION POLICY archive ON diff DURATION INF REPLICATION 2; \
     CREATE RETENTION POLICY hourly ON diff DURATION INF REPLICATION 2 SHARD DURATION 1h; \
     CREATE DATABASE diff2 WITH REPLICATION 2";

/// A real InfluxDB and a cluster of three stores (replication 2), both
/// loaded with the corpus' data; `None` without `influxd` (outside CI).
fn loaded() -> Option<(sundial_testkit::influxd::Influxd, Cluster)> {
    let influx = qdiff::influxd_or_skip()?;
    let c = Cluster::start(3, 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let batches = qdata::dataset(now);
    qdiff::load(&influx.url(""), qdata::SETUP, &batches);
    qdiff::load(&c.url(0, ""), SETUP_RF2, &batches);
    Some((influx, c))
}

#[test]
fn select_matches_influxdb_on_a_cluster_with_an_owner_down() {
    let Some((influx, mut c)) = loaded() else {
        return;
    };
    let (ib, gb) = (influx.url(""), c.url(0, ""));
    let mut entries = qdiff::corpus("corpus.influxql");
    // SHOW statements too, but the policies: here they are replicated.
    entries.extend(
        qdiff::corpus("corpus-show.influxql")
            .into_iter()
            .filter(|e| !e.query.contains("RETENTION POLICIES")),
    );
    qdiff::assert_matches("cluster", &entries, &ib, &gb);

    // Again from the stores' data files (a graceful stop flushes memtables):
    // aggregates come back as partials built from block statistics.
    for s in &mut c.stores {
        s.proc.terminate();
        s.proc.spawn();
    }
    c.wait_for(30, "stores registered again", || {
        qdiff::client()
            .get(c.url(0, "/query"))
            .query(&[("db", "diff"), ("q", "SELECT count(usage_user) FROM cpu")])
            .send()
            .ok()
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .is_some_and(|v| v["results"][0]["series"].is_array())
    });
    qdiff::assert_matches("cluster-files", &entries, &ib, &gb);

    // The shard holding the corpus' main day, and its two owners.
    let group = c
        .shard_groups("diff")
        .into_iter()
        .find(|g| g.start <= qdata::T0 && qdata::T0 < g.end)
        .expect("a shard group holding T0");
    let shard = group.shards[0].clone();
    assert_eq!(shard.owners.len(), 2, "{shard:?}");

    // The owner the gateway reads this shard from first (owners are tried from
    // a place that depends on the shard id) goes down.
    let first = (shard.id as usize) % shard.owners.len();
    let (gone, other) = (shard.owners[first], shard.owners[1 - first]);
    c.store_by_id(gone).proc.kill9();
    qdiff::assert_matches("cluster-owner-down", &entries, &ib, &gb);
    // SELECT … INTO, its writes through the cluster's write path (hinted
    // for the owner that is down), read back from the other owners.
    let into = qdiff::corpus("corpus-into.influxql");
    qdiff::assert_matches("cluster-into-owner-down", &into, &ib, &gb);
    // CREATE / SHOW / DROP CONTINUOUS QUERY through a gateway (meta's).
    let cqs = qdiff::corpus("corpus-cq.influxql");
    qdiff::assert_matches("cluster-cq", &cqs, &ib, &gb);

    c.store_by_id(other).proc.kill9();
    let r = qdiff::client()
        .get(c.url(0, "/query"))
        .query(&[("db", "diff"), ("q", "SELECT count(usage_user) FROM cpu")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    let err = v["results"][0]["error"].as_str().unwrap_or_default();
    // The error names a shard the statement needs whose owners are both down
    // (the main day's, or another the two nodes share).
    let dead: Vec<u64> = c
        .shard_groups("diff")
        .into_iter()
        .flat_map(|g| g.shards)
        .filter(|s| s.owners.iter().all(|o| *o == gone || *o == other))
        .map(|s| s.id)
        .collect();
    assert!(dead.contains(&shard.id), "{dead:?}");
    assert!(
        dead.iter()
            .any(|id| err.starts_with(&format!("shard {id}: no owner could be read"))),
        "{v}"
    );
}

/// Gateway 0 caches shard schemas; writes through gateway 1 add a field, a
/// series with a new tag key and a field only one shard has. Every statement
/// still sees them at once: a read that finds its shard's schema changed has
/// the statement planned again, and a name a cached schema lacks is looked up
/// afresh.
#[test]
fn cached_schemas_never_hide_what_was_written_since() {
    let c = Cluster::start(3, 2);
    c.query("CREATE DATABASE s WITH REPLICATION 2");
    let w = |body: &str| {
        let (st, e) = c.write(1, "db=s&precision=s", body.to_string());
        assert_eq!(st, 204, "{e}");
    };
    let rows = |q: &str| -> serde_json::Value {
        let v = c.query(q);
        assert!(v["results"][0]["error"].is_null(), "{q}: {v}");
        v["results"][0]["series"][0].clone()
    };
    let values_of = |q: &str, want: serde_json::Value| {
        let s = rows(q);
        assert_eq!(s["values"], want, "{q}: {s}");
    };
    let fetches = || c.metric(0, "sundial_query_schema_fetches_total");
    let hits = || c.metric(0, "sundial_query_schema_cache_hits_total");

    w("m,h=a v=1 1700000000");
    assert_eq!(
        rows("SELECT * FROM s.autogen.m")["columns"],
        serde_json::json!(["time", "h", "v"])
    );
    let before = fetches();
    assert_eq!(rows("SELECT v FROM s.autogen.m")["values"][0][1], 1.0);
    assert_eq!(
        fetches(),
        before,
        "the second statement asks no store for the schema"
    );
    assert!(hits() >= 1.0);

    // A new field: the wildcard's read finds the stamp changed and plans again.
    w("m,h=a w=2 1700000001");
    let s = rows("SELECT * FROM s.autogen.m");
    assert_eq!(
        s["columns"],
        serde_json::json!(["time", "h", "v", "w"]),
        "{s}"
    );
    assert!(c.metric(0, "sundial_query_schema_stale_total") >= 1.0);

    // A series with a new tag key, named in the condition.
    w("m,h=b,dc=x v=3 1700000002");
    values_of(
        "SELECT v FROM s.autogen.m WHERE dc = 'x'",
        serde_json::json!([["2023-11-14T22:13:22Z", 3]]),
    );
    let s = rows("SELECT v, dc FROM s.autogen.m WHERE time >= 1700000002s");
    assert_eq!(s["values"][0][2], "x", "{s}");

    // A new field of a cached shard, named: with no field of the statement
    // in the cached schema there would be no read to tell.
    w("m,h=a q=7 1700000003");
    values_of(
        "SELECT q FROM s.autogen.m WHERE time <= 1700000010s",
        serde_json::json!([["2023-11-14T22:13:23Z", 7]]),
    );

    // A field only a later shard group holds.
    w("m,h=a z=5 1800000000");
    values_of(
        "SELECT z FROM s.autogen.m",
        serde_json::json!([["2027-01-15T08:00:00Z", 5]]),
    );
}

/// `[coordinator] query-memory-limit` on a gateway bounds what a statement
/// reads from the stores: past it the statement ends with the limit's error
/// (a store stops its read there), a raw answer asked chunked streams in
/// slices instead, and the gateway goes on answering.
#[test]
fn a_cluster_query_past_its_memory_limit_fails_clearly() {
    let mut c = Cluster::start(3, 1);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.toml");
    std::fs::write(&conf, "[coordinator]\nquery-memory-limit = 200000\n").unwrap();
    let small = c.add_gateway_with(&["-c", conf.to_str().unwrap()]);
    c.query("CREATE DATABASE big WITH REPLICATION 2");
    // 20,000 points of one series: 320 kB of columns, over the limit.
    let body: String = (0..20_000)
        .map(|i| format!("m,h=a v={i} {}\n", 1_700_000_000 + i))
        .collect();
    let (st, e) = c.write(0, "db=big&precision=s", body);
    assert_eq!(st, 204, "{e}");
    let ask = |q: &str| -> serde_json::Value {
        sundial_testkit::qdiff::client()
            .get(c.url(small, "/query"))
            .query(&[("db", "big"), ("q", q)])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    for q in ["SELECT median(v) FROM m", "SELECT v FROM m"] {
        let v = ask(q);
        let err = v["results"][0]["error"].as_str().unwrap_or_default();
        assert!(
            err.contains("query needs more than 200000 bytes of memory (query-memory-limit)"),
            "{q}: {v}"
        );
    }
    // Chunked, the raw answer streams: the stores' reads stop at the slice
    // budget, the gateway reads the range in smaller slices.
    let text = sundial_testkit::qdiff::client()
        .get(c.url(small, "/query"))
        .query(&[
            ("db", "big"),
            ("q", "SELECT v FROM m"),
            ("chunked", "true"),
            ("chunk_size", "5000"),
        ])
        .send()
        .unwrap()
        .text()
        .unwrap();
    let mut values = Vec::new();
    for line in text.lines() {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        let rows = l["results"][0]["series"][0]["values"].as_array().cloned();
        let rows = rows.unwrap_or_else(|| panic!("{line}"));
        values.extend(rows.iter().map(|r| r[1].as_i64().unwrap()));
    }
    assert_eq!(values, (0..20_000).collect::<Vec<i64>>());
    let v = ask("SELECT v FROM m WHERE time < 1700000010s");
    assert_eq!(
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len),
        Some(10),
        "{v}"
    );
}

/// DROP MEASUREMENT, DROP SERIES and DELETE on a cluster against InfluxDB
/// 1.6.7: the delete corpus with an owner of the main shard down (its deletes
/// wait in meta while reads fail over), then again once that owner is back
/// and has caught up, with the other owner down — so what is read comes from
/// the node that applied the deletes late.
#[test]
fn deletes_match_influxdb_on_a_cluster_with_an_owner_down() {
    let Some((influx, mut c)) = loaded() else {
        return;
    };
    let (ib, gb) = (influx.url(""), c.url(0, ""));
    let entries: Vec<_> = qdiff::corpus("corpus-delete.influxql")
        .into_iter()
        .filter(|e| !e.query.contains("RETENTION POLICIES"))
        .collect();
    let group = c
        .shard_groups("diff")
        .into_iter()
        .find(|g| g.start <= qdata::T0 && qdata::T0 < g.end)
        .expect("a shard group holding T0");
    let owners = group.shards[0].owners.clone();
    assert_eq!(owners.len(), 2, "{owners:?}");
    let (late, other) = (owners[0], owners[1]);
    c.store_by_id(late).proc.kill9();
    qdiff::assert_matches("cluster-delete-owner-down", &entries, &ib, &gb);
    let waiting = c.with_meta(async |m| m.snapshot().pending_deletes_of(late).len());
    assert!(waiting > 0, "deletes wait in meta for node {late}");

    c.store_by_id(late).proc.spawn();
    c.wait_for(60, "the deletes applied by the node that was down", || {
        c.with_meta(async |m| m.snapshot().pending_deletes_of(late).is_empty())
    });
    c.store_by_id(other).proc.kill9();
    qdiff::assert_matches("cluster-delete-caught-up", &entries, &ib, &gb);
}
