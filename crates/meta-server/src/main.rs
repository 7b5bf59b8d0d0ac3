//! `sundial-meta`: the cluster metadata service (gRPC `MetaService` over etcd), and
//! the cluster's retention enforcement and shard precreation.
//!
//! The gRPC service is stateless: run as many as you like against one etcd. The
//! services run in one of them, elected through an etcd lease
//! (`<prefix>leader/services`); another takes over when it dies. Prints
//! `listening on ADDR` on stdout once it accepts connections (so tests can bind
//! port 0).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sundial_common::duration::parse_duration;
use sundial_common::process::{init_logging, shutdown_signal};
use sundial_meta::election::{Election, ElectionOptions};
use sundial_meta::services::{run_elected, ServiceOptions};
use sundial_meta::{EtcdBackend, KvBackend, MetaServer, MetaStore};

/// Sundial meta service.
#[derive(Debug, Parser)]
#[command(
    name = "sundial-meta",
    version,
    about = "Sundial meta service: cluster metadata (gRPC MetaService) over etcd, and the cluster's retention and shard precreation"
)]
struct Args {
    /// Address to serve gRPC on (port 0 = any free port).
    #[arg(long, env = "SUNDIAL_META_LISTEN", default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
    /// etcd endpoints, comma separated.
    #[arg(
        long,
        env = "SUNDIAL_META_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    etcd_endpoints: Vec<String>,
    /// Key prefix (namespace) for all metadata in etcd.
    #[arg(long, env = "SUNDIAL_META_PREFIX", default_value = "/sundial/")]
    prefix: String,
    /// How often shard groups past their retention policy are deleted.
    #[arg(
        long,
        env = "SUNDIAL_META_RETENTION_CHECK_INTERVAL",
        default_value = "30m",
        value_parser = positive_duration
    )]
    retention_check_interval: Duration,
    /// How often the next shard groups are precreated.
    #[arg(
        long,
        env = "SUNDIAL_META_PRECREATE_CHECK_INTERVAL",
        default_value = "10m",
        value_parser = positive_duration
    )]
    precreate_check_interval: Duration,
    /// How long before a shard group ends its successor is created.
    #[arg(
        long,
        env = "SUNDIAL_META_PRECREATE_ADVANCE_PERIOD",
        default_value = "30m",
        value_parser = parse_duration
    )]
    precreate_advance_period: Duration,
    /// The cluster's shared secret: calls without it are refused.
    #[arg(long, env = "SUNDIAL_CLUSTER_SHARED_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// PEM certificate (chain) to serve gRPC over TLS with; needs --tls-key.
    #[arg(long, env = "SUNDIAL_META_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SUNDIAL_META_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Never run retention and precreation in this instance (nor campaign for them).
    #[arg(long, env = "SUNDIAL_META_NO_SERVICES")]
    no_services: bool,
    /// TTL of the services leader's lease (whole seconds): a leader that dies is
    /// replaced within about this plus a third of it.
    #[arg(
        long,
        env = "SUNDIAL_META_LEADER_LEASE_TTL",
        default_value = "10s",
        value_parser = lease_ttl
    )]
    leader_lease_ttl: Duration,
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} must be more than zero"));
    }
    Ok(d)
}

fn lease_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?}: a lease lasts at least 1s"));
    }
    Ok(d)
}

fn main() -> anyhow::Result<()> {
    init_logging("info");
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let kv: Arc<dyn KvBackend> = Arc::new(
        EtcdBackend::connect(&args.etcd_endpoints, args.prefix.as_bytes().to_vec()).await?,
    );
    let store = MetaStore::new(kv.clone());
    let (listener, addr) = MetaServer::bind(args.listen).await?;
    tracing::info!(%addr, etcd = ?args.etcd_endpoints, prefix = %args.prefix, "sundial-meta started");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut meta_server = MetaServer::new(store.clone()).with_secret(args.shared_secret.clone());
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |p: &std::path::PathBuf| {
            anyhow::Context::with_context(std::fs::read(p), || format!("reading {}", p.display()))
        };
        meta_server = meta_server.with_tls(read(cert)?, read(key)?);
    }
    let server = tokio::spawn(meta_server.serve(listener, async {
        let _ = stop_rx.await;
    }));

    // The services stop (and the leader resigns) when this flips.
    let (services_stop, mut services_stopped) = tokio::sync::watch::channel(false);
    let services = if args.no_services {
        tracing::info!("retention and shard precreation disabled here (--no-services)");
        None
    } else {
        // Unique per process: the leader key says which instance leads.
        let id = format!(
            "{addr}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let ttl = args.leader_lease_ttl;
        let election = Election::new(
            kv,
            id,
            ElectionOptions {
                ttl,
                retry_interval: (ttl / 3).min(Duration::from_secs(3)),
                ..ElectionOptions::default()
            },
        );
        let opts = ServiceOptions {
            retention_check_interval: args.retention_check_interval,
            precreate_check_interval: args.precreate_check_interval,
            precreate_advance_period: args.precreate_advance_period,
        };
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
        let bound = args.leader_lease_ttl + Duration::from_secs(1);
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
