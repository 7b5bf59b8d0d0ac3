//! DELETE, DROP SERIES and DROP MEASUREMENT on a cluster while an owner is
//! down: the statements succeed, the deletes wait in meta for that owner, and
//! once it is back (its hinted writes replayed too) the deleted points are
//! gone from every owner — audited from the stores' own data — while every
//! point acknowledged after the deletes is on both.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use sundial_cluster_tests::{audit, Cluster};

const T0: i64 = 1_700_000_000_000_000_000;

fn lines(m: &str, hosts: std::ops::Range<usize>, t: i64, v: i64) -> Vec<String> {
    hosts
        .map(|i| format!("{m},host=h{i} v={v}i {}", T0 + t))
        .collect()
}

fn write(c: &Cluster, ls: &[String]) {
    let (st, e) = c.write(0, "db=db&consistency=one", ls.join("\n"));
    assert_eq!(st, 204, "{e}");
}

/// Runs `q` on db `db` through gateway 0; it must answer an empty result.
fn run(c: &Cluster, q: &str) {
    let v: serde_json::Value = sundial_cluster_tests::client()
        .post(c.url(0, "/query"))
        .form(&[("q", q), ("db", "db")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"results":[{"statement_id":0}]}),
        "{q}"
    );
}

#[test]
fn deletes_reach_an_owner_that_was_down_and_what_they_took_never_comes_back() {
    let mut c = Cluster::start(2, 1);
    run(&c, "CREATE DATABASE db WITH REPLICATION 2");
    let mut kept: Vec<String> = Vec::new();
    let mut gone: Vec<String> = Vec::new();

    // Before the outage: on both owners.
    let cpu1 = lines("cpu", 0..10, 1, 1);
    let mem1 = lines("mem", 0..5, 1, 1);
    let disk1 = lines("disk", 0..3, 1, 1);
    for ls in [&cpu1, &mem1, &disk1] {
        write(&c, ls);
    }

    let victim = c.stores[1].node_id();
    c.stores[1].proc.kill9();
    // Written while it is down: queued for it, before the deletes.
    let cpu2 = lines("cpu", 0..10, 2, 2);
    let cpu3 = lines("cpu", 0..10, 3, 3);
    let mem2 = lines("mem", 0..5, 2, 2);
    let disk2 = lines("disk", 0..3, 2, 2);
    for ls in [&cpu2, &cpu3, &mem2, &disk2] {
        write(&c, ls);
    }

    // The deletes, the victim still down.
    run(
        &c,
        &format!(
            "DELETE FROM cpu WHERE host =~ /^h[0-4]$/ AND time <= {}",
            T0 + 2
        ),
    );
    run(&c, "DROP SERIES FROM mem WHERE host = 'h1'");
    run(&c, "DROP MEASUREMENT disk");
    let waiting = c.with_meta(async |m| m.snapshot().pending_deletes_of(victim).len());
    assert!(waiting >= 3, "{waiting} deletes wait for node {victim}");

    for ls in [&cpu1, &cpu2] {
        for l in ls.iter() {
            let host: usize = l["cpu,host=h".len()..l.find(' ').unwrap()].parse().unwrap();
            if host < 5 {
                gone.push(l.clone());
            } else {
                kept.push(l.clone());
            }
        }
    }
    kept.extend(cpu3.iter().cloned());
    for l in mem1.iter().chain(&mem2) {
        if l.starts_with("mem,host=h1 ") {
            gone.push(l.clone());
        } else {
            kept.push(l.clone());
        }
    }
    gone.extend(disk1.iter().chain(&disk2).cloned());

    // Acknowledged after the deletes (the victim still down): they stay, even
    // where the deletes covered the same series and times.
    let after = [
        lines("cpu", 0..2, 1, 7),
        lines("mem", 1..2, 4, 7),
        lines("disk", 0..1, 4, 7),
    ]
    .concat();
    write(&c, &after);
    kept.extend(after.iter().cloned());
    // The overwritten values of cpu h0/h1 at T0+1 were deleted, then written
    // again with v=7: only the new ones count.
    let key_and_time = |l: &str| {
        let (series, rest) = l.split_once(' ').unwrap();
        (
            series.to_string(),
            rest.rsplit(' ').next().unwrap().to_string(),
        )
    };
    let rewritten: BTreeSet<(String, String)> = after.iter().map(|a| key_and_time(a)).collect();
    gone.retain(|g| !rewritten.contains(&key_and_time(g)));

    c.stores[1].proc.spawn();
    let queued = format!("sundial_hh_queue_records{{node=\"{victim}\"}}");
    c.wait_for(60, "the hints delivered and the deletes applied", || {
        c.metric(0, &queued) == 0.0
            && c.with_meta(async |m| m.snapshot().pending_deletes_of(victim).is_empty())
    });
    // Through the gateway: what the deletes left.
    let v = c.query("SHOW MEASUREMENTS ON db");
    assert_eq!(
        v["results"][0]["series"][0]["values"],
        serde_json::json!([["cpu"], ["disk"], ["mem"]]),
        "{v}"
    );

    let at = audit(&mut c);
    for l in &kept {
        assert_eq!(
            at.get(l).map_or(0, BTreeSet::len),
            2,
            "{l} is on {:?}",
            at.get(l)
        );
    }
    for l in &gone {
        assert!(
            !at.contains_key(l),
            "deleted {l} came back on {:?}",
            at.get(l)
        );
    }
    let expected: BTreeSet<&String> = kept.iter().collect();
    let extra: Vec<&String> = at.keys().filter(|l| !expected.contains(l)).collect();
    assert!(
        extra.is_empty(),
        "points nobody wrote or that were deleted: {extra:?}"
    );
}
