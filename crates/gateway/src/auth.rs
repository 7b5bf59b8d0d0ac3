//! Credentials as InfluxDB 1.x reads them: `u`/`p` query parameters, then the
//! `Authorization` header (`Bearer <jwt>`, `Token user:password`, `Basic …`).
//! Bearer tokens are HS256 JWTs signed with the configured shared secret.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    UserPassword { user: String, password: String },
    Bearer(String),
}

/// Authentication failures, each with InfluxDB's 401 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unable to parse authentication credentials")]
    NoCredentials,
    #[error("authorization failed")]
    Failed,
    #[error("bearer auth disabled")]
    BearerDisabled,
    #[error("{0}")]
    BadToken(String),
    #[error("token expired")]
    TokenExpired,
    /// `nbf` lies in the future (jwt-go's text, which InfluxDB 1.x returns).
    #[error("Token is not valid yet")]
    TokenNotValidYet,
    /// `iat` lies in the future (jwt-go's text).
    #[error("Token used before issued")]
    TokenUsedBeforeIssued,
    #[error("username claim is required")]
    MissingUsername,
}

/// Reads credentials from query parameters `u`/`p` and the Authorization header.
pub fn parse_credentials(
    u: Option<&str>,
    p: Option<&str>,
    authorization: Option<&str>,
) -> Result<Credentials, AuthError> {
    if let (Some(u), Some(p)) = (u, p) {
        if !u.is_empty() && !p.is_empty() {
            return Ok(Credentials::UserPassword {
                user: u.to_string(),
                password: p.to_string(),
            });
        }
    }
    let Some(h) = authorization else {
        return Err(AuthError::NoCredentials);
    };
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let rest = rest.trim();
    match scheme {
        "Bearer" if !rest.is_empty() => Ok(Credentials::Bearer(rest.to_string())),
        "Token" => match rest.split_once(':') {
            Some((user, password)) => Ok(Credentials::UserPassword {
                user: user.to_string(),
                password: password.to_string(),
            }),
            None => Err(AuthError::NoCredentials),
        },
        s if s.eq_ignore_ascii_case("Basic") => {
            let raw = STANDARD
                .decode(rest)
                .map_err(|_| AuthError::NoCredentials)?;
            let text = String::from_utf8(raw).map_err(|_| AuthError::NoCredentials)?;
            match text.split_once(':') {
                Some((user, password)) => Ok(Credentials::UserPassword {
                    user: user.to_string(),
                    password: password.to_string(),
                }),
                None => Err(AuthError::NoCredentials),
            }
        }
        _ => Err(AuthError::NoCredentials),
    }
}

/// Verifies an HS256 JWT and returns its `username` claim. `now` in Unix seconds.
/// An empty secret disables bearer auth, as in InfluxDB.
pub fn verify_jwt(token: &str, secret: &str, now: i64) -> Result<String, AuthError> {
    if secret.is_empty() {
        return Err(AuthError::BearerDisabled);
    }
    let bad = |m: &str| AuthError::BadToken(m.to_string());
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("token contains an invalid number of segments"));
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("token header is malformed"))?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(bad("signing method is not HS256"));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| bad("signature is invalid"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| bad("signature is invalid"))?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&sig)
        .map_err(|_| bad("signature is invalid"))?;
    let claims: serde_json::Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("token claims are malformed"))?;
    // jwt-go's MapClaims rules, no leeway. It reports the last check that failed,
    // so `nbf` wins over `iat`, and both over `exp`.
    if numeric_date(&claims, "nbf")?.is_some_and(|nbf| now < nbf) {
        return Err(AuthError::TokenNotValidYet);
    }
    if numeric_date(&claims, "iat")?.is_some_and(|iat| now < iat) {
        return Err(AuthError::TokenUsedBeforeIssued);
    }
    // InfluxDB requires an expiry: a token without `exp` never expires otherwise.
    match numeric_date(&claims, "exp") {
        Ok(Some(exp)) if exp > now => {}
        Ok(Some(exp)) if exp > 0 => return Err(AuthError::TokenExpired),
        _ => return Err(bad("token expiration is required")),
    }
    match claims.get("username").and_then(|u| u.as_str()) {
        Some(u) if !u.is_empty() => Ok(u.to_string()),
        _ => Err(AuthError::MissingUsername),
    }
}

/// A time claim in Unix seconds (JSON numbers, fractions cut as jwt-go does);
/// `None` when absent. Any other type is refused rather than ignored, so a
/// quoted `"nbf"` cannot slip past the check.
fn numeric_date(claims: &serde_json::Value, name: &str) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| AuthError::BadToken(format!("token claim {name:?} is not a number"))),
    }
}

/// Makes an HS256 JWT; for tests and tooling.
pub fn sign_jwt(claims: &serde_json::Value, secret: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let sig = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(h.as_bytes());
            mac.update(b".");
            mac.update(p.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{h}.{p}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn up(u: &str, p: &str) -> Credentials {
        Credentials::UserPassword {
            user: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn every_credential_form() {
        assert_eq!(
            parse_credentials(Some("bob"), Some("pw"), None),
            Ok(up("bob", "pw"))
        );
        // Query parameters win over the header, as in InfluxDB.
        assert_eq!(
            parse_credentials(Some("bob"), Some("pw"), Some("Token x:y")),
            Ok(up("bob", "pw"))
        );
        let basic = format!("Basic {}", STANDARD.encode("alice:s3:cret"));
        assert_eq!(
            parse_credentials(None, None, Some(&basic)),
            Ok(up("alice", "s3:cret"))
        );
        assert_eq!(
            parse_credentials(None, None, Some("Token carol:pw")),
            Ok(up("carol", "pw"))
        );
        assert_eq!(
            parse_credentials(None, None, Some("Bearer abc.def.ghi")),
            Ok(Credentials::Bearer("abc.def.ghi".into()))
        );
        for bad in ["", "Basic !!!", "Token nocolon", "Digest x", "Bearer"] {
            assert_eq!(
                parse_credentials(None, None, Some(bad)),
                Err(AuthError::NoCredentials),
                "{bad}"
            );
        }
        assert_eq!(
            parse_credentials(Some("bob"), None, None),
            Err(AuthError::NoCredentials)
        );
    }

    #[test]
    fn jwt_accepts_a_good_token_and_rejects_the_rest() {
        let now = 1_700_000_000;
        let good = sign_jwt(&json!({"username": "bob", "exp": now + 60}), "secret");
        assert_eq!(verify_jwt(&good, "secret", now), Ok("bob".into()));
        assert_eq!(verify_jwt(&good, "", now), Err(AuthError::BearerDisabled));
        assert_eq!(
            verify_jwt(&good, "other", now),
            Err(AuthError::BadToken("signature is invalid".into()))
        );
        let expired = sign_jwt(&json!({"username": "bob", "exp": now - 1}), "secret");
        assert_eq!(
            verify_jwt(&expired, "secret", now),
            Err(AuthError::TokenExpired)
        );
        let anon = sign_jwt(&json!({"exp": now + 60}), "secret");
        assert_eq!(
            verify_jwt(&anon, "secret", now),
            Err(AuthError::MissingUsername)
        );
        let forever = sign_jwt(&json!({"username": "bob"}), "secret");
        assert!(matches!(
            verify_jwt(&forever, "secret", now),
            Err(AuthError::BadToken(_))
        ));
        assert!(matches!(
            verify_jwt("a.b", "secret", now),
            Err(AuthError::BadToken(_))
        ));
        // Fractional seconds are accepted, as jwt-go reads every number as a float.
        let float = sign_jwt(
            &json!({"username": "bob", "exp": now as f64 + 60.5}),
            "secret",
        );
        assert_eq!(verify_jwt(&float, "secret", now), Ok("bob".into()));
        // Tampered claims fail the signature.
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] =
            URL_SAFE_NO_PAD.encode(json!({"username": "admin", "exp": now + 60}).to_string());
        assert!(matches!(
            verify_jwt(&parts.join("."), "secret", now),
            Err(AuthError::BadToken(_))
        ));
    }

    #[test]
    fn jwt_not_before_and_issued_at_in_the_future_are_refused() {
        let now = 1_700_000_000;
        let exp = now + 3600;
        let token = |claims: serde_json::Value| sign_jwt(&claims, "secret");
        let nbf = token(json!({"username": "bob", "exp": exp, "nbf": now + 1}));
        assert_eq!(
            verify_jwt(&nbf, "secret", now),
            Err(AuthError::TokenNotValidYet)
        );
        assert_eq!(
            AuthError::TokenNotValidYet.to_string(),
            "Token is not valid yet"
        );
        let iat = token(json!({"username": "bob", "exp": exp, "iat": now + 1}));
        assert_eq!(
            verify_jwt(&iat, "secret", now),
            Err(AuthError::TokenUsedBeforeIssued)
        );
        assert_eq!(
            AuthError::TokenUsedBeforeIssued.to_string(),
            "Token used before issued"
        );
        // Both wrong, and expired too: jwt-go reports `nbf`.
        let all = token(json!({"username": "bob", "exp": now - 1, "iat": now + 9, "nbf": now + 9}));
        assert_eq!(
            verify_jwt(&all, "secret", now),
            Err(AuthError::TokenNotValidYet)
        );
        // The boundary is valid (jwt-go: now >= nbf, now >= iat), and so is the past.
        let edge = token(json!({"username": "bob", "exp": exp, "iat": now, "nbf": now}));
        assert_eq!(verify_jwt(&edge, "secret", now), Ok("bob".into()));
        let past = token(json!({"username": "bob", "exp": exp, "iat": now - 60, "nbf": now - 60}));
        assert_eq!(verify_jwt(&past, "secret", now), Ok("bob".into()));
        // A time claim that is not a number is refused, not skipped.
        for claim in ["nbf", "iat"] {
            let mut c = json!({"username": "bob", "exp": exp});
            c[claim] = json!((now + 9).to_string());
            assert!(
                matches!(
                    verify_jwt(&token(c), "secret", now),
                    Err(AuthError::BadToken(_))
                ),
                "{claim}"
            );
        }
    }
}
