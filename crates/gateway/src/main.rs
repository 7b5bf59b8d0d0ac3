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
use sundial_cluster::{NodePool, PointsWriter, RemoteOptions, RemoteShardWriter};
use sundial_gateway::http::{router, Gateway, HttpOptions};
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
    let meta = MetaClient::remote(&args.meta, ClientOptions::default())
        .await
        .with_context(|| format!("connecting to meta at {}", args.meta))?;
    let pool = NodePool::new(RemoteOptions {
        request_timeout: sundial_common::duration::parse_duration(&args.shard_write_timeout)
            .map_err(anyhow::Error::msg)
            .context("shard-write-timeout")?,
        secret: args.shared_secret.clone(),
        ..RemoteOptions::default()
    })?;
    let writer = PointsWriter::new(
        meta.clone(),
        Arc::new(RemoteShardWriter::new(meta.clone(), Arc::new(pool))),
    );
    let http = HttpOptions {
        auth_enabled: args.auth_enabled,
        ..HttpOptions::default()
    };
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr()?;
    let gw = Gateway::new(meta.clone(), writer, http, None, None);
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
