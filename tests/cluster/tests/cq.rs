//! Continuous queries on a cluster: one gateway at a time runs them (meta's
//! lease), and when it goes away another takes over — the downsampled
//! measurement keeps growing, read through either gateway.

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
    // Gateway 0 goes away (it may or may not be the one running them).
    c.gateways[0].kill9();
    let before = now_ns();
    // Its lease lapses (10 s), another gateway runs them from then on: 1.6
    // does not go back over intervals missed meanwhile, so points keep coming.
    c.wait_for(
        40,
        "windows written after the first gateway went away",
        || {
            let (st, e) = c.write(1, "db=db", format!("m v=1 {}", now_ns()));
            assert_eq!(st, 204, "{e}");
            std::thread::sleep(Duration::from_millis(100));
            newest_window(&c, 1).is_some_and(|t| t > before)
        },
    );
    // Each window once, counted whole: 10 points a second.
    let v = ask(&c, 1, &format!("SELECT n FROM down WHERE time > {before}"));
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
