//! Writes through a gateway reach the right stores, checked from the stores' own
//! data; stores keep their identity across addresses; the store service refuses
//! bad calls and stays up.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use sundial_cluster_tests::{Cluster, SECRET};
use sundial_lineproto::{parse_lines, ParseOptions};

const HOUR: i64 = 3_600_000_000_000;

/// `n` points of distinct series over two shard groups (a week apart).
fn points(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let t = 1_700_000_000_000_000_000 + (i % 2) as i64 * 24 * 7 * HOUR + i as i64;
            format!("cpu,host={tag}{i} v={i}i {t}")
        })
        .collect()
}

/// For every point: the shard meta routes it to (group by time, shard by the hash of
/// its series key) and that shard's owners.
fn routes(c: &Cluster, db: &str, lines: &[String]) -> BTreeMap<String, (u64, BTreeSet<u64>)> {
    let groups = c.shard_groups(db);
    let body = lines.join("\n");
    let parsed = parse_lines(body.as_bytes(), &ParseOptions::default());
    parsed
        .iter()
        .zip(lines)
        .map(|(p, l)| {
            let g = groups.iter().find(|g| g.contains(p.timestamp)).unwrap();
            let s = g.shard_for(p.hash_id()).unwrap();
            (l.clone(), (s.id, s.owners.iter().copied().collect()))
        })
        .collect()
}

#[test]
fn writes_through_a_gateway_land_on_exactly_their_shards_owners() {
    let mut c = Cluster::start(3, 1);
    c.query("CREATE DATABASE one");
    c.query("CREATE DATABASE two WITH REPLICATION 2");
    let mut want = BTreeMap::new();
    for (db, tag) in [("one", "a"), ("two", "b")] {
        let lines = points(2000, tag);
        let (st, e) = c.write(0, &format!("db={db}"), lines.join("\n"));
        assert_eq!(st, 204, "{e}");
        want.insert(db, routes(&c, db, &lines));
    }
    let ids: Vec<u64> = c.stores.iter().map(|s| s.node_id()).collect();
    for s in &mut c.stores {
        s.proc.terminate();
    }
    // Where each point is, from the stores' own files.
    let mut found: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (s, id) in c.stores.iter().zip(&ids) {
        for (shard, (_, lines)) in s.export() {
            for l in lines {
                found.entry(l).or_default().push((shard, *id));
            }
        }
    }
    for (db, routes) in &want {
        let rf = if *db == "one" { 1 } else { 2 };
        let mut used_stores = BTreeSet::new();
        for (line, (shard, owners)) in routes {
            assert_eq!(owners.len(), rf, "{db}: shard {shard} owners {owners:?}");
            let at = found
                .get(line)
                .unwrap_or_else(|| panic!("{line} is on no store"));
            let stores: BTreeSet<u64> = at.iter().map(|&(_, n)| n).collect();
            assert_eq!(&stores, owners, "{line}: on {at:?}, owners {owners:?}");
            assert!(
                at.iter().all(|&(s, _)| s == *shard),
                "{line}: {at:?} not shard {shard}"
            );
            assert_eq!(at.len(), rf, "{line}: {at:?}");
            used_stores.extend(stores);
        }
        // Both groups spread their shards over all three stores.
        assert_eq!(used_stores.len(), 3, "{db}: {used_stores:?}");
    }
    assert_eq!(found.len(), 4000, "points found that were never written");
}

#[test]
fn a_store_restarted_on_another_address_keeps_its_id_and_its_data() {
    let mut c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db");
    let first = points(200, "x");
    assert_eq!(c.write(0, "db=db", first.join("\n")).0, 204);
    let store = &mut c.stores[0];
    let (id, old_addr) = (store.node_id(), store.proc.addr.clone());
    store.proc.terminate();
    // Port 0 again: a different address, as a container gets a new IP.
    store.proc.spawn();
    assert_ne!(store.proc.addr, old_addr);
    assert_eq!(store.node_id(), id);
    // The gateway follows the new address from meta.
    let second = points(200, "y");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (st, e) = c.write(0, "db=db", second.join("\n"));
        if st == 204 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st} {e}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for s in &mut c.stores {
        s.proc.terminate();
    }
    let all: BTreeSet<String> = c
        .stores
        .iter()
        .flat_map(|s| s.export().into_values().flat_map(|(_, l)| l))
        .collect();
    for l in first.iter().chain(&second) {
        assert!(all.contains(l), "{l} lost");
    }
}

mod store_service {
    use super::*;
    use sundial_proto::store::store_service_client::StoreServiceClient;
    use sundial_proto::store::{HealthRequest, WriteToShardRequest};
    use tonic::Code;

    async fn call(
        addr: &str,
        secret: Option<&str>,
        req: WriteToShardRequest,
    ) -> Result<(), tonic::Status> {
        let mut client = StoreServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
            .max_encoding_message_size(256 << 20);
        let mut r = tonic::Request::new(req);
        if let Some(s) = secret {
            r.metadata_mut()
                .insert("x-sundial-secret", s.parse().unwrap());
        }
        client.write_to_shard(r).await.map(|_| ())
    }

    #[test]
    fn bad_calls_get_clear_errors_and_the_store_stays_up() {
        let c = Cluster::start(2, 1);
        c.query("CREATE DATABASE db");
        assert_eq!(c.write(0, "db=db", points(100, "z").join("\n")).0, 204);
        let groups = c.shard_groups("db");
        let shard = groups[0].shards[0].clone();
        let owner = c
            .stores
            .iter()
            .find(|s| shard.owners.contains(&s.node_id()))
            .unwrap();
        let other = c
            .stores
            .iter()
            .find(|s| !shard.owners.contains(&s.node_id()))
            .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let req = |points: Vec<u8>, id: u64| WriteToShardRequest {
            shard_id: id,
            database: "db".into(),
            points: points.into(),
            accepted_ms: 0,
        };
        rt.block_on(async {
            let addr = owner.proc.addr.as_str();
            let e = call(addr, Some(SECRET), req(b"garbage".to_vec(), shard.id))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            assert!(
                e.message().contains("WriteToShard payload"),
                "{}",
                e.message()
            );
            let e = call(addr, Some(SECRET), req(vec![1, 200], shard.id))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            let e = call(addr, None, req(vec![1, 0], shard.id))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
            let e = call(addr, Some("wrong"), req(vec![1, 0], shard.id))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
            let e = call(addr, Some(SECRET), req(vec![1, 0], 999_999))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{e:?}");
            let e = call(
                other.proc.addr.as_str(),
                Some(SECRET),
                req(vec![1, 0], shard.id),
            )
            .await
            .unwrap_err();
            assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
            let huge = vec![0u8; 80 << 20];
            let e = call(addr, Some(SECRET), req(huge, shard.id))
                .await
                .unwrap_err();
            assert!(
                matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
                "{e:?}"
            );
            // An empty, valid payload is fine; the store answers its health check.
            call(addr, Some(SECRET), req(vec![1, 0], shard.id))
                .await
                .unwrap();
            let mut client = StoreServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            let mut r = tonic::Request::new(HealthRequest {});
            r.metadata_mut()
                .insert("x-sundial-secret", SECRET.parse().unwrap());
            let h = client.health(r).await.unwrap().into_inner();
            assert_eq!(h.status, "pass");
        });
        // Writes through the gateway still go through.
        assert_eq!(c.write(0, "db=db", points(100, "w").join("\n")).0, 204);
    }
}

#[test]
fn a_tls_cluster_writes_and_refuses_plaintext() {
    let mut c = Cluster::start_tls(2, 1);
    c.query("CREATE DATABASE db WITH REPLICATION 2");
    let lines = points(300, "t");
    let (st, e) = c.write(0, "db=db", lines.join("\n"));
    assert_eq!(st, 204, "{e}");
    // A plaintext client cannot talk to a TLS store.
    let addr = c.stores[0].proc.addr.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Bounded: the call must fail, not hang the test (seen once under full load:
    // the plaintext call never returned).
    let plain = rt.block_on(async {
        let call = async {
            let mut client =
                sundial_proto::store::store_service_client::StoreServiceClient::connect(format!(
                    "http://{addr}"
                ))
                .await?;
            let mut r = tonic::Request::new(sundial_proto::store::HealthRequest {});
            r.set_timeout(std::time::Duration::from_secs(5));
            r.metadata_mut()
                .insert("x-sundial-secret", SECRET.parse().unwrap());
            client
                .health(r)
                .await
                .map_err(|s| Box::new(s) as Box<dyn std::error::Error>)?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within 10 s".to_string()),
        }
    });
    assert!(plain.is_err(), "a plaintext call to a TLS store succeeded");
    // Meta serves TLS too: a plaintext client cannot load its snapshot.
    let meta_addr = c.meta_addr();
    let plain_meta = rt.block_on(async {
        let opts = sundial_meta::ClientOptions {
            secret: Some(SECRET.to_string()),
            ..sundial_meta::ClientOptions::default()
        };
        sundial_meta::MetaClient::remote(&meta_addr, opts)
            .await
            .is_ok()
    });
    assert!(!plain_meta, "a plaintext client read meta over TLS");
    for s in &mut c.stores {
        s.proc.terminate();
    }
    for s in &c.stores {
        let all: BTreeSet<String> = s.export().into_values().flat_map(|(_, l)| l).collect();
        assert!(
            lines.iter().all(|l| all.contains(l)),
            "a point is missing on a replica"
        );
    }
}

#[test]
fn meta_refuses_calls_without_the_cluster_secret() {
    let c = Cluster::start(1, 1);
    c.query("CREATE DATABASE db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let endpoint = c.meta.endpoint();
    let err = rt.block_on(async {
        sundial_meta::MetaClient::remote(&endpoint, sundial_meta::ClientOptions::default())
            .await
            .err()
    });
    let err = err.expect("a client without the secret connected");
    assert!(err.to_string().contains("cluster secret"), "{err}");
    // With it, the same meta answers.
    assert_eq!(c.shard_groups("db").len(), 0);
}

/// Every store serves `/metrics` on its own listener: the engine's counters of the
/// points it wrote, as valid Prometheus text.
#[test]
fn each_store_serves_its_engine_metrics() {
    let c = Cluster::start(2, 1);
    c.query("CREATE DATABASE db");
    let lines: Vec<String> = (0..100)
        .map(|i| format!("cpu,host=h{i} v={i}i 1700000000000000000"))
        .collect();
    assert_eq!(c.write(0, "db=db", lines.join("\n")).0, 204);
    let mut written = 0.0;
    for s in &c.stores {
        let text = reqwest::blocking::get(format!("http://{}/metrics", s.metrics_addr()))
            .unwrap()
            .text()
            .unwrap();
        if let Err(e) = sundial_testkit::promtool_check(&text) {
            panic!("store /metrics does not pass promtool: {e}\n{text}");
        }
        written += text
            .lines()
            .find_map(|l| {
                l.strip_prefix("sundial_engine_points_written_total ")?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no points counter in {text}"));
    }
    // Replication factor 1: each point on exactly one store.
    assert_eq!(written, 100.0);
}
