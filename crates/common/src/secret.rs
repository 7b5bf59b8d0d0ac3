//! The cluster's shared secret: every node-to-node call carries it in the
//! `x-sundial-secret` metadata entry, and servers refuse calls without it. The
//! same client interceptor carries the caller's trace context (`traceparent`).

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// The metadata key carrying the secret.
pub const SECRET_METADATA: &str = "x-sundial-secret";

/// Adds the secret to every outgoing call (nothing when none is configured), and
/// the current span's trace context.
#[derive(Clone, Default)]
pub struct SecretInterceptor {
    value: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for SecretInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretInterceptor")
            .field("set", &self.value.is_some())
            .finish()
    }
}

impl SecretInterceptor {
    /// `None` or an empty secret: calls go without one. Errs when the secret is
    /// not printable ASCII (it travels as a metadata value).
    pub fn new(secret: Option<&str>) -> Result<Self, String> {
        let value = match secret.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.parse()
                    .map_err(|_| "the cluster secret must be printable ASCII".to_string())?,
            ),
        };
        Ok(SecretInterceptor { value })
    }
}

impl tonic::service::Interceptor for SecretInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.value {
            req.metadata_mut().insert(SECRET_METADATA, v.clone());
        }
        #[cfg(feature = "telemetry")]
        crate::telemetry::inject_metadata(req.metadata_mut());
        Ok(req)
    }
}

/// Checks incoming calls for the secret (every call passes when none is set).
#[derive(Clone, Default)]
pub struct SecretCheck {
    secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for SecretCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCheck")
            .field("set", &self.secret.is_some())
            .finish()
    }
}

impl SecretCheck {
    pub fn new(secret: Option<&str>) -> Self {
        SecretCheck {
            secret: secret
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec()),
        }
    }
}

impl tonic::service::Interceptor for SecretCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(want) = &self.secret else {
            return Ok(req);
        };
        let got = req
            .metadata()
            .get(SECRET_METADATA)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(got, want) {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong cluster secret (x-sundial-secret): set the same [cluster] shared-secret on every node",
            ))
        }
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a
/// guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn calls_without_the_secret_are_refused() {
        let mut check = SecretCheck::new(Some("s3cret"));
        let mut add = SecretInterceptor::new(Some("s3cret")).unwrap_or_default();
        assert!(check.call(add.call(Request::new(())).unwrap()).is_ok());
        let err = check.call(Request::new(())).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut wrong = SecretInterceptor::new(Some("s3creT")).unwrap_or_default();
        assert!(check.call(wrong.call(Request::new(())).unwrap()).is_err());
        let mut longer = SecretInterceptor::new(Some("s3cret2")).unwrap_or_default();
        assert!(check.call(longer.call(Request::new(())).unwrap()).is_err());
        // No secret configured: everything passes.
        assert!(SecretCheck::new(None).call(Request::new(())).is_ok());
    }
}
