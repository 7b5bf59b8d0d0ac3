//! `sundial-qbench`: the TSBS "devops" query set over HTTP `/query` against one
//! or more servers loaded with the same `sundial-load` data: every answer is
//! compared with the first server's, then latencies (median, p99) are measured
//! per query type at each concurrency. It speaks plain InfluxDB 1.x.
//!
//! ```sh
//! sundial-qbench --server sundial=http://127.0.0.1:8086 --server influxdb=http://127.0.0.1:8087 \
//!   --start-ns 1700000000000000000 --hosts 100 --hours 24 --rounds 20 --concurrency 1,8
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use sundial_tsbs::{Rng, FIELDS};

#[derive(Debug, Parser)]
#[command(
    name = "sundial-qbench",
    about = "TSBS devops queries over HTTP /query"
)]
struct Args {
    /// `label=url`, several times; answers are compared with the first's.
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
    #[arg(long, default_value = "bench")]
    db: String,
    /// Hosts and hours of data `sundial-load` wrote (from its start time).
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    #[arg(long, default_value_t = 24)]
    hours: i64,
    /// The first point's time (ns), as given to `sundial-load --start-ns`.
    #[arg(long)]
    start_ns: i64,
    /// Queries of each type per measurement (at each concurrency).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Only these query types (comma-separated; all when absent).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// Comma-separated client concurrencies.
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    concurrency: Vec<usize>,
}

const HOUR: i64 = 3_600_000_000_000;

/// One query of a type, with its random choices made.
fn query(kind: &str, rng: &mut Rng, start_ns: i64, hosts: usize, hours: i64) -> String {
    let host = |rng: &mut Rng| format!("host_{}", rng.below(hosts as u64));
    let start = |rng: &mut Rng, span: i64| {
        let slots = (hours - span).max(1) as u64;
        start_ns + rng.below(slots) as i64 * HOUR
    };
    let range = |t: i64, span: i64| format!("time >= {t} AND time < {}", t + span * HOUR);
    match kind {
        "single-groupby-1-1-1" => {
            let t = start(rng, 1);
            format!(
                "SELECT max(usage_user) FROM cpu WHERE (hostname = '{}') AND {} GROUP BY time(1m)",
                host(rng),
                range(t, 1)
            )
        }
        "single-groupby-5-1-12" => {
            let t = start(rng, 12);
            let f: Vec<String> = FIELDS[..5].iter().map(|f| format!("max({f})")).collect();
            format!(
                "SELECT {} FROM cpu WHERE (hostname = '{}') AND {} GROUP BY time(1m)",
                f.join(", "),
                host(rng),
                range(t, 12)
            )
        }
        "cpu-max-all-8" => {
            let t = start(rng, 8);
            let f: Vec<String> = FIELDS.iter().map(|f| format!("max({f})")).collect();
            let h: Vec<String> = (0..8)
                .map(|_| format!("hostname = '{}'", host(rng)))
                .collect();
            format!(
                "SELECT {} FROM cpu WHERE ({}) AND {} GROUP BY time(1h)",
                f.join(", "),
                h.join(" OR "),
                range(t, 8)
            )
        }
        "double-groupby-1" => {
            let t = start(rng, 12);
            format!(
                "SELECT mean(usage_user) FROM cpu WHERE {} GROUP BY time(1h), hostname",
                range(t, 12)
            )
        }
        "high-cpu-1" => {
            let t = start(rng, 12);
            format!(
                "SELECT * FROM cpu WHERE usage_user > 90.0 AND {} AND (hostname = '{}')",
                range(t, 12),
                host(rng)
            )
        }
        "lastpoint" => "SELECT last(*) FROM cpu GROUP BY hostname".to_string(),
        _ => {
            // groupby-orderby-limit
            let t = start(rng, 1);
            format!(
                "SELECT max(usage_user) FROM cpu WHERE time < {t} GROUP BY time(1m) ORDER BY time DESC LIMIT 5"
            )
        }
    }
}

const KINDS: [&str; 7] = [
    "single-groupby-1-1-1",
    "single-groupby-5-1-12",
    "cpu-max-all-8",
    "double-groupby-1",
    "high-cpu-1",
    "lastpoint",
    "groupby-orderby-limit",
];

fn ask(c: &reqwest::blocking::Client, url: &str, db: &str, q: &str) -> Result<String> {
    let r = c
        .get(format!("{url}/query"))
        .query(&[("db", db), ("q", q), ("epoch", "ns")])
        .send()
        .with_context(|| format!("{url}: {q}"))?;
    let status = r.status();
    let body = r.text()?;
    if !status.is_success() || body.contains("\"error\"") {
        bail!("{url}: {status} {body} for {q}");
    }
    Ok(body)
}

/// Where two JSON answers differ (floats to a relative 1e-9), if they do.
fn differ(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value::*;
    let here = || Some(format!("{path}: {a} vs {b}"));
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) => None,
            _ => here(),
        },
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (a, b))| differ(a, b, &format!("{path}[{i}]"))),
        (Array(x), Array(y)) => Some(format!("{path}: {} elements vs {}", x.len(), y.len())),
        (Object(x), Object(y)) if x.len() == y.len() => {
            x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => differ(v, w, &format!("{path}.{k}")),
                None => Some(format!("{path}.{k} missing")),
            })
        }
        _ if a == b => None,
        _ => here(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let servers: Vec<(String, String)> = args
        .servers
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(l, u)| (l.to_string(), u.trim_end_matches('/').to_string()))
                .context("--server wants label=url")
        })
        .collect::<Result<_>>()?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let mut rng = Rng::new(42);
    if let Some(k) = args.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        bail!("unknown query type {k} (known: {})", KINDS.join(", "));
    }
    let queries: Vec<(&str, Vec<String>)> = KINDS
        .iter()
        .filter(|k| args.kinds.is_empty() || args.kinds.iter().any(|x| x == *k))
        .map(|k| {
            let qs = (0..args.rounds)
                .map(|_| query(k, &mut rng, args.start_ns, args.hosts, args.hours))
                .collect();
            (*k, qs)
        })
        .collect();

    // Answers first: every server must give the first one's, and each type
    // must answer rows somewhere (a typo must not compare two empty answers).
    for (kind, qs) in &queries {
        let mut rows_seen = 0;
        for q in qs.iter().take(5) {
            let first: serde_json::Value =
                serde_json::from_str(&ask(&client, &servers[0].1, &args.db, q)?)?;
            let rows = first["results"][0]["series"].as_array().map_or(0, |s| {
                s.iter()
                    .map(|x| x["values"].as_array().map_or(0, Vec::len))
                    .sum()
            });
            rows_seen += rows;
            for (label, url) in &servers[1..] {
                let other: serde_json::Value =
                    serde_json::from_str(&ask(&client, url, &args.db, q)?)?;
                if let Some(d) = differ(&first, &other, "") {
                    bail!(
                        "{kind}: {label} answers differently from {} to {q}: {d}",
                        servers[0].0
                    );
                }
            }
        }
        if rows_seen == 0 {
            bail!("{kind}: no rows in 5 queries");
        }
    }
    println!("answers: every query type equal on all servers (5 queries each)");

    println!(
        "{:<24} {:>5} {}",
        "query",
        "conc",
        servers
            .iter()
            .map(|(l, _)| format!("{:>22}", format!("{l} p50 / p99 ms")))
            .collect::<String>()
    );
    for &conc in &args.concurrency {
        for (kind, qs) in &queries {
            let mut cells = String::new();
            for (_, url) in &servers {
                // Warm once, then `conc` clients share the rounds.
                ask(&client, url, &args.db, &qs[0])?;
                let lat = Arc::new(Mutex::new(Vec::with_capacity(qs.len())));
                let next = Arc::new(Mutex::new(0usize));
                std::thread::scope(|s| -> Result<()> {
                    let mut handles = Vec::new();
                    for _ in 0..conc {
                        let (lat, next, client) = (lat.clone(), next.clone(), client.clone());
                        let db = args.db.as_str();
                        handles.push(s.spawn(move || -> Result<()> {
                            loop {
                                let i = {
                                    let mut n =
                                        next.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                                    let i = *n;
                                    *n += 1;
                                    i
                                };
                                let Some(q) = qs.get(i) else { return Ok(()) };
                                let t = Instant::now();
                                ask(&client, url, db, q)?;
                                lat.lock()
                                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                                    .push(t.elapsed());
                            }
                        }));
                    }
                    for h in handles {
                        h.join()
                            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
                    }
                    Ok(())
                })?;
                let mut l = lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
                l.sort();
                // Two decimals below 10 ms, where the small queries sit.
                let ms = |d: Duration| {
                    let x = d.as_secs_f64() * 1000.0;
                    if x < 10.0 {
                        format!("{x:.2}")
                    } else {
                        format!("{x:.1}")
                    }
                };
                cells.push_str(&format!(
                    "{:>22}",
                    format!("{} / {}", ms(percentile(&l, 0.5)), ms(percentile(&l, 0.99)))
                ));
            }
            println!("{kind:<24} {conc:>5} {cells}");
        }
    }
    Ok(())
}
