//! `sundial-meta`: the cluster metadata service (gRPC `MetaService` over etcd), and
//! the cluster's retention enforcement and shard precreation.
//!
//! Configuration: `[meta]`, `[cluster]`, `[retention]`, `[shard-precreation]`,
//! `[logging]` from a TOML file (`-c`), `SUNDIAL_<SECTION>_<KEY>` variables and
//! flags; `sundial-meta config` prints it.
//!
//! The gRPC service is stateless: run as many as you like against one etcd. The
//! services run in one of them, elected through an etcd lease
//! (`<prefix>leader/services`); another takes over when it dies. Prints
//! `listening on ADDR` on stdout once it accepts connections (so tests can bind
//! port 0).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::{Deserialize, Serialize};
use sundial_common::config::{self, duration, set, ClusterConfig, LoggingConfig, TracingConfig};
use sundial_common::duration::parse_duration;
use sundial_common::metrics::{self, GrpcMetrics};
use sundial_common::process::shutdown_signal;
use sundial_common::telemetry::export;
use sundial_meta::election::{Election, ElectionOptions};
use sundial_meta::services::{run_elected, PrecreationConfig, RetentionConfig, ServiceOptions};
use sundial_meta::{EtcdBackend, KvBackend, MetaServer, MetaStore};

/// Sundial meta service.
#[derive(Debug, Parser)]
#[command(
    name = "sundial-meta",
    version,
    about = "Sundial meta service: cluster metadata (gRPC MetaService) over etcd, and the cluster's retention and shard precreation",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: Flags,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Print the configuration as TOML: the defaults, with the file (-c), the
    /// `SUNDIAL_…` variables and the flags given applied.
    Config(Flags),
    /// Exit 0 when the running process answers on its own `/health` (for
    /// container health checks: the images have no shell), else 1.
    Health(Flags),
}

/// The configuration file's sections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct Config {
    meta: MetaConfig,
    cluster: ClusterConfig,
    retention: RetentionConfig,
    shard_precreation: PrecreationConfig,
    logging: LoggingConfig,
    tracing: TracingConfig,
}

/// `[meta]`: the service and its etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
struct MetaConfig {
    /// Address to serve gRPC on (port 0: any free port).
    listen: String,
    /// etcd endpoints (`SUNDIAL_META_ETCD_ENDPOINTS`: comma separated).
    etcd_endpoints: Vec<String>,
    /// Key prefix (namespace) for all metadata in etcd.
    prefix: String,
    /// PEM certificate (chain) to serve gRPC over TLS with (with `tls-key`).
    tls_cert: PathBuf,
    /// PEM private key of `tls-cert`.
    tls_key: PathBuf,
    /// TTL of the services leader's lease (whole seconds): a leader that dies is
    /// replaced within about this plus a third of it.
    #[serde(with = "duration")]
    leader_lease_ttl: Duration,
    /// HTTP address of the service's `/metrics` (Prometheus) and `/health`;
    /// empty: none.
    metrics_listen: String,
    /// Copies of each shard in the `autogen` policy of databases created without
    /// a policy (`CREATE DATABASE db`, or a write's auto-creation).
    default_replication_factor: u32,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            listen: "127.0.0.1:8091".into(),
            etcd_endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/sundial/".into(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            leader_lease_ttl: Duration::from_secs(10),
            metrics_listen: "127.0.0.1:8092".into(),
            default_replication_factor: 1,
        }
    }
}

impl Config {
    fn validate(&self) -> anyhow::Result<()> {
        self.retention.validate()?;
        self.shard_precreation.validate()?;
        anyhow::ensure!(
            !self.meta.etcd_endpoints.is_empty(),
            "meta.etcd-endpoints: at least one endpoint"
        );
        anyhow::ensure!(
            self.meta.default_replication_factor >= 1,
            "meta.default-replication-factor: at least 1"
        );
        anyhow::ensure!(
            self.meta.leader_lease_ttl >= Duration::from_secs(1),
            "meta.leader-lease-ttl: a lease lasts at least 1s"
        );
        Ok(())
    }
}

/// Variables this binary read before its configuration had sections.
const RENAMED_ENV: &[(&str, &str)] = &[
    (
        "SUNDIAL_META_RETENTION_CHECK_INTERVAL",
        "SUNDIAL_RETENTION_CHECK_INTERVAL",
    ),
    (
        "SUNDIAL_META_PRECREATE_CHECK_INTERVAL",
        "SUNDIAL_SHARD_PRECREATION_CHECK_INTERVAL",
    ),
    (
        "SUNDIAL_META_PRECREATE_ADVANCE_PERIOD",
        "SUNDIAL_SHARD_PRECREATION_ADVANCE_PERIOD",
    ),
];

/// Flags: each overrides its key of the configuration.
#[derive(Debug, Clone, Default, clap::Args)]
struct Flags {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SUNDIAL_CONFIG")]
    config: Option<PathBuf>,
    /// [meta] listen.
    #[arg(long)]
    listen: Option<String>,
    /// [meta] etcd-endpoints, comma separated.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Option<Vec<String>>,
    /// [meta] prefix.
    #[arg(long)]
    prefix: Option<String>,
    /// [retention] check-interval.
    #[arg(long, value_parser = parse_duration)]
    retention_check_interval: Option<Duration>,
    /// [shard-precreation] check-interval.
    #[arg(long, value_parser = parse_duration)]
    precreate_check_interval: Option<Duration>,
    /// [shard-precreation] advance-period.
    #[arg(long, value_parser = parse_duration)]
    precreate_advance_period: Option<Duration>,
    /// [cluster] shared-secret: calls without it are refused.
    #[arg(long)]
    shared_secret: Option<String>,
    /// [meta] tls-cert.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// [meta] tls-key.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Never run retention and precreation in this instance (nor campaign for
    /// them): [retention] and [shard-precreation] enabled = false.
    #[arg(long)]
    no_services: bool,
    /// [meta] leader-lease-ttl.
    #[arg(long, value_parser = parse_duration)]
    leader_lease_ttl: Option<Duration>,
    /// [meta] metrics-listen (empty: no metrics listener).
    #[arg(long)]
    metrics_listen: Option<String>,
}

impl Flags {
    /// Defaults < file < `SUNDIAL_…` variables < these flags.
    fn load(self) -> anyhow::Result<(Config, Vec<String>)> {
        // The old switch stands for both services' `enabled = false`.
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        let mut no_services = self.no_services;
        env.retain(|(k, v)| {
            if k == "SUNDIAL_META_NO_SERVICES" {
                no_services |= matches!(v.trim(), "1" | "true");
                return false;
            }
            true
        });
        let (env, mut warnings) = config::rename_env(env, RENAMED_ENV);
        let loaded = config::load::<Config>(self.config.as_deref(), env.clone())?;
        warnings.extend(loaded.warnings);
        let mut c = loaded.config;
        let m = &mut c.meta;
        set(&mut m.listen, self.listen);
        set(&mut m.etcd_endpoints, self.etcd_endpoints);
        set(&mut m.prefix, self.prefix);
        set(&mut m.tls_cert, self.tls_cert);
        set(&mut m.tls_key, self.tls_key);
        set(&mut m.leader_lease_ttl, self.leader_lease_ttl);
        set(&mut m.metrics_listen, self.metrics_listen);
        set(&mut c.cluster.shared_secret, self.shared_secret);
        set(
            &mut c.retention.check_interval,
            self.retention_check_interval,
        );
        let p = &mut c.shard_precreation;
        set(&mut p.check_interval, self.precreate_check_interval);
        set(&mut p.advance_period, self.precreate_advance_period);
        if no_services {
            c.retention.enabled = false;
            c.shard_precreation.enabled = false;
        }
        c.tracing.apply_otel_env(env)?;
        c.validate()?;
        Ok((c, warnings))
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let flags = match cli.cmd {
        Some(Cmd::Config(flags)) => {
            print!("{}", config::to_toml(&flags.load()?.0));
            return Ok(());
        }
        Some(Cmd::Health(flags)) => {
            // Served by the metrics listener (empty address: none, so unhealthy).
            sundial_serve::health_command(&flags.load()?.0.meta.metrics_listen, "/health")
        }
        None => cli.run,
    };
    let (cfg, unknown) = flags.load()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let telemetry = export::start("sundial-meta", &rt, &cfg.logging, &cfg.tracing, &unknown)?;
    let res = rt.block_on(run(cfg));
    telemetry.shutdown();
    res
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let m = &cfg.meta;
    let identity = config::tls_identity(&m.tls_cert, &m.tls_key, "meta")?;
    let kv: Arc<dyn KvBackend> =
        Arc::new(EtcdBackend::connect(&m.etcd_endpoints, m.prefix.as_bytes().to_vec()).await?);
    let store = MetaStore::new(kv.clone()).with_default_replication(m.default_replication_factor);
    let listen: SocketAddr = m
        .listen
        .parse()
        .with_context(|| format!("meta.listen {:?}", m.listen))?;
    let (listener, addr) = MetaServer::bind(listen).await?;
    let grpc_metrics = GrpcMetrics::default();
    let mut registry = metrics::registry();
    grpc_metrics.register(&mut registry);
    let metrics_addr = sundial_serve::serve_metrics(&m.metrics_listen, registry).await?;
    tracing::info!(%addr, etcd = ?m.etcd_endpoints, prefix = %m.prefix, "sundial-meta started");
    {
        let mut out = std::io::stdout().lock();
        match metrics_addr {
            Some(maddr) => writeln!(out, "listening on {addr} metrics {maddr}")?,
            None => writeln!(out, "listening on {addr}")?,
        }
        out.flush()?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut meta_server = MetaServer::new(store.clone())
        .with_secret(cfg.cluster.secret())
        .with_metrics(grpc_metrics);
    if let Some(config::TlsPem { cert, key }) = identity {
        meta_server = meta_server.with_tls(cert, key);
    }
    let server = tokio::spawn(meta_server.serve(listener, async {
        let _ = stop_rx.await;
    }));

    // The services stop (and the leader resigns) when this flips.
    let (services_stop, mut services_stopped) = tokio::sync::watch::channel(false);
    let opts = ServiceOptions {
        retention: cfg.retention.clone(),
        precreation: cfg.shard_precreation.clone(),
    };
    let services = if !opts.any() {
        tracing::info!("retention and shard precreation disabled here");
        None
    } else {
        // Unique per process: the leader key says which instance leads.
        let id = format!(
            "{addr}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let ttl = m.leader_lease_ttl;
        let election = Election::new(
            kv,
            id,
            ElectionOptions {
                ttl,
                retry_interval: (ttl / 3).min(Duration::from_secs(3)),
                ..ElectionOptions::default()
            },
        );
        Some(tokio::spawn(run_elected(
            election,
            Arc::new(store),
            opts,
            async move {
                let _ = services_stopped.wait_for(|stop| *stop).await;
            },
        )))
    };

    tokio::select! {
        res = server => {
            // The server ended by itself: that is an error.
            res??;
            anyhow::bail!("gRPC server stopped unexpectedly");
        }
        () = shutdown_signal() => {}
    }
    tracing::info!("sundial-meta stopping");
    let _ = stop_tx.send(());
    let _ = services_stop.send(true);
    if let Some(services) = services {
        // Resigning is bounded by the lease TTL; do not hang on a dead etcd.
        let bound = m.leader_lease_ttl + Duration::from_secs(1);
        if tokio::time::timeout(bound, services).await.is_err() {
            tracing::warn!("services did not stop in time");
        }
    }
    // Watch streams never end by themselves; the service keeps no state, so there is
    // nothing to flush — give unary calls a moment, then exit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tracing::info!("sundial-meta stopped");
    Ok(())
}
