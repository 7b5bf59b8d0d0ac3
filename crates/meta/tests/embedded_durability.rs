//! Embedded backend durability: reopen, torn tails, compaction, and kill -9 of a
//! child process that prints every acknowledged change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sundial_meta::{EmbeddedBackend, EmbeddedOptions, KvBackend};

fn opts(compact_after: u64) -> EmbeddedOptions {
    EmbeddedOptions {
        compact_after_records: compact_after,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_everything_and_revisions_stay_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let rev = {
        let kv = EmbeddedBackend::open_with(dir.path(), opts(7)).unwrap();
        for i in 0..20 {
            kv.put(format!("k{i:02}").as_bytes(), b"v", None)
                .await
                .unwrap();
        }
        kv.delete(b"k03").await.unwrap();
        let l = kv.grant_lease(60).await.unwrap();
        kv.put(b"leased", b"x", Some(l)).await.unwrap()
    };
    let kv = EmbeddedBackend::open_with(dir.path(), opts(7)).unwrap();
    let r = kv.range(b"k").await.unwrap();
    assert_eq!(r.kvs.len(), 19);
    // Close (compacts) and reopen once more: same state.
    kv.close().unwrap();
    drop(kv);
    let kv = EmbeddedBackend::open_with(dir.path(), opts(7)).unwrap();
    let r = kv.range(b"k").await.unwrap();
    assert_eq!(r.kvs.len(), 19);
    assert_eq!(r.revision, rev);
    let leased = kv.get(b"leased").await.unwrap().unwrap();
    kv.keep_alive(leased.lease).await.unwrap();
    let next = kv.put(b"new", b"v", None).await.unwrap();
    assert_eq!(next, rev + 1);
    // A watch from before the restart is compacted.
    assert!(matches!(
        kv.watch(b"", 1).await.err(),
        Some(sundial_meta::Error::Compacted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_opened_once() {
    let dir = tempfile::tempdir().unwrap();
    let kv = EmbeddedBackend::open(dir.path()).unwrap();
    let e = EmbeddedBackend::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("in use"), "{e}");
    drop(kv);
    EmbeddedBackend::open(dir.path()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = EmbeddedBackend::open(dir.path()).unwrap();
        kv.put(b"a", b"1", None).await.unwrap();
        kv.put(b"b", b"2", None).await.unwrap();
    }
    // Simulate a crash in the middle of appending a frame.
    let wal = dir.path().join("wal");
    let mut f = std::fs::OpenOptions::new().append(true).open(&wal).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
    drop(f);
    let kv = EmbeddedBackend::open(dir.path()).unwrap();
    assert_eq!(kv.range(b"").await.unwrap().kvs.len(), 2);
    kv.put(b"c", b"3", None).await.unwrap();
    drop(kv);
    let kv = EmbeddedBackend::open(dir.path()).unwrap();
    assert_eq!(kv.range(b"").await.unwrap().kvs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = EmbeddedBackend::open(dir.path()).unwrap();
        let l = kv.grant_lease(1).await.unwrap();
        kv.put(b"alive", b"1", Some(l)).await.unwrap();
    }
    let kv = EmbeddedBackend::open(dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while kv.get(b"alive").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "leased key survived its TTL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const CHILD_ENV: &str = "SUNDIAL_META_CRASH_CHILD_DIR";

/// Child half of `kill_9_loses_no_acknowledged_change`: a no-op unless the env var is
/// set. Puts keys forever (compacting often) and prints each acknowledged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let kv = EmbeddedBackend::open_with(&dir, opts(25)).unwrap();
    let mut out = std::io::stdout();
    for i in 0u64.. {
        let key = format!("key/{i:08}");
        let rev = kv
            .put(key.as_bytes(), &i.to_le_bytes(), None)
            .await
            .unwrap();
        writeln!(out, "ACK {key} {rev}").unwrap();
        out.flush().unwrap();
        if i % 10 == 9 {
            writeln!(out, "DELETING key/{:08}", i - 5).unwrap();
            out.flush().unwrap();
            kv.delete(format!("key/{:08}", i - 5).as_bytes())
                .await
                .unwrap();
            writeln!(out, "DEL key/{:08}", i - 5).unwrap();
            out.flush().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = std::collections::BTreeSet::new();
        let mut deleted = std::collections::BTreeSet::new();
        // Deletes started but maybe not acknowledged: either outcome is fine.
        let mut deleting = std::collections::BTreeSet::new();
        let mut last_rev = 0i64;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let target = 150 + round * 37;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.len() < target && Instant::now() < deadline {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["ACK", key, rev] => {
                    acked.insert(key.to_string());
                    last_rev = rev.parse().unwrap();
                }
                ["DEL", key] => {
                    deleted.insert(key.to_string());
                }
                ["DELETING", key] => {
                    deleting.insert(key.to_string());
                }
                _ => {}
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Drain whatever was acknowledged before the kill landed.
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let parts: Vec<&str> = line.split_whitespace().collect();
                    match parts.as_slice() {
                        ["ACK", key, rev] => {
                            acked.insert(key.to_string());
                            last_rev = rev.parse().unwrap();
                        }
                        ["DEL", key] => {
                            deleted.insert(key.to_string());
                        }
                        ["DELETING", key] => {
                            deleting.insert(key.to_string());
                        }
                        _ => {}
                    }
                }
            }
        }
        child.wait().unwrap();
        assert!(
            acked.len() >= 10,
            "child acknowledged too little: {}",
            acked.len()
        );

        let kv = EmbeddedBackend::open(dir.path()).unwrap();
        let r = kv.range(b"key/").await.unwrap();
        let present: std::collections::BTreeSet<String> = r
            .kvs
            .iter()
            .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
            .collect();
        for k in &acked {
            if !deleted.contains(k) && !deleting.contains(k) {
                assert!(present.contains(k), "round {round}: acknowledged {k} lost");
            }
        }
        for k in &deleted {
            assert!(
                !present.contains(k),
                "round {round}: acknowledged delete of {k} lost"
            );
        }
        assert!(
            r.revision >= last_rev,
            "revision went back: {} < {last_rev}",
            r.revision
        );
        // Next round's child starts numbering at 0 again: clear the keyspace.
        kv.delete_prefix(b"key/").await.unwrap();
    }
}
