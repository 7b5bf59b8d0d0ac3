//! `sundial`: the all-in-one server (gateway + embedded meta + one store), the
//! default for a new user. `sundial config` prints the default configuration;
//! `sundial export` dumps a database as line protocol.

mod config;
mod export;
mod services;
mod verify;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::sync::Arc;
use sundial_cluster::PointsWriter;
use sundial_common::metrics;
use sundial_engine::Store;
use sundial_gateway::http::{router, Gateway, HealthCheck, Querying};
use sundial_meta::{ClientOptions, EmbeddedBackend, MetaClient};
use sundial_store::config::raise_fd_limit;
use sundial_store::{LocalShardReader, LocalShardWriter};
use tracing::Instrument;

// Big per-request arenas (parsed batches) are freed and reallocated all the
// time; mimalloc reuses that memory instead of returning it to the OS and
// faulting it back in (measured: a third of parse time with glibc's defaults).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in mimalloc 3's option enum).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS 25 ms after it is freed instead of a
/// second: a delayed purge only happens at the freeing thread's next
/// allocation or a collection, so a collector thread purges what threads that
/// went idle after a burst still hold (measured: 250 MB held seconds after a
/// series flood with the 1 s default). Not at once either: queries allocate
/// and free their buffers all the time, and each fresh page faults back in
/// (measured: a third of a small GROUP BY query's CPU with no delay).
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: plain setters/getters of mimalloc's option table, which accept any
    // option index and value.
    unsafe {
        // Only if the index still names the delay (default 1000 ms; 10 in mimalloc 2)
        // and no MIMALLOC_PURGE_DELAY chose otherwise.
        if matches!(
            libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            10 | 1000
        ) {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 25);
        }
    }
    let collector = std::thread::Builder::new()
        .name("mi-collect".into())
        .spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            // SAFETY: mimalloc's collection entry point; any thread may call it.
            unsafe { libmimalloc_sys::mi_collect(false) };
        });
    if let Err(e) = collector {
        eprintln!("mimalloc collector thread not started: {e}");
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "sundial",
    version,
    about = "Sundial: an InfluxDB 1.x-compatible time-series database"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the server (the default).
    Run(RunArgs),
    /// Print the configuration as TOML: the defaults, with the file (-c), the
    /// `SUNDIAL_…` variables and the flags given applied.
    Config(RunArgs),
    /// Exit 0 when the running process answers on its own `/health` (for
    /// container health checks: the images have no shell), else 1.
    Health(RunArgs),
    /// Print a database's points as line protocol, read from a data directory.
    Export(ExportCmd),
    /// Check every checksum and block statistic of every data file under a data
    /// directory (the server's or a store's; offline). Exits 1 when any is damaged.
    Verify(VerifyCmd),
}

#[derive(Debug, Args)]
struct VerifyCmd {
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
}

#[derive(Debug, Args, Default)]
struct RunArgs {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "SUNDIAL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides [data] dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP listen address, e.g. 127.0.0.1:8086 or 127.0.0.1:0 (overrides [http] bind-address).
    #[arg(long)]
    bind: Option<String>,
    /// Require authentication (overrides [http] auth-enabled).
    #[arg(long)]
    auth_enabled: Option<bool>,
}

#[derive(Debug, Args)]
struct ExportCmd {
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long)]
    database: String,
    #[arg(long)]
    rp: Option<String>,
    /// Earliest timestamp (ns) to export.
    #[arg(long, default_value_t = i64::MIN)]
    start: i64,
    /// Latest timestamp (ns) to export.
    #[arg(long, default_value_t = i64::MAX)]
    end: i64,
}

fn main() -> Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Config(args)) => {
            print!("{}", load_config(args)?.0.to_toml());
            Ok(())
        }
        Some(Cmd::Health(args)) => {
            sundial_serve::health_command(&load_config(args)?.0.http.bind_address, "/health")
        }
        Some(Cmd::Export(e)) => {
            sundial_common::process::init_logging("warn");
            let rt = tokio::runtime::Runtime::new()?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = rt.block_on(export::export(
                export::ExportArgs {
                    data_dir: &e.data_dir,
                    database: &e.database,
                    retention_policy: e.rp.as_deref(),
                    start: e.start,
                    end: e.end,
                },
                &mut out,
            ))?;
            std::io::Write::flush(&mut out)?;
            eprintln!("exported {n} points");
            Ok(())
        }
        Some(Cmd::Verify(v)) => {
            let damaged = verify::verify(&v.data_dir, &mut std::io::stdout().lock())?;
            if damaged > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Cmd::Run(args)) => run(args),
        None => run(cli.run),
    }
}

/// The configuration: defaults < file < `SUNDIAL_…` variables < flags.
fn load_config(args: RunArgs) -> Result<(Config, Vec<String>)> {
    let (mut cfg, unknown) = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = args.data_dir {
        cfg.data.dir = d;
    }
    if let Some(b) = args.bind {
        cfg.http.bind_address = b;
    }
    if let Some(a) = args.auth_enabled {
        cfg.http.auth_enabled = a;
    }
    Ok((cfg, unknown))
}

fn run(args: RunArgs) -> Result<()> {
    let (cfg, unknown) = load_config(args)?;
    // Blocking work (shard writes, parsing) is bounded: a write to a thousand shards
    // queues on these threads instead of starting a thousand.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cfg.runtime.max_blocking_threads)
        .build()?;
    let telemetry = sundial_common::telemetry::export::start(
        "sundial",
        &rt,
        &cfg.logging,
        &cfg.tracing,
        &unknown,
    )?;
    raise_fd_limit();
    let res = rt.block_on(serve(cfg));
    telemetry.shutdown();
    res
}

async fn serve(cfg: Config) -> Result<()> {
    let open = tracing::info_span!("sundial.open", data_dir = %cfg.data.dir.display());
    let (meta, store, listener) = async {
        std::fs::create_dir_all(&cfg.data.dir)
            .with_context(|| format!("creating data dir {}", cfg.data.dir.display()))?;
        // 1. meta (embedded backend)
        let kv = EmbeddedBackend::open(cfg.data.dir.join("meta")).context("opening meta")?;
        let meta = MetaClient::local(Arc::new(kv), ClientOptions::default())
            .await
            .context("starting meta client")?;
        // 2. store
        let opts = cfg.data.engine_options(cfg.http.max_connections());
        let store =
            Arc::new(Store::open(cfg.data.dir.join("store"), opts).context("opening store")?);
        // 3. gateway listener
        let listener = tokio::net::TcpListener::bind(&cfg.http.bind_address)
            .await
            .with_context(|| format!("binding {}", cfg.http.bind_address))?;
        anyhow::Ok((meta, store, listener))
    }
    .instrument(open)
    .await?;
    let addr = listener.local_addr()?;
    // This node owns every shard: register it and keep it alive. Its store is
    // in-process, so it has no gRPC address of its own.
    let node = meta
        .register_node(Some(1), "in-process", &addr.to_string())
        .await
        .context("registering node")?;
    let heartbeat = meta.start_heartbeat(node.id, std::time::Duration::from_secs(10));
    meta.heartbeat(node.id, std::time::Duration::from_secs(10))
        .await?;

    name_legacy_shards(&meta, &store);
    let writer = PointsWriter::new(meta.clone(), Arc::new(LocalShardWriter::new(store.clone())))
        .with_max_new_shard_groups(cfg.coordinator.max_shard_groups_per_write);
    // After `raise_fd_limit`: the auto cap is a share of the raised limit.
    let listen = cfg.http.serve_options();
    let mut registry = metrics::registry();
    sundial_store::metrics::register_engine(&mut registry, store.clone(), cfg.data.metrics_enabled);
    meta.register_metrics(&mut registry);
    let health_store = store.clone();
    let storage_health = HealthCheck(Arc::new(move || {
        sundial_store::health_checks(&health_store.health())
    }));
    let gw = Gateway::new(
        meta.clone(),
        writer,
        cfg.http.clone(),
        registry,
        Some(storage_health),
        Some(Querying::new(
            Arc::new(LocalShardReader::new(store.clone())),
            &cfg.coordinator,
        )),
    );
    let mut tasks = vec![services::spawn_reconciler(
        meta.clone(),
        store.clone(),
        std::time::Duration::from_secs(2),
    )];
    if cfg.retention.enabled {
        tasks.push(services::spawn_retention(
            meta.clone(),
            store.clone(),
            cfg.retention.check_interval,
        ));
    }
    if cfg.shard_precreation.enabled {
        tasks.push(services::spawn_precreator(
            meta.clone(),
            cfg.shard_precreation.check_interval,
            cfg.shard_precreation.advance_period,
        ));
    }

    if cfg.continuous_queries.enabled {
        tasks.push(sundial_gateway::cq::spawn(
            gw.clone(),
            cfg.continuous_queries.clone(),
            "sundial".into(),
        ));
    }
    tracing::info!(
        %addr,
        data_dir = %cfg.data.dir.display(),
        max_connections = listen.max_connections,
        "sundial ready"
    );
    // Tests and scripts read the bound address (port 0 picks a free one).
    println!("listening on {addr}");
    let conn_stats = gw.stats.connections.clone();
    sundial_serve::serve(listener, router(gw), listen, conn_stats, shutdown_signal())
        .await
        .context("http server")?;

    // In-flight requests have drained; stop services, then sync and close the store.
    let close = tracing::info_span!("sundial.close");
    let _g = close.enter();
    for t in tasks {
        t.abort();
    }
    drop(heartbeat);
    drop(_g);
    let closing = tokio::task::spawn_blocking(move || close.in_scope(|| store.close()));
    let store_result = closing.await;
    meta.close();
    match store_result {
        Ok(Ok(())) => {
            tracing::info!("sundial stopped cleanly");
            Ok(())
        }
        Ok(Err(e)) => Err(e).context("closing store"),
        Err(e) => Err(e).context("closing store"),
    }
}

/// Shards written by versions that did not record their database learn it from meta
/// (they cannot open before).
fn name_legacy_shards(meta: &MetaClient, store: &Store) {
    for g in meta.all_shard_groups() {
        for id in g.shard_ids() {
            if store.has_shard(id) && store.shard_database(id).is_none() {
                if let Err(e) = store.ensure_shard(id, &g.database) {
                    tracing::warn!(shard = id, error = %e, "could not record the database of an older shard");
                }
            }
        }
    }
}

async fn shutdown_signal() {
    sundial_common::process::shutdown_signal().await;
    tracing::info!("draining in-flight requests");
}
