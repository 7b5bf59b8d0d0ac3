//! `sundial-ctl`: the cluster's admin command (InfluxDB Enterprise's
//! `influxd-ctl`). Reads meta through `sundial-meta`; talks to stores with the
//! cluster's secret (and TLS when given a CA).
//!
//! ```text
//! sundial-ctl nodes                     nodes, their addresses, alive or not
//! sundial-ctl shards [--database DB]    shards with their time range and owners
//! sundial-ctl read-shard ID [--node N]  a shard's points as line protocol, from a store
//! ```

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Parser;
use sundial_cluster::secret::SecretInterceptor;
use sundial_cluster::wire::{decode_points, DecodeLimits};
use sundial_meta::{ClientOptions, MetaClient};
use sundial_proto::store::store_service_client::StoreServiceClient;
use sundial_proto::store::ReadShardRequest;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

#[derive(Debug, Parser)]
#[command(
    name = "sundial-ctl",
    version,
    about = "Sundial cluster administration"
)]
struct Cli {
    /// Meta service endpoints (`host:port`, comma separated).
    #[arg(long, env = "SUNDIAL_CTL_META", default_value = "127.0.0.1:8091")]
    meta: String,
    /// The cluster's shared secret (for calls to stores).
    #[arg(long, env = "SUNDIAL_CLUSTER_SHARED_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// PEM file of the CA that signed the stores' certificates.
    #[arg(long, env = "SUNDIAL_CLUSTER_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the nodes: id, gRPC address, alive.
    Nodes,
    /// List shards: id, database, retention policy, time range, owners.
    Shards {
        #[arg(long)]
        database: Option<String>,
    },
    /// Print a shard's points as line protocol, read from one of its owners.
    ReadShard {
        shard: u64,
        /// The owner to read from (default: the first live owner).
        #[arg(long)]
        node: Option<u64>,
    },
}

fn main() -> Result<()> {
    sundial_common::process::init_logging("warn");
    let cli = Cli::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let meta = MetaClient::remote(&cli.meta, ClientOptions::default())
        .await
        .with_context(|| format!("connecting to meta at {}", cli.meta))?;
    let mut out = std::io::stdout().lock();
    match &cli.cmd {
        Cmd::Nodes => {
            let live: Vec<u64> = meta.live_nodes().iter().map(|n| n.id).collect();
            writeln!(out, "{:<6} {:<28} alive", "id", "grpc address")?;
            for n in meta.nodes() {
                writeln!(
                    out,
                    "{:<6} {:<28} {}",
                    n.id,
                    n.grpc_addr,
                    live.contains(&n.id)
                )?;
            }
        }
        Cmd::Shards { database } => {
            writeln!(
                out,
                "{:<8} {:<16} {:<16} {:<21} {:<21} owners",
                "id", "database", "rp", "start", "end"
            )?;
            for g in meta.all_shard_groups() {
                if database.as_ref().is_some_and(|d| *d != g.database) {
                    continue;
                }
                for s in &g.shards {
                    let owners: Vec<String> = s.owners.iter().map(u64::to_string).collect();
                    writeln!(
                        out,
                        "{:<8} {:<16} {:<16} {:<21} {:<21} {}",
                        s.id,
                        g.database,
                        g.retention_policy,
                        g.start,
                        g.end,
                        owners.join(",")
                    )?;
                }
            }
        }
        Cmd::ReadShard { shard, node } => {
            let snap = meta.snapshot();
            let Some((_, info)) = snap.shard(*shard) else {
                bail!("shard {shard} not found in meta");
            };
            let live: Vec<u64> = meta.live_nodes().iter().map(|n| n.id).collect();
            let from = match node {
                Some(n) => *n,
                None => *info
                    .owners
                    .iter()
                    .find(|o| live.contains(o))
                    .with_context(|| format!("no owner of shard {shard} is alive"))?,
            };
            let addr = meta
                .node(from)
                .with_context(|| format!("node {from} not found in meta"))?
                .grpc_addr;
            let n = read_shard(&cli, &addr, *shard, &mut out).await?;
            eprintln!("{n} points from node {from}");
        }
    }
    meta.close();
    Ok(())
}

async fn read_shard(cli: &Cli, addr: &str, shard: u64, out: &mut impl Write) -> Result<usize> {
    let scheme = if cli.tls_ca.is_some() {
        "https"
    } else {
        "http"
    };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))?;
    if let Some(ca) = &cli.tls_ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        ep = ep.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))?;
    }
    let channel = ep
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let mut client = StoreServiceClient::with_interceptor(
        channel,
        SecretInterceptor::new(cli.shared_secret.as_deref())?,
    )
    .max_decoding_message_size(256 << 20);
    let mut stream = client
        .read_shard(ReadShardRequest {
            shard_id: shard,
            start: None,
            end: None,
        })
        .await?
        .into_inner();
    let mut n = 0;
    while let Some(msg) = stream.message().await? {
        let decoded = decode_points(&msg.points, &DecodeLimits::default())?;
        for p in decoded.iter() {
            writeln!(out, "{}", p.to_line())?;
            n += 1;
        }
    }
    Ok(n)
}
