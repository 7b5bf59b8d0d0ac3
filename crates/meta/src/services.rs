//! The cluster-wide services that only touch meta: retention enforcement (delete the
//! shard groups past their policy's duration) and shard precreation (create the next
//! group of every policy before it is needed).
//!
//! `sundial-meta` runs them in the one instance that wins the
//! [`election`](crate::election) ([`run_elected`]); the all-in-one `sundial` runs the
//! loops itself over its embedded meta. Stores drop the shards of deleted groups by
//! themselves (they follow meta).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sundial_common::config::{duration, ConfigError};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::client::{now_ns, MetaClient};
use crate::election::Election;
use crate::error::{Error, Result};
use crate::model::ShardGroupInfo;
use crate::store::MetaStore;

/// What the services need from meta.
#[async_trait]
pub trait Housekeeping: Send + Sync + std::fmt::Debug + 'static {
    /// Deletes the shard groups expired at `now`; returns them.
    async fn expire_shard_groups(&self, now: i64) -> Result<Vec<ShardGroupInfo>>;
    /// Creates the next group of every policy whose newest group ends within
    /// `advance` of `now`; returns the groups created.
    async fn precreate(&self, now: i64, advance: Duration) -> Result<Vec<ShardGroupInfo>>;
}

/// Through the client: bounded calls, and its cache holds the change on return.
#[async_trait]
impl Housekeeping for MetaClient {
    async fn expire_shard_groups(&self, now: i64) -> Result<Vec<ShardGroupInfo>> {
        self.delete_expired_shard_groups(now).await
    }
    async fn precreate(&self, now: i64, advance: Duration) -> Result<Vec<ShardGroupInfo>> {
        self.precreate_shard_groups(now, advance).await
    }
}

/// A pass is one transaction per group: bounded as a whole, more generously than
/// one client call.
const STORE_PASS_TIMEOUT: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(STORE_PASS_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Unavailable(format!(
            "{what}: not done within {STORE_PASS_TIMEOUT:?}"
        ))),
    }
}

/// Directly over the backend (`sundial-meta`: no cache to keep).
#[async_trait]
impl Housekeeping for MetaStore {
    async fn expire_shard_groups(&self, now: i64) -> Result<Vec<ShardGroupInfo>> {
        let (groups, _) = bounded(
            "deleting expired shard groups",
            self.delete_expired_shard_groups(now),
        )
        .await?;
        Ok(groups)
    }
    async fn precreate(&self, now: i64, advance: Duration) -> Result<Vec<ShardGroupInfo>> {
        let adv = i64::try_from(advance.as_nanos()).unwrap_or(i64::MAX);
        let (groups, _) = bounded(
            "precreating shard groups",
            self.precreate_shard_groups(now, adv),
        )
        .await?;
        Ok(groups)
    }
}

/// `[retention]`: expired shard groups are deleted every `check-interval`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RetentionConfig {
    pub enabled: bool,
    /// How often expired shard groups are deleted (InfluxDB: 30m).
    #[serde(with = "duration")]
    pub check_interval: Duration,
}

/// `[shard-precreation]`: the next shard group of every policy is created
/// `advance-period` before it is needed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PrecreationConfig {
    pub enabled: bool,
    /// How often precreation runs (InfluxDB: 10m).
    #[serde(with = "duration")]
    pub check_interval: Duration,
    /// How far ahead the next shard group is created (InfluxDB: 30m).
    #[serde(with = "duration")]
    pub advance_period: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            enabled: true,
            check_interval: Duration::from_secs(30 * 60),
        }
    }
}

impl Default for PrecreationConfig {
    fn default() -> Self {
        PrecreationConfig {
            enabled: true,
            check_interval: Duration::from_secs(10 * 60),
            advance_period: Duration::from_secs(30 * 60),
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        positive("retention.check-interval", self.check_interval)
    }
}

impl PrecreationConfig {
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        positive("shard-precreation.check-interval", self.check_interval)
    }
}

fn positive(name: &str, d: Duration) -> std::result::Result<(), ConfigError> {
    if d.is_zero() {
        return Err(ConfigError(format!("{name} must be longer than 0")));
    }
    Ok(())
}

/// Which services run, and how often.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceOptions {
    pub retention: RetentionConfig,
    pub precreation: PrecreationConfig,
}

impl ServiceOptions {
    /// Whether any service is enabled (else there is nothing to campaign for).
    pub fn any(&self) -> bool {
        self.retention.enabled || self.precreation.enabled
    }
}

/// One retention pass: deletes the shard groups expired at `now` (errors are logged
/// and returned; the next pass tries again).
pub async fn enforce_retention(meta: &dyn Housekeeping, now: i64) -> Result<Vec<ShardGroupInfo>> {
    async {
        let res = meta.expire_shard_groups(now).await;
        match &res {
            Ok(groups) => {
                for g in groups {
                    tracing::info!(group = g.id, db = %g.database, rp = %g.retention_policy, "shard group expired");
                }
            }
            Err(e) => tracing::warn!(error = %e, "retention check failed"),
        }
        res
    }
    .instrument(tracing::info_span!("retention.enforce"))
    .await
}

/// One precreation pass at `now` (errors are logged and returned).
pub async fn precreate_shard_groups(
    meta: &dyn Housekeeping,
    now: i64,
    advance: Duration,
) -> Result<Vec<ShardGroupInfo>> {
    async {
        let res = meta.precreate(now, advance).await;
        match &res {
            Ok(created) if !created.is_empty() => {
                tracing::info!(count = created.len(), "precreated shard groups")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "shard precreation failed"),
        }
        res
    }
    .instrument(tracing::info_span!("shard.precreate"))
    .await
}

fn ticker(every: Duration) -> tokio::time::Interval {
    // A zero period would panic; a slow pass is not followed by a burst.
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Runs [`enforce_retention`] every `every` (the first pass at once).
pub fn spawn_retention(meta: Arc<dyn Housekeeping>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(every);
        loop {
            tick.tick().await;
            let _ = enforce_retention(meta.as_ref(), now_ns()).await;
        }
    })
}

/// Runs [`precreate_shard_groups`] every `every` (the first pass at once).
pub fn spawn_precreator(
    meta: Arc<dyn Housekeeping>,
    every: Duration,
    advance: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = ticker(every);
        loop {
            tick.tick().await;
            let _ = precreate_shard_groups(meta.as_ref(), now_ns(), advance).await;
        }
    })
}

/// The running services; stopped on drop.
#[derive(Debug)]
pub struct ServiceTasks(Vec<JoinHandle<()>>);

impl ServiceTasks {
    /// Starts the enabled services.
    pub fn start(meta: Arc<dyn Housekeeping>, opts: &ServiceOptions) -> Self {
        let mut tasks = Vec::new();
        if opts.retention.enabled {
            tasks.push(spawn_retention(meta.clone(), opts.retention.check_interval));
        }
        if opts.precreation.enabled {
            tasks.push(spawn_precreator(
                meta,
                opts.precreation.check_interval,
                opts.precreation.advance_period,
            ));
        }
        ServiceTasks(tasks)
    }

    /// Stops them and waits until they have (a pass in flight is cut short).
    pub async fn stop(mut self) {
        for t in std::mem::take(&mut self.0) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for ServiceTasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Campaigns in `election`; while this instance leads, runs the services; when the
/// leadership is lost, stops them and campaigns again. At `shutdown`, stops the
/// services and resigns so that another instance takes over at once.
pub async fn run_elected(
    election: Election,
    meta: Arc<dyn Housekeeping>,
    opts: ServiceOptions,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let mut leadership = tokio::select! {
            l = election.campaign() => l,
            () = &mut shutdown => return,
        };
        let services = ServiceTasks::start(meta.clone(), &opts);
        tracing::info!(id = %election.id(), "retention and shard precreation running here");
        tokio::select! {
            () = leadership.lost() => {
                services.stop().await;
                tracing::warn!(id = %election.id(), "retention and shard precreation stopped here (leadership lost)");
            }
            () = &mut shutdown => {
                services.stop().await;
                leadership.resign().await;
                return;
            }
        }
    }
}
