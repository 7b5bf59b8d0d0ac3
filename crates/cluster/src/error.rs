//! The cluster crate's error: what a shard write or the points writer can fail with.

use sundial_common::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Meta(#[from] sundial_meta::Error),
    /// A shard write failed where the shard lives (the local store or a remote node);
    /// `class` says how to answer the client, `message` is the store's text.
    #[error("{message}")]
    Shard { class: ErrorClass, message: String },
    #[error("{0}")]
    BadRequest(String),
    /// A node's hinted-handoff queue is at its size limit.
    #[error("hinted handoff queue full: {bytes} bytes queued, max-size {max}")]
    HandoffFull { bytes: u64, max: u64 },
    /// Fewer owners of a shard took a write than its consistency level needs.
    #[error("partial write: {0}")]
    ConsistencyNotMet(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Meta(e) => e.class(),
            Error::Shard { class, .. } => *class,
            Error::BadRequest(_) => ErrorClass::BadRequest,
            Error::HandoffFull { .. } => ErrorClass::Unavailable,
            Error::ConsistencyNotMet(_) => ErrorClass::Internal,
            Error::Internal(_) => ErrorClass::Internal,
        }
    }

    /// A shard error of `class` with the store's message.
    pub fn shard(class: ErrorClass, message: impl Into<String>) -> Error {
        Error::Shard {
            class,
            message: message.into(),
        }
    }
}
