//! `sundial-store`: a storage node. Opens its shards' store, registers with meta
//! under the node id kept in its data directory, keeps its liveness lease, and
//! serves the gRPC `StoreService` (`WriteToShard`, `Health`).
//!
//! Start order: data dir → store (no shard opened) → meta client → registration →
//! heartbeat → gRPC listener (`listening on ADDR` on stdout). SIGTERM: stop
//! accepting and finish in-flight calls, stop the heartbeat, close the store (WAL
//! synced, shards closed).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use sundial_cluster::secret::SecretCheck;
use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_meta::{ClientOptions, MetaClient};
use sundial_proto::store::store_service_server::StoreServiceServer;
use sundial_store::node::{read_node_id, write_node_id};
use sundial_store::StoreService;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sundial storage node.
#[derive(Debug, Parser)]
#[command(
    name = "sundial-store",
    version,
    about = "Sundial storage node: shards behind the gRPC StoreService",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Print a stopped store's points as line protocol, shard by shard
    /// (`# SHARD <id> <database>` before each).
    Export {
        #[arg(long, default_value = "data/store")]
        data_dir: PathBuf,
        /// Only this shard.
        #[arg(long)]
        shard: Option<u64>,
    },
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Data directory (shards, series catalogs, node id).
    #[arg(long, env = "SUNDIAL_STORE_DATA_DIR", default_value = "data/store")]
    data_dir: PathBuf,
    /// Address to serve gRPC on (port 0 = any free port).
    #[arg(long, env = "SUNDIAL_STORE_LISTEN", default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Address other nodes reach this one at (`host:port`; a host or service name
    /// is fine). Default: the bound listen address.
    #[arg(long, env = "SUNDIAL_STORE_ADVERTISE")]
    advertise: Option<String>,
    /// Meta service endpoints (`host:port`, comma separated).
    #[arg(long, env = "SUNDIAL_STORE_META", default_value = "127.0.0.1:8091")]
    meta: String,
    /// The cluster's shared secret: calls without it are refused.
    #[arg(long, env = "SUNDIAL_CLUSTER_SHARED_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// PEM certificate (chain) to serve gRPC over TLS with; needs --tls-key.
    #[arg(long, env = "SUNDIAL_STORE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SUNDIAL_STORE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM file of the CA that signed sundial-meta's certificate: meta calls use TLS.
    #[arg(long, env = "SUNDIAL_CLUSTER_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Largest WriteToShard message accepted (bytes).
    #[arg(long, env = "SUNDIAL_STORE_MAX_MESSAGE_SIZE", default_value_t = 64 << 20)]
    max_message_size: usize,
    /// How often the node's shards are brought in line with meta (created ahead of
    /// their first write; dropped when meta no longer assigns them here).
    #[arg(long, env = "SUNDIAL_STORE_RECONCILE_INTERVAL", default_value = "10s")]
    reconcile_interval: String,
    /// WAL fsync policy: `always` (before acknowledging), `never`, or an interval.
    #[arg(long, env = "SUNDIAL_STORE_WAL_FSYNC", default_value = "always")]
    wal_fsync: String,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Export { data_dir, shard }) = cli.cmd {
        sundial_common::process::init_logging("warn");
        return export(&data_dir, shard);
    }
    sundial_common::process::init_logging("info");
    let args = cli.run;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()?
        .block_on(run(args))
}

fn export(data_dir: &std::path::Path, shard: Option<u64>) -> Result<()> {
    let dir = data_dir.join("shards");
    anyhow::ensure!(dir.is_dir(), "no store data in {}", data_dir.display());
    let store = Store::open(
        &dir,
        EngineOptions::builder().auto_compaction(false).build(),
    )
    .context("opening the store (stop sundial-store first)")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    sundial_store::export::export_store(&store, shard, &mut out)?;
    out.flush()?;
    store.close()?;
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let opts = EngineOptions::builder()
        .fsync(FsyncPolicy::parse(&args.wal_fsync).map_err(anyhow::Error::msg)?)
        .build();
    let dir = args.data_dir.join("shards");
    let store = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&dir, opts)).await??
    };
    let store = Arc::new(store);
    tracing::info!(dir = %dir.display(), shards = store.shard_ids().len(), "store opened");

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let bound = listener.local_addr()?;
    let advertise = args.advertise.clone().unwrap_or_else(|| bound.to_string());

    let meta_opts = ClientOptions {
        secret: args.shared_secret.clone(),
        tls_ca: match &args.tls_ca {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        },
        ..ClientOptions::default()
    };
    let meta = MetaClient::remote(&args.meta, meta_opts)
        .await
        .with_context(|| format!("connecting to meta at {}", args.meta))?;
    let known = read_node_id(&args.data_dir)?;
    let node = meta
        .register_node(known, &advertise, "")
        .await
        .context("registering with meta")?;
    if known != Some(node.id) {
        write_node_id(&args.data_dir, node.id)?;
    }
    let heartbeat = meta.start_heartbeat(node.id, Duration::from_secs(10));
    tracing::info!(node_id = node.id, %advertise, "registered with meta");
    let every = sundial_common::duration::parse_duration(&args.reconcile_interval)
        .map_err(anyhow::Error::msg)
        .context("--reconcile-interval")?;
    let reconciler =
        sundial_store::reconcile::spawn_reconciler(meta.clone(), store.clone(), node.id, every);

    let svc = tonic::service::interceptor::InterceptedService::new(
        StoreServiceServer::new(StoreService::new(store.clone(), meta.clone(), node.id))
            .max_decoding_message_size(args.max_message_size),
        SecretCheck::new(args.shared_secret.as_deref()),
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {bound} node {}", node.id)?;
        out.flush()?;
    }
    let mut server = tonic::transport::Server::builder();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context("TLS configuration")?;
    }
    server
        .timeout(Duration::from_secs(60))
        .add_service(svc)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            sundial_common::process::shutdown_signal(),
        )
        .await
        .context("gRPC server")?;

    reconciler.abort();
    drop(heartbeat);
    meta.close();
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await?
        .context("closing the store")?;
    tracing::info!("sundial-store stopped");
    Ok(())
}
