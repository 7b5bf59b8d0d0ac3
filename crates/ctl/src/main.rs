//! `sundial-ctl`: the cluster's admin command (InfluxDB Enterprise's
//! `influxd-ctl`). Reads meta through `sundial-meta`; talks to stores with the
//! cluster's secret (and TLS when given a CA).
//!
//! ```text
//! sundial-ctl nodes                     nodes, their addresses, alive or not
//! sundial-ctl shards [--database DB]    shards with their time range and owners
//! sundial-ctl read-shard ID [--node N]  a shard's points as line protocol, from a store
//! sundial-ctl copy-shard ID --from N --to M
//!                                       makes M an owner of the shard and copies the
//!                                       shard's points from N to it
//! sundial-ctl remove-node N             moves each of N's shards to another node
//!                                       (copy-shard from a live owner), then
//!                                       removes N from meta
//! ```

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Parser;
use sundial_cluster::secret::SecretInterceptor;
use sundial_cluster::wire::{decode_points, DecodeLimits};
use sundial_meta::{ClientOptions, MetaClient};
use sundial_proto::store::store_service_client::StoreServiceClient;
use sundial_proto::store::{ReadShardRequest, WriteToShardRequest};
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
    /// PEM file of the CA that signed the stores' and sundial-meta's certificates.
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
    /// Make node `to` an owner of a shard and copy the shard's points to it from
    /// owner `from` (repair after hints expired or a disk was lost).
    CopyShard {
        shard: u64,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
    /// Move every shard of a node to other nodes, then remove it from meta. Each
    /// shard gets a live node that does not own it yet (the least loaded) and a
    /// copy of its points from a live owner; a shard no other node can take
    /// keeps its other owners only.
    RemoveNode { node: u64 },
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
    let meta_opts = ClientOptions {
        secret: cli.shared_secret.clone(),
        tls_ca: match &cli.tls_ca {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        },
        ..ClientOptions::default()
    };
    let meta = MetaClient::remote(&cli.meta, meta_opts)
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
        Cmd::CopyShard { shard, from, to } => {
            let n = copy_shard(&cli, &meta, *shard, *from, *to).await?;
            writeln!(
                out,
                "copied {n} points of shard {shard} from node {from} to node {to}"
            )?;
        }
        Cmd::RemoveNode { node } => {
            remove_node(&cli, &meta, *node, &mut out).await?;
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

async fn remove_node(cli: &Cli, meta: &MetaClient, node: u64, out: &mut impl Write) -> Result<()> {
    meta.node(node)
        .with_context(|| format!("node {node} not found in meta"))?;
    let live: Vec<u64> = meta
        .live_nodes()
        .iter()
        .map(|n| n.id)
        .filter(|&id| id != node)
        .collect();
    let groups = meta.all_shard_groups();
    // Shards per node, to give each moved shard to the least loaded candidate.
    let mut load: std::collections::HashMap<u64, usize> = live.iter().map(|&id| (id, 0)).collect();
    for s in groups.iter().flat_map(|g| &g.shards) {
        for o in &s.owners {
            *load.entry(*o).or_default() += 1;
        }
    }
    let node_alive = meta.live_nodes().iter().any(|n| n.id == node);
    for s in groups.iter().flat_map(|g| &g.shards) {
        if !s.owners.contains(&node) {
            continue;
        }
        let others: Vec<u64> = s.owners.iter().copied().filter(|&o| o != node).collect();
        let target = live
            .iter()
            .copied()
            .filter(|id| !s.owners.contains(id))
            .min_by_key(|id| load.get(id).copied().unwrap_or(0));
        match target {
            Some(to) => {
                let from = others
                    .iter()
                    .copied()
                    .find(|o| live.contains(o))
                    .or(node_alive.then_some(node))
                    .with_context(|| format!("shard {}: no live owner to copy it from", s.id))?;
                let n = copy_shard(cli, meta, s.id, from, to).await?;
                let mut owners = others.clone();
                owners.push(to);
                meta.set_shard_owners(s.id, &owners).await?;
                *load.entry(to).or_default() += 1;
                writeln!(
                    out,
                    "shard {}: {n} points copied from node {from} to node {to}",
                    s.id
                )?;
            }
            None if !others.is_empty() => {
                meta.set_shard_owners(s.id, &others).await?;
                writeln!(out, "shard {}: kept by nodes {others:?} only", s.id)?;
            }
            None => bail!("shard {}: no other live node can take it", s.id),
        }
    }
    meta.delete_node(node).await?;
    writeln!(out, "node {node} removed")?;
    Ok(())
}

type Client = StoreServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, SecretInterceptor>,
>;

async fn copy_shard(cli: &Cli, meta: &MetaClient, shard: u64, from: u64, to: u64) -> Result<u64> {
    let snap = meta.snapshot();
    let Some((g, info)) = snap.shard(shard) else {
        bail!("shard {shard} not found in meta");
    };
    if !info.owners.contains(&from) {
        bail!(
            "node {from} does not own shard {shard} (owners: {:?})",
            info.owners
        );
    }
    let target = meta
        .node(to)
        .with_context(|| format!("node {to} not found in meta"))?;
    let source = meta
        .node(from)
        .with_context(|| format!("node {from} not found in meta"))?;
    let database = g.database.clone();
    if !info.owners.contains(&to) {
        let mut owners = info.owners.clone();
        owners.push(to);
        meta.set_shard_owners(shard, &owners).await?;
        // New writes now go to `to` as well; give gateways' caches a moment to
        // learn it, so that no write lands only on the old owners after the copy
        // has read past its series.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let copy_started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut stream = open_shard_stream(cli, &source.grpc_addr, shard).await?;
    let mut dst = connect(cli, &target.grpc_addr).await?;
    let mut n = 0;
    while let Some(msg) = stream.message().await? {
        // The chunk is already a WriteToShard payload: it goes on unchanged.
        let r = dst
            .write_to_shard(WriteToShardRequest {
                shard_id: shard,
                database: database.clone(),
                points: msg.points,
                // Chunks read before the source applied a delete issued
                // since lose what it covers on the destination.
                accepted_ms: copy_started_ms,
            })
            .await
            .with_context(|| format!("writing to node {to}"))?
            .into_inner();
        n += r.points_written as u64;
    }
    Ok(n)
}

async fn connect(cli: &Cli, addr: &str) -> Result<Client> {
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
    Ok(StoreServiceClient::with_interceptor(
        channel,
        SecretInterceptor::new(cli.shared_secret.as_deref()).map_err(anyhow::Error::msg)?,
    )
    .max_decoding_message_size(256 << 20)
    .max_encoding_message_size(256 << 20))
}

/// All of a shard's points from the store at `addr`, as a stream of payloads.
async fn open_shard_stream(
    cli: &Cli,
    addr: &str,
    shard: u64,
) -> Result<tonic::Streaming<sundial_proto::store::ReadShardResponse>> {
    let mut client = connect(cli, addr).await?;
    Ok(client
        .read_shard(ReadShardRequest {
            shard_id: shard,
            start: None,
            end: None,
        })
        .await?
        .into_inner())
}

async fn read_shard(cli: &Cli, addr: &str, shard: u64, out: &mut impl Write) -> Result<usize> {
    let mut stream = open_shard_stream(cli, addr, shard).await?;
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
