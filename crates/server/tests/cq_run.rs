//! A continuous query run on InfluxDB 1.6's schedule, against the real
//! InfluxDB 1.6.7: the same CQ (`RESAMPLE EVERY 2s FOR 6s`, `GROUP BY
//! time(2s), host`) on both, the same points written to both as time goes by
//! — late ones too, for windows a run already wrote — and the downsampled
//! measurement must be the same on both for every window whose last run is
//! past (the newest windows, and the oldest the first run may or may not have
//! covered, depend on when each server's ticks fall).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{client, Server};
use sundial_testkit::qdiff;

const SEC: i64 = 1_000_000_000;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn post(base: &str, q: &str) -> serde_json::Value {
    client()
        .post(format!("{base}/query"))
        .form(&[("q", q), ("db", "cqdb")])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn write(base: &str, body: &str) {
    let r = client()
        .post(format!("{base}/write?db=cqdb"))
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text());
}

#[test]
fn a_continuous_query_downsamples_as_influxdb_does() {
    let Some(influx) = qdiff::influxd_or_skip() else {
        return;
    };
    let sundial = Server::start(&[]);
    let bases = [influx.url(""), sundial.url("")];
    // The same, its windows aligned in a half-hour zone (2 s windows fall
    // the same there).
    let cqs = [
        "CREATE CONTINUOUS QUERY down ON cqdb RESAMPLE EVERY 2s FOR 6s BEGIN \
         SELECT mean(v) AS mean, count(v) AS n, max(v) INTO cqdb.autogen.down FROM m \
         GROUP BY time(2s), host END",
        "CREATE CONTINUOUS QUERY down_tz ON cqdb RESAMPLE EVERY 2s FOR 6s BEGIN \
         SELECT sum(v) AS total, max(v) INTO cqdb.autogen.down_tz FROM m \
         GROUP BY time(2s), host tz('Asia/Kolkata') END",
    ];
    for b in &bases {
        assert!(post(b, "CREATE DATABASE cqdb")["results"][0]
            .get("error")
            .is_none());
        for cq in cqs {
            let v = post(b, cq);
            assert!(v["results"][0].get("error").is_none(), "{v}");
        }
    }
    let started = now_ns();
    // 14 s of points, four a second per host; every second a late point
    // 3 s back, into a window a run has written already.
    let mut i = 0i64;
    while now_ns() < started + 14 * SEC {
        let t = now_ns();
        let mut body = format!("m,host=a v={i} {t}\nm,host=b v={} {t}\n", 2 * i);
        if i % 4 == 0 {
            body.push_str(&format!("m,host=a v=1000 {}\n", t - 3 * SEC));
        }
        for b in &bases {
            write(b, &body);
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let stopped = now_ns();
    // The last runs covering the last windows.
    std::thread::sleep(Duration::from_secs(9));
    // Windows whose every run is past: after the first run's reach, before
    // the last writes' windows.
    let from = (started / (2 * SEC) + 2) * 2 * SEC;
    let to = (stopped / (2 * SEC) - 1) * 2 * SEC;
    for m in ["down", "down_tz"] {
        let q = format!("SELECT * FROM {m} WHERE time >= {from} AND time < {to} GROUP BY host");
        let answers: Vec<serde_json::Value> = bases
            .iter()
            .map(|b| {
                client()
                    .get(format!("{b}/query"))
                    .query(&[("db", "cqdb"), ("q", q.as_str()), ("epoch", "ns")])
                    .send()
                    .unwrap()
                    .json()
                    .unwrap()
            })
            .collect();
        let (theirs, ours) = (&answers[0], &answers[1]);
        let rows = |v: &serde_json::Value, s: usize| {
            v["results"][0]["series"][s]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        // Enough windows, and late points in them (max 1000 for host a).
        assert!(rows(theirs, 0).len() >= 4, "{theirs}");
        let max = theirs["results"][0]["series"][0]["columns"]
            .as_array()
            .and_then(|c| c.iter().position(|c| c == "max"))
            .unwrap_or_else(|| panic!("no max column: {theirs}"));
        assert!(
            rows(theirs, 0).iter().any(|r| r[max] == 1000),
            "no late point downsampled: {theirs}"
        );
        if let Err(e) = qdiff::compare_json(theirs, ours, "") {
            panic!("{e}\nInfluxDB: {theirs}\nSundial:  {ours}");
        }
    }
    // The CQs are listed on both the same way.
    let show: Vec<serde_json::Value> = bases
        .iter()
        .map(|b| post(b, "SHOW CONTINUOUS QUERIES"))
        .collect();
    assert_eq!(show[0], show[1]);
}
