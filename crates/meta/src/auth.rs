//! Password hashing (argon2id, PHC strings with a random salt), and the checker
//! the meta client authenticates with: bounded argon2 work, a cache of passwords
//! that passed, the same cost for unknown users, and a brake on repeated failures.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

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

/// A hash of a random password, made like every stored hash: checking a password
/// against it costs what checking a real user's does.
fn dummy_hash() -> String {
    let password: [u8; 16] = rand::random();
    let password: String = password.iter().map(|b| format!("{b:02x}")).collect();
    // Hashing cannot fail with valid parameters; an empty string would only make
    // unknown users cheaper again, never let anyone in.
    hash_password(&password).unwrap_or_default()
}

/// Checks passwords for the meta client. Most InfluxDB clients send credentials
/// with every request; argon2 costs ~20 MiB and tens of milliseconds a check, so a
/// password that passed is remembered (InfluxDB 1.x keeps a similar cache) and
/// checks run on the blocking pool, a few at a time.
///
/// A failed check costs one argon2 run whether or not the user exists (unknown
/// users are checked against a dummy hash), so user names cannot be found by
/// timing; and repeated failures for one name are slowed down ([`FailureTracker`]).
#[derive(Debug)]
pub(crate) struct PasswordChecker {
    /// Random per process: the cache holds SHA-256(secret ‖ password), never a
    /// password, and its digests mean nothing outside this process.
    secret: [u8; 32],
    /// (user, stored PHC hash) → digest of the password that matched it. A changed
    /// password changes the stored hash, so old entries never match again.
    passed: parking_lot::Mutex<HashMap<(String, String), [u8; 32]>>,
    /// At most this many argon2 checks at once (each holds its memory).
    slots: Arc<tokio::sync::Semaphore>,
    /// What unknown users are checked against; made once, off the async workers.
    dummy: Arc<OnceLock<String>>,
    failures: Arc<FailureTracker>,
}

const MAX_REMEMBERED: usize = 4096;

impl PasswordChecker {
    pub(crate) fn new() -> Self {
        let dummy = Arc::new(OnceLock::new());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // Made ahead, so the first unknown user does not pay for a hash too.
            let d = dummy.clone();
            rt.spawn_blocking(move || d.get_or_init(dummy_hash).len());
        }
        PasswordChecker {
            secret: rand::random(),
            passed: Default::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            dummy,
            failures: Arc::new(FailureTracker::new()),
        }
    }

    fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// Whether `password` is `user`'s; `hash` is the user's stored hash, `None`
    /// for an unknown user (always false, at the cost of a wrong password).
    pub(crate) async fn check(&self, user: &str, hash: Option<&str>, password: &str) -> bool {
        let name = self.failures.key(user);
        let digest = self.digest(password);
        let key = (user.to_owned(), hash.unwrap_or_default().to_owned());
        let mut regated = false;
        loop {
            // A name with recent failures waits before anything is checked, the
            // remembered fast path included: a guess must not be confirmed early.
            let throttled = match self.failures.admit(name, Instant::now()) {
                Admission::Now => false,
                Admission::After(wait) => {
                    tokio::time::sleep(wait).await;
                    true
                }
                Admission::Refused => return false,
            };
            // Looked up for unknown users too (it never matches), so both paths
            // do the same work before argon2.
            let remembered = self.passed.lock().get(&key).is_some_and(|known| {
                // Constant time: the comparison must not tell how much of it matched.
                known
                    .iter()
                    .zip(digest)
                    .fold(0, |acc, (a, b)| acc | (a ^ b))
                    == 0
            });
            if remembered && hash.is_some() {
                self.failures.record(name, true, Instant::now());
                return true;
            }
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                return false;
            };
            if !throttled && !regated && self.failures.is_throttled(name, Instant::now()) {
                // Failures landed while this check queued for a slot (a burst of
                // guesses sent at once): take a place behind them instead.
                regated = true;
                drop(slot);
                continue;
            }
            let known = hash.map(str::to_owned);
            let (p, dummy, failures) = (
                password.to_owned(),
                self.dummy.clone(),
                self.failures.clone(),
            );
            // The slot goes with the work: a client that hangs up does not free it
            // while argon2 still runs. The outcome is recorded there too, so
            // hanging up early does not erase a failure.
            let ok = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                let ok = match &known {
                    Some(h) => verify_password(h, &p),
                    None => {
                        verify_password(dummy.get_or_init(dummy_hash), &p);
                        false
                    }
                };
                failures.record(name, ok, Instant::now());
                ok
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
            return ok;
        }
    }
}

/// Failures a name may have before its attempts are slowed down.
const FREE_FAILURES: u32 = 3;
/// The wait after `FREE_FAILURES`; it doubles with every further failure...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ...up to this. Attempts sent at once are spaced out, and those that would
/// wait longer than this are refused without a check.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Failures older than this (since a name's last one) are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Names tracked at most: a client sending endless random names cannot grow it.
const MAX_TRACKED: usize = 10_000;

/// Consecutive failed logins per user name, existing or not (so the brake does
/// not tell which names exist). Names are kept as keyed 64-bit hashes: an entry
/// costs the same whatever the length of the name sent.
#[derive(Debug)]
struct FailureTracker {
    hasher: std::collections::hash_map::RandomState,
    names: parking_lot::Mutex<HashMap<u64, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// When the latest admitted attempt is answered; the next one waits its
    /// delay after that, so a burst sent at once is spaced out.
    next_answer: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Now,
    After(Duration),
    Refused,
}

/// The wait before an attempt for a name with `count` recent failures.
fn delay_for(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

impl FailureTracker {
    fn new() -> Self {
        FailureTracker {
            hasher: Default::default(),
            names: Default::default(),
        }
    }

    fn key(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The recent failures of a name, if any (`None` once the window has passed).
    fn recent(f: &Failures, now: Instant) -> Option<u32> {
        (now.saturating_duration_since(f.last) <= FAILURE_WINDOW).then_some(f.count)
    }

    fn is_throttled(&self, key: u64, now: Instant) -> bool {
        self.names
            .lock()
            .get(&key)
            .and_then(|f| Self::recent(f, now))
            .is_some_and(|n| n >= FREE_FAILURES)
    }

    /// When an attempt for `key` arriving at `now` may be checked.
    fn admit(&self, key: u64, now: Instant) -> Admission {
        let mut names = self.names.lock();
        let Some(f) = names.get_mut(&key) else {
            return Admission::Now;
        };
        let delay = delay_for(Self::recent(f, now).unwrap_or(0));
        if delay.is_zero() {
            return Admission::Now;
        }
        let at = f.next_answer.max(now) + delay;
        if at > now + MAX_DELAY {
            return Admission::Refused;
        }
        f.next_answer = at;
        Admission::After(at - now)
    }

    /// A success forgets the name; a failure counts.
    fn record(&self, key: u64, ok: bool, now: Instant) {
        let mut names = self.names.lock();
        if ok {
            names.remove(&key);
            return;
        }
        if !names.contains_key(&key) && names.len() >= MAX_TRACKED {
            names.retain(|_, f| Self::recent(f, now).is_some());
            if names.len() >= MAX_TRACKED {
                // Still full of live names: forget the one that failed longest ago.
                let oldest = names.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    names.remove(&k);
                }
            }
        }
        let f = names.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            next_answer: now,
        });
        f.count = Self::recent(f, now).unwrap_or(0).saturating_add(1);
        f.last = now;
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
        assert!(!c.check("u", Some(&h), "bad").await);
        assert!(c.passed.lock().is_empty());
        assert!(c.check("u", Some(&h), "pw").await);
        assert_eq!(c.passed.lock().len(), 1);
        // A remembered entry: no argon2 (the stored hash is not even valid PHC).
        let key = ("u".to_string(), h.clone());
        let d = c.passed.lock()[&key];
        c.passed.lock().insert(("u".into(), "not-phc".into()), d);
        assert!(c.check("u", Some("not-phc"), "pw").await);
        assert!(!c.check("u", Some("not-phc"), "other").await);
        // Another user with the same hash string is not covered.
        assert!(!c.check("v", Some("not-phc"), "pw").await);
        // A new password (a new hash) is checked afresh.
        let h2 = hash_password("pw2").unwrap();
        assert!(!c.check("u", Some(&h2), "pw").await);
        assert!(c.check("u", Some(&h2), "pw2").await);
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_the_dummy_hash() {
        let c = PasswordChecker::new();
        assert!(!c.check("ghost", None, "pw").await);
        let dummy = c.dummy.get().expect("the dummy hash was made");
        // Same algorithm and parameters as a stored hash, so the same cost.
        let real = hash_password("pw").unwrap();
        let params = |h: &str| {
            let p = PasswordHash::new(h).unwrap();
            (p.algorithm.to_string(), p.params.to_string())
        };
        assert_eq!(params(dummy), params(&real));
        // Even the dummy's own password does not log an unknown user in, and a
        // remembered entry under the empty hash is never used for one.
        c.passed
            .lock()
            .insert(("ghost".into(), String::new()), c.digest("pw"));
        assert!(!c.check("ghost", None, "pw").await);
        // The unknown name's failures are counted like any other's.
        let k = c.failures.key("ghost");
        assert_eq!(c.failures.names.lock()[&k].count, 2);
    }

    #[test]
    fn failures_slow_a_name_down_until_a_success() {
        let t = FailureTracker::new();
        let (k, other) = (t.key("bob"), t.key("alice"));
        let mut now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.admit(k, now), Admission::Now);
            t.record(k, false, now);
            now += Duration::from_millis(30);
        }
        let mut waits = Vec::new();
        for _ in 0..8 {
            match t.admit(k, now) {
                Admission::After(w) => waits.push(w),
                a => panic!("{a:?}"),
            }
            now += waits[waits.len() - 1] + Duration::from_millis(30);
            t.record(k, false, now);
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        // Another name is not affected; a success forgets the name.
        assert_eq!(t.admit(other, now), Admission::Now);
        t.record(k, true, now);
        assert_eq!(t.admit(k, now), Admission::Now);
        // Failures older than the window are forgotten.
        for _ in 0..FREE_FAILURES + 2 {
            t.record(k, false, now);
        }
        assert!(t.is_throttled(k, now));
        let later = now + FAILURE_WINDOW + Duration::from_secs(1);
        assert!(!t.is_throttled(k, later));
        assert_eq!(t.admit(k, later), Admission::Now);
        t.record(k, false, later);
        assert_eq!(t.names.lock()[&k].count, 1);
    }

    #[test]
    fn a_burst_for_one_name_is_spaced_out_and_capped() {
        let t = FailureTracker::new();
        let k = t.key("bob");
        let now = Instant::now();
        for _ in 0..FREE_FAILURES + 3 {
            t.record(k, false, now);
        }
        // 800 ms apart: 0.8, 1.6, ... 4.8 s; the next would wait past the cap.
        let mut admitted = Vec::new();
        loop {
            match t.admit(k, now) {
                Admission::After(w) => admitted.push(w.as_millis()),
                Admission::Refused => break,
                Admission::Now => panic!("a throttled name was let through"),
            }
        }
        assert_eq!(admitted, [800, 1600, 2400, 3200, 4000, 4800]);
    }

    #[test]
    fn the_tracker_holds_a_bounded_number_of_names() {
        let t = FailureTracker::new();
        let start = Instant::now();
        let n = MAX_TRACKED + 500;
        for i in 0..n {
            let now = start + Duration::from_millis(i as u64);
            t.record(t.key(&format!("random-{i}")), false, now);
        }
        assert_eq!(t.names.lock().len(), MAX_TRACKED);
        // The names that failed last are the ones kept.
        let last = t.key(&format!("random-{}", n - 1));
        assert!(t.names.lock().contains_key(&last));
        assert!(!t.names.lock().contains_key(&t.key("random-0")));
    }
}
