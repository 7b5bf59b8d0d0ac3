//! The shard-writer seam: one trait for writing a shard's points wherever the
//! shard lives — the in-process store (`sundial-store`'s `LocalShardWriter`) or a
//! remote node over gRPC ([`crate::RemoteShardWriter`]).

use crate::error::Result;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use sundial_common::WriteOutcome;
use sundial_lineproto::{parse_chunk, Cursor, ParseOptions, ParsedBatch};
use sundial_meta::ShardInfo;
use sundial_query::DeleteRequest;

self_cell::self_cell!(
    /// A request body and the points parsed from (a chunk of) it, kept together
    /// so shard writes can run on other threads without copying the points.
    pub struct Batch {
        owner: Bytes,
        #[covariant]
        dependent: ParsedBatch,
    }
    impl {Debug}
);

impl Batch {
    /// Parses up to `max_points` good points of `body` from `from` (see
    /// [`sundial_lineproto::parse_chunk`]).
    pub fn parse_chunk(
        body: Bytes,
        from: Cursor,
        max_points: usize,
        opts: &ParseOptions,
    ) -> Arc<Batch> {
        Arc::new(Batch::new(body, |b| parse_chunk(b, from, max_points, opts)))
    }

    pub fn parsed(&self) -> &ParsedBatch<'_> {
        self.borrow_dependent()
    }
}

/// How many owners of a shard must take a write before it is acknowledged
/// (InfluxDB Enterprise's `consistency` parameter; `one` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// One owner, or the hinted-handoff queue of one.
    Any,
    #[default]
    One,
    /// A majority: ⌊n/2⌋ + 1 of n owners.
    Quorum,
    All,
}

impl Consistency {
    /// `any`, `one`, `quorum`, `all`; empty means `one`.
    pub fn parse(s: &str) -> Option<Consistency> {
        Some(match s {
            "" | "one" => Consistency::One,
            "any" => Consistency::Any,
            "quorum" => Consistency::Quorum,
            "all" => Consistency::All,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Any => "any",
            Consistency::One => "one",
            Consistency::Quorum => "quorum",
            Consistency::All => "all",
        }
    }

    /// Owners that must write (not just queue) the points, of `owners`.
    pub fn required(self, owners: usize) -> usize {
        match self {
            Consistency::Any | Consistency::One => 1.min(owners),
            Consistency::Quorum => owners / 2 + 1,
            Consistency::All => owners,
        }
    }
}

/// Writes the points `indices` of `batch` to one shard of `database`, wherever it
/// lives, to as many of its owners as `consistency` asks.
#[async_trait]
pub trait ShardWriter: Send + Sync + std::fmt::Debug {
    async fn write_to_shard(
        &self,
        database: &str,
        shard: &ShardInfo,
        batch: Arc<Batch>,
        indices: Vec<u32>,
        consistency: Consistency,
    ) -> Result<WriteOutcome>;

    /// Applies a delete (DROP MEASUREMENT, DROP SERIES, DELETE) to every owner
    /// of each of `shards`. An owner that cannot be reached applies it when it
    /// is back (the delete waits for it in meta); the answer is the number of
    /// such owner-shards.
    async fn delete_series(
        &self,
        database: &str,
        shards: &[ShardInfo],
        req: &DeleteRequest,
    ) -> Result<usize>;
}
