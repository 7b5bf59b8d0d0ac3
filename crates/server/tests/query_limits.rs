//! SELECT's memory bound on the real server: a statement that would hold more
//! data than `[coordinator] query-memory-limit` ends with a clear error, the
//! server keeps answering, and a statement within the bound is unaffected.

#![allow(clippy::unwrap_used)]

mod common;

use common::{client, query, Server};

#[test]
fn a_query_past_its_memory_limit_fails_clearly_and_the_server_goes_on() {
    let s = Server::start_env(&[], &[("SUNDIAL_COORDINATOR_QUERY_MEMORY_LIMIT", "200000")]);
    query(&s, "CREATE DATABASE m");
    // 20,000 points of 8-byte values and 8-byte times: 320 kB of columns.
    let body: String = (0..20_000)
        .map(|i| format!("cpu,host=h{} v={i} {}\n", i % 10, 1_000_000_000 + i))
        .collect();
    let r = client()
        .post(s.url("/write?db=m"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);

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
