//! One retention pass and one precreation pass, through a client (the all-in-one
//! server's way) and directly over the store (`sundial-meta`'s way).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sundial_meta::services::{enforce_retention, precreate_shard_groups};
use sundial_meta::{
    group_bounds, now_ns, truncate_time, ClientOptions, EmbeddedBackend, KvBackend, MetaClient,
    MetaStore, RetentionPolicySpec, RetentionPolicyUpdate, HOUR,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_through_the_client_and_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    let c = MetaClient::local(kv.clone(), ClientOptions::default())
        .await
        .unwrap();
    let store = MetaStore::new(kv);
    let n = c.register_node(None, "h:1", "h:2").await.unwrap();
    c.heartbeat(n.id, Duration::from_secs(60)).await.unwrap();
    c.create_database_with_policy("db", RetentionPolicySpec::new("short", HOUR))
        .await
        .unwrap();
    let now = now_ns();
    let old = c
        .create_shard_group("db", "short", now - 3 * HOUR)
        .await
        .unwrap();
    let current = c.create_shard_group("db", "short", now).await.unwrap();

    // Nothing to do yet at a time when the old group is still kept.
    assert!(enforce_retention(&c, old.end + HOUR - 1)
        .await
        .unwrap()
        .is_empty());
    // Through the client: its cache no longer has the group when the pass returns.
    let deleted = enforce_retention(&c, now).await.unwrap();
    assert_eq!(deleted.iter().map(|g| g.id).collect::<Vec<_>>(), [old.id]);
    assert!(!c.shard_groups("db", "short").iter().any(|g| g.id == old.id));
    assert!(enforce_retention(&store, now).await.unwrap().is_empty());

    // Over the store: the successor of the current group, once, when it is due.
    // One group duration ahead: the successor ends beyond it.
    let far = Duration::from_secs(3600);
    assert!(
        precreate_shard_groups(&store, current.end - HOUR - 1, far)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let created = precreate_shard_groups(&store, now, far).await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].start, current.end);
    // The newest group now ends beyond the advance period: nothing more.
    assert!(precreate_shard_groups(&c, now, far)
        .await
        .unwrap()
        .is_empty());
    c.refresh().await.unwrap();
    assert_eq!(c.shard_groups("db", "short").len(), 2);
}

/// A cluster's default replication factor: databases created without a policy
/// get `autogen` with that many copies; an explicit policy keeps its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_without_a_policy_get_the_default_replication() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    let store = MetaStore::new(kv.clone()).with_default_replication(2);
    store.create_database("a", None).await.unwrap();
    let spec = RetentionPolicySpec {
        replication_factor: 3,
        ..RetentionPolicySpec::new("p", 0)
    };
    let rev = store.create_database("b", Some(spec)).await.unwrap();
    let c = MetaClient::local(kv, ClientOptions::default())
        .await
        .unwrap();
    assert!(c.wait_for_revision(rev, Duration::from_secs(5)).await);
    let snap = c.snapshot();
    let rf = |db: &str| {
        let d = &snap.databases[db];
        d.retention_policies[&d.default_retention_policy].replication_factor
    };
    assert_eq!((rf("a"), rf("b")), (2, 3));
}

/// A group made under another alignment or duration (weekly groups started on
/// Thursdays before they started on Mondays; a policy's shard duration can
/// change) is never overlapped by a new one: the new group is cut back to it,
/// so a time belongs to one group only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_never_overlaps_one_made_under_another_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    let c = MetaClient::local(kv, ClientOptions::default())
        .await
        .unwrap();
    let n = c.register_node(None, "h:1", "h:2").await.unwrap();
    c.heartbeat(n.id, Duration::from_secs(60)).await.unwrap();
    c.create_database_with_policy("db", RetentionPolicySpec::new("p", 0))
        .await
        .unwrap();
    let day = 24 * HOUR;
    let sunday_2026_11_01 = 1_793_491_200 * 1_000_000_000;
    let week = c
        .create_shard_group("db", "p", sunday_2026_11_01)
        .await
        .unwrap();
    assert_eq!(week.end - week.start, 7 * day);
    let update = RetentionPolicyUpdate {
        shard_group_duration: Some(3 * day),
        ..RetentionPolicyUpdate::default()
    };
    c.alter_retention_policy("db", "p", update).await.unwrap();
    // A time after the weekly group whose 3-day group would start inside it.
    let t = (0..72)
        .map(|h| week.end + h * HOUR)
        .find(|&t| truncate_time(t, 3 * day) < week.end)
        .expect("a 3-day boundary inside the week");
    let next = c.create_shard_group("db", "p", t).await.unwrap();
    assert_eq!(next.start, week.end, "{next:?}");
    assert!(next.contains(t));
    // And one before it, with a 5-day duration, ends where the week starts.
    let update = RetentionPolicyUpdate {
        shard_group_duration: Some(5 * day),
        ..RetentionPolicyUpdate::default()
    };
    c.alter_retention_policy("db", "p", update).await.unwrap();
    let t = (0..120)
        .map(|h| week.start - 1 - h * HOUR)
        .find(|&t| group_bounds(t, 5 * day).1 > week.start)
        .expect("a 5-day group ending inside the week");
    let before = c.create_shard_group("db", "p", t).await.unwrap();
    assert_eq!(before.end, week.start, "{before:?}");
    // Every time belongs to one group.
    let groups = c.shard_groups("db", "p");
    for t in (before.start..next.end).step_by(HOUR as usize) {
        assert_eq!(groups.iter().filter(|g| g.contains(t)).count(), 1, "{t}");
    }
}
