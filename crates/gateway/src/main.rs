//! `sundial-gateway`: the HTTP API of Sundial's cluster. Stateless: it reads meta
//! through its cached client and writes each shard's points to the shard's owners
//! over gRPC (`WriteToShard`).
//!
//! Start order: meta client → HTTP listener (`listening on ADDR` on stdout).
//! SIGTERM: stop accepting, drain in-flight requests, close meta.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use sundial_cluster::handoff::{HandoffOptions, HintedHandoff};
use sundial_cluster::{Delivery, NodePool, PointsWriter, RemoteOptions, RemoteShardWriter};
use sundial_gateway::http::{router, ExtraMetrics, Gateway, HttpOptions};
use sundial_meta::{ClientOptions, MetaClient};
use sundial_serve::ServeOptions;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sundial HTTP gateway.
#[derive(Debug, Parser)]
#[command(
    name = "sundial-gateway",
    version,
    about = "Sundial gateway: the InfluxDB 1.x HTTP API over a cluster of stores"
)]
struct Args {
    /// HTTP address to serve on (port 0 = any free port).
    #[arg(long, env = "SUNDIAL_GATEWAY_BIND", default_value = "127.0.0.1:8086")]
    bind: String,
    /// Meta service endpoints (`host:port`, comma separated).
    #[arg(long, env = "SUNDIAL_GATEWAY_META", default_value = "127.0.0.1:8091")]
    meta: String,
    /// The cluster's shared secret, sent with every call to a store.
    #[arg(long, env = "SUNDIAL_CLUSTER_SHARED_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// Require credentials (InfluxDB's `auth-enabled`).
    #[arg(long, env = "SUNDIAL_GATEWAY_AUTH_ENABLED")]
    auth_enabled: bool,
    /// Bound on one WriteToShard call to a store.
    #[arg(
        long,
        env = "SUNDIAL_GATEWAY_SHARD_WRITE_TIMEOUT",
        default_value = "10s"
    )]
    shard_write_timeout: String,
    /// PEM file of the CA that signed the stores' and sundial-meta's certificates:
    /// calls to them use TLS.
    #[arg(long, env = "SUNDIAL_CLUSTER_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// Hinted handoff: where the queues of unreachable owners live (on this
    /// gateway's disk; a gateway replaced for good must hand its queues over).
    #[arg(long, env = "SUNDIAL_GATEWAY_HH_DIR", default_value = "data/hh")]
    hh_dir: std::path::PathBuf,
    /// Bytes one node's queue may hold; past it writes for that node get 503.
    #[arg(long, env = "SUNDIAL_GATEWAY_HH_MAX_SIZE", default_value_t = 10 << 30)]
    hh_max_size: u64,
    /// Hints older than this are dropped (counted and logged), not delivered.
    #[arg(long, env = "SUNDIAL_GATEWAY_HH_MAX_AGE", default_value = "7d")]
    hh_max_age: String,
    /// First retry delay of a queue whose node is down (doubles up to 10 s).
    #[arg(
        long,
        env = "SUNDIAL_GATEWAY_HH_RETRY_INTERVAL",
        default_value = "200ms"
    )]
    hh_retry_interval: String,
}

fn duration(name: &str, v: &str) -> Result<Duration> {
    sundial_common::duration::parse_duration(v)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--{name}"))
}

fn main() -> Result<()> {
    sundial_common::process::init_logging("info");
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let tls_ca = match &args.tls_ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let meta_opts = ClientOptions {
        secret: args.shared_secret.clone(),
        tls_ca: tls_ca.clone(),
        ..ClientOptions::default()
    };
    let meta = MetaClient::remote(&args.meta, meta_opts)
        .await
        .with_context(|| format!("connecting to meta at {}", args.meta))?;
    let pool = NodePool::new(RemoteOptions {
        request_timeout: duration("shard-write-timeout", &args.shard_write_timeout)?,
        secret: args.shared_secret.clone(),
        tls_ca,
        ..RemoteOptions::default()
    })?;
    let delivery = Arc::new(Delivery::new(meta.clone(), Arc::new(pool)));
    let hh = HintedHandoff::open(HandoffOptions {
        max_size: args.hh_max_size,
        max_age: duration("hh-max-age", &args.hh_max_age)?,
        retry_interval: duration("hh-retry-interval", &args.hh_retry_interval)?,
        ..HandoffOptions::new(&args.hh_dir)
    })
    .context("opening the hinted handoff queues")?;
    hh.start(delivery.clone());
    let writer = PointsWriter::new(
        meta.clone(),
        Arc::new(RemoteShardWriter::new(delivery).with_handoff(hh.clone())),
    );
    let http = HttpOptions {
        auth_enabled: args.auth_enabled,
        ..HttpOptions::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    let hh_metrics = hh.clone();
    let metrics = ExtraMetrics(Arc::new(move |out: &mut String| {
        sundial_gateway::stats::render_handoff(&hh_metrics, out)
    }));
    let gw = Gateway::new(meta.clone(), writer, http, Some(metrics), None);
    let listen = ServeOptions {
        max_connections: sundial_serve::auto_max_connections(),
        ..ServeOptions::default()
    };
    tracing::info!(%addr, meta = %args.meta, "sundial-gateway ready");
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
    meta.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tracing::info!("sundial-gateway stopped");
    Ok(())
}
