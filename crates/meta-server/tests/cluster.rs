//! Races, several sundial-meta processes on one etcd, and an etcd outage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sundial_meta::testing::{unique_prefix, EtcdProcess, MetaProcess};
use sundial_meta::{
    now_ns, ClientOptions, EmbeddedBackend, Error, EtcdBackend, KvBackend, MetaClient, HOUR,
};

async fn race_16(make: impl Fn() -> futures::future::BoxFuture<'static, MetaClient>) {
    let setup = make().await;
    for i in 0..3 {
        let n = setup
            .register_node(
                None,
                &format!("10.0.0.{i}:8082"),
                &format!("10.0.0.{i}:8086"),
            )
            .await
            .unwrap();
        setup
            .heartbeat(n.id, Duration::from_secs(60))
            .await
            .unwrap();
    }
    setup.create_database("race").await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(make().await);
    }
    let t = now_ns();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for c in clients.clone() {
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            b.wait().await;
            c.shard_group_for("race", "autogen", t).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let g = task.await.unwrap().unwrap().unwrap();
        assert!(g.contains(t));
        assert_eq!(g.shards.len(), 3, "3 live nodes / rf 1");
        ids.insert(g.id);
    }
    assert_eq!(ids.len(), 1, "all clients got the same group: {ids:?}");
    // Exactly one group exists, on every client.
    assert!(
        setup
            .wait_for_revision(clients[0].revision(), Duration::from_secs(3))
            .await
    );
    let groups = setup.shard_groups("race", "autogen");
    assert_eq!(groups.len(), 1);
    for c in &clients {
        assert!(
            c.wait_for_revision(setup.revision(), Duration::from_secs(3))
                .await
        );
        assert_eq!(c.shard_groups("race", "").len(), 1);
    }
    // Racing different windows never hands out an id twice.
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            c.create_shard_group("race", "", t + (i as i64 % 4 + 1) * 7 * 24 * HOUR)
                .await
        }));
    }
    let mut by_start = std::collections::BTreeMap::new();
    for task in tasks {
        let g = task.await.unwrap().unwrap();
        by_start.entry(g.start).or_insert_with(Vec::new).push(g.id);
    }
    assert_eq!(by_start.len(), 4);
    for ids in by_start.values() {
        assert!(ids.iter().all(|i| *i == ids[0]));
    }
    let max_rev = clients.iter().map(|c| c.revision()).max().unwrap();
    assert!(
        setup
            .wait_for_revision(max_rev, Duration::from_secs(3))
            .await
    );
    let all = setup.all_shard_groups();
    assert_eq!(all.len(), 5);
    let mut shard_ids: Vec<u64> = all.iter().flat_map(|g| g.shard_ids()).collect();
    shard_ids.extend(all.iter().map(|g| g.id));
    let n = shard_ids.len();
    shard_ids.sort_unstable();
    shard_ids.dedup();
    assert_eq!(shard_ids.len(), n, "ids are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_race_on_etcd() {
    let etcd = EtcdProcess::start();
    let endpoints = etcd.endpoints();
    let prefix = unique_prefix();
    race_16(move || {
        let endpoints = endpoints.clone();
        let prefix = prefix.clone();
        Box::pin(async move {
            let kv: Arc<dyn KvBackend> =
                Arc::new(EtcdBackend::connect(&endpoints, prefix).await.unwrap());
            MetaClient::local(kv, ClientOptions::default())
                .await
                .unwrap()
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_race_on_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir.path()).unwrap());
    race_16(move || {
        let kv = kv.clone();
        Box::pin(async move {
            MetaClient::local(kv, ClientOptions::default())
                .await
                .unwrap()
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_race_through_two_meta_services() {
    let etcd = EtcdProcess::start();
    let prefix = unique_prefix();
    let m1 = MetaProcess::start(
        env!("CARGO_BIN_EXE_sundial-meta"),
        &etcd.endpoints(),
        &prefix,
    );
    let m2 = MetaProcess::start(
        env!("CARGO_BIN_EXE_sundial-meta"),
        &etcd.endpoints(),
        &prefix,
    );
    let eps = [m1.endpoint(), m2.endpoint()];
    let n = std::sync::atomic::AtomicUsize::new(0);
    let n = Arc::new(n);
    race_16(move || {
        let ep = eps[n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2].clone();
        Box::pin(async move {
            MetaClient::remote(&ep, ClientOptions::default())
                .await
                .unwrap()
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_meta_services_share_one_etcd() {
    let etcd = EtcdProcess::start();
    let prefix = unique_prefix();
    let m1 = MetaProcess::start(
        env!("CARGO_BIN_EXE_sundial-meta"),
        &etcd.endpoints(),
        &prefix,
    );
    let m2 = MetaProcess::start(
        env!("CARGO_BIN_EXE_sundial-meta"),
        &etcd.endpoints(),
        &prefix,
    );
    let c1 = MetaClient::remote(&m1.endpoint(), ClientOptions::default())
        .await
        .unwrap();
    let c2 = MetaClient::remote(&m2.endpoint(), ClientOptions::default())
        .await
        .unwrap();
    // Wait for c2's watch before changing anything (it starts at its snapshot revision
    // anyway, so nothing is missed; this just keeps the timing assertion honest).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c2.is_connected() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c1.create_database("shared").await.unwrap();
    c1.create_user("u", "pw", true).await.unwrap();
    let rev = c1.revision();
    assert!(
        c2.wait_for_revision(rev, Duration::from_secs(5)).await,
        "watch through m2 saw the change"
    );
    assert!(c2.database("shared").is_some());
    assert!(c2.authenticate("u", "pw").await.is_ok());
    // And the other way round, errors included.
    c2.drop_database("shared").await.unwrap();
    assert!(
        c1.wait_for_revision(c2.revision(), Duration::from_secs(5))
            .await
    );
    assert!(c1.database("shared").is_none());
    assert_eq!(
        c1.create_user("u", "other", true).await,
        Err(Error::UserExists)
    );
    // A fresh client of m2 sees the same snapshot.
    let c3 = MetaClient::remote(&m2.endpoint(), ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(c3.users().len(), 1);
    // A client of both survives one of them going away.
    let both = MetaClient::remote(
        &format!("{},{}", m1.endpoint(), m2.endpoint()),
        ClientOptions::default(),
    )
    .await
    .unwrap();
    drop(m1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match both.create_database("failover").await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "no failover: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while c3.database("failover").is_none() || both.database("failover").is_none() {
        assert!(
            Instant::now() < deadline,
            "change through the survivor not seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !both.is_connected() {
        assert!(Instant::now() < deadline, "watch did not fail over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(m2);
}

/// etcd goes away: cached reads keep working, a create fails fast and clearly; etcd
/// comes back on the same ports and data: the client recovers by itself.
async fn outage(c: MetaClient, etcd: &mut EtcdProcess) {
    let n = c
        .register_node(None, "127.0.0.1:1", "127.0.0.1:2")
        .await
        .unwrap();
    c.heartbeat(n.id, Duration::from_secs(60)).await.unwrap();
    c.create_database("out").await.unwrap();
    c.create_user("admin", "pw", true).await.unwrap();
    let t = now_ns();
    let g = c.shard_group_for("out", "", t).await.unwrap().unwrap();

    etcd.kill();
    // Cached reads.
    assert_eq!(
        c.shard_group_for("out", "", t).await.unwrap(),
        Some(g.clone())
    );
    assert!(c.authenticate("admin", "pw").await.is_ok());
    assert!(c.database("out").is_some());
    // A change fails within the bound, with a clear error.
    let started = Instant::now();
    let e = c.create_database("during").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(e.is_unavailable(), "{e:?}");
    assert_eq!(e.http_status(), 503);
    assert!(e.to_string().contains("unavailable"), "{e}");
    let started = Instant::now();
    let e = c
        .shard_group_for("out", "", t + 30 * 24 * HOUR)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(e.is_unavailable(), "{e:?}");

    etcd.restart();
    // The client recovers without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.create_database("after").await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let g2 = c
        .shard_group_for("out", "", t + 30 * 24 * HOUR)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(g2.id, g.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(c.is_connected() && c.database("after").is_some()) {
        assert!(Instant::now() < deadline, "watch did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing half-created: exactly the groups and databases expected (the failed
    // create either never happened or happened completely).
    let groups = c.all_shard_groups();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let snap = c.snapshot();
    for g in snap.all_shard_groups() {
        assert!(snap.database(&g.database).is_some());
        assert_eq!(g.shards.len(), 1);
        assert_eq!(g.shards[0].owners, vec![n.id]);
    }
    let mut dbs: Vec<String> = c.databases().into_iter().map(|d| d.name).collect();
    dbs.sort();
    assert!(
        dbs == ["after", "out"] || dbs == ["after", "during", "out"],
        "{dbs:?}"
    );
    for d in c.databases() {
        assert_eq!(d.default_retention_policy, "autogen");
        assert!(d.retention_policies.contains_key("autogen"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_local_client() {
    let mut etcd = EtcdProcess::start();
    let kv: Arc<dyn KvBackend> = Arc::new(
        EtcdBackend::connect(&etcd.endpoints(), unique_prefix())
            .await
            .unwrap(),
    );
    let c = MetaClient::local(kv, ClientOptions::default())
        .await
        .unwrap();
    outage(c, &mut etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_outage_through_meta_service() {
    let mut etcd = EtcdProcess::start();
    let meta = MetaProcess::start(
        env!("CARGO_BIN_EXE_sundial-meta"),
        &etcd.endpoints(),
        &unique_prefix(),
    );
    let c = MetaClient::remote(&meta.endpoint(), ClientOptions::default())
        .await
        .unwrap();
    outage(c, &mut etcd).await;
    drop(meta);
}

/// The meta service itself goes away and comes back (same port): the remote client
/// serves cached reads meanwhile, fails changes fast, and recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_service_restart() {
    let etcd = EtcdProcess::start();
    let prefix = unique_prefix();
    let bin = env!("CARGO_BIN_EXE_sundial-meta");
    let meta = MetaProcess::start(bin, &etcd.endpoints(), &prefix);
    let addr = meta.addr();
    let c = MetaClient::remote(&meta.endpoint(), ClientOptions::default())
        .await
        .unwrap();
    c.create_database("m").await.unwrap();
    let mut registry = sundial_common::metrics::registry();
    c.register_metrics(&mut registry);
    let sample = |name: &str| -> f64 {
        let text = sundial_common::metrics::encode(&registry);
        sundial_testkit::metric_sample(&text, name)
            .unwrap_or_else(|| panic!("{name} missing from {text}"))
    };
    assert_eq!(sample("sundial_meta_watch_connected"), 1.0);
    assert_eq!(sample("sundial_meta_cache_age_seconds"), 0.0);
    drop(meta);
    assert!(c.database("m").is_some());
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.is_connected() {
        assert!(Instant::now() < deadline, "the watch did not notice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The cache is served while meta is away, and its age says how stale it may be.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sample("sundial_meta_watch_connected"), 0.0);
    assert!(sample("sundial_meta_cache_age_seconds") >= 0.3);
    let started = Instant::now();
    let e = c.create_database("n").await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let _meta = MetaProcess::start_on(bin, addr, &etcd.endpoints(), &prefix);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.create_database("n").await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(c.database("n").is_some());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c.is_connected() {
        assert!(Instant::now() < deadline, "watch did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sample("sundial_meta_watch_reconnects_total") >= 1.0);
    assert_eq!(sample("sundial_meta_cache_age_seconds"), 0.0);
}
