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

/// A server holding 200,000 points in `big` (a chunked answer of them one
/// row a line is far more than socket buffers hold, so a client that does not
/// read keeps the query running), with `env` added.
fn server_with_a_long_answer(env: &[(&str, &str)]) -> Server {
    server_with_a_long_answer_through(None, env)
}

/// [`server_with_a_long_answer`], started through a `bash -c` wrapper.
fn server_with_a_long_answer_through(wrapper: Option<&str>, env: &[(&str, &str)]) -> Server {
    let mut all = vec![("SUNDIAL_COORDINATOR_QUERY_MEMORY_LIMIT", "200000")];
    all.extend_from_slice(env);
    let s = Server::start_wrapped(wrapper, &[], &all);
    query(&s, "CREATE DATABASE big");
    for part in 0..4i64 {
        let body: String = (0..50_000i64)
            .map(|i| {
                let n = part * 50_000 + i;
                format!(
                    "cpu,host=h{} v={n} {}\n",
                    n % 10,
                    1_000_000_000 + n * 1_000_000
                )
            })
            .collect();
        let r = client()
            .post(s.url("/write?db=big"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    s
}

/// Starts `SELECT v FROM cpu` chunked a row a line, not reading its body.
fn stalled_select(s: &Server) -> reqwest::blocking::Response {
    let r = client()
        .get(s.url("/query"))
        .query(&[
            ("db", "big"),
            ("q", "SELECT v FROM cpu"),
            ("chunked", "true"),
            ("chunk_size", "1"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

/// The last line of a chunked answer, and the rows of all its lines.
fn last_line_and_rows(r: reqwest::blocking::Response) -> (serde_json::Value, usize) {
    let text = r.text().unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows = lines
        .iter()
        .map(|l| {
            l["results"][0]["series"][0]["values"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    (lines.last().cloned().unwrap_or_default(), rows)
}

#[test]
fn show_queries_lists_a_running_query_and_kill_query_ends_it() {
    let s = server_with_a_long_answer(&[]);
    let stalled = stalled_select(&s);
    let show = || {
        let v = query(&s, "SHOW QUERIES");
        v["results"][0]["series"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    // The SELECT is listed while it runs (and SHOW QUERIES itself).
    let mut qid = None;
    for _ in 0..100 {
        let rows = show();
        assert!(rows
            .iter()
            .any(|r| r[1] == "SHOW QUERIES" && r[4] == "running"));
        if let Some(r) = rows.iter().find(|r| r[1] == "SELECT v FROM cpu") {
            assert_eq!(r[2], "big");
            qid = r[0].as_u64();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let qid = qid.expect("the running SELECT is listed");
    let killed = query(&s, &format!("KILL QUERY {qid}"));
    assert!(killed["results"][0].get("error").is_none(), "{killed}");
    // Its answer ends with InfluxDB's error, short of the 200,000 rows.
    let (last, rows) = last_line_and_rows(stalled);
    assert_eq!(last["results"][0]["error"], "query interrupted", "{last}");
    assert!(rows < 200_000, "{rows}");
    assert!(show().iter().all(|r| r[1] != "SELECT v FROM cpu"));
    let again = query(&s, &format!("KILL QUERY {qid}"));
    assert_eq!(
        again["results"][0]["error"],
        format!("no such query id: {qid}")
    );
}

#[test]
fn a_query_past_its_timeout_ends_with_influxdbs_error() {
    let s = server_with_a_long_answer(&[("SUNDIAL_COORDINATOR_QUERY_TIMEOUT", "300ms")]);
    let stalled = stalled_select(&s);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let (last, rows) = last_line_and_rows(stalled);
    assert_eq!(
        last["results"][0]["error"], "query-timeout limit exceeded",
        "{last}"
    );
    assert!(rows < 200_000, "{rows}");
    // A quick query is not affected.
    let v: serde_json::Value = client()
        .get(s.url("/query"))
        .query(&[("db", "big"), ("q", "SELECT count(v) FROM cpu")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 200_000, "{v}");
}

/// `q` through GET on database `db0`.
fn ask_db0(s: &Server, q: &str) -> serde_json::Value {
    client()
        .get(s.url("/query"))
        .query(&[("db", "db0"), ("q", q)])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// `max-select-buckets`, with the case of InfluxDB's own test
/// (`TestQueryExecutor_ExecuteQuery_MaxSelectBucketsN`): 10 s windows from
/// 00:00:05 to 00:00:35 are four.
#[test]
fn max_select_buckets_answers_influxdbs_error() {
    let s = Server::start_env(&[], &[("SUNDIAL_COORDINATOR_MAX_SELECT_BUCKETS", "3")]);
    query(&s, "CREATE DATABASE db0");
    let r = client()
        .post(s.url("/write?db=db0"))
        .body("cpu value=100 946684800000000000\n")
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let ask = |q: &str| ask_db0(&s, q);
    let v = ask("SELECT count(value) FROM cpu WHERE time >= '2000-01-01T00:00:05Z' AND time < '2000-01-01T00:00:35Z' GROUP BY time(10s)");
    assert_eq!(
        v["results"][0]["error"], "max-select-buckets limit exceeded: (4/3)",
        "{v}"
    );
    // Three windows, a raw query and an open start are not limited.
    for q in [
        "SELECT count(value) FROM cpu WHERE time >= '2000-01-01T00:00:00Z' AND time < '2000-01-01T00:00:30Z' GROUP BY time(10s)",
        "SELECT value FROM cpu WHERE time >= '2000-01-01T00:00:00Z' AND time < '2000-01-02T00:00:00Z'",
        "SELECT count(value) FROM cpu WHERE time < '2000-01-01T00:01:00Z' GROUP BY time(1s)",
    ] {
        let v = ask(q);
        assert!(v["results"][0].get("error").is_none(), "{q}: {v}");
    }
}

/// `max-select-series` with the case of InfluxDB's own test
/// (`TestServer_Query_MaxSelectSeriesN`: four stations, limit 3), and
/// `max-select-point` past its limit — 1.6's texts, its spelling included.
#[test]
fn max_select_series_and_point_answer_influxdbs_errors() {
    let s = Server::start_env(
        &[],
        &[
            ("SUNDIAL_COORDINATOR_MAX_SELECT_SERIES", "3"),
            ("SUNDIAL_COORDINATOR_MAX_SELECT_POINT", "5"),
        ],
    );
    query(&s, "CREATE DATABASE db0");
    let mut body: String = (1..=4)
        .map(|i| format!("air,station=XiaoMaiDao0{i} temperature=1.0 0\n"))
        .collect();
    body.extend((1..=6).map(|t| format!("air,station=XiaoMaiDao01 temperature=2.0 {t}\n")));
    let r = client()
        .post(s.url("/write?db=db0"))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let ask = |q: &str| ask_db0(&s, q);
    let v = ask("SELECT COUNT(temperature) FROM db0.autogen.air");
    assert_eq!(
        v["results"][0]["error"], "max-select-series limit exceeded: (4/3)",
        "{v}"
    );
    let v = ask("SELECT temperature FROM air WHERE station = 'XiaoMaiDao01'");
    assert_eq!(
        v["results"][0]["error"], "max-select-point limit exceeed: (7/5)",
        "{v}"
    );
    // Within both: three series, five points.
    let v = ask("SELECT temperature FROM air WHERE station != 'XiaoMaiDao01'");
    assert_eq!(
        v["results"][0]["series"][0]["values"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{v}"
    );
}

/// `log-queries-after`: a query still running past it is logged, with its
/// text and id (InfluxDB's "Detected slow query").
#[test]
fn a_slow_query_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let wrapper = format!("exec \"$0\" \"$@\" 2>>{}", log.display());
    let s = server_with_a_long_answer_through(
        Some(&wrapper),
        &[("SUNDIAL_COORDINATOR_LOG_QUERIES_AFTER", "300ms")],
    );
    let _r = query(&s, "SELECT count(v) FROM big..cpu");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!before.contains("Detected slow query"), "{before}");
    let r = stalled_select(&s);
    let mut text = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Detected slow query") {
            break;
        }
    }
    let line = text
        .lines()
        .find(|l| l.contains("Detected slow query"))
        .unwrap_or_else(|| panic!("no slow query logged: {text}"));
    assert!(line.contains("SELECT v FROM cpu"), "{line}");
    assert!(line.contains("qid"), "{line}");
    drop(r);
}
