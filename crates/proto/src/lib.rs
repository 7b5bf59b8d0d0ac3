//! Generated gRPC types and services for Sundial.
//!
//! The `.proto` files live in the workspace's `proto/` directory and are compiled by
//! `build.rs` (tonic-prost-build) into `OUT_DIR`. Receivers convert these prost types
//! into validated domain types (see `sundial-meta`).

/// `proto/meta.proto`: the cluster metadata service.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod meta {
    tonic::include_proto!("sundial.meta");
}

/// `proto/store.proto`: a storage node's service (WriteToShard, Health).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod store {
    tonic::include_proto!("sundial.store");
}
