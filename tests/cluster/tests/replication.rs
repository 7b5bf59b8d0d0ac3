//! Replication, consistency levels and hinted handoff, with real processes: owners
//! are SIGKILLed under load, gateways too, and the stores' own data is audited.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use sundial_cluster_tests::{audit, bin, Cluster};

const T0: i64 = 1_700_000_000_000_000_000;

/// Points of `n` series at time `T0 + round` (one shard group).
fn batch(round: i64, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("cpu,host=h{i} v={round}i {}", T0 + round))
        .collect()
}

/// Every acknowledged line is on all `rf` owners of its shard.
fn assert_replicated(at: &BTreeMap<String, BTreeSet<u64>>, acked: &[String], rf: usize) {
    for l in acked {
        let on = at.get(l).map_or(0, BTreeSet::len);
        assert_eq!(on, rf, "{l} is on {:?}", at.get(l));
    }
}

/// The node ids owning a shard of `db`'s only group, and one node owning one.
fn an_owner(c: &Cluster, db: &str) -> u64 {
    let groups = c.shard_groups(db);
    assert_eq!(groups.len(), 1);
    groups[0].shards[0].owners[0]
}

#[test]
fn with_an_owner_killed_one_succeeds_all_fails_and_handoff_catches_it_up() {
    let mut c = Cluster::start(3, 1);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    let mut acked = Vec::new();
    let first = batch(0, 300);
    assert_eq!(c.write(0, "db=db", first.join("\n")).0, 204);
    acked.extend(first);
    let victim = an_owner(&c, "db");
    let mut killed = false;
    for round in 1..=30 {
        if round == 10 {
            c.store_by_id(victim).proc.kill9();
            killed = true;
        }
        let lines = batch(round, 300);
        let (st, e) = c.write(0, "db=db&consistency=one", lines.join("\n"));
        assert_eq!(st, 204, "round {round} (victim down: {killed}): {e}");
        acked.extend(lines);
    }
    let (st, e) = c.write(0, "db=db&consistency=all", batch(99, 300).join("\n"));
    assert_eq!(st, 500, "{e}");
    assert!(
        e.starts_with("partial write: consistency all not met"),
        "{e}"
    );
    let queued = format!("sundial_hh_queue_records{{node=\"{victim}\"}}");
    assert!(c.metric(0, &queued) > 0.0);

    c.store_by_id(victim).proc.spawn();
    c.wait_for(30, "the queue to drain", || c.metric(0, &queued) == 0.0);
    assert!(c.metric(0, "sundial_hh_delivered_total") > 0.0);
    let at = audit(&mut c);
    assert_replicated(&at, &acked, 2);
}

/// An owner that stops answering (SIGSTOP: its sockets stay open, like a host
/// cut off from the network) does not hold up `consistency=one`: the write is
/// acknowledged once the other owner wrote it, and the silent owner's points
/// are queued for it when its call times out.
#[test]
fn a_silent_owner_does_not_hold_up_consistency_one() {
    let mut c = Cluster::start(2, 0);
    c.add_gateway_with(&["--shard-write-timeout", "2s"]);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    let mut acked = batch(0, 100);
    assert_eq!(c.write(0, "db=db", acked.join("\n")).0, 204);
    let victim = an_owner(&c, "db");
    c.store_by_id(victim).proc.signal("STOP");
    for round in 1..=5 {
        let lines = batch(round, 100);
        let started = std::time::Instant::now();
        let (st, e) = c.write(0, "db=db&consistency=one", lines.join("\n"));
        assert_eq!(st, 204, "round {round}: {e}");
        // Not the 2 s the silent owner's call takes to time out.
        assert!(
            started.elapsed() < std::time::Duration::from_millis(1500),
            "round {round} took {:?}",
            started.elapsed()
        );
        acked.extend(lines);
    }
    let queued = format!("sundial_hh_queue_records{{node=\"{victim}\"}}");
    c.wait_for(10, "hints for the silent owner", || {
        c.metric(0, &queued) >= 5.0
    });
    c.store_by_id(victim).proc.signal("CONT");
    c.wait_for(30, "the queue to drain", || c.metric(0, &queued) == 0.0);
    let at = audit(&mut c);
    assert_replicated(&at, &acked, 2);
}

#[test]
fn a_gateway_killed_with_hints_queued_delivers_them_after_restart() {
    let mut c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    let mut acked = batch(0, 200);
    assert_eq!(c.write(0, "db=db", acked.join("\n")).0, 204);
    let victim = c.stores[1].node_id();
    c.stores[1].proc.kill9();
    for round in 1..=5 {
        let lines = batch(round, 200);
        assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
        acked.extend(lines);
    }
    let queued = format!("sundial_hh_queue_records{{node=\"{victim}\"}}");
    assert!(c.metric(0, &queued) >= 5.0);
    // The page with per-node queue gauges is valid Prometheus text.
    let text = c.metrics_text(0);
    if let Err(e) = sundial_testkit::promtool_check(&text) {
        panic!("/metrics does not pass promtool: {e}\n{text}");
    }
    c.gateways[0].kill9();
    c.stores[1].proc.spawn();
    // Same queue directory: the restarted gateway finds the hints and delivers them.
    c.gateways[0].spawn();
    c.wait_for(30, "the queue to drain", || c.metric(0, &queued) == 0.0);
    let at = audit(&mut c);
    assert_replicated(&at, &acked, 2);
}

/// `sundial-gateway handoff` run with the stopped gateway's flags.
fn handoff(c: &Cluster, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin("sundial-gateway"))
        .arg("handoff")
        .args(c.gateways[0].args())
        .args(extra)
        .env("SUNDIAL_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A gateway retired for good: its queues are reported, and delivered by
/// `sundial-gateway handoff` once their node is back, without the gateway.
#[test]
fn a_retired_gateways_queues_are_reported_and_handed_over() {
    let mut c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    let mut acked = batch(0, 100);
    assert_eq!(c.write(0, "db=db", acked.join("\n")).0, 204);
    let victim = c.stores[1].node_id();
    c.stores[1].proc.kill9();
    for round in 1..=3 {
        let lines = batch(round, 100);
        assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
        acked.extend(lines);
    }
    c.gateways[0].terminate();

    let (ok, report) = handoff(&c, &["--report"]);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("node {victim}: 3 hints")),
        "{report}"
    );
    // The node is still down: what is left is reported and the exit code says so.
    let (ok, out) = handoff(&c, &["--timeout", "1s"]);
    assert!(!ok, "{out}");
    assert!(out.contains("hints are left after 1s"), "{out}");
    assert!(out.contains(&format!("node {victim}: 3 hints")), "{out}");

    c.stores[1].proc.spawn();
    let (ok, out) = handoff(&c, &["--timeout", "60s"]);
    assert!(ok, "{out}");
    assert!(out.contains("delivered 3 hints"), "{out}");
    assert!(out.contains("are empty"), "{out}");
    let at = audit(&mut c);
    assert_replicated(&at, &acked, 2);
}

#[test]
fn quorum_needs_a_majority_and_a_full_queue_answers_503() {
    let mut c = Cluster::start(3, 1);
    c.add_gateway_with(&["--hh-max-size", "20000"]);
    c.query("CREATE DATABASE db WITH REPLICATION 3");
    assert_eq!(c.write(0, "db=db", batch(0, 10).join("\n")).0, 204);
    c.stores[0].proc.kill9();
    let (st, e) = c.write(0, "db=db&consistency=quorum", batch(1, 10).join("\n"));
    assert_eq!(st, 204, "{e}");
    c.stores[1].proc.kill9();
    let (st, e) = c.write(0, "db=db&consistency=quorum", batch(2, 10).join("\n"));
    assert_eq!(st, 500, "{e}");
    assert!(
        e.contains("consistency quorum not met") && e.contains("1 of 3 owners wrote, 2 needed"),
        "{e}"
    );
    // `any` is met by a queue alone... as long as the queue has room.
    let (st, e) = c.write(0, "db=db&consistency=any", batch(3, 10).join("\n"));
    assert_eq!(st, 204, "{e}");
    let big: Vec<String> = (0..2000)
        .map(|i| format!("cpu,host=h{i} v={i}i {}", T0 + 4))
        .collect();
    let (st, e) = c.write(1, "db=db", big.join("\n"));
    assert_eq!(st, 503, "{e}");
    assert!(e.contains("hinted handoff queue is full"), "{e}");
    assert!(c.metric(1, "sundial_hh_refused_full_total") >= 1.0);
}

#[test]
fn hints_past_max_age_are_dropped_and_counted() {
    let mut c = Cluster::start(2, 0);
    c.add_gateway_with(&["--hh-max-age", "1s"]);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    assert_eq!(c.write(0, "db=db", batch(0, 10).join("\n")).0, 204);
    c.stores[1].proc.kill9();
    assert_eq!(c.write(0, "db=db", batch(1, 10).join("\n")).0, 204);
    c.wait_for(20, "the expired hint to be dropped", || {
        c.metric(0, "sundial_hh_dropped_expired_total") >= 1.0
    });
    c.stores[1].proc.spawn();
    let at = audit(&mut c);
    // The expired hint never reached the restarted owner.
    let late = &batch(1, 10)[0];
    assert_eq!(at.get(late).map(BTreeSet::len), Some(1), "{late}");
}
