//! Continuous queries as InfluxDB 1.6 has them (`EXECUTION-1.6.md` §17):
//! CREATE / SHOW / DROP CONTINUOUS QUERY, definitions kept in meta, and the
//! service that runs them — on one node of the cluster at a time: the
//! all-in-one server, or the gateway holding meta's `lease/continuous-queries`
//! lease (another takes over when it stops renewing). Windows are aligned in
//! the CQ's `tz()` zone, as 1.6 aligns them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sundial_common::metrics::{Collect, Emit, Registry};
use sundial_influxql::select::{
    group_by_interval, is_raw_query, parse_expr, split_condition, Clock, CreateContinuousQuery,
    Measurement, SelectStatement, Source,
};
use sundial_influxql::Statement;
use sundial_meta::{MetaClient, MetaSnapshot};
use sundial_query::cq::{group_by_offset, tick, Resample, Tick};

use crate::error::{Error, Result};
use crate::http::Gateway;

/// The `[continuous-queries]` section (InfluxDB's `[continuous_queries]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ContinuousQueriesConfig {
    /// Run continuous queries here (on a cluster, the gateway holding the
    /// lease runs them; the others stand by).
    pub enabled: bool,
    /// How often they are looked at.
    #[serde(with = "sundial_common::config::duration")]
    pub run_interval: Duration,
    /// Log each run (`Executing continuous query`, `Finished continuous query`).
    pub log_enabled: bool,
}

impl ContinuousQueriesConfig {
    pub fn validate(&self) -> std::result::Result<(), sundial_common::config::ConfigError> {
        if self.enabled
            && (self.run_interval.is_zero() || self.run_interval > Duration::from_secs(3600))
        {
            return Err(sundial_common::config::ConfigError(
                "continuous-queries.run-interval must be between 1ns and 1h".into(),
            ));
        }
        Ok(())
    }
}

impl Default for ContinuousQueriesConfig {
    fn default() -> Self {
        ContinuousQueriesConfig {
            enabled: true,
            run_interval: Duration::from_secs(1),
            log_enabled: true,
        }
    }
}

fn query_error(text: impl Into<String>) -> Error {
    Error::Query(sundial_query::Error::Query(text.into()))
}

// ---------------------------------------------------------------- statements

/// `CREATE CONTINUOUS QUERY` as 1.6 stores it: every measurement qualified
/// (the request's `db`, else the CQ's `ON` database; the request's `rp`,
/// else that database's default policy), each named policy checked.
pub fn normalized(
    cq: &CreateContinuousQuery,
    db: &str,
    rp: &str,
    meta: &MetaSnapshot,
) -> Result<CreateContinuousQuery> {
    // 1.6 stores such a CQ and then fails every run with this error
    // (`GroupByOffset` takes no now()); refused here instead.
    let now_offset = cq.select.dimensions.iter().any(|d| {
        matches!(d, sundial_influxql::select::Expr::Call { name, args }
            if name == "time" && matches!(args.get(1), Some(sundial_influxql::select::Expr::Call { .. })))
    });
    if now_offset {
        return Err(query_error("invalid time dimension offset: now()"));
    }
    let default_db = if db.is_empty() { &cq.database } else { db };
    let mut out = cq.clone();
    qualify_select(&mut out.select, default_db, rp, meta)?;
    if meta.database(&cq.database).is_none() {
        return Err(query_error(format!("database not found: {}", cq.database)));
    }
    Ok(out)
}

/// A SELECT with every measurement qualified as 1.6 qualifies it before it
/// runs (for the text 1.6 shows of it); unchanged where that fails.
pub fn qualified_select(
    s: &SelectStatement,
    db: &str,
    rp: &str,
    meta: &MetaSnapshot,
) -> SelectStatement {
    let mut out = s.clone();
    match qualify_select(&mut out, db, rp, meta) {
        Ok(()) => out,
        Err(_) => s.clone(),
    }
}

fn qualify_select(s: &mut SelectStatement, db: &str, rp: &str, meta: &MetaSnapshot) -> Result<()> {
    if let Some(t) = &mut s.target {
        qualify(t, db, rp, meta)?;
    }
    for src in &mut s.sources {
        match src {
            Source::Measurement(m) => qualify(m, db, rp, meta)?,
            Source::Subquery(sub) => qualify_select(sub, db, rp, meta)?,
        }
    }
    Ok(())
}

fn qualify(m: &mut Measurement, db: &str, rp: &str, meta: &MetaSnapshot) -> Result<()> {
    if m.database.is_empty() {
        m.database = db.to_string();
    }
    let Some(info) = meta.database(&m.database) else {
        return Err(query_error(format!("database not found: {}", m.database)));
    };
    if m.retention_policy.is_empty() {
        m.retention_policy = if rp.is_empty() {
            info.default_retention_policy.clone()
        } else {
            rp.to_string()
        };
        if m.retention_policy.is_empty() {
            return Err(query_error(format!(
                "default retention policy not set for: {}",
                m.database
            )));
        }
    }
    if !info.retention_policies.contains_key(&m.retention_policy) {
        return Err(query_error(format!(
            "retention policy not found: {}.{}",
            m.database, m.retention_policy
        )));
    }
    Ok(())
}

/// Runs CREATE / SHOW / DROP CONTINUOUS QUERY (`None` for other statements).
pub async fn statement(
    meta: &MetaClient,
    stmt: &Statement,
    db: &str,
    rp: &str,
) -> Result<Option<Value>> {
    Ok(Some(match stmt {
        Statement::CreateContinuousQuery(cq) => {
            let n = normalized(cq, db, rp, &meta.snapshot())?;
            meta.create_continuous_query(&n.database, &n.name, &n.to_string())
                .await?;
            json!([])
        }
        Statement::DropContinuousQuery { name, database } => {
            meta.drop_continuous_query(database, name).await?;
            json!([])
        }
        Statement::ShowContinuousQueries => {
            // Every database, with or without CQs (1.6: not filtered).
            let series: Vec<Value> = meta
                .databases()
                .into_iter()
                .map(|d| {
                    let values = d
                        .continuous_queries
                        .iter()
                        .map(|c| json!([c.name, c.query]))
                        .collect();
                    crate::query::series_object(&d.name, &["name", "query"], values)
                })
                .collect();
            Value::Array(series)
        }
        _ => return Ok(None),
    }))
}

// ---------------------------------------------------------------- the service

/// The service's statistics (1.6's `cq` measurement: queryOk, queryFail)
/// and whether this process holds the lease, on `/metrics`.
#[derive(Debug, Default)]
pub struct CqStats {
    pub query_ok: AtomicU64,
    pub query_fail: AtomicU64,
    pub lease_held: AtomicBool,
}

impl CqStats {
    /// Registers `sundial_cq_…` in `registry`.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        let me = self.clone();
        registry
            .sub_registry_with_prefix("cq")
            .register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
                e.counter(
                    "query_ok",
                    "Continuous query runs that succeeded here.",
                    me.query_ok.load(Relaxed),
                )?;
                e.counter(
                    "query_fail",
                    "Continuous query runs that failed here.",
                    me.query_fail.load(Relaxed),
                )?;
                e.gauge(
                    "lease_held",
                    "1 while this process holds the lease to run the continuous queries.",
                    i64::from(me.lease_held.load(Relaxed)),
                )
            })));
    }
}

/// The lease name of the service on a cluster.
const LEASE: &str = "continuous-queries";

/// Runs the continuous queries of every database every `run_interval`
/// while this process holds the lease (`holder` names it; a random part
/// keeps two processes apart whatever their addresses).
pub fn spawn(
    gw: Arc<Gateway>,
    cfg: ContinuousQueriesConfig,
    holder: String,
) -> tokio::task::JoinHandle<()> {
    let holder = format!("{holder}/{:016x}", rand::random::<u64>());
    tokio::spawn(async move {
        let mut last_runs: HashMap<(String, String), i64> = HashMap::new();
        let ttl = (cfg.run_interval * 10).max(Duration::from_secs(5));
        let mut held = false;
        loop {
            tokio::time::sleep(cfg.run_interval).await;
            // 1.6 looks for CQs first: no lease traffic without any.
            if gw
                .meta
                .databases()
                .iter()
                .all(|d| d.continuous_queries.is_empty())
            {
                // Not renewed: the lease lapses, and nothing runs here.
                gw.cq.lease_held.store(false, Relaxed);
                continue;
            }
            let renewed = std::time::Instant::now();
            match gw.meta.hold_lease(LEASE, &holder, ttl).await {
                Ok(h) => {
                    if h != held {
                        tracing::info!(holder, held = h, "continuous queries: leadership changed");
                    }
                    if !h {
                        // Another node runs them; a later turn starts afresh.
                        last_runs.clear();
                    }
                    held = h;
                }
                Err(e) => {
                    if held {
                        tracing::warn!(error = %e, "continuous queries: lease not renewed; paused");
                    }
                    held = false;
                }
            }
            gw.cq.lease_held.store(held, Relaxed);
            if held {
                run_all(&gw, &cfg, &mut last_runs, renewed, ttl / 2).await;
            }
        }
    })
}

/// One tick: every database's continuous queries in order, one at a time,
/// stopping once the lease may have lapsed (`budget` after `renewed`).
async fn run_all(
    gw: &Gateway,
    cfg: &ContinuousQueriesConfig,
    last_runs: &mut HashMap<(String, String), i64>,
    renewed: std::time::Instant,
    budget: Duration,
) {
    use futures::FutureExt;
    for db in gw.meta.databases() {
        for cq in &db.continuous_queries {
            if renewed.elapsed() > budget {
                return;
            }
            let key = (db.name.clone(), cq.name.clone());
            let now = sundial_meta::now_ns();
            let run = run_one(gw, cfg, &db.name, &cq.query, now, last_runs, &key);
            // A panic in one CQ must not end the service.
            match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                Ok(Ok(ran)) => {
                    if ran {
                        gw.cq.query_ok.fetch_add(1, Relaxed);
                    }
                }
                // 1.6 logs and goes on; the run is not retried.
                Ok(Err(e)) => {
                    gw.cq.query_fail.fetch_add(1, Relaxed);
                    tracing::info!(query = %cq.query, error = %e, "Error executing query")
                }
                Err(_) => {
                    gw.cq.query_fail.fetch_add(1, Relaxed);
                    tracing::error!(query = %cq.query, "continuous query panicked")
                }
            }
        }
    }
}

async fn run_one(
    gw: &Gateway,
    cfg: &ContinuousQueriesConfig,
    db: &str,
    text: &str,
    now: i64,
    last_runs: &mut HashMap<(String, String), i64>,
    key: &(String, String),
) -> Result<bool> {
    let Some(Statement::CreateContinuousQuery(cq)) = sundial_influxql::parse_query(text)
        .map_err(|e| query_error(e.to_string()))?
        .into_iter()
        .next()
    else {
        return Err(query_error("query isn't a valid continuous query"));
    };
    let interval = group_by_interval(&cq.select).map_err(query_error)?;
    if interval == 0 {
        return Ok(false);
    }
    if is_raw_query(&cq.select) {
        return Err(query_error("continuous queries must be aggregate queries"));
    }
    let offset = group_by_offset(&cq.select, interval);
    let clock = Clock::new(now, cq.select.location.as_deref()).map_err(query_error)?;
    let tz = cq.select.location.is_some().then_some(&clock.tz);
    let resample = Resample {
        every: cq.resample_every.unwrap_or(0),
        for_: cq.resample_for.unwrap_or(0),
    };
    let Tick::Due { last, run } = tick(
        now,
        last_runs.get(key).copied(),
        interval,
        offset,
        resample,
        tz,
    ) else {
        return Ok(false);
    };
    last_runs.insert(key.clone(), last);
    let Some(w) = run else { return Ok(false) };
    let select = in_range(&cq.select, w.start, w.end, &clock)?;
    if cfg.log_enabled {
        tracing::info!(name = %cq.name, db, start = w.start, end = w.end, "Executing continuous query");
    }
    let started = std::time::Instant::now();
    // Like any query: listed in SHOW QUERIES, killable, bounded by
    // query-timeout.
    let me = gw.running.register(select.to_string(), db);
    let limit = gw.query_timeout().unwrap_or(Duration::MAX);
    let written = tokio::select! {
        r = crate::into::run(gw, &select, db, "") => r?,
        _ = me.killed() => return Err(Error::Query(sundial_query::Error::Interrupted)),
        _ = tokio::time::sleep(limit) => return Err(query_error("query-timeout limit exceeded")),
    };
    if cfg.log_enabled {
        tracing::info!(
            name = %cq.name,
            db,
            written,
            start = w.start,
            end = w.end,
            duration_ms = started.elapsed().as_millis() as u64,
            "Finished continuous query"
        );
    }
    Ok(true)
}

/// The CQ's SELECT over `[start, end)`: its own time conditions replaced.
fn in_range(s: &SelectStatement, start: i64, end: i64, clock: &Clock) -> Result<SelectStatement> {
    let (rest, _) = split_condition(s.condition.as_ref(), clock).map_err(query_error)?;
    let at = |t: i64| {
        jiff::Timestamp::from_nanosecond(i128::from(t))
            .map(|ts| ts.to_string())
            .map_err(|e| query_error(format!("time out of range: {e}")))
    };
    let range = format!("time >= '{}' AND time < '{}'", at(start)?, at(end)?);
    let text = match rest {
        Some(r) => format!("({r}) AND {range}"),
        None => range,
    };
    let mut out = s.clone();
    out.condition = Some(parse_expr(&text).map_err(|e| query_error(e.to_string()))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cq(q: &str) -> CreateContinuousQuery {
        match sundial_influxql::parse_query(q).unwrap().remove(0) {
            Statement::CreateContinuousQuery(c) => *c,
            _ => unreachable!(),
        }
    }

    #[test]
    fn stored_as_influxdb_normalises_it() {
        let mut meta = MetaSnapshot::default();
        for (db, rps) in [("db0", &["rp0", "rp1"][..]), ("db1", &["autogen"][..])] {
            let mut info = sundial_meta::DatabaseInfo {
                name: db.into(),
                default_retention_policy: rps[0].into(),
                retention_policies: Default::default(),
                policy_order: Vec::new(),
                continuous_queries: Vec::new(),
            };
            for rp in rps {
                info.retention_policies.insert(
                    rp.to_string(),
                    sundial_meta::RetentionPolicyInfo {
                        name: rp.to_string(),
                        ..sundial_meta::RetentionPolicyInfo::autogen()
                    },
                );
            }
            meta.databases.insert(db.into(), info);
        }
        let c = cq(
            r#"CREATE CONTINUOUS QUERY "cq1" ON db0 BEGIN SELECT count(value) INTO "rp1".:MEASUREMENT FROM /[cg]pu/ GROUP BY time(5s) END"#,
        );
        assert_eq!(
            normalized(&c, "", "", &meta).unwrap().to_string(),
            "CREATE CONTINUOUS QUERY cq1 ON db0 BEGIN SELECT count(value) INTO db0.rp1.:MEASUREMENT FROM db0.rp0./[cg]pu/ GROUP BY time(5s) END"
        );
        let c = cq("CREATE CONTINUOUS QUERY c ON db0 BEGIN SELECT mean(v) INTO db1.nope.m FROM m GROUP BY time(1m) END");
        assert_eq!(
            normalized(&c, "", "", &meta).unwrap_err().to_string(),
            "retention policy not found: db1.nope"
        );
        let c = cq("CREATE CONTINUOUS QUERY c ON db0 BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(1d) tz('America/Chicago') END");
        assert_eq!(
            normalized(&c, "", "", &meta).unwrap().to_string(),
            "CREATE CONTINUOUS QUERY c ON db0 BEGIN SELECT mean(v) INTO db0.rp0.m2 FROM db0.rp0.m GROUP BY time(1d) TZ('America/Chicago') END"
        );
        let c = cq("CREATE CONTINUOUS QUERY c ON db0 BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(1d, now()) END");
        assert_eq!(
            normalized(&c, "", "", &meta).unwrap_err().to_string(),
            "invalid time dimension offset: now()"
        );
        let c = cq("CREATE CONTINUOUS QUERY c ON db9 BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(1m) END");
        assert_eq!(
            normalized(&c, "", "", &meta).unwrap_err().to_string(),
            "database not found: db9"
        );
    }

    #[test]
    fn a_run_replaces_the_time_range() {
        let c = cq("CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO m2 FROM m WHERE host = 'a' AND time > now() - 1h GROUP BY time(1m) END");
        let clock = Clock::new(0, None).unwrap();
        let s = in_range(&c.select, 60_000_000_000, 120_000_000_000, &clock).unwrap();
        let cond = s.condition.unwrap().to_string();
        assert_eq!(
            cond,
            "(host = 'a') AND time >= '1970-01-01T00:01:00Z' AND time < '1970-01-01T00:02:00Z'"
        );
        assert!(!cond.contains("now()"), "{cond}");
    }
}
