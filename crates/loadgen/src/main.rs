//! `sundial-load`: writes TSBS "devops cpu-only" batches over HTTP `/write`
//! with N concurrent connections and reports values/s. It speaks plain
//! InfluxDB 1.x, so the same run can measure Sundial and InfluxDB.
//!
//! ```sh
//! sundial-load --url http://127.0.0.1:8086 --db bench --connections 4 --batch 5000 --batches 200
//! ```

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "sundial-load",
    about = "HTTP ingest load generator (TSBS cpu-only)"
)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8086")]
    url: String,
    #[arg(long, default_value = "bench")]
    db: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Lines per request.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Requests in total.
    #[arg(long, default_value_t = 200)]
    batches: usize,
    /// Distinct hosts (series = hosts; each line has 10 values).
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Name printed with the result.
    #[arg(long, default_value = "server")]
    label: String,
    /// Round values to this many decimals (default: full precision).
    #[arg(long)]
    decimals: Option<u32>,
    /// Fraction of the batches sent late (after batches up to --late-window-secs of
    /// data time newer than their own).
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    #[arg(long, default_value_t = 1800)]
    late_window_secs: u64,
    /// The first point's time (ns; default: a day ago): several servers loaded
    /// for the same queries get the same data.
    #[arg(long)]
    start_ns: Option<i64>,
    /// Do not send CREATE DATABASE (servers without InfluxQL, e.g. VictoriaMetrics).
    #[arg(long)]
    no_create: bool,
}

/// The order batches are sent in: `late` of them move back by up to `window`
/// batches (a deterministic choice, so every server sees the same order).
fn send_order(batches: usize, late: f64, window: usize) -> Vec<usize> {
    let mut rng = sundial_tsbs::Rng::new(7);
    let mut keyed: Vec<(usize, usize)> = (0..batches)
        .map(|i| {
            let delay = if rng.unit() < late {
                1 + rng.below(window.max(1) as u64) as usize
            } else {
                0
            };
            (i + delay, i)
        })
        .collect();
    keyed.sort_by_key(|&(k, i)| (k, i));
    keyed.into_iter().map(|(_, i)| i).collect()
}

fn main() -> Result<()> {
    let a = Args::parse();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    if !a.no_create {
        let r = client
            .post(format!("{}/query", a.url))
            .form(&[("q", format!("CREATE DATABASE \"{}\"", a.db))])
            .send()
            .context("CREATE DATABASE")?;
        if !r.status().is_success() {
            bail!("CREATE DATABASE failed: {}", r.text().unwrap_or_default());
        }
    }
    // Generate every body before timing: the generator must not be measured.
    let start_ns = match a.start_ns {
        Some(t) => t,
        None => {
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64
                - 86_400)
                * 1_000_000_000
        }
    };
    let mut gen = sundial_tsbs::CpuOnly::new(a.hosts, start_ns, 42);
    if let Some(d) = a.decimals {
        gen = gen.with_decimals(d);
    }
    let mut bodies: Vec<Arc<String>> = (0..a.batches)
        .map(|_| {
            let mut s = String::with_capacity(a.batch * 500);
            gen.write_lines(a.batch, &mut s);
            Arc::new(s)
        })
        .collect();
    if a.late > 0.0 {
        // Batches per window: hosts report every 10 s.
        let window = (a.late_window_secs as usize / 10 * a.hosts).div_ceil(a.batch.max(1));
        let order = send_order(a.batches, a.late, window);
        bodies = order.into_iter().map(|i| bodies[i].clone()).collect();
    }
    let bodies = Arc::new(bodies);
    let bytes: usize = bodies.iter().map(|b| b.len()).sum();
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/write?db={}", a.url, a.db);
    let started = Instant::now();
    let workers: Vec<_> = (0..a.connections.max(1))
        .map(|_| {
            let (client, next, bodies, url) =
                (client.clone(), next.clone(), bodies.clone(), url.clone());
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok(());
                    };
                    let r = client.post(&url).body(body.as_str().to_owned()).send()?;
                    if r.status().as_u16() != 204 {
                        bail!(
                            "write {i} answered {}: {}",
                            r.status(),
                            r.text().unwrap_or_default()
                        );
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let lines = a.batches * a.batch;
    let values = lines * sundial_tsbs::FIELDS.len();
    println!(
        "{}: {} lines, {} values, {:.1} MB in {:.2} s = {:.0} values/s, {:.0} lines/s, {:.1} MB/s",
        a.label,
        lines,
        values,
        bytes as f64 / 1e6,
        secs,
        values as f64 / secs,
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
