//! `sundial-ctl` against a running cluster: nodes, shards and their owners, and a
//! shard read back from each of its owners over the streaming `ReadShard` call.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::process::Command;

use sundial_cluster_tests::{bin, Cluster, SECRET};

fn ctl(c: &Cluster, secret: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("sundial-ctl"))
        .arg("--meta")
        .arg(c.meta.endpoint())
        .arg("--shared-secret")
        .arg(secret)
        .args(args)
        .env("SUNDIAL_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn ctl_lists_nodes_and_shards_and_reads_a_shard_from_each_owner() {
    let c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    let lines: Vec<String> = (0..25_000)
        .map(|i| {
            format!(
                "cpu,host=h{} v={i}i {}",
                i % 700,
                1_700_000_000_000_000_000i64 + i
            )
        })
        .collect();
    assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);

    let (ok, nodes, err) = ctl(&c, SECRET, &["nodes"]);
    assert!(ok, "{err}");
    for s in &c.stores {
        let row = nodes
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&s.node_id().to_string()))
            .unwrap_or_else(|| panic!("node {} missing: {nodes}", s.node_id()));
        assert!(row.contains(&s.proc.addr) && row.ends_with("true"), "{row}");
    }

    let groups = c.shard_groups("db");
    let shard = &groups[0].shards[0];
    let (ok, shards, err) = ctl(&c, SECRET, &["shards", "--database", "db"]);
    assert!(ok, "{err}");
    let row = shards
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&shard.id.to_string()))
        .unwrap();
    let owners: Vec<String> = shard.owners.iter().map(u64::to_string).collect();
    assert!(row.ends_with(&owners.join(",")), "{row}");

    // More than one ReadShard message (10,000 points each), from both owners.
    let want: BTreeSet<&str> = lines.iter().map(String::as_str).collect();
    for owner in &shard.owners {
        let (ok, got, err) = ctl(
            &c,
            SECRET,
            &[
                "read-shard",
                &shard.id.to_string(),
                "--node",
                &owner.to_string(),
            ],
        );
        assert!(ok, "{err}");
        let got: BTreeSet<&str> = got.lines().collect();
        assert_eq!(got, want, "node {owner}");
    }
    let (ok, _, err) = ctl(&c, "wrong", &["read-shard", &shard.id.to_string()]);
    assert!(!ok);
    assert!(err.contains("cluster secret"), "{err}");
}

#[test]
fn a_shard_copied_to_a_new_owner_holds_exactly_its_sources_points() {
    let mut c = Cluster::start(3, 1);
    c.query("CREATE DATABASE db");
    let lines: Vec<String> = (0..30_000)
        .map(|i| {
            format!(
                "m,host=h{} v={i}i {}",
                i % 900,
                1_700_000_000_000_000_000i64 + i
            )
        })
        .collect();
    assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
    let shard = c.shard_groups("db")[0].shards[0].clone();
    assert_eq!(shard.owners.len(), 1);
    let from = shard.owners[0];
    let to = c
        .stores
        .iter()
        .map(|s| s.node_id())
        .find(|id| *id != from)
        .unwrap();
    let (ok, out, err) = ctl(
        &c,
        SECRET,
        &[
            "copy-shard",
            &shard.id.to_string(),
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("copied "), "{out}");
    let now = c.shard_groups("db")[0].shards[0].owners.clone();
    assert_eq!(now, vec![from, to]);
    // Later writes to a series of the shard reach both owners.
    let group = &c.shard_groups("db")[0];
    let host = (0..900)
        .find(|i| {
            let key = format!("m,host=h{i}");
            group
                .shard_for(sundial_lineproto::fnv64a(key.as_bytes()))
                .map(|s| s.id)
                == Some(shard.id)
        })
        .unwrap();
    let late = format!(
        "m,host=h{host} v=1i {}",
        1_700_000_000_000_000_000i64 + 99_999
    );
    assert_eq!(c.write(0, "db=db", late.clone()).0, 204);
    for s in &mut c.stores {
        s.proc.terminate();
    }
    let shard_lines = |id: u64| -> BTreeSet<String> {
        let s = c.stores.iter().find(|s| s.node_id() == id).unwrap();
        s.export()
            .remove(&shard.id)
            .map(|(_, l)| l.into_iter().collect())
            .unwrap_or_default()
    };
    let (a, b) = (shard_lines(from), shard_lines(to));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert!(b.contains(&late));
}

#[test]
fn removing_a_node_moves_its_shards_with_their_points_first() {
    let mut c = Cluster::start(3, 1);
    c.query("CREATE DATABASE db");
    let lines: Vec<String> = (0..9000)
        .map(|i| {
            format!(
                "m,host=h{} v={i}i {}",
                i % 300,
                1_700_000_000_000_000_000i64 + i
            )
        })
        .collect();
    assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
    let gone = c.stores[0].node_id();
    let before = c.shard_groups("db")[0].shards.clone();
    let moved: Vec<u64> = before
        .iter()
        .filter(|s| s.owners.contains(&gone))
        .map(|s| s.id)
        .collect();
    assert!(!moved.is_empty());
    let (ok, out, err) = ctl(&c, SECRET, &["remove-node", &gone.to_string()]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("node {gone} removed")), "{out}");
    let after = c.shard_groups("db")[0].shards.clone();
    assert!(after
        .iter()
        .all(|s| !s.owners.contains(&gone) && s.owners.len() == 1));
    let (_, nodes, _) = ctl(&c, SECRET, &["nodes"]);
    assert!(
        !nodes
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&gone.to_string())),
        "{nodes}"
    );
    // Writes go on, to the new owners.
    assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
    for s in &mut c.stores {
        s.proc.terminate();
    }
    // What each moved shard must hold: the lines meta routes to it.
    let group = &c.shard_groups("db")[0];
    let routed = |id: u64| -> BTreeSet<&String> {
        lines
            .iter()
            .filter(|l| {
                let key = l.split(' ').next().unwrap();
                group
                    .shard_for(sundial_lineproto::fnv64a(key.as_bytes()))
                    .map(|s| s.id)
                    == Some(id)
            })
            .collect()
    };
    for id in moved {
        let new_owner = after.iter().find(|s| s.id == id).unwrap().owners[0];
        let now = c
            .stores
            .iter()
            .find(|s| s.node_id() == new_owner)
            .unwrap()
            .export();
        let got: BTreeSet<&String> = now
            .get(&id)
            .map(|(_, l)| l.iter().collect())
            .unwrap_or_default();
        let want = routed(id);
        assert!(!want.is_empty());
        assert_eq!(got, want, "shard {id} on node {new_owner}");
    }
}
