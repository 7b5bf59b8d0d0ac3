//! A real InfluxDB 1.x (`influxd`, Debian's `influxdb` package) for differential
//! tests: started on free loopback ports with a fresh temporary directory, killed
//! on drop.
//!
//! The configuration keeps InfluxDB's defaults except what a test needs: every
//! directory in the temporary directory, loopback ports, no usage reporting, no
//! `_internal` monitor database (it would show up in `SHOW DATABASES`), quiet logs
//! (kept in `influxd.log` in the temporary directory and printed when the process
//! does not start).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `influxd`.
#[derive(Debug)]
pub struct Influxd {
    child: Child,
    /// `127.0.0.1:PORT` of its HTTP API.
    pub addr: String,
    dir: tempfile::TempDir,
}

/// The `influxd` binary: `$INFLUXD` when set, else the first `influxd` on `PATH`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("INFLUXD") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("influxd"))
        .find(|p| p.is_file())
}

/// A loopback port nobody listened on a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

fn config(dir: &Path, http_port: u16, rpc_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[logging]
  level = "error"
  suppress-logo = true
"#
    )
}

impl Influxd {
    /// Starts `influxd` and waits until `/ping` answers 204. `None` only when
    /// `influxd` is not installed; a binary that does not come up panics with its
    /// log.
    pub fn start() -> Option<Influxd> {
        let bin = binary()?;
        let mut last_log = String::new();
        // A port picked free can be taken before influxd binds it: try again.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("influxd-")
                .tempdir()
                .expect("temporary directory for influxd");
            let (http_port, rpc_port) = (free_port(), free_port());
            let conf = dir.path().join("influxdb.conf");
            std::fs::write(&conf, config(dir.path(), http_port, rpc_port))
                .expect("write influxdb.conf");
            let log =
                std::fs::File::create(dir.path().join("influxd.log")).expect("create influxd.log");
            let log2 = log.try_clone().expect("clone the log file handle");
            let child = Command::new(&bin)
                .arg("-config")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut d = Influxd {
                child,
                addr: format!("127.0.0.1:{http_port}"),
                dir,
            };
            if d.wait_ping(Duration::from_secs(60)) {
                return Some(d);
            }
            last_log =
                std::fs::read_to_string(d.dir.path().join("influxd.log")).unwrap_or_default();
        }
        panic!("influxd did not answer /ping; its log:\n{last_log}");
    }

    /// Polls `/ping` until it answers 204; false when the process exits or the
    /// time runs out.
    fn wait_ping(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if ping(&self.addr) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The temporary directory (config, data, `influxd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What influxd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("influxd.log")).unwrap_or_default()
    }
}

/// One `GET /ping` over a plain socket: true on `204`.
fn ping(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    buf[..n].starts_with(b"HTTP/1.1 204")
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let Some(d) = Influxd::start() else {
            eprintln!("SKIPPED: influxd is not installed");
            return;
        };
        assert!(ping(&d.addr));
        let addr = d.addr.clone();
        let dir = d.dir().to_path_buf();
        assert!(dir.join("influxdb.conf").is_file());
        drop(d);
        assert!(!ping(&addr), "influxd still answers after drop");
        assert!(!dir.exists(), "the temporary directory is removed");
    }
}
