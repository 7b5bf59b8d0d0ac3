//! Runs the real `sundial` binary on a free loopback port with a fresh data
//! directory, and kills it on drop.

#![allow(dead_code)]

use reqwest::blocking::Response;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// A `bash -c` script that ends in `exec "$0" "$@"`, run instead of the binary.
    wrapper: Option<String>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Self::start_env(args, &[])
    }

    /// Starts with extra `SUNDIAL_…` environment settings.
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_wrapped(None, args, env)
    }

    /// Starts through `bash -c wrapper` (e.g. `ulimit -n 1024; exec "$0" "$@"`)
    /// when one is given.
    pub fn start_wrapped(wrapper: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Self::start_at(data, wrapper, args, env);
        s._tmp = Some(tmp);
        s
    }

    /// Starts on a data directory the caller owns (e.g. on a file system it mounted).
    pub fn start_at(
        data: PathBuf,
        wrapper: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut s = Server {
            child: None,
            addr: String::new(),
            data,
            _tmp: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wrapper: wrapper.map(str::to_string),
        };
        s.spawn();
        s
    }

    /// Starts (again) on the same data directory.
    pub fn spawn(&mut self) {
        let bin = env!("CARGO_BIN_EXE_sundial");
        let mut cmd = match &self.wrapper {
            Some(script) => {
                let mut c = Command::new("bash");
                c.arg("-c").arg(script).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("run")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--bind")
            .arg("127.0.0.1:0")
            .args(&self.args)
            .env("SUNDIAL_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stderr(Stdio::inherit());
        let started = sundial_testkit::spawn_listening(&mut cmd, Duration::from_secs(30))
            .expect("sundial did not report its address");
        self.addr = started.addr().to_string();
        self.child = Some(started.child);
    }

    /// The server's process id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// A line of `/proc/<pid>/status`, e.g. `VmRSS` (kB) or `Threads`.
    pub fn proc_status(&self, field: &str) -> u64 {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        sundial_testkit::terminate(&mut c, Duration::from_secs(30))
            .expect("sundial did not stop within 30 s of SIGTERM")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The server's `/metrics` text.
pub fn metrics_text(s: &Server) -> String {
    client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("metrics text")
}

/// One sample of `/metrics` (name with labels, e.g. `x{database="db"}`).
pub fn metric(s: &Server, name: &str) -> f64 {
    let text = metrics_text(s);
    sundial_testkit::metric_sample(&text, name)
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

/// Runs InfluxQL through `/query` (POST form) and returns the JSON.
pub fn query(s: &Server, q: &str) -> serde_json::Value {
    let r = client()
        .post(s.url("/query"))
        .form(&[("q", q)])
        .send()
        .expect("query");
    r.json().expect("json")
}

/// `sundial export` of a data directory.
pub fn export(data: &Path, db: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sundial"))
        .arg("export")
        .arg("--data-dir")
        .arg(data)
        .arg("--database")
        .arg(db)
        .env("SUNDIAL_LOG", "warn")
        .output()
        .expect("run export");
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Line protocol through `/write?{params}`.
pub fn write(s: &Server, params: &str, body: impl Into<reqwest::blocking::Body>) -> Response {
    client()
        .post(s.url(&format!("/write?{params}")))
        .body(body)
        .send()
        .expect("write")
}

/// A failed request's status, its body's `error` and its `X-Influxdb-Error`
/// header.
#[allow(clippy::unwrap_used)]
pub fn error_of(r: Response) -> (u16, String, Option<String>) {
    let status = r.status().as_u16();
    let header = r
        .headers()
        .get("X-Influxdb-Error")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = r.json().expect("json error body");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
        header,
    )
}

/// Now, in Unix seconds.
#[allow(clippy::unwrap_used)]
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
