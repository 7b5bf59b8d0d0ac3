//! Sundial's InfluxDB 1.x-compatible HTTP API: routes ([`http`]), bounded body
//! reading with gzip ([`body`]), credentials and HS256 JWTs ([`auth`]), InfluxQL
//! statements ([`query`]), the `[http]` settings ([`config`]), the error → HTTP status mapping ([`error`]) and write
//! statistics ([`stats`]). Points go to `sundial_cluster::PointsWriter`, which
//! reaches the shards through its `ShardWriter` seam; the gateway never touches the
//! engine.

pub mod auth;
pub mod body;
pub mod config;
pub mod cq;
pub mod error;
pub mod http;
pub mod into;
pub mod query;
pub mod render;
pub mod running;
pub mod stats;

pub use error::{Error, Result};
