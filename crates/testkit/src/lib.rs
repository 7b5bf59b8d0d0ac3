//! Test support shared by the process tests of every crate (the all-in-one
//! server's, the meta service's, the cluster's): start one of our binaries and wait
//! for the `listening on ADDR …` line it prints once it serves, and stop it with
//! SIGTERM. `influxd` runs a real InfluxDB 1.x, `qdata` and `qdiff` are the data
//! set and the corpus runner of the InfluxQL differential test.

pub mod influxd;
pub mod qdata;
pub mod qdiff;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A process that reported where it listens.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    /// What followed `listening on ` (the address, then e.g. `node 3`).
    pub line: String,
}

impl Started {
    /// The address: the first word of the line.
    pub fn addr(&self) -> &str {
        self.line.split(' ').next().unwrap_or_default()
    }

    /// The rest of the line after the address.
    pub fn extra(&self) -> &str {
        self.line.split_once(' ').map_or("", |(_, rest)| rest)
    }
}

/// Spawns `cmd` with stdout piped and waits up to `wait` for its `listening on`
/// line; stdout keeps being drained afterwards so the child never blocks on a full
/// pipe. `None` when it exits or stays silent (it is killed and reaped then).
pub fn spawn_listening(cmd: &mut Command, wait: Duration) -> Option<Started> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    // A reader thread, so that a child that hangs without a line cannot block the
    // test past `wait`.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.trim().strip_prefix("listening on ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    match rx.recv_timeout(wait) {
        Ok(line) => Some(Started { child, line }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// SIGTERM, then up to `wait` for the exit status; `None` (after SIGKILL) when it
/// did not stop in time.
pub fn terminate(child: &mut Child, wait: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One sample of a Prometheus text page, by name with labels as printed (e.g.
/// `x_count{route="/write",status="204"}`).
pub fn metric_sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` on a `/metrics` page: `Err` with promtool's words
/// when it does not parse as Prometheus text or breaks its naming rules.
pub fn promtool_check(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool: {e} (make test-deps installs it)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("promtool stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_line_and_stops_the_process() {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg("echo starting; echo 'listening on 127.0.0.1:9 node 4'; exec sleep 30");
        let mut s = spawn_listening(&mut cmd, Duration::from_secs(10)).unwrap();
        assert_eq!((s.addr(), s.extra()), ("127.0.0.1:9", "node 4"));
        let st = terminate(&mut s.child, Duration::from_secs(10)).unwrap();
        assert!(!st.success(), "sleep ends by the signal");
    }

    #[test]
    fn a_process_that_exits_without_the_line_is_none() {
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg("echo nothing here");
        assert!(spawn_listening(&mut cmd, Duration::from_secs(10)).is_none());
    }
}
