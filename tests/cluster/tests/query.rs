//! SELECT on a cluster, against the real InfluxDB 1.6.7: the differential
//! corpus through a gateway over three stores (replication 2), again once the
//! stores restarted (their data in files), again with one owner of a shard
//! killed (reads fail over to the other), and a statement over
//! a shard whose owners are all down fails with an error naming the shard —
//! never a silently partial answer.

#![allow(clippy::unwrap_used)]

use sundial_cluster_tests::Cluster;
use sundial_testkit::{qdata, qdiff};

/// The corpus' databases, replicated.
const SETUP_RF2: &str = "CREATE DATABASE diff WITH REPLICATION 2; \
     CREATE RETENTION POLICY archive ON diff DURATION INF REPLICATION 2; \
     CREATE DATABASE diff2 WITH REPLICATION 2";

#[test]
fn select_matches_influxdb_on_a_cluster_with_an_owner_down() {
    let Some(influx) = qdiff::influxd_or_skip() else {
        return;
    };
    let mut c = Cluster::start(3, 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let batches = qdata::dataset(now);
    let (ib, gb) = (influx.url(""), c.url(0, ""));
    qdiff::load(&ib, qdata::SETUP, &batches);
    qdiff::load(&gb, SETUP_RF2, &batches);
    let entries = qdiff::corpus("corpus.influxql");
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

    c.store_by_id(other).proc.kill9();
    let r = qdiff::client()
        .get(c.url(0, "/query"))
        .query(&[("db", "diff"), ("q", "SELECT count(usage_user) FROM cpu")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    let err = v["results"][0]["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with(&format!("shard {}: no owner could be read", shard.id)),
        "{v}"
    );
}
