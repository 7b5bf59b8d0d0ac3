//! `sundial-meta`: the cluster metadata service (gRPC `MetaService` over etcd).
//!
//! Stateless: run as many as you like against one etcd. Prints `listening on ADDR`
//! on stdout once it accepts connections (so tests can bind port 0).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use sundial_meta::{EtcdBackend, MetaServer, MetaStore};

/// Sundial meta service.
#[derive(Debug, Parser)]
#[command(
    name = "sundial-meta",
    version,
    about = "Sundial meta service: cluster metadata (gRPC MetaService) over etcd"
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
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let kv = EtcdBackend::connect(&args.etcd_endpoints, args.prefix.as_bytes().to_vec()).await?;
    let store = MetaStore::new(Arc::new(kv));
    let (listener, addr) = MetaServer::bind(args.listen).await?;
    tracing::info!(%addr, etcd = ?args.etcd_endpoints, prefix = %args.prefix, "sundial-meta started");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(MetaServer::new(store).serve(listener, async {
        let _ = stop_rx.await;
    }));
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
    // Watch streams never end by themselves; the service keeps no state, so there is
    // nothing to flush — give unary calls a moment, then exit.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    tracing::info!("sundial-meta stopped");
    Ok(())
}
