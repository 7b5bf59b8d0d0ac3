//! Sundial's InfluxDB 1.x-compatible HTTP API (issue 5, in progress).
//!
//! Done so far: bounded body reading with gzip ([`body`]), credential parsing
//! with HS256 JWT verification ([`auth`]), the error → HTTP status mapping
//! ([`error`]), write statistics ([`stats`]) and the [`points_writer`] with its
//! `ShardWriter` seam. The routes and the query executor come next.

pub mod auth;
pub mod body;
pub mod error;
pub mod http;
pub mod points_writer;
pub mod query;
pub mod stats;

pub use error::{Error, Result};
