//! A cluster on loopback for tests: a real etcd, `sundial-meta`, N `sundial-store`
//! and M `sundial-gateway` processes, each on a free port, all killed on drop.
//!
//! The binaries are taken from the target directory of this test binary: build the
//! workspace first (`cargo build --workspace --bins`; `make test` does).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sundial_meta::testing::{unique_prefix, EtcdProcess, MetaProcess};
use sundial_meta::{ClientOptions, MetaClient, ShardGroupInfo};

pub const SECRET: &str = "test-cluster-secret";

/// A binary of this workspace, next to the test executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// Waits (at most `secs`, checking every 100 ms) until `cond` holds.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One of our processes: started with fixed arguments, `listening on ADDR …` read
/// from its stdout.
#[derive(Debug)]
pub struct Proc {
    name: String,
    args: Vec<String>,
    child: Option<Child>,
    /// The address it printed.
    pub addr: String,
    /// The rest of its `listening on` line (e.g. `node 3`).
    pub extra: String,
}

impl Proc {
    pub fn start(name: &str, args: Vec<String>) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            args,
            child: None,
            addr: String::new(),
            extra: String::new(),
        };
        p.spawn();
        p
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let mut cmd = Command::new(bin(&self.name));
        cmd.args(&self.args)
            .env("SUNDIAL_LOG", "warn")
            .stderr(Stdio::inherit());
        let started = sundial_testkit::spawn_listening(&mut cmd, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{} did not report its address", self.name));
        self.addr = started.addr().to_string();
        self.extra = started.extra().to_string();
        self.child = Some(started.child);
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn args_mut(&mut self) -> &mut Vec<String> {
        &mut self.args
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (30 s at most).
    pub fn terminate(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        match sundial_testkit::terminate(&mut c, Duration::from_secs(30)) {
            Some(st) => assert!(st.success(), "{} exited with {st}", self.name),
            None => panic!("{} did not stop within 30 s of SIGTERM", self.name),
        }
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) with kill(1): a stopped process
    /// keeps its sockets open and answers nothing, like a host cut off.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let st = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{signal} {pid}");
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A storage node and its data directory.
#[derive(Debug)]
pub struct StoreNode {
    pub proc: Proc,
    pub data: PathBuf,
}

impl StoreNode {
    /// Shard ids with a directory in its data directory.
    pub fn shard_dirs(&self) -> BTreeSet<u64> {
        std::fs::read_dir(self.data.join("shards"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The node id it registered under (from its `listening on ADDR node N …` line).
    pub fn node_id(&self) -> u64 {
        self.word_after("node")
            .and_then(|n| n.parse().ok())
            .expect("node id in the listening line")
    }

    /// The address of its `/metrics` listener (`… metrics ADDR`).
    pub fn metrics_addr(&self) -> String {
        self.word_after("metrics")
            .expect("metrics address in the listening line")
            .to_string()
    }

    fn word_after(&self, key: &str) -> Option<&str> {
        let mut words = self.proc.extra.split(' ');
        words.by_ref().find(|w| *w == key)?;
        words.next()
    }

    /// `sundial-store export` of its (stopped) data directory: shard id → (database,
    /// lines).
    pub fn export(&self) -> BTreeMap<u64, (String, Vec<String>)> {
        let out = Command::new(bin("sundial-store"))
            .arg("export")
            .arg("--data-dir")
            .arg(&self.data)
            .env("SUNDIAL_LOG", "warn")
            .output()
            .expect("run export");
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut shards = BTreeMap::new();
        let mut cur = None;
        for l in String::from_utf8(out.stdout).expect("utf8").lines() {
            if let Some(rest) = l.strip_prefix("# SHARD ") {
                let (id, db) = rest.split_once(' ').unwrap_or((rest, ""));
                let id: u64 = id.parse().expect("shard id");
                shards.insert(id, (db.to_string(), Vec::new()));
                cur = Some(id);
            } else if let Some(id) = cur {
                if let Some(s) = shards.get_mut(&id) {
                    s.1.push(l.to_string());
                }
            }
        }
        shards
    }
}

/// etcd, meta, stores and gateways.
#[derive(Debug)]
pub struct Cluster {
    pub gateways: Vec<Proc>,
    pub stores: Vec<StoreNode>,
    pub meta: MetaProcess,
    pub etcd: EtcdProcess,
    dir: tempfile::TempDir,
    /// With TLS: the stores' certificate (also the gateways' trust root) and key.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Cluster {
    pub fn start(stores: usize, gateways: usize) -> Cluster {
        Self::start_with_tls(stores, gateways, false)
    }

    /// Stores serve gRPC over TLS with a self-signed certificate for 127.0.0.1 that
    /// the gateways trust.
    pub fn start_tls(stores: usize, gateways: usize) -> Cluster {
        Self::start_with_tls(stores, gateways, true)
    }

    fn start_with_tls(stores: usize, gateways: usize, tls: bool) -> Cluster {
        let etcd = EtcdProcess::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = tls.then(|| {
            let ck = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_string(),
                "localhost".to_string(),
            ])
            .expect("certificate");
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert, ck.cert.pem()).expect("cert");
            std::fs::write(&key, ck.signing_key.serialize_pem()).expect("key");
            (cert, key)
        });
        let mut meta_args = vec!["--shared-secret".to_string(), SECRET.to_string()];
        if let Some((cert, key)) = &tls {
            meta_args.extend([
                "--tls-cert".to_string(),
                cert.display().to_string(),
                "--tls-key".to_string(),
                key.display().to_string(),
            ]);
        }
        let meta_args: Vec<&str> = meta_args.iter().map(String::as_str).collect();
        let meta = MetaProcess::start_with_args(
            bin("sundial-meta"),
            &etcd.endpoints(),
            &unique_prefix(),
            &meta_args,
        );
        let mut c = Cluster {
            gateways: Vec::new(),
            stores: Vec::new(),
            meta,
            etcd,
            dir,
            tls,
        };
        for _ in 0..stores {
            c.add_store();
        }
        for _ in 0..gateways {
            c.add_gateway();
        }
        c
    }

    fn store_args(&self, data: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--meta".into(),
            self.meta_addr(),
            "--shared-secret".into(),
            SECRET.into(),
            "--reconcile-interval".into(),
            "200ms".into(),
            "--metrics-listen".into(),
            "127.0.0.1:0".into(),
        ];
        if let Some((cert, key)) = &self.tls {
            args.extend([
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
                "--tls-ca".into(),
                cert.display().to_string(),
            ]);
        }
        args
    }

    /// Meta's address for our binaries and clients (they pick http or https).
    pub fn meta_addr(&self) -> String {
        self.meta.addr().to_string()
    }

    pub fn add_store(&mut self) -> usize {
        self.add_store_with(&[])
    }

    /// A store with extra flags (e.g. `-c FILE`).
    pub fn add_store_with(&mut self, extra: &[&str]) -> usize {
        let data = self.dir.path().join(format!("store{}", self.stores.len()));
        let mut args = self.store_args(&data);
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = Proc::start("sundial-store", args);
        self.stores.push(StoreNode { proc, data });
        self.stores.len() - 1
    }

    pub fn add_gateway(&mut self) -> usize {
        self.add_gateway_with(&[])
    }

    /// A gateway with extra flags (e.g. `--hh-max-size`); its hinted-handoff queues
    /// live in the cluster's temporary directory.
    pub fn add_gateway_with(&mut self, extra: &[&str]) -> usize {
        let hh = self
            .dir
            .path()
            .join(format!("gw{}-hh", self.gateways.len()));
        let mut args = vec![
            "--bind".into(),
            "127.0.0.1:0".into(),
            "--meta".into(),
            self.meta_addr(),
            "--shared-secret".into(),
            SECRET.into(),
            "--hh-dir".into(),
            hh.display().to_string(),
            "--hh-retry-interval".into(),
            "100ms".into(),
        ];
        if let Some((cert, _)) = &self.tls {
            args.extend(["--tls-ca".into(), cert.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.gateways.push(Proc::start("sundial-gateway", args));
        self.gateways.len() - 1
    }

    /// A gateway's `/metrics` page.
    pub fn metrics_text(&self, gateway: usize) -> String {
        scrape(&self.gateways[gateway].addr)
    }

    /// One sample of a gateway's `/metrics` (0 when absent).
    pub fn metric(&self, gateway: usize, name: &str) -> f64 {
        sample(&self.metrics_text(gateway), name)
    }

    /// Waits (at most `secs`) until `cond` holds.
    pub fn wait_for(&self, secs: u64, what: &str, cond: impl FnMut() -> bool) {
        wait_until(secs, what, cond);
    }

    /// The store with node id `id`.
    pub fn store_by_id(&mut self, id: u64) -> &mut StoreNode {
        self.stores
            .iter_mut()
            .find(|s| s.node_id() == id)
            .expect("a store with that node id")
    }

    pub fn url(&self, gateway: usize, path: &str) -> String {
        format!("http://{}{}", self.gateways[gateway].addr, path)
    }

    /// InfluxQL through gateway 0.
    pub fn query(&self, q: &str) -> serde_json::Value {
        client()
            .post(self.url(0, "/query"))
            .form(&[("q", q)])
            .send()
            .expect("query")
            .json()
            .expect("json")
    }

    /// A write through `gateway`: status and error text.
    pub fn write(&self, gateway: usize, params: &str, body: String) -> (u16, String) {
        let r = client()
            .post(self.url(gateway, &format!("/write?{params}")))
            .body(body)
            .send()
            .expect("write");
        let st = r.status().as_u16();
        let v: serde_json::Value = r.json().unwrap_or(serde_json::Value::Null);
        (st, v["error"].as_str().unwrap_or_default().to_string())
    }

    /// Runs `f` with a meta client of its own.
    pub fn with_meta<T>(&self, f: impl AsyncFnOnce(&MetaClient) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let opts = ClientOptions {
                secret: Some(SECRET.to_string()),
                tls_ca: self
                    .tls
                    .as_ref()
                    .map(|(cert, _)| std::fs::read(cert).expect("ca")),
                ..ClientOptions::default()
            };
            let meta = MetaClient::remote(&self.meta_addr(), opts)
                .await
                .expect("meta client");
            let out = f(&meta).await;
            meta.close();
            out
        })
    }

    /// The shard groups of `db`'s default policy, read from meta.
    pub fn shard_groups(&self, db: &str) -> Vec<ShardGroupInfo> {
        self.with_meta(async |meta| {
            let rp = meta
                .database(db)
                .expect("database")
                .default_retention_policy
                .clone();
            meta.shard_groups(db, &rp)
        })
    }
}

/// Stops every store and returns, for each line their own files hold, the
/// node ids holding it (`sundial-store export` of each data directory).
pub fn audit(c: &mut Cluster) -> BTreeMap<String, BTreeSet<u64>> {
    let ids: Vec<u64> = c.stores.iter().map(|s| s.node_id()).collect();
    for s in &mut c.stores {
        s.proc.terminate();
    }
    let mut at: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (s, id) in c.stores.iter().zip(ids) {
        for (_, (_, lines)) in s.export() {
            for l in lines {
                at.entry(l).or_default().insert(id);
            }
        }
    }
    at
}

/// One sample of a Prometheus text page, by name with labels as printed (e.g.
/// `x_count{route="/write",status="204"}`); 0 when absent.
pub fn sample(text: &str, name: &str) -> f64 {
    sundial_testkit::metric_sample(text, name).unwrap_or(0.0)
}

/// `GET http://ADDR/metrics`.
pub fn scrape(addr: &str) -> String {
    client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("metrics text")
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}
