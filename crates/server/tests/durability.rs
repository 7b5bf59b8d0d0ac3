//! Writes end to end, checked on disk: what the real `sundial` binary keeps
//! through SIGKILL and SIGTERM (read back with `sundial export`), extreme
//! timestamps, backfills over many shard groups, bodies larger than a parse
//! chunk, and the shards of dropped databases.

#![allow(clippy::unwrap_used)]

mod common;

use common::{error_of, export, now_s, query, write, Server};
use serde_json::json;

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut s = Server::start(&[]);
    query(&s, "CREATE DATABASE dur");
    let t0 = now_s() - 100;
    let mut expected = Vec::new();
    for batch in 0..20 {
        let mut body = String::new();
        for i in 0..50 {
            let n = batch * 50 + i;
            let line = format!(
                "m,host=h{} f={n}.5,i={n}i,s=\"v{n}\",b=true {}",
                n % 7,
                t0 + n
            );
            body.push_str(&line);
            body.push('\n');
            expected.push(line);
        }
        assert_eq!(write(&s, "db=dur&precision=s", body).status(), 204);
    }
    s.kill9();
    let dump = export(s.data_dir(), "dur");
    let got: Vec<String> = dump
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.to_string())
        .collect();
    // Exported times are in ns; compare on canonical lines.
    let canon = |l: &str| {
        let b = sundial_lineproto::parse_lines(
            l.as_bytes(),
            &sundial_lineproto::ParseOptions::new(sundial_lineproto::Precision::Second, 0),
        );
        b.get(0).to_owned_point()
    };
    let mut want: Vec<_> = expected.iter().map(|l| canon(l)).collect();
    let mut have: Vec<_> = got
        .iter()
        .map(|l| {
            let b = sundial_lineproto::parse_lines(
                l.as_bytes(),
                &sundial_lineproto::ParseOptions::new(sundial_lineproto::Precision::Nanosecond, 0),
            );
            let mut p = b.get(0).to_owned_point();
            p.timestamp /= 1_000_000_000;
            p.fields.sort_by(|a, b| a.0.cmp(&b.0));
            p
        })
        .collect();
    for w in &mut want {
        w.timestamp /= 1_000_000_000;
        w.fields.sort_by(|a, b| a.0.cmp(&b.0));
    }
    want.sort_by_key(|p| (p.timestamp, p.series_key()));
    have.sort_by_key(|p| (p.timestamp, p.series_key()));
    assert_eq!(have.len(), want.len());
    assert_eq!(have, want);
    // And the restarted server has them too.
    s.spawn();
    let v = query(&s, "SHOW DATABASES");
    assert_eq!(v["results"][0]["series"][0]["values"], json!([["dur"]]));
}

/// The first and last times line protocol allows. The group of the first used to be
/// computed with an overflowing subtraction and landed in 2262, so its points were
/// refused forever.
#[test]
fn extreme_timestamps_are_stored() {
    let mut s = Server::start(&[]);
    query(&s, "CREATE DATABASE x");
    let body = "m v=1 -9223372036854775806
m v=2 9223372036854775806
m v=3 0
";
    assert_eq!(write(&s, "db=x", body).status(), 204);
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "x");
    for line in body.lines() {
        assert!(dump.contains(line), "{line:?} missing from {dump}");
    }
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let mut s = Server::start(&[]);
    query(&s, "CREATE DATABASE g");
    assert_eq!(write(&s, "db=g", "m v=1 1").status(), 204);
    let st = s.terminate();
    assert!(st.success(), "{st:?}");
    let dump = export(s.data_dir(), "g");
    assert!(dump.contains("m v=1 1\n"), "{dump}");
}

/// One request backfilling 400 weeks, out of order: 400 shard groups made on the
/// way, every point stored.
#[test]
fn one_backfill_request_over_hundreds_of_shard_groups() {
    let mut s = Server::start_env(
        &[],
        &[("SUNDIAL_COORDINATOR_MAX_SHARD_GROUPS_PER_WRITE", "500")],
    );
    query(&s, "CREATE DATABASE bf");
    let week = 7 * 24 * 3600;
    let mut weeks: Vec<i64> = (0..400).collect();
    // A fixed shuffle: odd weeks backwards, then even weeks forwards.
    weeks.sort_by_key(|w| if w % 2 == 1 { -w } else { 1000 + w });
    let body: String = weeks
        .iter()
        .map(|w| format!("m,w={w} v={w} {}\n", 1_000_000_000 + w * week))
        .collect();
    assert_eq!(write(&s, "db=bf&precision=s", body).status(), 204);
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "bf");
    for w in weeks {
        let line = format!(
            "m,w={w} v={w} {}\n",
            (1_000_000_000 + w * week) * 1_000_000_000
        );
        assert!(dump.contains(&line), "{line:?} missing");
    }
}

/// DROP DATABASE removes its shards from disk (the reconciler, within seconds);
/// the shards of other databases, including one made a moment ago, stay.
#[test]
fn dropped_databases_lose_their_shards_and_no_other() {
    let mut s = Server::start(&[]);
    query(&s, "CREATE DATABASE gone; CREATE DATABASE kept");
    assert_eq!(write(&s, "db=gone", "m v=1 1").status(), 204);
    assert_eq!(write(&s, "db=kept", "m v=1 1").status(), 204);
    let store = s.data_dir().join("store");
    let shards = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&store)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<u64>().is_ok())
            .collect();
        v.sort();
        v
    };
    assert_eq!(shards().len(), 2, "{:?}", shards());
    query(&s, "DROP DATABASE gone");
    // Keep creating shards for `kept` meanwhile (a new week each time).
    let week = 7 * 24 * 3600;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut w = 1;
    while shards().len() != w {
        assert!(std::time::Instant::now() < deadline, "{:?}", shards());
        let body = format!("m v={w} {}", 1_000_000_000 + w as i64 * week);
        assert_eq!(write(&s, "db=kept&precision=s", body).status(), 204);
        w += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "kept");
    assert_eq!(dump.matches("m v=").count(), w, "{dump}");
}

/// A body of more points than one parse chunk (50,000): parsed and written a
/// chunk at a time, every good point stored, bad lines counted across chunks,
/// line numbers those of the whole body.
#[test]
fn a_body_larger_than_a_chunk_is_written_whole() {
    let mut s = Server::start(&[]);
    query(&s, "CREATE DATABASE big");
    let n = 120_000;
    let bad_at = [1, 60_000, n];
    let mut body = String::new();
    for i in 1..=n {
        if bad_at.contains(&i) {
            body.push_str(&format!("bad line {i}\n"));
        } else {
            body.push_str(&format!("m,k={} v={i} {i}\n", i % 7));
        }
    }
    let (st, e, _) = error_of(write(&s, "db=big", body));
    assert_eq!(st, 400);
    assert!(
        e.starts_with("partial write: unable to parse 'bad line 1': "),
        "{e}"
    );
    assert!(e.contains("unable to parse 'bad line 60000'"), "{e}");
    assert!(e.ends_with(" dropped=3"), "{e}");
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "big");
    assert_eq!(dump.matches("m,k=").count(), n - bad_at.len());
    for i in [2, 49_999, 50_001, 59_999, 100_002, n - 1] {
        let line = format!("m,k={} v={i} {i}\n", i % 7);
        assert!(dump.contains(&line), "{line:?} missing");
    }
}
