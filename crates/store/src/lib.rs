//! A storage node: the engine's [`sundial_engine::Store`] behind the cluster's
//! shard-writer seam. [`LocalShardWriter`] is the in-process implementation the
//! all-in-one `sundial` uses.

mod answer;
pub mod config;
pub mod deletes;
mod error;
pub mod export;
mod local;
pub mod metrics;
pub mod node;
pub mod query;
pub mod reconcile;
pub mod service;

pub use error::{Error, Result};
pub use local::LocalShardWriter;
pub use query::LocalShardReader;
pub use service::StoreService;

use sundial_common::Check;

/// An engine error as the cluster sees it: its class and its text.
pub fn shard_error(e: sundial_engine::Error) -> sundial_cluster::Error {
    sundial_cluster::Error::shard(e.class(), e.to_string())
}

/// The storage's part of a health report: free disk space against the reserve, and
/// shards whose WAL failed.
pub fn health_checks(h: &sundial_engine::StoreHealth) -> Vec<Check> {
    let mut checks = vec![Check {
        name: "disk".into(),
        status: if h.disk_ok() { "pass" } else { "fail" },
        message: format!(
            "{} bytes free, writes stop below {} bytes",
            h.disk_free, h.disk_reserve
        ),
    }];
    for (id, why) in &h.degraded_shards {
        checks.push(Check {
            name: format!("shard {id}"),
            status: "warn",
            message: why.clone(),
        });
    }
    checks
}
