//! Differential test of InfluxQL SELECT: the corpus `tests/query/corpus.influxql`
//! runs against a real InfluxDB 1.6 (Debian's `influxdb`, `make test-deps`) and
//! against Sundial, both loaded with the same data (`sundial_testkit::qdata`), and
//! every answer must match (`sundial_testkit::qdiff` says how they are compared).
//!
//! * `QDIFF_ONLY=<substring>` runs only the entries whose query contains it;
//! * `QDIFF_REPORT=<path>` writes the full report of mismatches there (else it goes
//!   to `qdiff-corpus.influxql.txt` in the system temporary directory);
//! * `QDIFF_DUMP=<path>` writes every entry with InfluxDB's answer there.
//!
//! Without `influxd` the test is skipped with a message, unless `CI` is set.
//! `show_matches_influxdb_1_6` does the same for
//! `tests/query/corpus-show.influxql`, and `delete_matches_influxdb_1_6` for
//! `tests/query/corpus-delete.influxql` (DROP MEASUREMENT, DROP SERIES, DELETE
//! and what they leave; each test has its own InfluxDB and Sundial).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::Server;
use sundial_testkit::{qdata, qdiff};

/// Every label of the coverage list appears in one of the corpora, and every
/// label used is in the list.
fn check_coverage() {
    let list =
        qdiff::parse_coverage(&std::fs::read_to_string(qdiff::query_file("coverage.txt")).unwrap());
    let mut all = qdiff::corpus("corpus.influxql");
    all.extend(qdiff::corpus("corpus-show.influxql"));
    all.extend(qdiff::corpus("corpus-delete.influxql"));
    all.extend(qdiff::corpus("corpus-into.influxql"));
    all.extend(qdiff::corpus("corpus-cq.influxql"));
    if std::env::var("QDIFF_ONLY").is_ok() {
        return;
    }
    let problems = qdiff::check_coverage(&list, &all);
    assert!(problems.is_empty(), "coverage:\n{}", problems.join("\n"));
}

fn run_corpus(name: &str) {
    check_coverage();
    let Some(influx) = qdiff::influxd_or_skip() else {
        return;
    };
    let mut sundial = Server::start(&[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let batches = qdata::dataset(now);
    let (ib, sb) = (influx.url(""), sundial.url(""));
    qdiff::load(&ib, qdata::SETUP, &batches);
    qdiff::load(&sb, qdata::SETUP, &batches);
    let entries = qdiff::corpus(name);
    qdiff::assert_matches(name, &entries, &ib, &sb);
    // Again from data files: a graceful stop flushes the memtables, so reads
    // now decode blocks, and aggregates take whole blocks from their statistics.
    assert!(sundial.terminate().success());
    sundial.spawn();
    let sb = sundial.url("");
    qdiff::assert_matches(&format!("{name}-files"), &entries, &ib, &sb);
}

#[test]
fn select_matches_influxdb_1_6() {
    run_corpus("corpus.influxql");
}

#[test]
fn show_matches_influxdb_1_6() {
    run_corpus("corpus-show.influxql");
}

#[test]
fn delete_matches_influxdb_1_6() {
    run_corpus("corpus-delete.influxql");
}

#[test]
fn into_matches_influxdb_1_6() {
    run_corpus("corpus-into.influxql");
}

#[test]
fn cq_matches_influxdb_1_6() {
    run_corpus("corpus-cq.influxql");
}
