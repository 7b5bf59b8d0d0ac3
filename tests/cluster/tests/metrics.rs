//! Every service's `/metrics`, scraped before and after a known write, a flush
//! that no query caused (the shard goes idle) and a failed write: counters and
//! histograms move by exactly what was done, and every page passes `promtool`.

use sundial_cluster_tests::{sample, scrape, wait_until, Cluster};

/// The pages of one moment: gateway, each store, meta.
struct Pages {
    gateway: String,
    stores: Vec<String>,
    meta: String,
}

fn pages(c: &Cluster) -> Pages {
    let p = Pages {
        gateway: c.metrics_text(0),
        stores: c.stores.iter().map(|s| scrape(&s.metrics_addr())).collect(),
        meta: scrape(&c.meta.metrics_addr().expect("meta metrics").to_string()),
    };
    for text in std::iter::once(&p.gateway)
        .chain(&p.stores)
        .chain(std::iter::once(&p.meta))
    {
        if let Err(e) = sundial_testkit::promtool_check(text) {
            panic!("/metrics does not pass promtool: {e}\n{text}");
        }
    }
    p
}

/// How much each named sample moved from `a` to `b`, in the order named.
#[derive(Debug)]
struct Moved<'n>(Vec<(&'n str, f64)>);

impl Moved<'_> {
    fn values(&self) -> Vec<f64> {
        self.0.iter().map(|(_, v)| *v).collect()
    }
}

impl std::ops::Index<&str> for Moved<'_> {
    type Output = f64;
    fn index(&self, name: &str) -> &f64 {
        &self.0.iter().find(|(n, _)| *n == name).expect("named").1
    }
}

/// How much `name` moved on each store from `a` to `b`.
fn on_stores(a: &Pages, b: &Pages, name: &str) -> Vec<f64> {
    a.stores
        .iter()
        .zip(&b.stores)
        .map(|(x, y)| sample(y, name) - sample(x, name))
        .collect()
}

fn moved<'n>(a: &str, b: &str, names: &[&'n str]) -> Moved<'n> {
    Moved(
        names
            .iter()
            .map(|n| (*n, sample(b, n) - sample(a, n)))
            .collect(),
    )
}

const WRITE_204: &str =
    "sundial_http_request_duration_seconds_count{route=\"/write\",method=\"POST\",status=\"204\"}";
const WRITE_400: &str =
    "sundial_http_request_duration_seconds_count{route=\"/write\",method=\"POST\",status=\"400\"}";
const SHARD_WRITES: &str = "sundial_grpc_server_duration_seconds_count{service=\"sundial.store.StoreService\",method=\"WriteToShard\",code=\"OK\"}";

#[test]
fn counters_and_histograms_move_by_what_was_done() {
    let mut c = Cluster::start(0, 1);
    // Shards idle for 1 s are flushed and closed: a flush no query asked for.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("store.toml");
    std::fs::write(&cfg, "[data]\nshard-idle-timeout = \"1s\"\n").unwrap();
    let cfg = cfg.display().to_string();
    c.add_store_with(&["-c", &cfg]);
    c.add_store_with(&["-c", &cfg]);

    // A meta mutation that fails (the user exists): one call with its code.
    c.query("CREATE USER u WITH PASSWORD 'p'");
    c.query("CREATE DATABASE db");
    let before = pages(&c);
    c.query("CREATE USER u WITH PASSWORD 'other'");
    let after = pages(&c);
    let apply_exists = "sundial_grpc_server_duration_seconds_count{service=\"sundial.meta.MetaService\",method=\"Apply\",code=\"AlreadyExists\"}";
    assert_eq!(
        sample(&after.meta, apply_exists) - sample(&before.meta, apply_exists),
        1.0,
        "{}",
        after.meta
    );

    // A known write: 100 points of two fields, over the two stores (RF 1).
    let before = pages(&c);
    let lines: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "cpu,host=h{i} a={i},b={i}i {}",
                1_700_000_000_000_000_000i64 + i
            )
        })
        .collect();
    assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
    let after = pages(&c);
    let gw = moved(
        &before.gateway,
        &after.gateway,
        &[
            "sundial_http_write_requests_total",
            "sundial_http_points_written_ok_total",
            "sundial_http_values_written_ok_total",
            "sundial_http_points_written_fail_total",
            WRITE_204,
        ],
    );
    assert_eq!(gw.values(), [1.0, 100.0, 200.0, 0.0, 1.0], "{gw:?}");
    let mut points = 0.0;
    let mut values = 0.0;
    for (b, a) in before.stores.iter().zip(&after.stores) {
        let s = moved(
            b,
            a,
            &[
                "sundial_engine_points_written_total",
                "sundial_engine_values_written_total",
                SHARD_WRITES,
                "sundial_engine_wal_fsync_duration_seconds_count",
                "sundial_engine_wal_bytes_total",
            ],
        );
        points += s["sundial_engine_points_written_total"];
        values += s["sundial_engine_values_written_total"];
        // A store that got points got them in one call, synced and logged.
        let wrote = s["sundial_engine_points_written_total"] > 0.0;
        assert_eq!(s[SHARD_WRITES], f64::from(u8::from(wrote)), "{s:?}");
        if wrote {
            assert!(
                s["sundial_engine_wal_fsync_duration_seconds_count"] >= 1.0,
                "{s:?}"
            );
            assert!(s["sundial_engine_wal_bytes_total"] > 0.0, "{s:?}");
        }
    }
    assert_eq!((points, values), (100.0, 200.0));

    // The shards go idle: each store that holds data flushes once, into level 0.
    let wrote: Vec<usize> = on_stores(&before, &after, "sundial_engine_points_written_total")
        .iter()
        .enumerate()
        .filter(|(_, &d)| d > 0.0)
        .map(|(i, _)| i)
        .collect();
    wait_until(30, "idle shards flushed", || {
        wrote.iter().all(|&i| {
            sample(
                &scrape(&c.stores[i].metrics_addr()),
                "sundial_engine_shards_closed_idle_total",
            ) >= 1.0
        })
    });
    let flushed = pages(&c);
    for &i in &wrote {
        let s = moved(
            &after.stores[i],
            &flushed.stores[i],
            &[
                "sundial_engine_flushes_total",
                "sundial_engine_flush_duration_seconds_count",
                "sundial_engine_files{level=\"0\"}",
                "sundial_engine_shards_open",
            ],
        );
        assert_eq!(
            s.values(),
            [1.0, 1.0, 1.0, -1.0],
            "{s:?}\n{}",
            flushed.stores[i]
        );
    }

    // A failed write: one bad line beside a good one. InfluxDB answers 400 and
    // keeps the good point.
    let before = flushed;
    let (status, body) = c.write(
        0,
        "db=db",
        "cpu,host=x a=1 1700000000000000500\ncpu,host=y a=\n".into(),
    );
    assert_eq!(status, 400, "{body}");
    let after = pages(&c);
    let gw = moved(
        &before.gateway,
        &after.gateway,
        &[
            "sundial_http_client_errors_total",
            "sundial_http_points_written_fail_total",
            "sundial_http_points_written_ok_total",
            WRITE_204,
            WRITE_400,
        ],
    );
    assert_eq!(gw.values(), [1.0, 1.0, 1.0, 0.0, 1.0], "{gw:?}");
    let points: f64 = on_stores(&before, &after, "sundial_engine_points_written_total")
        .iter()
        .sum();
    assert_eq!(points, 1.0);
}
