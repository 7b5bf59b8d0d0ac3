//! The gateway's error type, and the one place that maps every error of the
//! write and query paths to an HTTP status and InfluxDB's message.

pub use crate::auth::AuthError;
pub use crate::body::BodyError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database is required")]
    DatabaseRequired,
    #[error("database not found: {0:?}")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0:?}")]
    RetentionPolicyNotFound(String),
    #[error("invalid consistency level")]
    InvalidConsistency,
    #[error(transparent)]
    InvalidPrecision(#[from] sundial_lineproto::InvalidPrecision),
    /// Some points were not written; `reason` is InfluxDB's text, `dropped` the count.
    #[error("partial write: {reason} dropped={dropped}")]
    PartialWrite { reason: String, dropped: usize },
    /// Every line failed to parse: InfluxDB answers with the parse errors alone.
    #[error("{0}")]
    Unparseable(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A body in a `Content-Encoding` other than identity or gzip: reading it as
    /// plain text would write garbage.
    #[error("unsupported Content-Encoding {0:?}: send the body as is or with gzip")]
    UnsupportedEncoding(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// The request target is longer than `max-url-size`.
    #[error("request URI too long: {len} bytes, the limit is {limit} (max-url-size)")]
    UriTooLong { len: usize, limit: usize },
    /// `q` is longer than `max-query-size`; checked before parsing.
    #[error("query too large: {len} bytes, the limit is {limit} (max-query-size)")]
    QueryTooLarge { len: usize, limit: usize },
    #[error("server is overloaded: too many writes in flight")]
    Overloaded,
    #[error("timeout")]
    Timeout,
    #[error(transparent)]
    Meta(#[from] sundial_meta::Error),
    #[error(transparent)]
    Cluster(#[from] sundial_cluster::Error),
    /// A SELECT failed (reported inside a 200 answer, as InfluxDB does).
    #[error(transparent)]
    Query(#[from] sundial_query::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// HTTP status for this error, as InfluxDB 1.x answers.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::DatabaseRequired
            | Error::InvalidConsistency
            | Error::InvalidPrecision(_)
            | Error::PartialWrite { .. }
            | Error::Unparseable(_)
            | Error::BadRequest(_)
            | Error::RetentionPolicyNotFound(_) => 400,
            Error::DatabaseNotFound(_) => 404,
            Error::Body(BodyError::TooLarge) | Error::QueryTooLarge { .. } => 413,
            Error::UriTooLong { .. } => 414,
            Error::Body(BodyError::BadGzip(_)) => 400,
            Error::Body(BodyError::ReadTimeout) => 408,
            Error::UnsupportedEncoding(_) => 415,
            Error::Auth(_) => 401,
            Error::Forbidden(_) => 403,
            Error::Overloaded => 503,
            Error::Timeout | Error::Internal(_) => 500,
            Error::Meta(e) => e.class().http_status(),
            Error::Cluster(e) => e.class().http_status(),
            Error::Query(e) => e.class().http_status(),
        }
    }

    /// Whether a client should retry later (adds `Retry-After`).
    pub fn retry_after(&self) -> Option<u32> {
        (self.http_status() == 503).then_some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_texts_match_influxdb() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::DatabaseRequired, 400, "database is required"),
            (
                Error::DatabaseNotFound("x".into()),
                404,
                "database not found: \"x\"",
            ),
            (
                Error::PartialWrite {
                    reason: "points beyond retention policy".into(),
                    dropped: 2,
                },
                400,
                "partial write: points beyond retention policy dropped=2",
            ),
            (
                Error::Body(BodyError::TooLarge),
                413,
                "Request Entity Too Large",
            ),
            (
                Error::Body(BodyError::ReadTimeout),
                408,
                "timed out reading the request body",
            ),
            (
                Error::UnsupportedEncoding("br".into()),
                415,
                "unsupported Content-Encoding \"br\": send the body as is or with gzip",
            ),
            (
                Error::QueryTooLarge { len: 9, limit: 8 },
                413,
                "query too large: 9 bytes, the limit is 8 (max-query-size)",
            ),
            (
                Error::UriTooLong { len: 9, limit: 8 },
                414,
                "request URI too long: 9 bytes, the limit is 8 (max-url-size)",
            ),
            (Error::Auth(AuthError::Failed), 401, "authorization failed"),
            (
                Error::Auth(AuthError::TokenNotValidYet),
                401,
                "Token is not valid yet",
            ),
            (
                Error::Overloaded,
                503,
                "server is overloaded: too many writes in flight",
            ),
            (Error::Timeout, 500, "timeout"),
            (
                Error::Cluster(sundial_cluster::Error::shard(
                    sundial_common::ErrorClass::Unavailable,
                    "engine overloaded",
                )),
                503,
                "engine overloaded",
            ),
        ];
        for (e, status, text) in cases {
            assert_eq!(e.http_status(), status, "{e}");
            if !text.is_empty() {
                assert_eq!(e.to_string(), text);
            }
        }
        assert_eq!(Error::Overloaded.retry_after(), Some(1));
        assert_eq!(Error::Timeout.retry_after(), None);
    }
}
