//! Grafana's InfluxQL query editor (the `influxdb` data source of Grafana 7–10,
//! InfluxQL mode) against Sundial and a real InfluxDB 1.6 (Debian's `influxdb`,
//! `make test-deps`), both loaded with the same data (`sundial_testkit::qdata`).
//!
//! The statements are the ones the editor builds (Grafana's
//! `influxql_query_builder.ts` / `query_builder.ts` and `influx_query_model.ts`):
//! retention policies, measurements (with its case-insensitive `(?i)` filter and
//! `LIMIT 100`), tag keys, tag values for a key (with the WHERE of the tags
//! already chosen, `::tag` suffix included), field keys (with a retention
//! policy chosen, too), and the SELECT it builds from them, over an absolute and
//! a `now()`-relative time range.
//!
//! * `grafana_http_flows_match_influxdb_1_6`: `/query` as Grafana sends it
//!   (`db`, `q`, `epoch=ms`; GET, and POST with `q` in the form body), bodies
//!   compared as JSON by `sundial_testkit::qdiff`.
//! * `grafana_flows_through_the_influx_cli`: the same statements through the
//!   `influx` CLI (Debian's `influxdb-client`) in its column, JSON and CSV
//!   formats: stdout, stderr and exit status must be identical.
//!
//! Without `influxd` (or, for the second, `influx`) the tests are skipped with a
//! message, unless `CI` is set.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::Server;
use std::process::Command;
use sundial_testkit::influxd::Influxd;
use sundial_testkit::{qdata, qdiff};

/// 2026-11-01T00:00:00Z (`qdata::T0`) in milliseconds: Grafana's absolute time
/// ranges are `time >= FROMms and time <= TOms`.
const T0_MS: i64 = qdata::T0 / 1_000_000;

/// The statements, in the order a user meets them in the editor.
fn statements() -> Vec<String> {
    let (from, to) = (T0_MS, T0_MS + 3_600_000 - 1);
    let abs = format!("time >= {from}ms and time <= {to}ms");
    let mut s: Vec<String> = [
        // The data source's "Save & test" and the policy selector.
        r#"SHOW RETENTION POLICIES on "diff""#,
        // FROM: the measurement list, then typing in its filter box.
        "SHOW MEASUREMENTS LIMIT 100",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /cp/ LIMIT 100",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)cp/ LIMIT 100",
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)CP/ LIMIT 100",
        r"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)sys\.lo/ LIMIT 100",
        r"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)h2o level/ LIMIT 100",
        // With a WHERE tag already chosen, the measurement list is narrowed.
        r#"SHOW MEASUREMENTS WHERE "host" = 'server03' LIMIT 100"#,
        r#"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)e/ WHERE "host" =~ /^server0[12]$/ LIMIT 100"#,
        // WHERE: tag keys of the measurement (none chosen yet: all of them).
        "SHOW TAG KEYS",
        r#"SHOW TAG KEYS FROM "cpu""#,
        r#"SHOW TAG KEYS FROM "h2o level""#,
        r#"SHOW TAG KEYS FROM "archive"."cpu""#,
        // WHERE: values of the key picked, narrowed by the other conditions.
        r#"SHOW TAG VALUES WITH KEY = "host""#,
        r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host""#,
        r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region" = 'us-west'"#,
        r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region"::tag = 'us-east'"#,
        r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "region" WHERE "host" =~ /^server0[13]$/"#,
        r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region" = 'us-east' AND "host" != 'server02'"#,
        r#"SHOW TAG VALUES FROM "archive"."cpu" WITH KEY = "host""#,
        r#"SHOW TAG VALUES FROM "h2o level" WITH KEY = "location""#,
        r#"SHOW TAG VALUES FROM "events" WITH KEY = "kind" WHERE "host" = 'server02'"#,
        // SELECT: field keys of the measurement.
        r#"SHOW FIELD KEYS FROM "cpu""#,
        r#"SHOW FIELD KEYS FROM "events""#,
        r#"SHOW FIELD KEYS FROM "h2o level""#,
        r#"SHOW FIELD KEYS FROM "archive"."cpu""#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The query the editor then builds: one host, the last hour (the data
    // set's `recent` has points there; `cpu` has none, Grafana shows nothing),
    // and an absolute hour of `cpu`.
    s.extend([
        r#"SELECT mean("value") FROM "recent" WHERE ("host" = 'server01') AND time >= now() - 1h GROUP BY time(1m) fill(null)"#.to_string(),
        r#"SELECT mean("usage_user") FROM "cpu" WHERE ("host" = 'server01') AND time >= now() - 1h GROUP BY time(1m) fill(null)"#.to_string(),
        format!(r#"SELECT mean("usage_user") FROM "cpu" WHERE ("host" = 'server01') AND {abs} GROUP BY time(1m) fill(null)"#),
        format!(r#"SELECT mean("usage_user") FROM "cpu" WHERE ("host"::tag = 'server03') AND {abs} GROUP BY time(1m) fill(null)"#),
        format!(r#"SELECT mean("usage_user") FROM "archive"."cpu" WHERE ("host" = 'server02') AND {abs} GROUP BY time(1m) fill(none)"#),
        format!(r#"SELECT max("usage_system") FROM "cpu" WHERE ("region" = 'us-east') AND {abs} GROUP BY time(10m), "host" fill(null)"#),
        format!(r#"SELECT mean("usage_idle") FROM "cpu" WHERE {abs} GROUP BY time(15m), "host" fill(previous)"#),
    ]);
    s
}

/// The one statement with no data in the range: Grafana's default "last hour"
/// over `cpu`, whose points are a month old (`SELECT … fill(null)` then
/// answers no series at all).
fn answers_nothing(q: &str) -> bool {
    q.contains(r#"FROM "cpu" WHERE ("host" = 'server01') AND time >= now()"#)
}

/// Statements whose answer depends on the moment they run.
fn uses_now(q: &str) -> bool {
    q.contains("now()")
}

/// A `now()`-relative answer can differ when a minute starts between the two
/// requests: such a statement is tried this many times before it counts.
const NOW_TRIES: usize = 3;

/// InfluxDB and Sundial, both loaded with the data set; `None` (skipped) when
/// `influxd` is not installed and CI is not set.
fn loaded_servers() -> Option<(Influxd, Server)> {
    let influx = qdiff::influxd_or_skip()?;
    let sundial = Server::start(&[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let batches = qdata::dataset(now);
    qdiff::load(&influx.url(""), qdata::SETUP, &batches);
    qdiff::load(&sundial.url(""), qdata::SETUP, &batches);
    Some((influx, sundial))
}

fn fail_if_any(label: &str, failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{label}: {} of {total} differ from InfluxDB 1.6:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn grafana_http_flows_match_influxdb_1_6() {
    let Some((influx, sundial)) = loaded_servers() else {
        return;
    };
    let (ib, sb) = (influx.url(""), sundial.url(""));
    // Grafana's parameters: db, q, epoch=ms; GET by default, POST (q in the
    // form body, the rest in the URL) when the data source says so.
    let mut text = String::new();
    for q in statements() {
        let expect = if answers_nothing(&q) {
            "@expect empty\n"
        } else {
            ""
        };
        for method in ["GET", "POST"] {
            text.push_str(&format!(
                "# covers: grafana\n@param epoch=ms\n@method {method}\n{expect}{q}\n\n"
            ));
        }
    }
    let entries = qdiff::parse_corpus(&text, "grafana_flows").unwrap();
    let client = qdiff::client();
    let mut failures = Vec::new();
    for e in &entries {
        let mut last = None;
        for _ in 0..if uses_now(&e.query) { NOW_TRIES } else { 1 } {
            let a = qdiff::fetch(&client, &ib, e, qdiff::DB).unwrap();
            let b = qdiff::fetch(&client, &sb, e, qdiff::DB).unwrap();
            let problem = qdiff::check_expectation(e, &a);
            let mismatch = qdiff::compare(e, &a, &b).err();
            if problem.is_none() && mismatch.is_none() {
                last = None;
                break;
            }
            last = Some(format!(
                "=== {} {}\n{}\n>>> {}\n--- InfluxDB: {} {}\n{}\n--- Sundial: {} {}\n{}\n",
                e.location(),
                e.describe(qdiff::DB),
                e.query,
                problem.or(mismatch).unwrap_or_default(),
                a.status,
                a.content_type,
                qdiff::truncate(a.body.trim_end(), 2048),
                b.status,
                b.content_type,
                qdiff::truncate(b.body.trim_end(), 2048),
            ));
        }
        failures.extend(last);
    }
    fail_if_any("Grafana's /query requests", &failures, entries.len());
}

/// What one `influx` run printed.
#[derive(Debug, PartialEq, Eq)]
struct CliRun {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

fn influx_cli(addr: &str, args: &[&str], q: &str) -> CliRun {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new("influx")
        .args(["-host", host, "-port", port, "-database", qdiff::DB])
        .args(args)
        .args(["-execute", q])
        .output()
        .expect("run influx");
    CliRun {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// True when the `influx` CLI runs; false (the test then skips, saying why)
/// when it is missing and CI is not set.
fn influx_cli_or_skip() -> bool {
    if Command::new("influx").arg("-version").output().is_ok() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !ci,
        "the influx CLI is not installed (CI is set, so this fails): apt-get install influxdb-client"
    );
    eprintln!("SKIPPED: the influx CLI is not installed (apt-get install influxdb-client, or make test-deps)");
    false
}

#[test]
fn grafana_flows_through_the_influx_cli() {
    if !influx_cli_or_skip() {
        return;
    }
    let Some((influx, sundial)) = loaded_servers() else {
        return;
    };
    let formats: [&[&str]; 3] = [&[], &["-format", "json"], &["-format", "csv"]];
    let mut runs = 0;
    let mut failures = Vec::new();
    for q in statements() {
        let mut variants: Vec<Vec<&str>> = formats.iter().map(|f| f.to_vec()).collect();
        if q.starts_with("SELECT") {
            // Times as Grafana asks for them, and as people read them.
            for f in formats {
                variants.push([f, &["-precision", "ms"]].concat());
                variants.push([f, &["-precision", "rfc3339"]].concat());
            }
        }
        for args in variants {
            runs += 1;
            let mut last = None;
            for _ in 0..if uses_now(&q) { NOW_TRIES } else { 1 } {
                let a = influx_cli(&influx.addr, &args, &q);
                let b = influx_cli(&sundial.addr, &args, &q);
                // A statement that fails on InfluxDB, or prints nothing, would
                // compare two errors or two empty outputs.
                let printed = a.stdout.lines().count() >= if args.is_empty() { 3 } else { 1 };
                let broken = a.status != Some(0)
                    || !a.stderr.is_empty()
                    || (!printed && !answers_nothing(&q));
                if a == b && !broken {
                    last = None;
                    break;
                }
                last = Some(format!(
                    "=== influx {} -execute '{q}'{}\n--- InfluxDB: exit {:?}, stderr {:?}\n{}\n--- Sundial: exit {:?}, stderr {:?}\n{}\n",
                    args.join(" "),
                    if broken { "  (fails or prints nothing on InfluxDB)" } else { "" },
                    a.status,
                    a.stderr,
                    qdiff::truncate(&a.stdout, 2048),
                    b.status,
                    b.stderr,
                    qdiff::truncate(&b.stdout, 2048),
                ));
            }
            failures.extend(last);
        }
    }
    fail_if_any("the influx CLI", &failures, runs);
}
