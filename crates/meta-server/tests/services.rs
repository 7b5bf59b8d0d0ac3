//! Retention and precreation run once for the cluster, in the elected `sundial-meta`
//! instance, and move to another instance when the leader is SIGKILLed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sundial_meta::testing::{unique_prefix, EtcdProcess, MetaProcess};
use sundial_meta::{
    keys, now_ns, ClientOptions, EtcdBackend, KvBackend, MetaClient, RetentionPolicySpec, HOUR,
};

const BIN: &str = env!("CARGO_BIN_EXE_sundial-meta");
const TTL_SECS: u64 = 2;

fn start_meta(etcd: &EtcdProcess, prefix: &str) -> MetaProcess {
    MetaProcess::start_with_args(
        BIN,
        &etcd.endpoints(),
        prefix,
        &[
            "--retention-check-interval",
            "500ms",
            "--precreate-check-interval",
            "500ms",
            "--precreate-advance-period",
            "2h",
            "--leader-lease-ttl",
            &format!("{TTL_SECS}s"),
        ],
    )
}

/// Polls `cond` every 50 ms; fails the test after `bound`.
async fn eventually(bound: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader's id (`ADDR/pid/random`), waiting up to `bound` for one.
async fn leader(kv: &Arc<dyn KvBackend>, bound: Duration) -> String {
    let started = Instant::now();
    loop {
        if let Some(v) = kv.get(keys::LEADER_SERVICES.as_bytes()).await.unwrap() {
            return String::from_utf8(v.value).unwrap();
        }
        assert!(
            started.elapsed() < bound,
            "no services leader within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_precreation_run_in_one_elected_instance() {
    let etcd = EtcdProcess::start();
    let prefix = unique_prefix();
    let kv: Arc<dyn KvBackend> = Arc::new(
        EtcdBackend::connect(&etcd.endpoints(), prefix.clone())
            .await
            .unwrap(),
    );
    let mut metas = [start_meta(&etcd, &prefix), start_meta(&etcd, &prefix)];
    let c = MetaClient::remote(
        &format!("{},{}", metas[0].endpoint(), metas[1].endpoint()),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let n = c
        .register_node(None, "127.0.0.1:1", "127.0.0.1:2")
        .await
        .unwrap();
    c.heartbeat(n.id, Duration::from_secs(120)).await.unwrap();
    c.create_database_with_policy("db", RetentionPolicySpec::new("short", HOUR))
        .await
        .unwrap();

    // A group far in the past is deleted by the services; a current one stays and
    // gets its successor precreated (advance 2h > the 1h group duration).
    let now = now_ns();
    let old = c
        .create_shard_group("db", "short", now - 10 * 24 * HOUR)
        .await
        .unwrap();
    let current = c.create_shard_group("db", "short", now).await.unwrap();
    eventually(Duration::from_secs(10), "expired group deleted", || {
        let groups = c.shard_groups("db", "short");
        !groups.iter().any(|g| g.id == old.id)
            && groups.iter().any(|g| g.id == current.id)
            && groups.iter().any(|g| g.start == current.end)
    })
    .await;

    // Exactly one instance leads: the key names one of the two.
    let first = leader(&kv, Duration::from_secs(5)).await;
    let idx = metas
        .iter()
        .position(|m| first.starts_with(&format!("{}/", m.addr())))
        .unwrap_or_else(|| panic!("leader {first:?} is neither instance"));
    let survivor = metas[1 - idx].addr();

    // SIGKILL the leader: no resignation, its lease has to expire.
    metas[idx].kill();
    let killed = Instant::now();
    // The client may first try the dead endpoint.
    let old2 = loop {
        match c
            .create_shard_group("db", "short", now - 20 * 24 * HOUR)
            .await
        {
            Ok(g) => break g,
            Err(e) => {
                assert!(killed.elapsed() < Duration::from_secs(10), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The client's cache may still be reconnecting its watch away from the dead
    // instance: see the group before waiting for it to go.
    eventually(
        Duration::from_secs(10),
        "the new group in the cache",
        || {
            c.shard_groups("db", "short")
                .iter()
                .any(|g| g.id == old2.id)
        },
    )
    .await;
    // Lease TTL + a follower's retry + one check interval, with slack.
    eventually(
        Duration::from_secs(15),
        "survivor deletes expired group",
        || {
            !c.shard_groups("db", "short")
                .iter()
                .any(|g| g.id == old2.id)
        },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("expired group deleted {took:?} after the leader was killed");
    let second = leader(&kv, Duration::from_secs(1)).await;
    assert!(
        second.starts_with(&format!("{survivor}/")),
        "leader after the kill: {second:?}, survivor {survivor}"
    );
    assert!(
        took >= Duration::from_secs(TTL_SECS) / 2,
        "deleted after {took:?}: before the dead leader's lease could expire"
    );
}

/// `--no-services`: the instance never campaigns and never deletes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_services_runs_nothing() {
    let etcd = EtcdProcess::start();
    let prefix = unique_prefix();
    let kv: Arc<dyn KvBackend> = Arc::new(
        EtcdBackend::connect(&etcd.endpoints(), prefix.clone())
            .await
            .unwrap(),
    );
    let m = MetaProcess::start_with_args(
        BIN,
        &etcd.endpoints(),
        &prefix,
        &["--no-services", "--retention-check-interval", "100ms"],
    );
    let c = MetaClient::remote(&m.endpoint(), ClientOptions::default())
        .await
        .unwrap();
    let n = c
        .register_node(None, "127.0.0.1:1", "127.0.0.1:2")
        .await
        .unwrap();
    c.heartbeat(n.id, Duration::from_secs(120)).await.unwrap();
    c.create_database_with_policy("db", RetentionPolicySpec::new("short", HOUR))
        .await
        .unwrap();
    let old = c
        .create_shard_group("db", "short", now_ns() - 10 * 24 * HOUR)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(c.shard_groups("db", "short").iter().any(|g| g.id == old.id));
    assert_eq!(
        kv.get(keys::LEADER_SERVICES.as_bytes()).await.unwrap(),
        None
    );
}
