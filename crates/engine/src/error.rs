//! The crate's single error type.

use std::path::PathBuf;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the engine can report. Messages are meant for users and operators.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Data read from disk failed validation (checksum, bounds, magic, ...).
    #[error("corrupt data in {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    /// A codec was handed bytes it cannot decode (no path known at that level).
    #[error("corrupt block: {0}")]
    CorruptBlock(String),

    /// A WAL segment that is not the last one is damaged; data after the damage is lost.
    #[error(
        "WAL segment {path} is corrupt at offset {offset}: {reason} ({lost_bytes} bytes lost)"
    )]
    WalCorrupt {
        path: PathBuf,
        offset: u64,
        lost_bytes: u64,
        reason: String,
    },

    #[error("shard {0} not found")]
    ShardNotFound(u64),

    #[error("shard {0} already exists")]
    ShardExists(u64),

    #[error("store is closed")]
    Closed,

    /// Flushing fell behind and the writer waited longer than the stall timeout.
    #[error("engine overloaded: memtable flush is behind (waited {waited_ms} ms); retry later")]
    Overloaded { waited_ms: u64 },

    /// The shard's WAL failed (a write or fsync error, e.g. a full disk); the store
    /// reopens the shard from disk, after which writes go on.
    #[error("shard {shard} is recovering from a failed WAL write ({reason}); retry later")]
    ShardDegraded { shard: u64, reason: String },

    /// The per-series structures reached `index-memory-limit`: no new series for now.
    #[error("series memory limit reached: series indexes use {used} of {limit} bytes; new series are refused (writes to existing series go on)")]
    IndexMemoryFull { used: usize, limit: usize },

    /// Free space fell below `disk-free-reserve`: writes are refused before the WAL
    /// could fail.
    #[error("not enough disk space on {}: {free} bytes free, below the reserve of {reserve} bytes; writes are refused until space is freed", .path.display())]
    DiskFull {
        path: PathBuf,
        free: u64,
        reserve: u64,
    },

    /// Every shard holding descriptors is busy and the open-file budget is used up.
    #[error("too many open shards: the budget of {budget} open files is used by shards in use; retry later")]
    TooManyOpenFiles { budget: usize },

    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex { pattern: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Several independent failures (e.g. closing many shards); none is hidden.
    #[error("{} errors: {}", .0.len(), join_errors(.0))]
    Multiple(Vec<Error>),

    /// A background thread died or a lock was poisoned; the shard should be reopened.
    #[error("internal engine error: {0}")]
    Internal(String),
}

fn join_errors(errs: &[Error]) -> String {
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Attach a file path to a path-less codec error.
    pub(crate) fn with_path(self, path: &std::path::Path) -> Self {
        match self {
            Error::CorruptBlock(reason) => Error::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        }
    }

    /// True when the error means on-disk data is damaged (reads touching it fail; the shard reports it).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. } | Error::CorruptBlock(_) | Error::WalCorrupt { .. }
        )
    }

    /// True when the node is short of a resource for now (memory, disk, descriptors,
    /// a shard being reopened): clients should retry later (HTTP 503).
    pub fn is_overload(&self) -> bool {
        matches!(
            self,
            Error::Overloaded { .. }
                | Error::ShardDegraded { .. }
                | Error::IndexMemoryFull { .. }
                | Error::DiskFull { .. }
                | Error::TooManyOpenFiles { .. }
        )
    }

    /// The error's class: the HTTP status and gRPC code it is answered with.
    pub fn class(&self) -> sundial_common::ErrorClass {
        use sundial_common::ErrorClass;
        match self {
            e if e.is_overload() => ErrorClass::Unavailable,
            Error::InvalidArgument(_) | Error::InvalidRegex { .. } => ErrorClass::BadRequest,
            Error::ShardNotFound(_) => ErrorClass::NotFound,
            Error::ShardExists(_) => ErrorClass::Conflict,
            Error::Closed => ErrorClass::Unavailable,
            Error::Multiple(errs) => errs.first().map_or(ErrorClass::Internal, Error::class),
            _ => ErrorClass::Internal,
        }
    }

    /// Collapse a list of errors into `Ok`, the single error, or [`Error::Multiple`].
    pub fn from_many(mut errs: Vec<Error>) -> Result<()> {
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(Error::Multiple(errs)),
        }
    }
}
