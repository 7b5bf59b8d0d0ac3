//! SELECT's memory bound on the real server: a statement that would hold more
//! data than `[coordinator] query-memory-limit` ends with a clear error, the
//! server keeps answering, and a statement within the bound is unaffected.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, query, Server};

/// A server whose statements may hold 200 kB, with 20,000 points of `cpu`
/// (`v` = 0…19,999 over hosts h0…h9, a millisecond apart from 1 s, one
/// shard): 320 kB of 8-byte values and 8-byte times.
fn server_with_points() -> Server {
    let s = Server::start_env(&[], &[("SUNDIAL_COORDINATOR_QUERY_MEMORY_LIMIT", "200000")]);
    query(&s, "CREATE DATABASE m");
    let body: String = (0..20_000i64)
        .map(|i| {
            let t = 1_000_000_000 + i * 1_000_000;
            format!("cpu,host=h{} v={i} {t}\n", i % 10)
        })
        .collect();
    let r = client()
        .post(s.url("/write?db=m"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    s
}

#[test]
fn a_query_past_its_memory_limit_fails_clearly_and_the_server_goes_on() {
    let s = server_with_points();

    let ask = |q: &str| {
        let r = client()
            .get(s.url("/query"))
            .query(&[("db", "m"), ("q", q)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<serde_json::Value>().unwrap()
    };
    let v = ask("SELECT median(v) FROM cpu");
    let err = v["results"][0]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("query needs more than 200000 bytes of memory (query-memory-limit)"),
        "{v}"
    );
    // A narrower statement fits, and the server still answers.
    let v = ask("SELECT median(v) FROM cpu WHERE host = 'h3'");
    // h3 holds 3, 13, …, 19993: the median is between 9993 and 10003.
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 9998.0, "{v}");
}

#[test]
fn a_raw_answer_larger_than_the_limit_streams_in_chunks() {
    let s = server_with_points();
    let get = |params: &[(&str, &str)]| {
        let r = client()
            .get(s.url("/query"))
            .query(&[("db", "m")])
            .query(params)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().unwrap()
    };

    // Chunked, the whole answer comes: read a slice at a time, each within
    // the limit, written out as it is read.
    let text = get(&[
        ("q", "SELECT v FROM cpu"),
        ("chunked", "true"),
        ("chunk_size", "5000"),
    ]);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{}", &text[..200.min(text.len())]);
    let mut values = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        assert_eq!(
            l["results"][0]["partial"].as_bool(),
            (!last).then_some(true)
        );
        let rows = l["results"][0]["series"][0]["values"].as_array().unwrap();
        assert_eq!(rows.len(), 5000);
        values.extend(rows.iter().map(|r| r[1].as_f64().unwrap()));
    }
    assert_eq!(values, (0..20_000).map(f64::from).collect::<Vec<f64>>());

    // Held whole, the same answer is more than the limit: a clear error.
    let whole: serde_json::Value =
        serde_json::from_str(&get(&[("q", "SELECT v FROM cpu")])).unwrap();
    let err = whole["results"][0]["error"].as_str().unwrap_or_default();
    assert!(err.contains("(query-memory-limit)"), "{whole}");

    // LIMIT stops reading once it has its rows: no limit reached.
    let v: serde_json::Value = serde_json::from_str(&get(&[(
        "q",
        "SELECT v FROM cpu ORDER BY time DESC LIMIT 2 OFFSET 1",
    )]))
    .unwrap();
    assert_eq!(
        v["results"][0]["series"][0]["values"],
        serde_json::json!([
            ["1970-01-01T00:00:20.998Z", 19998],
            ["1970-01-01T00:00:20.997Z", 19997]
        ]),
        "{v}"
    );
}
