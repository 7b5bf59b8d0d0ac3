//! The model and operations, through MetaClient, on the embedded backend, on etcd,
//! and through a sundial-meta process (remote transport).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sundial_meta::testing::{unique_prefix, EtcdProcess, MetaProcess};
use sundial_meta::{
    now_ns, ClientOptions, EmbeddedBackend, Error, EtcdBackend, KvBackend, MetaClient, Privilege,
    RetentionPolicySpec, RetentionPolicyUpdate, DAY, HOUR,
};

async fn suite(c: MetaClient) {
    databases_and_policies(&c).await;
    shard_groups(&c).await;
    users(&c).await;
    nodes(&c).await;
}

async fn databases_and_policies(c: &MetaClient) {
    assert_eq!(
        c.create_database("").await,
        Err(Error::DatabaseNameRequired)
    );
    assert_eq!(c.create_database("a/b").await, Err(Error::InvalidName));
    c.create_database("db0").await.unwrap();
    c.create_database("db0").await.unwrap(); // no-op
    let db = c.database("db0").expect("cached after create");
    assert_eq!(db.default_retention_policy, "autogen");
    let autogen = c.retention_policy("db0", "").unwrap();
    assert_eq!(
        (
            autogen.duration,
            autogen.shard_group_duration,
            autogen.replication_factor
        ),
        (0, 7 * DAY, 1)
    );

    assert_eq!(
        c.retention_policy("nope", "").unwrap_err().to_string(),
        r#"database not found: "nope""#
    );
    assert_eq!(
        c.retention_policy("db0", "rp").unwrap_err().to_string(),
        r#"retention policy not found: "rp""#
    );
    let short = RetentionPolicySpec::new("short", 30 * 60 * 1_000_000_000);
    assert_eq!(
        c.create_retention_policy("db0", short, false)
            .await
            .unwrap_err()
            .to_string(),
        "retention policy duration must be at least 1h0m0s"
    );
    let spec = RetentionPolicySpec::new("week", 7 * DAY);
    c.create_retention_policy("db0", spec.clone(), false)
        .await
        .unwrap();
    c.create_retention_policy("db0", spec.clone(), false)
        .await
        .unwrap(); // same spec: no-op
    let mut other = spec.clone();
    other.duration = 8 * DAY;
    assert_eq!(
        c.create_retention_policy("db0", other, false).await,
        Err(Error::RetentionPolicyExists)
    );
    assert_eq!(
        c.create_retention_policy("missing", spec.clone(), false)
            .await,
        Err(Error::DatabaseNotFound("missing".into()))
    );
    let week = c.retention_policy("db0", "week").unwrap();
    assert_eq!(week.shard_group_duration, DAY);
    c.set_default_retention_policy("db0", "week").await.unwrap();
    assert_eq!(c.database("db0").unwrap().default_retention_policy, "week");
    c.alter_retention_policy(
        "db0",
        "week",
        RetentionPolicyUpdate {
            duration: Some(2 * HOUR),
            shard_group_duration: Some(HOUR),
            replication_factor: Some(2),
            make_default: false,
        },
    )
    .await
    .unwrap();
    let week = c.retention_policy("db0", "").unwrap();
    assert_eq!(
        (
            week.duration,
            week.shard_group_duration,
            week.replication_factor
        ),
        (2 * HOUR, HOUR, 2)
    );
    assert_eq!(
        c.alter_retention_policy("db0", "nope", RetentionPolicyUpdate::default())
            .await,
        Err(Error::RetentionPolicyNotFound("nope".into()))
    );
    c.drop_retention_policy("db0", "week").await.unwrap();
    assert!(c.retention_policy("db0", "week").is_err());
    // CREATE DATABASE .. WITH
    let with = RetentionPolicySpec::new("one_day", DAY);
    c.create_database_with_policy("db1", with.clone())
        .await
        .unwrap();
    assert_eq!(
        c.database("db1").unwrap().default_retention_policy,
        "one_day"
    );
    c.create_database_with_policy("db1", with).await.unwrap();
    c.drop_database("db1").await.unwrap();
    assert!(c.database("db1").is_none());
    c.drop_database("db1").await.unwrap(); // no-op
}

async fn shard_groups(c: &MetaClient) {
    let node = c
        .register_node(None, "127.0.0.1:1", "127.0.0.1:2")
        .await
        .unwrap();
    c.heartbeat(node.id, Duration::from_secs(30)).await.unwrap();
    assert!(
        c.wait_for_revision(c.revision(), Duration::from_secs(1))
            .await
    );
    c.create_database("sg").await.unwrap();
    let rp = RetentionPolicySpec::new("h", 4 * HOUR);
    c.create_retention_policy("sg", rp, true).await.unwrap();
    let now = now_ns();
    let g = c.shard_group_for("sg", "", now).await.unwrap().unwrap();
    assert_eq!(g.start, now - now.rem_euclid(HOUR));
    assert_eq!(g.end, g.start + HOUR);
    assert_eq!(g.shards.len(), 1);
    assert_eq!(g.shards[0].owners, vec![node.id]);
    // Cached now: same group, no network needed.
    assert_eq!(c.cached_shard_group("sg", "h", now), Some(g.clone()));
    assert_eq!(
        c.shard_group_for("sg", "h", now + 1).await.unwrap(),
        Some(g.clone())
    );
    // Outside retention: dropped.
    assert_eq!(
        c.shard_group_for("sg", "h", now - 5 * HOUR).await.unwrap(),
        None
    );
    // Unknown database.
    assert_eq!(
        c.shard_group_for("nodb", "", now).await,
        Err(Error::DatabaseNotFound("nodb".into()))
    );
    // Precreation: the group after the current one.
    let created = c
        .precreate_shard_groups(
            g.end - 10 * 60 * 1_000_000_000,
            Duration::from_secs(30 * 60),
        )
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].start, g.end);
    assert!(c.cached_shard_group("sg", "h", g.end).is_some());
    // Retention: both groups expire 4h after their end.
    let deleted = c
        .delete_expired_shard_groups(g.end + 4 * HOUR + 1)
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].id, g.id);
    assert!(!deleted[0].shard_ids().is_empty());
    assert!(c.cached_shard_group("sg", "h", now).is_none());
    assert_eq!(c.shard_groups("sg", "h").len(), 1);
    c.drop_database("sg").await.unwrap();
    assert!(c.shard_groups("sg", "h").is_empty());
}

async fn users(c: &MetaClient) {
    assert_eq!(
        c.create_user("", "pw", false).await,
        Err(Error::UsernameRequired)
    );
    c.create_user("alice", "pw", false).await.unwrap();
    c.create_user("alice", "pw", false).await.unwrap(); // same: no-op
    assert_eq!(
        c.create_user("alice", "other", false).await,
        Err(Error::UserExists)
    );
    assert_eq!(
        c.create_user("alice", "pw", true)
            .await
            .unwrap_err()
            .to_string(),
        "user already exists"
    );
    assert!(c.authenticate("alice", "pw").await.is_ok());
    assert_eq!(
        c.authenticate("alice", "bad").await.unwrap_err(),
        Error::AuthenticationFailed
    );
    assert_eq!(
        c.authenticate("nobody", "pw").await.unwrap_err(),
        Error::AuthenticationFailed
    );
    c.set_password("alice", "new").await.unwrap();
    assert!(c.authenticate("alice", "new").await.is_ok());
    assert_eq!(
        c.set_password("bob", "x").await.unwrap_err().to_string(),
        "user not found"
    );
    c.create_database("udb").await.unwrap();
    assert_eq!(
        c.grant_privilege("alice", "nodb", Privilege::Read).await,
        Err(Error::DatabaseNotFound("nodb".into()))
    );
    c.grant_privilege("alice", "udb", Privilege::All)
        .await
        .unwrap();
    assert_eq!(c.user_privilege("alice", "udb").unwrap(), Privilege::All);
    c.revoke_privilege("alice", "udb", Privilege::Write)
        .await
        .unwrap();
    assert_eq!(c.user_privilege("alice", "udb").unwrap(), Privilege::Read);
    c.grant_privilege("alice", "udb", Privilege::Write)
        .await
        .unwrap();
    assert_eq!(c.user_privilege("alice", "udb").unwrap(), Privilege::Write);
    c.revoke_privilege("alice", "udb", Privilege::All)
        .await
        .unwrap();
    assert_eq!(c.user_privilege("alice", "udb").unwrap(), Privilege::None);
    c.grant_privilege("alice", "udb", Privilege::Read)
        .await
        .unwrap();
    c.drop_database("udb").await.unwrap();
    assert!(c.user("alice").unwrap().privileges.is_empty());
    c.set_admin("alice", true).await.unwrap();
    assert!(c.user("alice").unwrap().admin);
    assert_eq!(
        c.user_privilege("alice", "anything").unwrap(),
        Privilege::All
    );
    assert!(c.users().iter().any(|u| u.name == "alice"));
    c.drop_user("alice").await.unwrap();
    assert_eq!(c.drop_user("alice").await, Err(Error::UserNotFound));
    assert!(c.user("alice").is_none());
}

async fn nodes(c: &MetaClient) {
    let a = c
        .register_node(None, "10.0.0.1:8082", "10.0.0.1:8086")
        .await
        .unwrap();
    let again = c
        .register_node(None, "10.0.0.1:8082", "10.0.0.1:8086")
        .await
        .unwrap();
    assert_eq!(a, again);
    let b = c
        .register_node(Some(100), "10.0.0.2:8082", "10.0.0.2:8086")
        .await
        .unwrap();
    assert_eq!(b.id, 100);
    let cnode = c
        .register_node(None, "10.0.0.3:8082", "10.0.0.3:8086")
        .await
        .unwrap();
    assert!(cnode.id > 100);
    assert!(c.node(100).is_some());
    assert!(!c.live_nodes().iter().any(|n| n.id == a.id));
    c.heartbeat(a.id, Duration::from_secs(30)).await.unwrap();
    c.heartbeat(a.id, Duration::from_secs(30)).await.unwrap(); // keep-alive path
    assert!(c.live_nodes().iter().any(|n| n.id == a.id));
    assert_eq!(
        c.heartbeat(9999, Duration::from_secs(5)).await,
        Err(Error::NodeNotFound(9999))
    );
}

fn fast() -> ClientOptions {
    ClientOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    suite(MetaClient::local(kv, fast()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_etcd() {
    let etcd = EtcdProcess::start();
    let kv: Arc<dyn KvBackend> = Arc::new(
        EtcdBackend::connect(&etcd.endpoints(), unique_prefix())
            .await
            .unwrap(),
    );
    suite(MetaClient::local(kv, fast()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_remote() {
    let etcd = EtcdProcess::start();
    let meta = MetaProcess::start(
        env!("CARGO_BIN_EXE_sundial-meta"),
        &etcd.endpoints(),
        &unique_prefix(),
    );
    suite(MetaClient::remote(&meta.endpoint(), fast()).await.unwrap()).await;
}

/// A node that stops heartbeating drops out of the live set by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_expires_without_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    let c = MetaClient::local(kv, fast()).await.unwrap();
    let n = c.register_node(None, "h:1", "h:2").await.unwrap();
    let hb = c.start_heartbeat(n.id, Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.live_nodes().len(), 1, "heartbeats keep it live");
    drop(hb);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !c.live_nodes().is_empty() {
        assert!(std::time::Instant::now() < deadline, "node still live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.nodes().len(), 1, "still registered");
}
