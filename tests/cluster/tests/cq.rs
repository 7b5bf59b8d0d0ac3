//! Continuous queries on a cluster: one gateway at a time runs them (meta's
//! lease; each gateway's `sundial_cq_…` metrics show whether it holds it and
//! how many runs it made), and when it goes away another takes over — the
//! downsampled measurement keeps growing, read through either gateway.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sundial_cluster_tests::Cluster;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn ask(c: &Cluster, gw: usize, q: &str) -> serde_json::Value {
    sundial_cluster_tests::client()
        .post(c.url(gw, "/query"))
        .form(&[("q", q), ("db", "db"), ("epoch", "ns")])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Windows of `down` written so far, newest start (ns), read through `gw`.
fn newest_window(c: &Cluster, gw: usize) -> Option<i64> {
    let v = ask(c, gw, "SELECT last(n) FROM down");
    v["results"][0]["series"][0]["values"][0][0].as_i64()
}

#[test]
fn one_gateway_runs_continuous_queries_and_another_takes_over() {
    let mut c = Cluster::start(2, 2);
    let v = ask(&c, 0, "CREATE DATABASE db WITH REPLICATION 2");
    assert!(v["results"][0].get("error").is_none(), "{v}");
    let v = ask(
        &c,
        0,
        "CREATE CONTINUOUS QUERY down ON db BEGIN SELECT count(v) AS n INTO db.autogen.down FROM m GROUP BY time(1s) END",
    );
    assert!(v["results"][0].get("error").is_none(), "{v}");
    let writing = |c: &Cluster, gw: usize, secs: u64| {
        let until = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            let (st, e) = c.write(gw, "db=db", format!("m v=1 {}", now_ns()));
            assert_eq!(st, 204, "{e}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    writing(&c, 1, 4);
    c.wait_for(10, "a gateway to run the continuous query", || {
        newest_window(&c, 1).is_some()
    });
    // Exactly one gateway holds the lease and has run the CQ; the other
    // has never run it.
    let runs = |c: &Cluster, gw: usize| c.metric(gw, "sundial_cq_query_ok_total");
    let holds = |c: &Cluster, gw: usize| c.metric(gw, "sundial_cq_lease_held") == 1.0;
    let holder = (0..2)
        .find(|&g| holds(&c, g))
        .expect("a gateway holds the lease");
    let standby = 1 - holder;
    assert!(runs(&c, holder) > 0.0, "{}", c.metrics_text(holder));
    assert!(!holds(&c, standby), "{}", c.metrics_text(standby));
    assert_eq!(runs(&c, standby), 0.0, "{}", c.metrics_text(standby));
    assert_eq!(c.metric(holder, "sundial_cq_query_fail_total"), 0.0);
    writing(&c, standby, 2);
    assert_eq!(runs(&c, standby), 0.0, "{}", c.metrics_text(standby));
    c.gateways[holder].kill9();
    let before = now_ns();
    // Its lease lapses (10 s), the other gateway runs them from then on: 1.6
    // does not go back over intervals missed meanwhile, so points keep coming.
    c.wait_for(
        40,
        "windows written after the first gateway went away",
        || {
            let (st, e) = c.write(standby, "db=db", format!("m v=1 {}", now_ns()));
            assert_eq!(st, 204, "{e}");
            std::thread::sleep(Duration::from_millis(100));
            newest_window(&c, standby).is_some_and(|t| t > before)
        },
    );
    assert!(holds(&c, standby), "{}", c.metrics_text(standby));
    assert!(runs(&c, standby) > 0.0, "{}", c.metrics_text(standby));
    // Each window once, counted whole: 10 points a second.
    let v = ask(
        &c,
        standby,
        &format!("SELECT n FROM down WHERE time > {before}"),
    );
    let counts: Vec<i64> = v["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_i64().unwrap())
        .collect();
    assert!(
        !counts.is_empty() && counts.iter().all(|&n| n > 0 && n <= 11),
        "{v}"
    );
}
