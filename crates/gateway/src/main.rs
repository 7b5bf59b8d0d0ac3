//! `sundial-gateway`: the HTTP API of Sundial's cluster. Stateless but for its
//! hinted-handoff queues: it reads meta through its cached client and writes each
//! shard's points to the shard's owners over gRPC (`WriteToShard`).
//!
//! Configuration: `[gateway]`, `[cluster]`, `[http]`, `[coordinator]`,
//! `[hinted-handoff]`, `[runtime]`, `[logging]` from a TOML file (`-c`),
//! `SUNDIAL_<SECTION>_<KEY>` variables and flags; `sundial-gateway config` prints it.
//!
//! Start order: meta client → hinted handoff (queues left by a previous run start
//! draining) → HTTP listener (`listening on ADDR` on stdout). SIGTERM: stop
//! accepting, drain in-flight requests, report what the queues still hold, close
//! meta. `sundial-gateway handoff` delivers the queues of a gateway that is retired
//! (or reports what they hold).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};
use sundial_cluster::handoff::{HandoffOptions, HintedHandoff, QueueStats};
use sundial_cluster::{
    CoordinatorConfig, Delivery, NodePool, PointsWriter, RemoteOptions, RemoteShardReader,
    RemoteShardWriter,
};
use sundial_common::config::{
    self, duration, set, ClusterConfig, LoggingConfig, RuntimeConfig, TracingConfig,
};
use sundial_common::duration::{format_duration, parse_duration};
use sundial_common::metrics::{self, Collect, Emit};
use sundial_common::telemetry::export;
use sundial_gateway::config::HttpConfig;
use sundial_gateway::http::{router, Gateway, Querying};
use sundial_meta::{ClientOptions, MetaClient};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sundial HTTP gateway.
#[derive(Debug, Parser)]
#[command(
    name = "sundial-gateway",
    version,
    about = "Sundial gateway: the InfluxDB 1.x HTTP API over a cluster of stores",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: Flags,
}

// Parsed once per process: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Print the configuration as TOML: the defaults, with the file (-c), the
    /// `SUNDIAL_…` variables and the flags given applied.
    Config(Flags),
    /// Exit 0 when the running process answers on its own `/health` (for
    /// container health checks: the images have no shell), else 1.
    Health(Flags),
    /// Hand over a stopped gateway's hinted-handoff queues: deliver every hint to
    /// its node and exit when all queues are empty (or, with --report, only say what
    /// they hold). Exits 1 with a report of what is left when --timeout passes.
    Handoff {
        #[command(flatten)]
        flags: Flags,
        /// Only print what the queues hold.
        #[arg(long)]
        report: bool,
        /// Give up (exit 1, with a report) after this long.
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// The configuration file's sections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct Config {
    gateway: GatewayConfig,
    cluster: ClusterConfig,
    http: HttpConfig,
    coordinator: CoordinatorConfig,
    hinted_handoff: HandoffOptions,
    continuous_queries: sundial_gateway::cq::ContinuousQueriesConfig,
    runtime: RuntimeConfig,
    logging: LoggingConfig,
    tracing: TracingConfig,
}

/// `[gateway]`: how the gateway reaches the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct GatewayConfig {
    /// Meta service endpoints (`host:port`, comma separated).
    meta: String,
    /// Bound on one WriteToShard call to a store (its fsync included).
    #[serde(with = "duration")]
    shard_write_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            meta: "127.0.0.1:8091".into(),
            shard_write_timeout: RemoteOptions::default().request_timeout,
        }
    }
}

/// Variables this binary read before its configuration had sections.
const RENAMED_ENV: &[(&str, &str)] = &[
    ("SUNDIAL_GATEWAY_BIND", "SUNDIAL_HTTP_BIND_ADDRESS"),
    ("SUNDIAL_GATEWAY_AUTH_ENABLED", "SUNDIAL_HTTP_AUTH_ENABLED"),
    ("SUNDIAL_GATEWAY_HH_DIR", "SUNDIAL_HINTED_HANDOFF_DIR"),
    (
        "SUNDIAL_GATEWAY_HH_MAX_SIZE",
        "SUNDIAL_HINTED_HANDOFF_MAX_SIZE",
    ),
    (
        "SUNDIAL_GATEWAY_HH_MAX_AGE",
        "SUNDIAL_HINTED_HANDOFF_MAX_AGE",
    ),
    (
        "SUNDIAL_GATEWAY_HH_RETRY_INTERVAL",
        "SUNDIAL_HINTED_HANDOFF_RETRY_INTERVAL",
    ),
];

/// Flags: each overrides its key of the configuration.
#[derive(Debug, Clone, Default, clap::Args)]
struct Flags {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SUNDIAL_CONFIG")]
    config: Option<PathBuf>,
    /// [http] bind-address (port 0: any free port).
    #[arg(long)]
    bind: Option<String>,
    /// [gateway] meta.
    #[arg(long)]
    meta: Option<String>,
    /// [cluster] shared-secret.
    #[arg(long)]
    shared_secret: Option<String>,
    /// [http] auth-enabled.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    auth_enabled: Option<bool>,
    /// [gateway] shard-write-timeout.
    #[arg(long, value_parser = parse_duration)]
    shard_write_timeout: Option<Duration>,
    /// [cluster] tls-ca: calls to stores and meta use TLS.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// [hinted-handoff] dir.
    #[arg(long)]
    hh_dir: Option<PathBuf>,
    /// [hinted-handoff] max-size.
    #[arg(long)]
    hh_max_size: Option<u64>,
    /// [hinted-handoff] max-age.
    #[arg(long, value_parser = parse_duration)]
    hh_max_age: Option<Duration>,
    /// [hinted-handoff] retry-interval.
    #[arg(long, value_parser = parse_duration)]
    hh_retry_interval: Option<Duration>,
}

impl Flags {
    /// Defaults < file < `SUNDIAL_…` variables < these flags.
    fn load(self) -> Result<(Config, Vec<String>)> {
        let env = std::env::vars();
        let (env, mut warnings) = config::rename_env(env, RENAMED_ENV);
        let loaded = config::load::<Config>(self.config.as_deref(), env.clone())?;
        warnings.extend(loaded.warnings);
        let mut c = loaded.config;
        let hh = &mut c.hinted_handoff;
        set(&mut c.http.bind_address, self.bind);
        set(&mut c.gateway.meta, self.meta);
        set(&mut c.cluster.shared_secret, self.shared_secret);
        set(&mut c.http.auth_enabled, self.auth_enabled);
        set(&mut c.gateway.shard_write_timeout, self.shard_write_timeout);
        set(&mut c.cluster.tls_ca, self.tls_ca);
        set(&mut hh.dir, self.hh_dir);
        set(&mut hh.max_size, self.hh_max_size);
        set(&mut hh.max_age, self.hh_max_age);
        set(&mut hh.retry_interval, self.hh_retry_interval);
        c.tracing.apply_otel_env(env)?;
        c.http.validate()?;
        c.runtime.validate()?;
        c.hinted_handoff.validate()?;
        c.continuous_queries.validate()?;
        Ok((c, warnings))
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (flags, handoff) = match cli.cmd {
        Some(Cmd::Config(flags)) => {
            print!("{}", config::to_toml(&flags.load()?.0));
            return Ok(());
        }
        Some(Cmd::Health(flags)) => {
            sundial_serve::health_command(&flags.load()?.0.http.bind_address, "/health")
        }
        Some(Cmd::Handoff {
            flags,
            report,
            timeout,
        }) => (flags, Some((report, timeout))),
        None => (cli.run, None),
    };
    let (cfg, unknown) = flags.load()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cfg.runtime.max_blocking_threads)
        .build()?;
    let telemetry = export::start("sundial-gateway", &rt, &cfg.logging, &cfg.tracing, &unknown)?;
    if handoff.is_some() && !cfg.hinted_handoff.dir.is_dir() {
        // Not created: a wrong or relative path must not read as "no hints".
        anyhow::bail!(
            "no hinted handoff directory at {} (give the retired gateway's --hh-dir or -c)",
            cfg.hinted_handoff.dir.display()
        );
    }
    let res = match handoff {
        Some((true, _)) => {
            let hh = HintedHandoff::open(cfg.hinted_handoff.clone())
                .context("opening the hinted handoff queues")?;
            print_report(&cfg.hinted_handoff.dir, &hh.stats());
            Ok(())
        }
        Some((false, timeout)) => rt.block_on(hand_over(cfg, timeout)),
        None => rt.block_on(run(cfg)),
    };
    telemetry.shutdown();
    res
}

/// The meta client and the gRPC delivery to the stores.
async fn connect(cfg: &Config) -> Result<(MetaClient, Arc<Delivery>, Arc<NodePool>)> {
    let tls_ca = cfg.cluster.tls_ca_pem()?;
    let meta_opts = ClientOptions {
        secret: cfg.cluster.secret(),
        tls_ca: tls_ca.clone(),
        ..ClientOptions::default()
    };
    let meta = MetaClient::remote(&cfg.gateway.meta, meta_opts)
        .await
        .with_context(|| format!("connecting to meta at {}", cfg.gateway.meta))?;
    let pool = NodePool::new(RemoteOptions {
        request_timeout: cfg.gateway.shard_write_timeout,
        secret: cfg.cluster.secret(),
        tls_ca,
        ..RemoteOptions::default()
    })?;
    let pool = Arc::new(pool);
    let delivery = Arc::new(Delivery::new(meta.clone(), pool.clone()));
    Ok((meta, delivery, pool))
}

async fn run(cfg: Config) -> Result<()> {
    let (meta, delivery, pool) = connect(&cfg).await?;
    let hh = HintedHandoff::open(cfg.hinted_handoff.clone())
        .context("opening the hinted handoff queues")?;
    hh.start(delivery.clone());
    let shard_writer = Arc::new(RemoteShardWriter::new(delivery).with_handoff(hh.clone()));
    let writer = PointsWriter::new(meta.clone(), shard_writer.clone())
        .with_max_new_shard_groups(cfg.coordinator.max_shard_groups_per_write);
    let listener = tokio::net::TcpListener::bind(&cfg.http.bind_address)
        .await
        .with_context(|| format!("binding {}", cfg.http.bind_address))?;
    let addr = listener.local_addr()?;
    let mut registry = metrics::registry();
    sundial_gateway::stats::register_handoff(&mut registry, hh.clone());
    meta.register_metrics(&mut registry);
    let in_flight = shard_writer.clone();
    registry.register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
        e.gauge(
            "coordinator_owner_writes_in_flight",
            "Writes to shard owners still running after their request was answered (a \
             slow or cut-off owner; its hint is queued when the call fails).",
            i64::try_from(in_flight.in_flight()).unwrap_or(i64::MAX),
        )
    })));
    let listen = cfg.http.serve_options();
    let reader = Arc::new(RemoteShardReader::new(meta.clone(), pool));
    let counted = reader.clone();
    registry.register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
        use std::sync::atomic::Ordering::Relaxed;
        let c = counted.schema_cache_counts();
        e.counter(
            "query_schema_cache_hits",
            "Shard schemas a statement took from the gateway's cache.",
            c.hits.load(Relaxed),
        )?;
        e.counter(
            "query_schema_fetches",
            "Shard schemas a statement asked of a store.",
            c.fetches.load(Relaxed),
        )?;
        e.counter(
            "query_schema_stale",
            "Reads that found their shard's schema changed since it was cached (the statement \
             was planned again).",
            c.stale.load(Relaxed),
        )
    })));
    let querying = Querying::new(reader, &cfg.coordinator);
    let gw = Gateway::new(
        meta.clone(),
        writer,
        cfg.http.clone(),
        registry,
        None,
        Some(querying),
    );
    // One gateway of the cluster runs the continuous queries (meta's lease).
    let cq = cfg.continuous_queries.enabled.then(|| {
        let holder = format!("gateway@{addr}#{}", std::process::id());
        sundial_gateway::cq::spawn(gw.clone(), cfg.continuous_queries.clone(), holder)
    });
    tracing::info!(%addr, meta = %cfg.gateway.meta, "sundial-gateway ready");
    println!("listening on {addr}");
    let conn_stats = gw.stats.connections.clone();
    sundial_serve::serve(
        listener,
        router(gw),
        listen,
        conn_stats,
        sundial_common::process::shutdown_signal(),
    )
    .await
    .context("http server")?;
    if let Some(t) = cq {
        t.abort();
    }
    // Owner writes still running after their requests were answered queue their
    // hints when they fail: let them, within the time a shard write may take.
    let bound = cfg.gateway.shard_write_timeout + Duration::from_secs(1);
    if !shard_writer.close(bound).await {
        tracing::warn!(?bound, "shard writes still running at exit");
    }
    let left: Vec<QueueStats> = hh.stats().into_iter().filter(|q| q.records > 0).collect();
    if !left.is_empty() {
        let hints: u64 = left.iter().map(|q| q.records).sum();
        let nodes: Vec<u64> = left.iter().map(|q| q.node).collect();
        tracing::warn!(
            hints,
            ?nodes,
            dir = %cfg.hinted_handoff.dir.display(),
            "hinted handoff queues are not empty: start this gateway again, or run `sundial-gateway handoff` with its configuration, to deliver them"
        );
    }
    meta.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!("sundial-gateway stopped");
    Ok(())
}

/// Delivers every queued hint, then exits; what is left after `timeout` is reported.
async fn hand_over(cfg: Config, timeout: Duration) -> Result<()> {
    let (meta, delivery, _) = connect(&cfg).await?;
    let hh = HintedHandoff::open(cfg.hinted_handoff.clone())
        .context("opening the hinted handoff queues (is the gateway still running?)")?;
    let dir = &cfg.hinted_handoff.dir;
    print_report(dir, &hh.stats());
    hh.start(delivery);
    let deadline = Instant::now() + timeout;
    let left = loop {
        let stats = hh.stats();
        if stats.iter().all(|q| q.records == 0) {
            break None;
        }
        if Instant::now() >= deadline {
            break Some(stats);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Hints for a node meta no longer has cannot be delivered by anyone.
    let unknown: Vec<u64> = left
        .iter()
        .flatten()
        .filter(|q| q.records > 0 && meta.node(q.node).is_none())
        .map(|q| q.node)
        .collect();
    meta.close();
    let c = &hh.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "delivered {} hints; dropped {} past max-age, {} refused by their node or damaged",
        n(&c.delivered),
        n(&c.dropped_expired),
        n(&c.dropped_rejected)
    );
    for node in &unknown {
        println!("node {node} is not registered in meta (removed?): its hints cannot be delivered");
    }
    match left {
        None => {
            println!("all hinted handoff queues in {} are empty", dir.display());
            Ok(())
        }
        Some(stats) => {
            print_report(dir, &stats);
            anyhow::bail!(
                "hints are left after {}: their nodes did not take them",
                format_duration(timeout)
            )
        }
    }
}

/// One line per queue that holds hints.
fn print_report(dir: &std::path::Path, stats: &[QueueStats]) {
    let busy: Vec<&QueueStats> = stats.iter().filter(|q| q.records > 0).collect();
    if busy.is_empty() {
        println!("no hints queued in {}", dir.display());
    }
    for q in busy {
        println!(
            "node {}: {} hints, {} bytes, oldest {} old",
            q.node,
            q.records,
            q.bytes,
            format_duration(Duration::from_millis(q.oldest_age_ms))
        );
    }
}
