//! The HTTP API end to end: the real `sundial` binary, a real HTTP client, and
//! InfluxDB 1.x's status codes and bodies.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{client, error_of, export, metrics_text, now_s, query, write, Server};
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use std::io::Write;

/// A write to `db` that sends its headers and 7 of its 100 body bytes, then stalls.
fn stalled_write(s: &Server) -> std::net::TcpStream {
    let mut slow = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        slow,
        "POST /write?db=db HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ncpu v=1"
    )
    .unwrap();
    slow.flush().unwrap();
    slow
}

#[test]
fn ping_health_metrics_and_common_headers() {
    let s = Server::start(&[]);
    let r = client().get(s.url("/ping")).send().unwrap();
    assert_eq!(r.status(), 204);
    for h in ["X-Influxdb-Version", "X-Influxdb-Build", "Request-Id"] {
        assert!(r.headers().contains_key(h), "missing {h}");
    }
    let r = client().head(s.url("/ping")).send().unwrap();
    assert_eq!(r.status(), 204);
    let r = client().get(s.url("/ping?verbose=true")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().unwrap()["version"].is_string());
    let h: Value = client()
        .get(s.url("/health"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(h["status"], "pass");
    let r = client()
        .request(reqwest::Method::OPTIONS, s.url("/write"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().contains_key("Access-Control-Allow-Methods"));
    // Two requests get two ids.
    let a = client().get(s.url("/ping")).send().unwrap();
    let b = client().get(s.url("/ping")).send().unwrap();
    assert_ne!(a.headers()["Request-Id"], b.headers()["Request-Id"]);

    query(&s, "CREATE DATABASE m");
    assert_eq!(write(&s, "db=m", "cpu v=1").status(), 204);
    let text = metrics_text(&s);
    assert!(
        text.contains("sundial_http_write_requests_total 1"),
        "{text}"
    );
    assert!(
        text.contains("sundial_http_points_written_ok_total 1"),
        "{text}"
    );
    assert!(
        text.contains("sundial_engine_values_written_total 1"),
        "{text}"
    );
    // Latencies: the write's request, and the fsync it waited for.
    assert!(
        text.contains(
            "sundial_http_request_duration_seconds_count{route=\"/write\",method=\"POST\",status=\"204\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("sundial_engine_wal_fsync_duration_seconds_count 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sundial_engine_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 1\n"),
        "{text}"
    );
    // Prometheus can read it (and its naming rules hold).
    if let Err(e) = sundial_testkit::promtool_check(&text) {
        panic!("/metrics does not pass promtool: {e}\n{text}");
    }
}

/// `[data] metrics-enabled = false`: the engine stops counting, and its metrics
/// leave `/metrics` (the HTTP ones stay).
#[test]
fn engine_metrics_can_be_turned_off() {
    let s = Server::start_env(&[], &[("SUNDIAL_DATA_METRICS_ENABLED", "false")]);
    query(&s, "CREATE DATABASE m");
    assert_eq!(write(&s, "db=m", "cpu v=1").status(), 204);
    let text = metrics_text(&s);
    assert!(!text.contains("sundial_engine_"), "{text}");
    assert!(
        text.contains("sundial_http_points_written_ok_total 1\n"),
        "{text}"
    );
}

#[test]
fn ddl_through_query() {
    let s = Server::start(&[]);
    let v = query(
        &s,
        "CREATE DATABASE db1; CREATE DATABASE \"db 2\"; SHOW DATABASES",
    );
    assert_eq!(v["results"][0], json!({"statement_id": 0}));
    assert_eq!(
        v["results"][2]["series"][0]["values"],
        json!([["db 2"], ["db1"]])
    );
    let v = query(
        &s,
        "CREATE RETENTION POLICY week ON db1 DURATION 7d REPLICATION 1 DEFAULT; SHOW RETENTION POLICIES ON db1",
    );
    assert_eq!(
        v["results"][1]["series"][0]["columns"],
        json!([
            "name",
            "duration",
            "shardGroupDuration",
            "replicaN",
            "default"
        ])
    );
    assert_eq!(
        v["results"][1]["series"][0]["values"],
        json!([
            ["autogen", "0s", "168h0m0s", 1, false],
            ["week", "168h0m0s", "24h0m0s", 1, true]
        ])
    );
    let v = query(
        &s,
        "CREATE RETENTION POLICY short ON db1 DURATION 30m REPLICATION 1",
    );
    assert_eq!(
        v["results"][0]["error"],
        "retention policy duration must be at least 1h0m0s"
    );
    let v = query(&s, "DROP DATABASE db1; SHOW DATABASES");
    assert_eq!(v["results"][1]["series"][0]["values"], json!([["db 2"]]));
    // Parse errors are a 400 with InfluxDB's text.
    let r = client()
        .get(s.url("/query?q=CREATE%20DATABSE%20x"))
        .send()
        .unwrap();
    let (st, e, _) = error_of(r);
    assert_eq!(st, 400);
    assert!(e.starts_with("error parsing query: found DATABSE"), "{e}");
    let (st, e, _) = error_of(client().get(s.url("/query")).send().unwrap());
    assert_eq!((st, e.as_str()), (400, "missing required parameter \"q\""));
    // SELECT runs: without a database it says so, as InfluxDB does.
    let v = query(&s, "SELECT * FROM cpu");
    assert_eq!(
        v["results"][0],
        serde_json::json!({"statement_id": 0, "error": "database name required"}),
        "{v}"
    );
}

#[test]
fn write_status_codes_and_bodies() {
    let s = Server::start(&[]);
    query(&s, "CREATE DATABASE db");
    let (st, e, h) = error_of(write(&s, "", "cpu v=1"));
    assert_eq!((st, e.as_str()), (400, "database is required"));
    assert_eq!(h.as_deref(), Some("database is required"));
    let (st, e, _) = error_of(write(&s, "db=nope", "cpu v=1"));
    assert_eq!((st, e.as_str()), (404, "database not found: \"nope\""));
    let (st, e, _) = error_of(write(&s, "db=db&precision=x", "cpu v=1"));
    assert_eq!(
        (st, e.as_str()),
        (400, "invalid precision \"x\" (use n, u, ms, s, m or h)")
    );
    let (st, e, _) = error_of(write(&s, "db=db&consistency=most", "cpu v=1"));
    assert_eq!((st, e.as_str()), (400, "invalid consistency level"));
    // Every line bad: the parse errors, nothing written.
    let (st, e, _) = error_of(write(&s, "db=db", "cpu v=oops\ncpu\n"));
    assert_eq!(st, 400);
    assert_eq!(
        e,
        "unable to parse 'cpu v=oops': invalid boolean\nunable to parse 'cpu': missing fields"
    );
    // Some lines bad: the good ones are written, the count of the rest reported.
    let t = now_s();
    let body = format!("cpu,h=a v=1 {t}\ncpu v=bad {t}\ncpu,h=b v=2 {t}\nbad\n");
    let (st, e, _) = error_of(write(&s, "db=db&precision=s", body));
    assert_eq!(st, 400);
    assert!(
        e.starts_with("partial write: unable to parse 'cpu v=bad"),
        "{e}"
    );
    assert!(e.ends_with(" dropped=2"), "{e}");
    // Field type conflict: the rest of the batch is written.
    let body = format!("cpu,h=c v=\"str\" {t}\ncpu,h=d v=4 {t}");
    let (st, e, _) = error_of(write(&s, "db=db&precision=s", body));
    assert_eq!(st, 400);
    assert!(
        e.contains("field type conflict: input field \"v\" on measurement \"cpu\" is type string, already exists as type float"),
        "{e}"
    );
    assert!(e.ends_with("dropped=1"), "{e}");
    // Points older than the retention policy keeps are dropped and counted.
    query(
        &s,
        "CREATE RETENTION POLICY hour ON db DURATION 1h REPLICATION 1",
    );
    let old = t - 3 * 3600;
    let body = format!("cpu v=1 {old}\ncpu v=2 {t}");
    let (st, e, _) = error_of(write(&s, "db=db&rp=hour&precision=s", body));
    assert_eq!(
        (st, e.as_str()),
        (
            400,
            "partial write: points beyond retention policy dropped=1"
        )
    );
    // A repeated parameter: the first wins, as in InfluxDB (Go's Query().Get).
    assert_eq!(write(&s, "db=db&db=nope", "cpu v=1").status(), 204);
    let (st, e, _) = error_of(write(&s, "db=nope&db=db", "cpu v=1"));
    assert_eq!((st, e.as_str()), (404, "database not found: \"nope\""));
    // Success, an empty body, and comments only: 204.
    assert_eq!(write(&s, "db=db", "cpu v=1").status(), 204);
    assert_eq!(write(&s, "db=db", "").status(), 204);
    assert_eq!(write(&s, "db=db", "# nothing\n\n").status(), 204);
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_body_size_and_bombs() {
    // A small body limit, set through the environment.
    let s = Server::start_env(&[], &[("SUNDIAL_HTTP_MAX_BODY_SIZE", "100000")]);
    query(&s, "CREATE DATABASE db");
    let gzpost = |body: Vec<u8>| {
        client()
            .post(s.url("/write?db=db"))
            .header("Content-Encoding", "gzip")
            .body(body)
            .send()
            .unwrap()
    };
    assert_eq!(gzpost(gz(b"cpu v=1\ncpu v=2\n")).status(), 204);
    // Plain body over the limit.
    let big = "cpu v=1\n".repeat(20_000);
    let (st, e, _) = error_of(write(&s, "db=db", big.clone()));
    assert_eq!((st, e.as_str()), (413, "Request Entity Too Large"));
    // A small gzip body that inflates past the limit: also 413.
    let bomb = gz(&vec![b'#'; 50 << 20]);
    assert!(bomb.len() < 100_000);
    let (st, e, _) = error_of(gzpost(bomb));
    assert_eq!((st, e.as_str()), (413, "Request Entity Too Large"));
    // Not gzip at all.
    let (st, _, _) = error_of(gzpost(b"this is not gzip".to_vec()));
    assert_eq!(st, 400);
    // A query body over the limit is 413 as well.
    let q = format!("q=SHOW DATABASES{}", " ".repeat(200_000));
    let r = client()
        .post(s.url("/query"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(q)
        .send()
        .unwrap();
    let (st, e, _) = error_of(r);
    assert_eq!((st, e.as_str()), (413, "Request Entity Too Large"));
}

#[test]
fn api_v2_write_with_bucket_and_precision() {
    let s = Server::start(&[]);
    query(
        &s,
        "CREATE DATABASE db; CREATE RETENTION POLICY rp2 ON db DURATION INF REPLICATION 1",
    );
    let t = now_s();
    let r = client()
        .post(s.url("/api/v2/write?org=ignored&bucket=db/rp2&precision=s"))
        .body(format!("m v=7i {t}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client()
        .post(s.url("/api/v2/write?bucket=db&precision=h"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let (st, e, _) = error_of(
        client()
            .post(s.url("/api/v2/write?bucket=missing"))
            .body("m v=1")
            .send()
            .unwrap(),
    );
    assert_eq!((st, e.as_str()), (404, "database not found: \"missing\""));
}

#[test]
fn overload_gets_503_with_retry_after_on_both_write_endpoints() {
    use std::io::Read;
    let s = Server::start_env(
        &[],
        &[
            ("SUNDIAL_HTTP_MAX_CONCURRENT_WRITE_LIMIT", "1"),
            ("SUNDIAL_HTTP_MAX_ENQUEUED_WRITE_LIMIT", "0"),
        ],
    );
    query(&s, "CREATE DATABASE db");
    // A client that sends headers and half its body, then stalls, holds the one slot.
    let mut slow = stalled_write(&s);
    // Wait until the slow request holds the one admission place, without sending
    // writes that could take the place first (a loaded machine may run the slow
    // request's task after a probe's).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !metrics_text(&s).contains("sundial_http_write_requests_admitted 1\n") {
        if std::time::Instant::now() >= deadline {
            slow.set_nonblocking(true).unwrap();
            let mut got = vec![0u8; 512];
            let n = slow.read(&mut got).unwrap_or(0);
            panic!(
                "the stalled write never held the slot; its connection got {:?}",
                String::from_utf8_lossy(&got[..n])
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for path in ["/write?db=db", "/api/v2/write?bucket=db"] {
        let r = client().post(s.url(path)).body("cpu v=2").send().unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(r.headers()["Retry-After"], "1");
        let e: Value = r.json().unwrap();
        assert_eq!(
            e["error"],
            "server is overloaded: too many writes in flight"
        );
    }
    // Finish the slow request; the slot frees and writes go through again.
    write!(slow, "{}", " ".repeat(93)).unwrap();
    let mut resp = [0u8; 12];
    slow.read_exact(&mut resp).unwrap();
    assert_eq!(&resp, b"HTTP/1.1 204");
    assert_eq!(write(&s, "db=db", "cpu v=3").status(), 204);
    let m = metrics_text(&s);
    // The two checks above.
    assert!(
        m.contains("sundial_http_write_rejected_overload_total 2"),
        "{m}"
    );
}

#[test]
fn write_timeout_is_a_500_timeout() {
    let s = Server::start_env(&[], &[("SUNDIAL_HTTP_WRITE_TIMEOUT", "0ms")]);
    query(&s, "CREATE DATABASE db");
    let (st, e, _) = error_of(write(&s, "db=db", "cpu v=1"));
    assert_eq!((st, e.as_str()), (500, "timeout"));
}

/// A write that times out keeps its slot until the engine is done with it: the
/// limits bound the work in the engine, not just the requests still waiting.
#[test]
fn a_timed_out_write_holds_its_slot_until_it_ends() {
    let mut s = Server::start_env(
        &[],
        &[
            ("SUNDIAL_HTTP_MAX_CONCURRENT_WRITE_LIMIT", "1"),
            ("SUNDIAL_HTTP_MAX_ENQUEUED_WRITE_LIMIT", "0"),
            ("SUNDIAL_HTTP_WRITE_TIMEOUT", "0ms"),
        ],
    );
    query(&s, "CREATE DATABASE db");
    // 200k new series: the engine needs far longer than the next request's trip
    // (two tags, so no tag passes max-values-per-tag).
    let n = 200_000;
    let body: String = (0..n)
        .map(|i| format!("m,host=h{},rack=r{} v={i} 1\n", i % 1000, i / 1000))
        .collect();
    let (st, e, _) = error_of(write(&s, "db=db", body));
    assert_eq!((st, e.as_str()), (500, "timeout"));
    let next = write(&s, "db=db", "m,host=other v=1 2");
    assert_eq!(
        next.status(),
        503,
        "the timed-out write no longer held its slot"
    );
    // Once the background write ends the slot is free again (the next write also
    // times out at 0 ms, but it is let in: 500, not 503).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while write(&s, "db=db", "m,host=other v=1 2").status() == 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "db");
    assert_eq!(
        dump.matches("m,host=h").count(),
        n,
        "the timed-out write was lost"
    );
}

/// A client that stops sending its body gets 408 after `body-read-timeout`, and its
/// place is given back.
#[test]
fn a_stalled_body_gets_408_and_frees_its_place() {
    use std::io::Read;
    let s = Server::start_env(
        &[],
        &[
            ("SUNDIAL_HTTP_MAX_CONCURRENT_WRITE_LIMIT", "1"),
            ("SUNDIAL_HTTP_MAX_ENQUEUED_WRITE_LIMIT", "0"),
            ("SUNDIAL_HTTP_BODY_READ_TIMEOUT", "300ms"),
        ],
    );
    query(&s, "CREATE DATABASE db");
    let mut slow = stalled_write(&s);
    slow.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut resp = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&resp).contains("timed out reading") {
        let n = slow.read(&mut buf).expect("a response before 10 s");
        assert!(
            n > 0,
            "closed without a response: {:?}",
            String::from_utf8_lossy(&resp)
        );
        resp.extend_from_slice(&buf[..n]);
    }
    assert!(
        resp.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(write(&s, "db=db", "cpu v=2").status(), 204);
}

/// A body of garbage: the count is exact, the text keeps the first 1,000 lines.
#[test]
fn many_bad_lines_are_counted_but_not_all_echoed() {
    let s = Server::start(&[]);
    query(&s, "CREATE DATABASE db");
    let mut body = "bad line\n".repeat(50_000);
    body.push_str("cpu v=1 1\n");
    let (st, e, _) = error_of(write(&s, "db=db", body));
    assert_eq!(st, 400);
    assert!(
        e.starts_with("partial write: unable to parse 'bad line': "),
        "{}",
        &e[..100]
    );
    assert!(
        e.ends_with("(49000 more lines could not be parsed) dropped=50000"),
        "{}",
        &e[e.len() - 100..]
    );
    assert_eq!(e.matches("unable to parse").count(), 1000);
    assert!(e.len() < 100_000, "{} bytes of error", e.len());
}

/// Started with a small soft limit on open files, the server takes the hard one.
#[cfg(target_os = "linux")]
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" run --data-dir "$1" --bind 127.0.0.1:0"#)
        .arg(env!("CARGO_BIN_EXE_sundial"))
        .arg(tmp.path())
        .env("SUNDIAL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let listening = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("listening on "));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "the server did not start");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    // Soft = hard, and the hard limit is the one the shell inherited from us.
    let ours = std::fs::read_to_string("/proc/self/limits").unwrap();
    let our_hard = ours
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap()
        .to_string();
    assert_eq!(
        (nums[0], nums[1]),
        (our_hard.as_str(), our_hard.as_str()),
        "{line}"
    );
}
