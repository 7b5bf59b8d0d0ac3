//! # sundial-query
//!
//! InfluxQL SELECT for Sundial: a statement (parsed and checked by
//! `sundial-influxql`) is planned here — sources resolved to measurements and
//! shards, wildcards expanded, the WHERE clause split into a time range, a tag
//! filter for the shards' indexes and a row condition — then read through the
//! shard-reader seam ([`ShardReader`]: in process over the engine, or over gRPC
//! on a cluster), grouped by measurement and GROUP BY tags, and answered raw
//! (rows merged by time) or aggregated per window with fill(). The behaviour
//! followed is InfluxDB 1.6.7's (`EXECUTION-1.6.md`); the differential test
//! (`crates/server/tests/query_diff.rs`) checks it against the real one.

mod agg;
pub mod cq;
mod delete;
mod error;
mod eval;
mod exec;
mod functions;
pub mod partial;
mod plan;
mod raw;
mod result;
mod seam;
mod show;
mod sliced;
mod transform;
mod typecheck;
mod value;
mod window;

pub use delete::{plan_delete, DeletePlan, DeleteRequest, NameMatch};
pub use error::{Error, Result};
pub use eval::Regexes;
pub use exec::{select, select_into};
pub use plan::{Context, MAX_TIME, MIN_TIME};
pub use raw::keep_passing_rows;
pub use result::{Collect, Row, Series, SeriesSink};
pub use seam::{
    ReadRequest, Schema, SeriesKey, SeriesRead, SeriesRequest, ShardReader, TagFilter, TagMatcher,
};
pub use show::show;
pub use value::{Column, FieldType, Value, Values};
