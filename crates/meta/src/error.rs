//! The crate's one error type and its single mapping to HTTP status classes and gRPC codes.

use serde::{Deserialize, Serialize};

use crate::model::{format_duration, MIN_RETENTION_POLICY_DURATION};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error `sundial-meta` returns. Texts follow InfluxDB 1.x where it has one.
///
/// The enum is serde-serialisable so the gRPC server can ship the exact variant in the
/// status details and the remote client can rebuild it (both transports return the
/// same errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Error {
    // ---- not found ----
    /// `database not found: "x"`
    #[error("database not found: {0:?}")]
    DatabaseNotFound(String),
    /// `retention policy not found: "rp"`
    #[error("retention policy not found: {0:?}")]
    RetentionPolicyNotFound(String),
    /// `user not found`
    #[error("user not found")]
    UserNotFound,
    /// A node id that was never registered.
    #[error("node not found: {0}")]
    NodeNotFound(u64),

    // ---- bad request ----
    /// `database name required`
    #[error("database name required")]
    DatabaseNameRequired,
    /// `retention policy name required`
    #[error("retention policy name required")]
    RetentionPolicyNameRequired,
    /// `username required`
    #[error("username required")]
    UsernameRequired,
    /// `password required`
    #[error("password required")]
    PasswordRequired,
    /// `invalid name` (empty, `.`, `..`, contains `/` or `\` or a non-printable char).
    #[error("invalid name")]
    InvalidName,
    /// `retention policy duration must be at least 1h0m0s`
    #[error(
        "retention policy duration must be at least {}",
        format_duration(MIN_RETENTION_POLICY_DURATION)
    )]
    RetentionPolicyDurationTooLow,
    /// `retention policy duration must be greater than the shard duration`
    #[error("retention policy duration must be greater than the shard duration")]
    IncompatibleDurations,
    /// `replication factor must be greater than 0`
    #[error("replication factor must be greater than 0")]
    ReplicationFactorTooLow,
    /// Any other invalid argument (e.g. a malformed address or a negative TTL).
    #[error("{0}")]
    InvalidArgument(String),

    // ---- conflict ----
    /// `database already exists` (only from operations that cannot be a no-op).
    #[error("database already exists")]
    DatabaseExists,
    /// `retention policy already exists` (same name, different spec).
    #[error("retention policy already exists")]
    RetentionPolicyExists,
    /// `retention policy conflicts with an existing policy`
    #[error("retention policy conflicts with an existing policy")]
    RetentionPolicyConflict,
    /// `user already exists`
    #[error("user already exists")]
    UserExists,

    /// A continuous query of that name with another statement exists.
    #[error("continuous query already exists")]
    ContinuousQueryExists,
    /// A compare-and-swap kept losing against concurrent writers.
    #[error("too much contention on {0}; try again")]
    Contention(String),

    // ---- unauthorized ----
    /// `authentication failed`
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A call to `sundial-meta` was refused before it ran (the cluster secret).
    #[error("{0}")]
    Unauthenticated(String),

    // ---- unavailable ----
    /// `no data nodes available` (a shard group needs at least one live store).
    #[error("no data nodes available")]
    NoDataNodes,
    /// The meta service / etcd cannot be reached or did not answer in time.
    #[error("meta service unavailable: {0}")]
    Unavailable(String),
    /// The watch start revision is older than the backend's retained history.
    #[error("required revision {requested} has been compacted (oldest available {oldest})")]
    Compacted {
        /// The revision the caller asked for.
        requested: i64,
        /// The oldest revision still available.
        oldest: i64,
    },

    // ---- internal ----
    /// A lease id that does not exist (or expired).
    #[error("lease not found: {0}")]
    LeaseNotFound(i64),
    /// A stored record could not be decoded.
    #[error("corrupt meta record at {key}: {reason}")]
    Corrupt {
        /// The key of the record.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// Local storage (embedded backend) failed.
    #[error("meta storage error: {0}")]
    Storage(String),
    /// Anything else.
    #[error("internal meta error: {0}")]
    Internal(String),
}

pub use sundial_common::ErrorClass;

impl Error {
    /// The error's class — the one place that decides HTTP status and gRPC code.
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            DatabaseNotFound(_) | RetentionPolicyNotFound(_) | UserNotFound | NodeNotFound(_) => {
                ErrorClass::NotFound
            }
            DatabaseNameRequired
            | RetentionPolicyNameRequired
            | UsernameRequired
            | PasswordRequired
            | InvalidName
            | RetentionPolicyDurationTooLow
            | IncompatibleDurations
            | ReplicationFactorTooLow
            | InvalidArgument(_) => ErrorClass::BadRequest,
            DatabaseExists
            | RetentionPolicyExists
            | RetentionPolicyConflict
            | UserExists
            | ContinuousQueryExists
            | Contention(_) => ErrorClass::Conflict,
            AuthenticationFailed | Unauthenticated(_) => ErrorClass::Unauthorized,
            NoDataNodes | Unavailable(_) | Compacted { .. } => ErrorClass::Unavailable,
            LeaseNotFound(_) | Corrupt { .. } | Storage(_) | Internal(_) => ErrorClass::Internal,
        }
    }

    /// HTTP status code for this error.
    pub fn http_status(&self) -> u16 {
        self.class().http_status()
    }

    /// gRPC code for this error.
    pub fn grpc_code(&self) -> tonic::Code {
        self.class().grpc_code()
    }

    /// True when the error means "could not reach the meta store" (retrying may help).
    pub fn is_unavailable(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }

    /// Converts into a gRPC status carrying the exact error as JSON in the details.
    pub fn to_status(&self) -> tonic::Status {
        let details = serde_json::to_vec(self).unwrap_or_default();
        tonic::Status::with_details(self.grpc_code(), self.to_string(), details.into())
    }

    /// Rebuilds an error from a gRPC status (exact variant when the details carry one).
    pub fn from_status(status: &tonic::Status) -> Self {
        if let Ok(e) = serde_json::from_slice::<Error>(status.details()) {
            return e;
        }
        let msg = status.message().to_string();
        match status.code() {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown => Error::Unavailable(if msg.is_empty() {
                format!("{:?}", status.code())
            } else {
                msg
            }),
            tonic::Code::InvalidArgument => Error::InvalidArgument(msg),
            // Statuses from the service carry the exact error (above); one without
            // it was refused before the service ran, e.g. for the cluster secret.
            tonic::Code::Unauthenticated if !msg.is_empty() => Error::Unauthenticated(msg),
            tonic::Code::Unauthenticated => Error::AuthenticationFailed,
            _ => Error::Internal(format!("{:?}: {msg}", status.code())),
        }
    }

    pub(crate) fn corrupt(key: &str, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.to_status()
    }
}

impl From<etcd_client::Error> for Error {
    fn from(e: etcd_client::Error) -> Self {
        use etcd_client::Error as E;
        match e {
            E::GRpcStatus(s) => match s.code() {
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
                    Error::Internal(format!("etcd: {}", s.message()))
                }
                tonic::Code::NotFound => Error::Internal(format!("etcd: {}", s.message())),
                _ => Error::Unavailable(format!("etcd: {}", s.message())),
            },
            E::InvalidArgs(m) => Error::Internal(format!("etcd: {m}")),
            other => Error::Unavailable(format!("etcd: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_influxdb() {
        assert_eq!(
            Error::DatabaseNotFound("x".into()).to_string(),
            r#"database not found: "x""#
        );
        assert_eq!(
            Error::RetentionPolicyNotFound("rp".into()).to_string(),
            r#"retention policy not found: "rp""#
        );
        assert_eq!(
            Error::RetentionPolicyDurationTooLow.to_string(),
            "retention policy duration must be at least 1h0m0s"
        );
        assert_eq!(Error::UserExists.to_string(), "user already exists");
        assert_eq!(Error::DatabaseNameRequired.http_status(), 400);
        assert_eq!(Error::UserNotFound.grpc_code(), tonic::Code::NotFound);
    }

    #[test]
    fn status_round_trip() {
        for e in [
            Error::DatabaseNotFound("db".into()),
            Error::RetentionPolicyExists,
            Error::Compacted {
                requested: 3,
                oldest: 5,
            },
        ] {
            assert_eq!(Error::from_status(&e.to_status()), e);
        }
    }
}
