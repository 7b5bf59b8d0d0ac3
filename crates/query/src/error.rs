//! The query crate's errors. `Query` texts are InfluxDB's own: they reach the
//! client as the statement's `error`.

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A semantic error with InfluxDB's wording (`database not found: x`,
    /// `mixing aggregate and non-aggregate queries is not supported`, …).
    #[error("{0}")]
    Query(String),
    /// A shard could not be read (no live owner, a damaged file, …).
    #[error("shard {shard}: {message}")]
    Shard { shard: u64, message: String },
    /// The statement needs more memory than one query may hold.
    #[error("query needs more than {limit} bytes of memory (query-memory-limit): narrow the time range or the series")]
    MemoryLimit { limit: usize },
    /// A shard's schema changed since the (cached) schema the statement was
    /// planned with: the reader dropped it; planning again reads it afresh.
    #[error("shard {shard}: its schema changed while the query ran; run it again")]
    SchemaChanged { shard: u64 },
    /// The answer's reader went away (or the query was killed).
    #[error("query interrupted")]
    Interrupted,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Its class: how HTTP and gRPC answer it.
    pub fn class(&self) -> sundial_common::ErrorClass {
        use sundial_common::ErrorClass;
        match self {
            Error::Query(_) => ErrorClass::BadRequest,
            Error::MemoryLimit { .. } => ErrorClass::TooLarge,
            Error::Shard { .. }
            | Error::SchemaChanged { .. }
            | Error::Interrupted
            | Error::Internal(_) => ErrorClass::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn query_err(s: impl Into<String>) -> Error {
    Error::Query(s.into())
}
