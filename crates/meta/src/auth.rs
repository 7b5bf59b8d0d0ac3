//! Password hashing (argon2id, PHC strings with a random salt).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use crate::error::{Error, Result};

/// Hashes a password with argon2id (default parameters) and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&bytes)
        .map_err(|e| Error::Internal(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Verifies a password against a PHC hash; false on mismatch or a malformed hash.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks passwords for the meta client. Most InfluxDB clients send credentials
/// with every request; argon2 costs ~20 MiB and tens of milliseconds a check, so a
/// password that passed is remembered (InfluxDB 1.x keeps a similar cache) and
/// checks run on the blocking pool, a few at a time.
#[derive(Debug)]
pub(crate) struct PasswordChecker {
    /// Random per process: the cache holds SHA-256(secret ‖ password), never a
    /// password, and its digests mean nothing outside this process.
    secret: [u8; 32],
    /// (user, stored PHC hash) → digest of the password that matched it. A changed
    /// password changes the stored hash, so old entries never match again.
    passed: parking_lot::Mutex<HashMap<(String, String), [u8; 32]>>,
    /// At most this many argon2 checks at once (each holds its memory).
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

const MAX_REMEMBERED: usize = 4096;

impl PasswordChecker {
    pub(crate) fn new() -> Self {
        PasswordChecker {
            secret: rand::random(),
            passed: Default::default(),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        }
    }

    fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Whether `password` matches `hash` (the stored hash of `user`).
    pub(crate) async fn check(&self, user: &str, hash: &str, password: &str) -> bool {
        let digest = self.digest(password);
        let key = (user.to_owned(), hash.to_owned());
        if let Some(known) = self.passed.lock().get(&key) {
            // Constant time: the comparison must not tell how much of it matched.
            if known
                .iter()
                .zip(digest)
                .fold(0, |acc, (a, b)| acc | (a ^ b))
                == 0
            {
                return true;
            }
        }
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return false;
        };
        let (h, p) = (hash.to_owned(), password.to_owned());
        // The slot goes with the work: a client that hangs up does not free it
        // while argon2 still runs.
        let ok = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            verify_password(&h, &p)
        })
        .await
        .unwrap_or(false);
        if ok {
            let mut passed = self.passed.lock();
            if passed.len() >= MAX_REMEMBERED {
                passed.clear();
            }
            passed.insert(key, digest);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("garbage", "s3cret"));
    }

    #[tokio::test]
    async fn checker_remembers_only_what_passed() {
        let c = PasswordChecker::new();
        let h = hash_password("pw").unwrap();
        assert!(!c.check("u", &h, "bad").await);
        assert!(c.passed.lock().is_empty());
        assert!(c.check("u", &h, "pw").await);
        assert_eq!(c.passed.lock().len(), 1);
        // A remembered entry: no argon2 (the stored hash is not even valid PHC).
        let key = ("u".to_string(), h.clone());
        let d = c.passed.lock()[&key];
        c.passed.lock().insert(("u".into(), "not-phc".into()), d);
        assert!(c.check("u", "not-phc", "pw").await);
        assert!(!c.check("u", "not-phc", "other").await);
        // Another user with the same hash string is not covered.
        assert!(!c.check("v", "not-phc", "pw").await);
        // A new password (a new hash) is checked afresh.
        let h2 = hash_password("pw2").unwrap();
        assert!(!c.check("u", &h2, "pw").await);
        assert!(c.check("u", &h2, "pw2").await);
    }
}
