//! The cluster's write side, without the engine: the shard-writer seam and the
//! `PointsWriter` that maps points to shards, and the versioned wire encoding of a
//! shard's points that the gRPC `WriteToShard` call carries.

mod error;
pub mod handoff;
pub mod points_writer;
pub mod read_wire;
mod reader;
pub mod remote;
pub mod seam;
/// The cluster secret lives in `sundial-common` (meta uses it too).
pub use sundial_common::secret;
pub mod wire;

pub use error::{Error, Result};
pub use points_writer::{
    CoordinatorConfig, PointsWriter, WriteSummary, DEFAULT_MAX_NEW_SHARD_GROUPS,
};
pub use reader::RemoteShardReader;
pub use remote::{Delivery, NodePool, RemoteOptions, RemoteShardWriter};
pub use seam::{Batch, Consistency, ShardWriter};
