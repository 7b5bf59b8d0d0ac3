//! The KvBackend conformance suite on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sundial_meta::testing::{conformance, unique_prefix, EtcdProcess};
use sundial_meta::{EmbeddedBackend, EtcdBackend, KvBackend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_embedded() {
    let root = tempfile::tempdir().unwrap();
    let mut n = 0;
    let root_path = root.path().to_path_buf();
    conformance::run_all(move || {
        n += 1;
        let dir = root_path.join(format!("case{n}"));
        async move {
            let kv: Arc<dyn KvBackend> = Arc::new(EmbeddedBackend::open(dir).unwrap());
            kv
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_etcd() {
    let etcd = EtcdProcess::start();
    let endpoints = etcd.endpoints();
    conformance::run_all(move || {
        let endpoints = endpoints.clone();
        async move {
            let kv: Arc<dyn KvBackend> = Arc::new(
                EtcdBackend::connect(&endpoints, unique_prefix())
                    .await
                    .unwrap(),
            );
            kv
        }
    })
    .await;
    drop(etcd);
}

/// Two namespaces on one etcd never see each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_namespaces_are_isolated() {
    let etcd = EtcdProcess::start();
    let a = EtcdBackend::connect(&etcd.endpoints(), unique_prefix())
        .await
        .unwrap();
    let b = EtcdBackend::connect(&etcd.endpoints(), unique_prefix())
        .await
        .unwrap();
    a.put(b"k", b"a", None).await.unwrap();
    assert_eq!(b.get(b"k").await.unwrap(), None);
    assert!(b.range(b"").await.unwrap().kvs.is_empty());
    assert_eq!(a.range(b"").await.unwrap().kvs.len(), 1);
    assert_eq!(a.range(b"").await.unwrap().kvs[0].key, b"k");
}
