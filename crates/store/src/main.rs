//! `sundial-store`: a storage node. Opens its shards' store, registers with meta
//! under the node id kept in its data directory, keeps its liveness lease, and
//! serves the gRPC `StoreService` (`WriteToShard`, `Health`).
//!
//! Configuration: `[store]`, `[cluster]`, `[data]`, `[runtime]`, `[logging]` from
//! a TOML file (`-c`), `SUNDIAL_<SECTION>_<KEY>` variables and flags;
//! `sundial-store config` prints it.
//!
//! Start order: data dir → listener bound → store (no shard opened) → meta client →
//! registration → heartbeat → gRPC served (`listening on ADDR` on stdout). SIGTERM: stop
//! accepting and finish in-flight calls, stop the heartbeat, close the store (WAL
//! synced, shards closed).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};
use sundial_cluster::secret::SecretCheck;
use sundial_common::config::{
    self, duration, set, ClusterConfig, LoggingConfig, RuntimeConfig, TracingConfig,
};
use sundial_common::duration::parse_duration;
use sundial_common::metrics::{self, GrpcMetrics};
use sundial_common::telemetry::export;
use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_meta::{ClientOptions, MetaClient};
use sundial_proto::store::store_service_server::StoreServiceServer;
use sundial_store::config::{raise_fd_limit, DataConfig};
use sundial_store::deletes::Deletes;
use sundial_store::node::{read_node_id, write_node_id};
use sundial_store::StoreService;

/// gRPC connections counted against the open-file budget: gateways and peers keep
/// one each.
const GRPC_CONNECTIONS: usize = 256;

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

/// The configuration file's sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct Config {
    store: StoreConfig,
    cluster: ClusterConfig,
    data: DataConfig,
    runtime: RuntimeConfig,
    logging: LoggingConfig,
    tracing: TracingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: StoreConfig::default(),
            cluster: ClusterConfig::default(),
            // Not `./data`: the all-in-one server's default on the same machine.
            data: DataConfig {
                dir: PathBuf::from("data/store"),
                ..DataConfig::default()
            },
            runtime: RuntimeConfig::default(),
            logging: LoggingConfig::default(),
            tracing: TracingConfig::default(),
        }
    }
}

/// `[store]`: the node's service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct StoreConfig {
    /// Address to serve gRPC on (port 0: any free port).
    listen: String,
    /// Address other nodes reach this one at (`host:port`; a host or service name
    /// is fine). Empty: the bound listen address.
    advertise: String,
    /// Meta service endpoints (`host:port`, comma separated).
    meta: String,
    /// PEM certificate (chain) to serve gRPC over TLS with (with `tls-key`).
    tls_cert: PathBuf,
    /// PEM private key of `tls-cert`.
    tls_key: PathBuf,
    /// Largest WriteToShard message accepted (bytes).
    max_message_size: usize,
    /// How often the node's shards are brought in line with meta (created ahead of
    /// their first write; dropped when meta no longer assigns them here).
    #[serde(with = "duration")]
    reconcile_interval: Duration,
    /// The node's liveness lease: a node silent this long leaves the live set.
    #[serde(with = "duration")]
    lease_ttl: Duration,
    /// How long applied deletes are remembered, so that a write hinted
    /// handoff queued before a delete loses what the delete covers: at least
    /// the gateways' `[hinted-handoff] max-age`.
    #[serde(with = "duration")]
    delete_journal_max_age: Duration,
    /// HTTP address of the node's `/metrics` (Prometheus); empty: none.
    metrics_listen: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            listen: "127.0.0.1:8088".into(),
            advertise: String::new(),
            meta: "127.0.0.1:8091".into(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            max_message_size: 64 << 20,
            reconcile_interval: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(10),
            delete_journal_max_age: Duration::from_secs(7 * 24 * 3600),
            metrics_listen: "127.0.0.1:8089".into(),
        }
    }
}

impl Config {
    fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.runtime.validate()?;
        anyhow::ensure!(
            !self.store.reconcile_interval.is_zero(),
            "store.reconcile-interval must be longer than 0"
        );
        anyhow::ensure!(
            self.store.lease_ttl >= Duration::from_secs(1),
            "store.lease-ttl: a lease lasts at least 1s"
        );
        Ok(())
    }
}

/// Variables this binary read before its configuration had sections.
const RENAMED_ENV: &[(&str, &str)] = &[
    ("SUNDIAL_STORE_DATA_DIR", "SUNDIAL_DATA_DIR"),
    ("SUNDIAL_STORE_WAL_FSYNC", "SUNDIAL_DATA_WAL_FSYNC"),
];

/// Flags: each overrides its key of the configuration.
#[derive(Debug, Clone, Default, clap::Args)]
struct Flags {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SUNDIAL_CONFIG")]
    config: Option<PathBuf>,
    /// [data] dir: shards, series catalogs, node id.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// [store] listen.
    #[arg(long)]
    listen: Option<String>,
    /// [store] advertise.
    #[arg(long)]
    advertise: Option<String>,
    /// [store] meta.
    #[arg(long)]
    meta: Option<String>,
    /// [cluster] shared-secret.
    #[arg(long)]
    shared_secret: Option<String>,
    /// [store] tls-cert.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// [store] tls-key.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// [cluster] tls-ca: meta calls use TLS.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// [store] metrics-listen (empty: no metrics listener).
    #[arg(long)]
    metrics_listen: Option<String>,
    /// [store] max-message-size.
    #[arg(long)]
    max_message_size: Option<usize>,
    /// [store] reconcile-interval.
    #[arg(long, value_parser = parse_duration)]
    reconcile_interval: Option<Duration>,
    /// [data] wal-fsync: `always`, `never`, or an interval.
    #[arg(long, value_parser = FsyncPolicy::parse)]
    wal_fsync: Option<FsyncPolicy>,
}

impl Flags {
    /// Defaults < file < `SUNDIAL_…` variables < these flags.
    fn load(self) -> Result<(Config, Vec<String>)> {
        let env = std::env::vars();
        let (env, mut warnings) = config::rename_env(env, RENAMED_ENV);
        let loaded = config::load::<Config>(self.config.as_deref(), env.clone())?;
        warnings.extend(loaded.warnings);
        let mut c = loaded.config;
        let s = &mut c.store;
        set(&mut c.data.dir, self.data_dir);
        set(&mut s.listen, self.listen);
        set(&mut s.advertise, self.advertise);
        set(&mut s.meta, self.meta);
        set(&mut c.cluster.shared_secret, self.shared_secret);
        set(&mut s.tls_cert, self.tls_cert);
        set(&mut s.tls_key, self.tls_key);
        set(&mut c.cluster.tls_ca, self.tls_ca);
        set(&mut s.max_message_size, self.max_message_size);
        set(&mut s.metrics_listen, self.metrics_listen);
        set(&mut s.reconcile_interval, self.reconcile_interval);
        set(&mut c.data.wal_fsync, self.wal_fsync);
        c.tracing.apply_otel_env(env)?;
        c.validate()?;
        Ok((c, warnings))
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let flags = match cli.cmd {
        Some(Cmd::Export { data_dir, shard }) => {
            sundial_common::process::init_logging("warn");
            return export(&data_dir, shard);
        }
        Some(Cmd::Config(flags)) => {
            print!("{}", config::to_toml(&flags.load()?.0));
            return Ok(());
        }
        Some(Cmd::Health(flags)) => {
            // Served by the metrics listener (empty address: none, so unhealthy).
            sundial_serve::health_command(&flags.load()?.0.store.metrics_listen, "/health")
        }
        None => cli.run,
    };
    let (cfg, unknown) = flags.load()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cfg.runtime.max_blocking_threads)
        .build()?;
    let telemetry = export::start("sundial-store", &rt, &cfg.logging, &cfg.tracing, &unknown)?;
    raise_fd_limit();
    let res = rt.block_on(run(cfg));
    telemetry.shutdown();
    res
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

async fn run(cfg: Config) -> Result<()> {
    let data_dir = &cfg.data.dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let identity = config::tls_identity(&cfg.store.tls_cert, &cfg.store.tls_key, "store")?;
    let secret = cfg.cluster.secret();
    let listener = tokio::net::TcpListener::bind(&cfg.store.listen)
        .await
        .with_context(|| format!("binding {}", cfg.store.listen))?;
    let bound = listener.local_addr()?;
    let advertise = match cfg.store.advertise.as_str() {
        "" => bound.to_string(),
        a => a.to_string(),
    };

    let opts = cfg.data.engine_options(GRPC_CONNECTIONS);
    let dir = data_dir.join("shards");
    let store = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&dir, opts)).await??
    };
    let store = Arc::new(store);
    tracing::info!(dir = %dir.display(), shards = store.shard_ids().len(), "store opened");

    let meta_opts = ClientOptions {
        secret: secret.clone(),
        tls_ca: cfg.cluster.tls_ca_pem()?,
        ..ClientOptions::default()
    };
    let meta = MetaClient::remote(&cfg.store.meta, meta_opts)
        .await
        .with_context(|| format!("connecting to meta at {}", cfg.store.meta))?;
    let known = read_node_id(data_dir)?;
    let node = meta
        .register_node(known, &advertise, "")
        .await
        .context("registering with meta")?;
    if known != Some(node.id) {
        write_node_id(data_dir, node.id)?;
    }
    let heartbeat = meta.start_heartbeat(node.id, cfg.store.lease_ttl);
    tracing::info!(node_id = node.id, %advertise, "registered with meta");
    let deletes = {
        let (store, dir, age) = (
            store.clone(),
            data_dir.clone(),
            cfg.store.delete_journal_max_age,
        );
        tokio::task::spawn_blocking(move || Deletes::open(store, &dir, age)).await??
    };
    // Deletes this node missed while it was down: applied at once, then kept up.
    let pending = sundial_store::deletes::spawn_pending_applier(
        deletes.clone(),
        meta.clone(),
        node.id,
        Duration::from_secs(1),
    );
    let reconciler = sundial_store::reconcile::spawn_reconciler(
        meta.clone(),
        store.clone(),
        node.id,
        cfg.store.reconcile_interval,
    );

    let svc = tonic::service::interceptor::InterceptedService::new(
        StoreServiceServer::new(
            StoreService::new(store.clone(), meta.clone(), node.id)
                .with_deletes(deletes)
                .with_authenticated_callers(secret.is_some()),
        )
        .max_decoding_message_size(cfg.store.max_message_size),
        SecretCheck::new(secret.as_deref()),
    );
    // `/metrics`: the engine, the gRPC calls answered, the meta cache.
    let grpc_metrics = GrpcMetrics::default();
    let mut registry = metrics::registry();
    sundial_store::metrics::register_engine(&mut registry, store.clone(), cfg.data.metrics_enabled);
    grpc_metrics.register(&mut registry);
    meta.register_metrics(&mut registry);
    let metrics_addr = sundial_serve::serve_metrics(&cfg.store.metrics_listen, registry).await?;
    {
        let mut out = std::io::stdout().lock();
        match metrics_addr {
            Some(m) => writeln!(out, "listening on {bound} node {} metrics {m}", node.id)?,
            None => writeln!(out, "listening on {bound} node {}", node.id)?,
        }
        out.flush()?;
    }
    let mut server = tonic::transport::Server::builder();
    if let Some(config::TlsPem { cert, key }) = identity {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .context("TLS configuration")?;
    }
    server
        .timeout(Duration::from_secs(60))
        .layer(grpc_metrics.layer())
        .add_service(svc)
        .serve_with_incoming_shutdown(
            // TCP_NODELAY: a query read's small last message must not wait
            // ~40 ms for the gateway's delayed ACK.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            sundial_common::process::shutdown_signal(),
        )
        .await
        .context("gRPC server")?;

    reconciler.abort();
    pending.abort();
    drop(heartbeat);
    meta.close();
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await?
        .context("closing the store")?;
    tracing::info!("sundial-store stopped");
    Ok(())
}
