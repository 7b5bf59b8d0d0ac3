//! What a query touches, seen through the engine's read counters on the real
//! server: a time range and a tag condition read only the shards and series
//! that can hold matching data, and an aggregate over whole blocks takes them
//! from their statistics — it decodes none.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, metric, query, Server};

const WEEK: i64 = 7 * 86_400_000_000_000;
/// A Thursday: shard groups of a week start on Thursdays (the Unix epoch was one).
const T0: i64 = 1_700_092_800_000_000_000;
const STEP: i64 = 10_000_000_000;
const POINTS: i64 = 20_000;

fn counters(s: &Server) -> (f64, f64, f64) {
    (
        metric(s, "sundial_engine_query_series_read_total"),
        metric(s, "sundial_engine_query_blocks_decoded_total"),
        metric(s, "sundial_engine_query_blocks_from_stats_total"),
    )
}

fn ask(s: &Server, q: &str) -> serde_json::Value {
    let r = client()
        .get(s.url("/query"))
        .query(&[("db", "p"), ("q", q)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

#[test]
fn reads_touch_only_what_can_match_and_whole_blocks_are_not_decoded() {
    let mut s = Server::start(&[]);
    query(&s, "CREATE DATABASE p");
    // Four series in each of three weekly shard groups, 20,000 points each.
    for week in 0..3 {
        let mut body = String::new();
        for host in ["a", "b", "c", "d"] {
            for i in 0..POINTS {
                let t = T0 + week * WEEK + i * STEP;
                body.push_str(&format!("cpu,host={host} v={}i {t}\n", i % 100));
            }
        }
        let r = client()
            .post(s.url("/write?db=p"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    // Into data files.
    assert!(s.terminate().success());
    s.spawn();

    // One host, one week: one series of one shard; the blocks at the range's
    // two ends are decoded, the others come from their statistics.
    let (r0, d0, s0) = counters(&s);
    let (from, to) = (T0 + WEEK + 1_000 * STEP, T0 + WEEK + 19_000 * STEP);
    let v = ask(
        &s,
        &format!("SELECT count(v), sum(v), max(v) FROM cpu WHERE host = 'b' AND time >= {from} AND time < {to}"),
    );
    let row = &v["results"][0]["series"][0]["values"][0];
    assert_eq!(row[1], 18_000, "{v}");
    assert_eq!(
        row[2],
        (0..18_000).map(|i| (1_000 + i) % 100).sum::<i64>(),
        "{v}"
    );
    assert_eq!(row[3], 99, "{v}");
    let (r1, d1, s1) = counters(&s);
    assert_eq!(r1 - r0, 1.0, "series read");
    assert!(d1 - d0 <= 2.0, "blocks decoded: {}", d1 - d0);
    assert!(s1 - s0 >= 1.0, "blocks from statistics: {}", s1 - s0);

    // Everything, no time range: every block is whole, none is decoded.
    let v = ask(
        &s,
        "SELECT count(v), min(v), mean(v) FROM cpu GROUP BY host",
    );
    for k in 0..4 {
        let row = &v["results"][0]["series"][k]["values"][0];
        assert_eq!(row[1], 3 * POINTS, "{v}");
        assert_eq!(row[2], 0, "{v}");
        assert_eq!(row[3], 49.5, "{v}");
    }
    let (r2, d2, s2) = counters(&s);
    assert_eq!(r2 - r1, 12.0, "series read: 4 series in 3 shards");
    assert_eq!(d2 - d1, 0.0, "no block decoded");
    assert!(s2 - s1 >= 12.0, "blocks from statistics: {}", s2 - s1);

    // A raw read of the same range decodes what it reads, and only that shard.
    let v = ask(
        &s,
        &format!("SELECT v FROM cpu WHERE host = 'b' AND time >= {from} AND time < {to} LIMIT 1"),
    );
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 0, "{v}");
    let (r3, d3, _) = counters(&s);
    assert_eq!(r3 - r2, 1.0);
    assert!(d3 - d2 >= 1.0);
}
