//! Test helpers for this and other crates (feature `test-util`):
//!
//! * [`EtcdProcess`] — a real `etcd` on free loopback ports with a fresh temp data dir;
//!   waits until healthy; can be killed and restarted on the same ports and data;
//!   killed on drop.
//! * [`MetaProcess`] — a `sundial-meta` binary on port 0 (address read from its
//!   `listening on ADDR` line); killed on drop.
//! * [`unique_prefix`] — a key namespace no other run uses.
//! * [`conformance`] — the [`KvBackend`](crate::KvBackend) conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A namespace unique to this process and call: `/t-<pid>-<nanos>-<n>/`.
pub fn unique_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "/t-{}-{}-{}/",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A real etcd server for tests.
#[derive(Debug)]
pub struct EtcdProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl EtcdProcess {
    /// Starts etcd on free ports with a fresh data dir and waits until it is healthy
    /// (panics after 30 s).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = EtcdProcess {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd already running");
        let data = self.dir.path().join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log");
        let log2 = log.try_clone().expect("etcd log");
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new("etcd")
            .arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("default={peer}"))
            .arg("--logger")
            .arg("zap")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .expect("cannot start etcd (is it installed? scripts/test-deps.sh)");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    fn healthy(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.client_port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.contains("\"health\":\"true\"")
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.healthy() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "etcd exited early ({status}); log:\n{}",
                        std::fs::read_to_string(self.dir.path().join("etcd.log"))
                            .unwrap_or_default()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "etcd not healthy after {timeout:?}; log:\n{}",
            std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
        );
    }

    /// `http://127.0.0.1:<client port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The endpoints as a list (for `EtcdBackend::connect`).
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    /// The data directory (kept across [`kill`](Self::kill) / [`restart`](Self::restart)).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGKILLs etcd, keeping its data dir.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts etcd again on the same ports and data dir; waits until healthy.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `sundial-meta` process for tests.
#[derive(Debug)]
pub struct MetaProcess {
    child: Child,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
}

impl MetaProcess {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_sundial-meta")` in `sundial-meta-server`'s
    /// tests) on `127.0.0.1:0` against `etcd_endpoints` under `prefix`, and waits for
    /// its `listening on ADDR` line.
    pub fn start(binary: impl AsRef<Path>, etcd_endpoints: &[String], prefix: &str) -> Self {
        Self::start_on(
            binary,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            etcd_endpoints,
            prefix,
        )
    }

    /// Like [`start`](Self::start), with more command-line arguments (e.g.
    /// `["--retention-check-interval", "500ms"]`).
    pub fn start_with_args(
        binary: impl AsRef<Path>,
        etcd_endpoints: &[String],
        prefix: &str,
        args: &[&str],
    ) -> Self {
        Self::start_on_with_args(
            binary,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            etcd_endpoints,
            prefix,
            args,
        )
    }

    /// Like [`start`](Self::start) on a given address (e.g. to restart on the same
    /// port). Retries binding for a few seconds while the old socket is released.
    pub fn start_on(
        binary: impl AsRef<Path>,
        listen: SocketAddr,
        etcd_endpoints: &[String],
        prefix: &str,
    ) -> Self {
        Self::start_on_with_args(binary, listen, etcd_endpoints, prefix, &[])
    }

    /// [`start_on`](Self::start_on) with more command-line arguments.
    pub fn start_on_with_args(
        binary: impl AsRef<Path>,
        listen: SocketAddr,
        etcd_endpoints: &[String],
        prefix: &str,
        args: &[&str],
    ) -> Self {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_start(binary.as_ref(), listen, etcd_endpoints, prefix, args) {
                Some(p) => return p,
                None if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                None => panic!("sundial-meta did not start on {listen}"),
            }
        }
    }

    fn try_start(
        binary: &Path,
        listen: SocketAddr,
        etcd_endpoints: &[String],
        prefix: &str,
        args: &[&str],
    ) -> Option<Self> {
        let mut cmd = Command::new(binary);
        cmd.arg("--listen")
            .arg(listen.to_string())
            .arg("--etcd-endpoints")
            .arg(etcd_endpoints.join(","))
            .arg("--prefix")
            .arg(prefix)
            .args(args)
            .env("RUST_LOG", "warn")
            // Any free port: tests run many metas at once.
            .env("SUNDIAL_META_METRICS_LISTEN", "127.0.0.1:0")
            .stderr(Stdio::inherit());
        // Exited (e.g. address still in use) or hung: `None`, the caller retries.
        let started = sundial_testkit::spawn_listening(&mut cmd, Duration::from_secs(20))?;
        let addr = started.addr().parse().expect("bad address printed");
        let metrics = started
            .extra()
            .strip_prefix("metrics ")
            .and_then(|m| m.trim().parse().ok());
        let child = started.child;
        Some(MetaProcess {
            child,
            addr,
            metrics,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of its `/metrics` listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// `http://ADDR` for `MetaClient::remote`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILLs the process (no clean shutdown: a leader does not resign).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MetaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The [`KvBackend`](crate::KvBackend) conformance suite: every backend must pass it.
/// Each case takes a backend whose keyspace is empty (fresh namespace or directory).
pub mod conformance {
    use std::sync::Arc;
    use std::time::Duration;

    use futures::StreamExt;

    use crate::kv::{
        Compare, CompareOp, CompareTarget, EventKind, KvBackend, Txn, TxnOp, TxnOpResponse,
    };
    use crate::Error;

    /// All cases, in order, each on a fresh backend from `make`.
    pub async fn run_all<F, Fut>(mut make: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Arc<dyn KvBackend>>,
    {
        put_get(make().await).await;
        range_prefix(make().await).await;
        delete(make().await).await;
        txn_compare(make().await).await;
        txn_revisions(make().await).await;
        watch(make().await).await;
        watch_from_revision(make().await).await;
        leases(make().await).await;
        lease_expiry(make().await).await;
        concurrent_cas(make().await).await;
    }

    /// Put/get, revisions and versions.
    pub async fn put_get(kv: Arc<dyn KvBackend>) {
        assert_eq!(kv.get(b"a").await.unwrap(), None);
        let r1 = kv.put(b"a", b"1", None).await.unwrap();
        let r2 = kv.put(b"a", b"2", None).await.unwrap();
        assert!(r2 > r1, "revisions increase: {r1} {r2}");
        let got = kv.get(b"a").await.unwrap().unwrap();
        assert_eq!(got.key, b"a");
        assert_eq!(got.value, b"2");
        assert_eq!(got.create_revision, r1);
        assert_eq!(got.mod_revision, r2);
        assert_eq!(got.version, 2);
        assert_eq!(got.lease, 0);
    }

    /// Range by prefix returns exactly the prefix, sorted.
    pub async fn range_prefix(kv: Arc<dyn KvBackend>) {
        for k in ["p/b", "p/a", "p/c", "q/a", "p"] {
            kv.put(k.as_bytes(), k.as_bytes(), None).await.unwrap();
        }
        let last = kv.put(b"p/d", b"d", None).await.unwrap();
        let r = kv.range(b"p/").await.unwrap();
        let keys: Vec<_> = r.kvs.iter().map(|kv| kv.key.clone()).collect();
        assert_eq!(
            keys,
            vec![
                b"p/a".to_vec(),
                b"p/b".to_vec(),
                b"p/c".to_vec(),
                b"p/d".to_vec()
            ]
        );
        assert!(r.revision >= last);
        let all = kv.range(b"").await.unwrap();
        assert_eq!(all.kvs.len(), 6);
        assert!(kv.range(b"zz").await.unwrap().kvs.is_empty());
    }

    /// Single and prefix deletes.
    pub async fn delete(kv: Arc<dyn KvBackend>) {
        kv.put(b"d/1", b"x", None).await.unwrap();
        kv.put(b"d/2", b"x", None).await.unwrap();
        kv.put(b"e", b"x", None).await.unwrap();
        assert!(kv.delete(b"e").await.unwrap());
        assert!(!kv.delete(b"e").await.unwrap());
        assert_eq!(kv.delete_prefix(b"d/").await.unwrap(), 2);
        assert_eq!(kv.delete_prefix(b"d/").await.unwrap(), 0);
        assert!(kv.range(b"").await.unwrap().kvs.is_empty());
        // Re-creating resets version and create revision.
        let r = kv.put(b"e", b"y", None).await.unwrap();
        let got = kv.get(b"e").await.unwrap().unwrap();
        assert_eq!((got.version, got.create_revision), (1, r));
    }

    /// Compares on absence, value, version and mod revision; both branches.
    pub async fn txn_compare(kv: Arc<dyn KvBackend>) {
        let create = || {
            Txn::new()
                .when(vec![Compare::absent(b"k".to_vec())])
                .and_then(vec![TxnOp::put(b"k".to_vec(), b"v1".to_vec())])
                .or_else(vec![TxnOp::get(b"k".to_vec())])
        };
        let r = kv.txn(create()).await.unwrap();
        assert!(r.succeeded);
        assert_eq!(r.responses, vec![TxnOpResponse::Put]);
        let r = kv.txn(create()).await.unwrap();
        assert!(!r.succeeded);
        match &r.responses[..] {
            [TxnOpResponse::Get(Some(got))] => assert_eq!(got.value, b"v1"),
            other => panic!("unexpected {other:?}"),
        }
        let cur = kv.get(b"k").await.unwrap().unwrap();
        // Value compare.
        let r = kv
            .txn(
                Txn::new()
                    .when(vec![Compare::value(b"k".to_vec(), b"v1".to_vec())])
                    .and_then(vec![TxnOp::put(b"k".to_vec(), b"v2".to_vec())]),
            )
            .await
            .unwrap();
        assert!(r.succeeded);
        // Stale mod revision fails.
        let r = kv
            .txn(
                Txn::new()
                    .when(vec![Compare::mod_revision(b"k".to_vec(), cur.mod_revision)])
                    .and_then(vec![TxnOp::put(b"k".to_vec(), b"v3".to_vec())]),
            )
            .await
            .unwrap();
        assert!(!r.succeeded);
        assert_eq!(kv.get(b"k").await.unwrap().unwrap().value, b"v2");
        // Value compare on a missing key never holds; version of a missing key is 0.
        let r = kv
            .txn(Txn::new().when(vec![Compare::value(b"missing".to_vec(), Vec::new())]))
            .await
            .unwrap();
        assert!(!r.succeeded);
        let r = kv
            .txn(Txn::new().when(vec![
                Compare {
                    key: b"missing".to_vec(),
                    op: CompareOp::Equal,
                    target: CompareTarget::Version(0),
                },
                Compare {
                    key: b"k".to_vec(),
                    op: CompareOp::Greater,
                    target: CompareTarget::Version(1),
                },
                Compare {
                    key: b"k".to_vec(),
                    op: CompareOp::Less,
                    target: CompareTarget::ModRevision(i64::MAX),
                },
                Compare {
                    key: b"k".to_vec(),
                    op: CompareOp::NotEqual,
                    target: CompareTarget::Value(b"zz".to_vec()),
                },
            ]))
            .await
            .unwrap();
        assert!(r.succeeded);
        // Deletes in a txn report counts.
        kv.put(b"x/1", b"", None).await.unwrap();
        kv.put(b"x/2", b"", None).await.unwrap();
        let r = kv
            .txn(Txn::new().and_then(vec![
                TxnOp::delete_prefix(b"x/".to_vec()),
                TxnOp::delete(b"nope".to_vec()),
            ]))
            .await
            .unwrap();
        assert_eq!(
            r.responses,
            vec![TxnOpResponse::Delete(2), TxnOpResponse::Delete(0)]
        );
        // Writing one key twice in a txn is refused.
        let e = kv
            .txn(Txn::new().and_then(vec![
                TxnOp::put(b"k".to_vec(), b"1".to_vec()),
                TxnOp::put(b"k".to_vec(), b"2".to_vec()),
            ]))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }

    /// A txn's writes share one revision; read-only txns do not bump it.
    pub async fn txn_revisions(kv: Arc<dyn KvBackend>) {
        let r = kv
            .txn(Txn::new().and_then(vec![
                TxnOp::put(b"a".to_vec(), b"1".to_vec()),
                TxnOp::put(b"b".to_vec(), b"1".to_vec()),
            ]))
            .await
            .unwrap();
        let a = kv.get(b"a").await.unwrap().unwrap();
        let b = kv.get(b"b").await.unwrap().unwrap();
        assert_eq!(a.mod_revision, r.revision);
        assert_eq!(b.mod_revision, r.revision);
        let ro = kv
            .txn(Txn::new().and_then(vec![TxnOp::get(b"a".to_vec())]))
            .await
            .unwrap();
        assert_eq!(ro.revision, r.revision);
        let rng = kv.range(b"").await.unwrap();
        assert_eq!(rng.revision, r.revision);
    }

    async fn next_events(
        s: &mut crate::kv::WatchStream,
        want: usize,
    ) -> Vec<crate::kv::WatchEvent> {
        let mut out = Vec::new();
        while out.len() < want {
            let batch = tokio::time::timeout(Duration::from_secs(10), s.next())
                .await
                .expect("watch event in time")
                .expect("stream open")
                .expect("no error");
            out.extend(batch);
        }
        out
    }

    /// Watch by prefix sees puts and deletes in order, nothing outside the prefix.
    pub async fn watch(kv: Arc<dyn KvBackend>) {
        let mut s = kv.watch(b"w/", 0).await.unwrap();
        let r1 = kv.put(b"w/a", b"1", None).await.unwrap();
        kv.put(b"other", b"1", None).await.unwrap();
        let r2 = kv.put(b"w/b", b"2", None).await.unwrap();
        kv.delete(b"w/a").await.unwrap();
        let evs = next_events(&mut s, 3).await;
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].kind, EventKind::Put);
        assert_eq!(evs[0].kv.key, b"w/a");
        assert_eq!(evs[0].kv.value, b"1");
        assert_eq!(evs[0].kv.mod_revision, r1);
        assert_eq!(evs[1].kv.key, b"w/b");
        assert_eq!(evs[1].kv.mod_revision, r2);
        assert_eq!(evs[2].kind, EventKind::Delete);
        assert_eq!(evs[2].kv.key, b"w/a");
        assert!(evs[2].kv.mod_revision > r2);
    }

    /// A watch from a past revision replays history first.
    pub async fn watch_from_revision(kv: Arc<dyn KvBackend>) {
        let r1 = kv.put(b"h/a", b"1", None).await.unwrap();
        kv.put(b"h/b", b"2", None).await.unwrap();
        let mut s = kv.watch(b"h/", r1).await.unwrap();
        kv.put(b"h/c", b"3", None).await.unwrap();
        let evs = next_events(&mut s, 3).await;
        let keys: Vec<_> = evs.iter().map(|e| e.kv.key.clone()).collect();
        assert_eq!(
            keys,
            vec![b"h/a".to_vec(), b"h/b".to_vec(), b"h/c".to_vec()]
        );
        // A start revision in the future waits for it.
        let cur = kv.range(b"").await.unwrap().revision;
        let mut s = kv.watch(b"h/", cur + 2).await.unwrap();
        kv.put(b"h/skip", b"", None).await.unwrap();
        kv.put(b"h/seen", b"", None).await.unwrap();
        let evs = next_events(&mut s, 1).await;
        assert_eq!(evs[0].kv.key, b"h/seen");
    }

    /// Lease grant, attach, keep-alive, revoke.
    pub async fn leases(kv: Arc<dyn KvBackend>) {
        let l = kv.grant_lease(30).await.unwrap();
        kv.put(b"l/a", b"1", Some(l)).await.unwrap();
        kv.put(b"l/b", b"1", Some(l)).await.unwrap();
        assert_eq!(kv.get(b"l/a").await.unwrap().unwrap().lease, l);
        kv.keep_alive(l).await.unwrap();
        kv.revoke_lease(l).await.unwrap();
        assert!(kv.range(b"l/").await.unwrap().kvs.is_empty());
        assert!(matches!(
            kv.keep_alive(l).await,
            Err(Error::LeaseNotFound(_))
        ));
        assert!(matches!(
            kv.put(b"l/c", b"1", Some(l)).await,
            Err(Error::LeaseNotFound(_))
        ));
        assert!(kv.grant_lease(0).await.is_err());
    }

    /// Keys of an expired lease disappear (and watchers see the deletes).
    pub async fn lease_expiry(kv: Arc<dyn KvBackend>) {
        let l = kv.grant_lease(2).await.unwrap();
        kv.put(b"x/live", b"1", Some(l)).await.unwrap();
        kv.put(b"x/keep", b"1", None).await.unwrap();
        let mut s = kv.watch(b"x/", 0).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while kv.get(b"x/live").await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "lease did not expire");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(kv.get(b"x/keep").await.unwrap().is_some());
        let evs = next_events(&mut s, 1).await;
        assert_eq!(evs[0].kind, EventKind::Delete);
        assert_eq!(evs[0].kv.key, b"x/live");
    }

    /// 8 tasks × 10 compare-and-swap increments of one counter: no lost update.
    pub async fn concurrent_cas(kv: Arc<dyn KvBackend>) {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let cur = kv.get(b"ctr").await.unwrap();
                        let (n, rev) = cur.map_or((0u64, 0), |c| {
                            (
                                String::from_utf8(c.value).unwrap().parse().unwrap(),
                                c.mod_revision,
                            )
                        });
                        let r = kv
                            .txn(
                                Txn::new()
                                    .when(vec![Compare::mod_revision(b"ctr".to_vec(), rev)])
                                    .and_then(vec![TxnOp::put(
                                        b"ctr".to_vec(),
                                        (n + 1).to_string().into_bytes(),
                                    )]),
                            )
                            .await
                            .unwrap();
                        if r.succeeded {
                            break;
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v = kv.get(b"ctr").await.unwrap().unwrap();
        assert_eq!(v.value, b"80");
        assert_eq!(v.version, 80);
    }
}
