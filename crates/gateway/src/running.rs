//! The queries running on this gateway, as `SHOW QUERIES` lists them and
//! `KILL QUERY` ends them: one entry per `/query` request (its statements'
//! text joined by `;\n`, as InfluxDB 1.6 shows it), removed when the request
//! ends however it ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub struct RunningQueries {
    next: AtomicU64,
    map: Mutex<BTreeMap<u64, Entry>>,
}

#[derive(Debug)]
struct Entry {
    text: String,
    database: String,
    started: Instant,
    cancel: CancellationToken,
}

/// One running query, listed while it lives.
#[derive(Debug)]
pub struct Registered {
    id: u64,
    all: Arc<RunningQueries>,
    cancel: CancellationToken,
}

/// A running query as SHOW QUERIES lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: u64,
    pub text: String,
    pub database: String,
    pub running_for: Duration,
}

impl RunningQueries {
    fn map(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a query until the returned handle is dropped.
    pub fn register(self: &Arc<Self>, text: String, database: &str) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let cancel = CancellationToken::new();
        self.map().insert(
            id,
            Entry {
                text,
                database: database.to_string(),
                started: Instant::now(),
                cancel: cancel.clone(),
            },
        );
        Registered {
            id,
            all: self.clone(),
            cancel,
        }
    }

    /// The running queries, oldest first.
    pub fn list(&self) -> Vec<Listed> {
        self.map()
            .iter()
            .map(|(&id, e)| Listed {
                id,
                text: e.text.clone(),
                database: e.database.clone(),
                running_for: e.started.elapsed(),
            })
            .collect()
    }

    /// Ends query `id` (its statements fail with "query interrupted").
    pub fn kill(&self, id: u64) -> Result<(), String> {
        match self.map().get(&id) {
            Some(e) => {
                e.cancel.cancel();
                Ok(())
            }
            None => Err(format!("no such query id: {id}")),
        }
    }
}

impl Registered {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Resolves once the query is killed.
    pub async fn killed(&self) {
        self.cancel.cancelled().await
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.all.map().remove(&self.id);
    }
}

/// Go's `time.Duration.String()` for what SHOW QUERIES shows (`110µs`,
/// `1.5s`, `2m3s`): `sundial_influxql::go_duration`'s.
pub fn go_duration(d: Duration) -> String {
    sundial_influxql::go_duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        let d = |ns: u64| go_duration(Duration::from_nanos(ns));
        assert_eq!(d(0), "0s");
        assert_eq!(d(999), "999ns");
        assert_eq!(d(110_000), "110µs");
        assert_eq!(d(1_500), "1.5µs");
        assert_eq!(d(2_250_000), "2.25ms");
        assert_eq!(d(1_500_000_000), "1.5s");
        assert_eq!(d(123_000_000_000), "2m3s");
        assert_eq!(d(3_723_000_000_001), "1h2m3.000000001s");
    }

    #[test]
    fn a_query_is_listed_while_it_runs_and_can_be_killed() {
        let all = Arc::new(RunningQueries::default());
        let q = all.register("SELECT 1".into(), "db");
        let listed = all.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id, listed[0].text.as_str()),
            (q.id(), "SELECT 1")
        );
        assert!(all.kill(q.id()).is_ok());
        assert!(q.cancel.is_cancelled());
        assert_eq!(all.kill(99), Err("no such query id: 99".into()));
        drop(q);
        assert!(all.list().is_empty());
    }
}
