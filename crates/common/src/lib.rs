//! Types every Sundial crate shares, below all of them: the class of an error (and
//! the one place that turns it into an HTTP status or a gRPC code), and what a
//! write to a shard did.

#[cfg(feature = "config")]
pub mod config;
pub mod duration;
#[cfg(feature = "metrics")]
pub mod metrics;
mod outcome;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "grpc")]
pub mod secret;
#[cfg(feature = "telemetry")]
pub mod telemetry;

pub use outcome::{WriteOutcome, MAX_REASONS};

/// Wall-clock milliseconds since the Unix epoch (0 before it): the time
/// hints, deletes and the writes they are ordered against are stamped with.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

use serde::{Deserialize, Serialize};

/// One check of a health report (InfluxDB's `/health` format: name, status, message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    /// `pass`, `warn` or `fail`.
    pub status: &'static str,
    pub message: String,
}

/// The class of an error: what an HTTP gateway answers and which gRPC code carries
/// it. Every crate's error enum has a `class()`; nothing else picks status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorClass {
    /// 404 / `NOT_FOUND`
    NotFound,
    /// 400 / `INVALID_ARGUMENT`
    BadRequest,
    /// 409 / `ALREADY_EXISTS`
    Conflict,
    /// 401 / `UNAUTHENTICATED`
    Unauthorized,
    /// 403 / `PERMISSION_DENIED`
    Forbidden,
    /// 413 / `RESOURCE_EXHAUSTED`: a request over a size limit.
    TooLarge,
    /// 503 / `UNAVAILABLE`: overloaded or a dependency is down; retrying later may help.
    Unavailable,
    /// 500 / `DEADLINE_EXCEEDED`
    Timeout,
    /// 500 / `INTERNAL`
    Internal,
}

impl ErrorClass {
    /// The HTTP status code for this class (InfluxDB 1.x's choices).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::NotFound => 404,
            ErrorClass::BadRequest => 400,
            ErrorClass::Conflict => 409,
            ErrorClass::Unauthorized => 401,
            ErrorClass::Forbidden => 403,
            ErrorClass::TooLarge => 413,
            ErrorClass::Unavailable => 503,
            ErrorClass::Timeout | ErrorClass::Internal => 500,
        }
    }

    /// The gRPC code for this class.
    #[cfg(feature = "grpc")]
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorClass::NotFound => Code::NotFound,
            ErrorClass::BadRequest => Code::InvalidArgument,
            ErrorClass::Conflict => Code::AlreadyExists,
            ErrorClass::Unauthorized => Code::Unauthenticated,
            ErrorClass::Forbidden => Code::PermissionDenied,
            ErrorClass::TooLarge => Code::ResourceExhausted,
            ErrorClass::Unavailable => Code::Unavailable,
            ErrorClass::Timeout => Code::DeadlineExceeded,
            ErrorClass::Internal => Code::Internal,
        }
    }

    /// The class a gRPC code stands for (the inverse of [`ErrorClass::grpc_code`];
    /// codes no class uses are `Internal`, transport failures `Unavailable`).
    #[cfg(feature = "grpc")]
    pub fn from_grpc_code(code: tonic::Code) -> ErrorClass {
        use tonic::Code;
        match code {
            Code::NotFound => ErrorClass::NotFound,
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                ErrorClass::BadRequest
            }
            Code::AlreadyExists => ErrorClass::Conflict,
            Code::Unauthenticated => ErrorClass::Unauthorized,
            Code::PermissionDenied => ErrorClass::Forbidden,
            Code::ResourceExhausted => ErrorClass::TooLarge,
            Code::Unavailable | Code::Cancelled | Code::Aborted => ErrorClass::Unavailable,
            Code::DeadlineExceeded => ErrorClass::Timeout,
            _ => ErrorClass::Internal,
        }
    }

    /// Whether a client should retry later (`Retry-After` over HTTP).
    pub fn is_retryable(self) -> bool {
        self == ErrorClass::Unavailable
    }
}

#[cfg(all(test, feature = "grpc"))]
mod tests {
    use super::ErrorClass::{self, *};

    #[test]
    fn grpc_codes_map_back_to_their_class() {
        for c in [
            NotFound,
            BadRequest,
            Conflict,
            Unauthorized,
            Forbidden,
            TooLarge,
            Unavailable,
            Timeout,
            Internal,
        ] {
            assert_eq!(ErrorClass::from_grpc_code(c.grpc_code()), c);
        }
    }
}
