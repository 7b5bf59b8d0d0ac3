//! Shard ownership from meta's point of view: stores create the shards meta
//! assigns them and drop the ones it no longer does; concurrent gateways agree on
//! one shard group; writes go on from cached meta while etcd is down.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use sundial_cluster_tests::Cluster;

const T0: i64 = 1_700_000_000_000_000_000;

fn lines(n: usize, t: i64) -> String {
    (0..n)
        .map(|i| format!("cpu,host=h{i} v={i}i {t}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn stores_create_assigned_shards_and_drop_the_ones_meta_no_longer_gives_them() {
    let c = Cluster::start(2, 1);
    c.query("CREATE DATABASE a");
    c.query("CREATE DATABASE b");
    // A group for the future, made in meta alone: its owners create its shards
    // before any write reaches them.
    let future = sundial_meta::now_ns() + 3_600_000_000_000;
    let g = c.with_meta(async |m| m.create_shard_group("a", "", future).await.unwrap());
    for s in &c.stores {
        let want: BTreeSet<u64> = g
            .shards
            .iter()
            .filter(|sh| sh.owners.contains(&s.node_id()))
            .map(|sh| sh.id)
            .collect();
        assert!(!want.is_empty());
        c.wait_for(10, "assigned shards to be created", || {
            want.is_subset(&s.shard_dirs())
        });
    }
    assert_eq!(c.write(0, "db=b", lines(100, T0)).0, 204);
    let b_shards: BTreeSet<u64> = c
        .shard_groups("b")
        .iter()
        .flat_map(|g| g.shard_ids())
        .collect();
    // Dropping a database drops its shards on every store, and nothing else.
    c.query("DROP DATABASE a");
    for s in &c.stores {
        c.wait_for(10, "the dropped database's shards to go", || {
            s.shard_dirs().iter().all(|id| b_shards.contains(id))
        });
    }
    let left: BTreeSet<u64> = c.stores.iter().flat_map(|s| s.shard_dirs()).collect();
    assert_eq!(left, b_shards);
}

#[test]
fn two_gateways_writing_a_new_window_at_once_make_one_shard_group() {
    let c = Cluster::start(2, 2);
    c.query("CREATE DATABASE db");
    for round in 0..5 {
        let t = T0 + round * 7 * 24 * 3_600_000_000_000;
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| c.write(0, "db=db", lines(50, t)));
            let b = s.spawn(|| c.write(1, "db=db", lines(50, t + 1)));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!((a.0, b.0), (204, 204), "{a:?} {b:?}");
        let groups = c.shard_groups("db");
        assert_eq!(groups.len() as i64, round + 1, "{groups:?}");
    }
}

#[test]
fn with_etcd_down_writes_to_existing_groups_are_still_acknowledged() {
    let mut c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    assert_eq!(c.write(0, "db=db", lines(100, T0)).0, 204);
    c.etcd.kill();
    for i in 1..=5 {
        let (st, e) = c.write(0, "db=db", lines(100, T0 + i));
        assert_eq!(st, 204, "write {i} with etcd down: {e}");
    }
    // A new time window needs meta: it fails clearly, and works again with etcd.
    let later = T0 + 30 * 24 * 3_600_000_000_000;
    let (st, _) = c.write(0, "db=db", lines(10, later));
    assert_ne!(st, 204);
    c.etcd.restart();
    c.wait_for(30, "writes to a new window to work again", || {
        c.write(0, "db=db", lines(10, later)).0 == 204
    });
}

#[test]
fn a_store_that_joins_serves_shards_from_the_next_group_on() {
    let mut c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db");
    assert_eq!(c.write(0, "db=db", lines(200, T0)).0, 204);
    let i = c.add_store();
    let joined = c.stores[i].node_id();
    // The existing group keeps its owners; the next window's group counts the new
    // store among the live ones and gives it shards.
    let next = T0 + 7 * 24 * 3_600_000_000_000;
    c.wait_for(10, "the new store to count as live", || {
        c.with_meta(async |m| m.live_nodes().iter().any(|n| n.id == joined))
    });
    assert_eq!(c.write(0, "db=db", lines(200, next)).0, 204);
    let groups = c.shard_groups("db");
    assert_eq!(groups.len(), 2);
    let owners = |g: &sundial_meta::ShardGroupInfo| -> BTreeSet<u64> {
        g.shards.iter().flat_map(|s| s.owners.clone()).collect()
    };
    assert!(!owners(&groups[0]).contains(&joined));
    assert!(owners(&groups[1]).contains(&joined), "{groups:?}");
    assert_eq!(groups[1].shards.len(), 3);
    c.wait_for(10, "the new store to hold its shard", || {
        !c.stores[i].shard_dirs().is_empty()
    });
}
