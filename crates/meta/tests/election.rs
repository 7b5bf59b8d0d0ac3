//! Leader election over both backends: one leader among candidates, takeover when
//! the leader's lease is revoked, expires or its key goes, a clean hand-over on
//! resign, and the services running in the leader only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sundial_meta::election::{Attempt, Election, ElectionOptions, Leadership};
use sundial_meta::services::{
    run_elected, Housekeeping, PrecreationConfig, RetentionConfig, ServiceOptions,
};
use sundial_meta::testing::{unique_prefix, EtcdProcess};
use sundial_meta::{EmbeddedBackend, EtcdBackend, KvBackend, ShardGroupInfo};

/// etcd raises shorter lease TTLs to 2 s; the embedded backend honours 1 s.
const TTL: Duration = Duration::from_secs(2);

fn opts() -> ElectionOptions {
    ElectionOptions {
        ttl: TTL,
        retry_interval: Duration::from_millis(200),
        ..ElectionOptions::default()
    }
}

fn candidates(kv: &Arc<dyn KvBackend>) -> (Election, Election) {
    (
        Election::new(kv.clone(), "a", opts()),
        Election::new(kv.clone(), "b", opts()),
    )
}

/// Awaits `fut`, failing the test after `bound`.
async fn within<T>(bound: Duration, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    match tokio::time::timeout(bound, fut).await {
        Ok(v) => v,
        Err(_) => panic!(
            "{what}: not within {bound:?} (waited {:?})",
            started.elapsed()
        ),
    }
}

/// Both try at once: exactly one wins, the other sees the winner.
async fn exactly_one_leader(kv: Arc<dyn KvBackend>) -> (Election, Leadership, Election) {
    let (a, b) = candidates(&kv);
    let (ra, rb) = tokio::join!(a.try_acquire(), b.try_acquire());
    let (winner, leadership, loser, held) = match (ra.unwrap(), rb.unwrap()) {
        (Attempt::Won(l), Attempt::Held(h)) => (a, l, b, h),
        (Attempt::Held(h), Attempt::Won(l)) => (b, l, a, h),
        (x, y) => panic!("not exactly one leader: {x:?} / {y:?}"),
    };
    assert_eq!(held, winner.id());
    assert_eq!(loser.leader().await.unwrap().as_deref(), Some(winner.id()));
    // The loser keeps losing while the leader renews, over several TTLs.
    let until = Instant::now() + TTL + TTL / 2;
    while Instant::now() < until {
        match loser.try_acquire().await.unwrap() {
            Attempt::Held(h) => assert_eq!(h, winner.id()),
            Attempt::Won(_) => panic!("second leader while the first renews"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(leadership.is_leader());
    (winner, leadership, loser)
}

async fn revoked_lease_hands_over(kv: Arc<dyn KvBackend>) {
    let (_winner, mut leadership, loser) = exactly_one_leader(kv.clone()).await;
    kv.revoke_lease(leadership.lease()).await.unwrap();
    // The leader notices at its next renewal (every TTL/3).
    within(TTL, "leader notices its revoked lease", leadership.lost()).await;
    assert!(!leadership.is_leader());
    let next = within(Duration::from_secs(2), "takeover", loser.campaign()).await;
    assert!(next.is_leader());
    assert_eq!(loser.leader().await.unwrap().as_deref(), Some(loser.id()));
}

async fn expired_lease_hands_over(kv: Arc<dyn KvBackend>) {
    let (winner, leadership, loser) = exactly_one_leader(kv.clone()).await;
    // The leader dies: nobody renews, nobody revokes.
    drop(leadership);
    let died = Instant::now();
    let next = within(
        TTL + Duration::from_secs(4),
        "takeover after expiry",
        loser.campaign(),
    )
    .await;
    assert!(
        died.elapsed() >= TTL / 2,
        "took over before the lease could have expired ({:?})",
        died.elapsed()
    );
    assert!(next.is_leader());
    // The old leader, back, now follows.
    match winner.try_acquire().await.unwrap() {
        Attempt::Held(h) => assert_eq!(h, loser.id()),
        Attempt::Won(_) => panic!("two leaders"),
    }
}

async fn resign_hands_over_at_once(kv: Arc<dyn KvBackend>) {
    let (winner, leadership, loser) = exactly_one_leader(kv.clone()).await;
    leadership.resign().await;
    assert_eq!(winner.leader().await.unwrap(), None);
    let next = within(
        Duration::from_secs(1),
        "takeover after resign",
        loser.campaign(),
    )
    .await;
    assert!(next.is_leader());
}

async fn deleted_key_ends_leadership(kv: Arc<dyn KvBackend>) {
    let (winner, mut leadership, loser) = exactly_one_leader(kv.clone()).await;
    kv.delete(winner.options().key.as_bytes()).await.unwrap();
    within(TTL, "leader notices its key is gone", leadership.lost()).await;
    let next = within(Duration::from_secs(2), "takeover", loser.campaign()).await;
    assert!(next.is_leader());
}

/// Counts the passes of one runner's services.
#[derive(Debug, Default)]
struct Counter {
    retention: AtomicUsize,
    precreation: AtomicUsize,
}

#[async_trait]
impl Housekeeping for Counter {
    async fn expire_shard_groups(&self, _now: i64) -> sundial_meta::Result<Vec<ShardGroupInfo>> {
        self.retention.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
    async fn precreate(
        &self,
        _now: i64,
        _advance: Duration,
    ) -> sundial_meta::Result<Vec<ShardGroupInfo>> {
        self.precreation.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
}

impl Counter {
    fn passes(&self) -> (usize, usize) {
        (
            self.retention.load(Ordering::SeqCst),
            self.precreation.load(Ordering::SeqCst),
        )
    }
}

/// Two `run_elected` over one backend: only the leader's services run; after the
/// leader shuts down, the other's do.
async fn services_run_in_the_leader_only(kv: Arc<dyn KvBackend>) {
    let svc = ServiceOptions {
        retention: RetentionConfig {
            enabled: true,
            check_interval: Duration::from_millis(50),
        },
        precreation: PrecreationConfig {
            enabled: true,
            check_interval: Duration::from_millis(50),
            advance_period: Duration::from_secs(60),
        },
    };
    let (a, b) = candidates(&kv);
    let (ca, cb) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
    let (stop_a, rx_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, rx_b) = tokio::sync::oneshot::channel::<()>();
    let ta = tokio::spawn(run_elected(a, ca.clone(), svc.clone(), async {
        let _ = rx_a.await;
    }));
    let tb = tokio::spawn(run_elected(b, cb.clone(), svc, async {
        let _ = rx_b.await;
    }));
    within(
        Duration::from_secs(5),
        "a leader runs the services",
        async {
            while ca.passes().0 < 3 && cb.passes().0 < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (leader, follower, stop_leader, stop_follower, t_leader, t_follower) = if ca.passes().0 > 0
    {
        (ca, cb, stop_a, stop_b, ta, tb)
    } else {
        (cb, ca, stop_b, stop_a, tb, ta)
    };
    assert_eq!(follower.passes(), (0, 0), "the follower ran services");
    assert!(leader.passes().1 > 0, "precreation ran in the leader");
    // The leader stops cleanly: it resigns and the follower takes over quickly.
    stop_leader.send(()).unwrap();
    within(Duration::from_secs(3), "the leader stops", t_leader)
        .await
        .unwrap();
    let stopped = leader.passes();
    within(Duration::from_secs(3), "the follower takes over", async {
        while follower.passes().0 < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(leader.passes(), stopped, "a stopped leader ran services");
    stop_follower.send(()).unwrap();
    within(Duration::from_secs(3), "the follower stops", t_follower)
        .await
        .unwrap();
}

fn embedded() -> (tempfile::TempDir, Arc<dyn KvBackend>) {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    (dir, kv)
}

async fn etcd(p: &EtcdProcess) -> Arc<dyn KvBackend> {
    Arc::new(
        EtcdBackend::connect(&p.endpoints(), unique_prefix())
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_one_leader_and_revoked_lease() {
    let (_d, kv) = embedded();
    revoked_lease_hands_over(kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_expired_lease() {
    let (_d, kv) = embedded();
    expired_lease_hands_over(kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_resign_and_deleted_key() {
    let (_d, kv) = embedded();
    resign_hands_over_at_once(kv.clone()).await;
    let (_d, kv) = embedded();
    deleted_key_ends_leadership(kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_services_in_the_leader_only() {
    let (_d, kv) = embedded();
    services_run_in_the_leader_only(kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_election() {
    let p = EtcdProcess::start();
    revoked_lease_hands_over(etcd(&p).await).await;
    expired_lease_hands_over(etcd(&p).await).await;
    resign_hands_over_at_once(etcd(&p).await).await;
    deleted_key_ends_leadership(etcd(&p).await).await;
    services_run_in_the_leader_only(etcd(&p).await).await;
}

/// etcd goes away: the leader gives up before its lease could expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_ends_leadership() {
    let mut p = EtcdProcess::start();
    let kv = etcd(&p).await;
    let a = Election::new(kv, "a", opts());
    let Attempt::Won(mut leadership) = a.try_acquire().await.unwrap() else {
        panic!("no rival, yet not leader");
    };
    p.kill();
    let killed = Instant::now();
    within(TTL, "leader gives up without etcd", leadership.lost()).await;
    assert!(killed.elapsed() < TTL, "{:?}", killed.elapsed());
    assert!(!leadership.is_leader());
}
