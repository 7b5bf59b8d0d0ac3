//! WAL damage: every case must end in a clean open that keeps the valid prefix and
//! reports the loss.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::path::{Path, PathBuf};

use common::{dump, opts, write};
use sundial_engine::Store;

const N: i64 = 12;

/// Write N single-point entries (value i at time i) to shard 1 and stop without
/// flushing (a store dropped without `close` syncs its WALs and leaves the data in
/// them; `close` would flush it into files).
fn setup(dir: &Path, seg_size: u64) {
    let store = Store::open(dir, opts().wal_segment_size(seg_size).build()).unwrap();
    store.create_shard(1, "db").unwrap();
    for i in 1..=N {
        write(&store, 1, &format!("w,h=a v={i}i {i}\n"));
    }
    drop(store);
}

/// Non-empty segments, oldest first, with each entry's (offset, len).
fn segments(dir: &Path) -> Vec<(PathBuf, Vec<(usize, usize)>)> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("1/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segs.sort();
    segs.into_iter()
        .filter_map(|p| {
            let d = std::fs::read(&p).unwrap();
            let mut pos = 8;
            let mut entries = Vec::new();
            while pos + 8 <= d.len() {
                let len = u32::from_le_bytes(d[pos..pos + 4].try_into().unwrap()) as usize;
                entries.push((pos, 8 + len));
                pos += 8 + len;
            }
            (!entries.is_empty()).then_some((p, entries))
        })
        .collect()
}

fn times(
    dir: &Path,
) -> (
    Vec<i64>,
    sundial_engine::RecoveryReport,
    sundial_engine::EngineStats,
) {
    let store = Store::open(dir, opts().build()).unwrap();
    let d = dump(&store, 1, "w");
    let t = d
        .get(&("w,h=a".to_string(), "v".to_string()))
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    let r = store.recovery_report(1).unwrap();
    let s = store.stats();
    store.close().unwrap();
    (t, r, s)
}

fn truncate(p: &Path, len: usize) {
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.set_len(len as u64).unwrap();
}

fn flip(p: &Path, at: usize) {
    let mut d = std::fs::read(p).unwrap();
    d[at] ^= 0x10;
    std::fs::write(p, d).unwrap();
}

#[test]
fn truncated_mid_header() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 1 << 20);
    let segs = segments(dir.path());
    let (p, e) = segs.last().unwrap();
    let (off, _) = *e.last().unwrap();
    truncate(p, off + 5);
    let (t, r, s) = times(dir.path());
    assert_eq!(t, (1..N).collect::<Vec<_>>());
    let torn = r.wal.torn_tail.expect("torn tail reported");
    assert_eq!((torn.1, torn.2), (off as u64, 5));
    assert_eq!(s.wal_torn_tails_truncated, 1);
    // Truncated for good: the next open is clean and keeps the same data.
    let (t2, r2, _) = times(dir.path());
    assert_eq!(t2, t);
    assert!(r2.wal.torn_tail.is_none());
}

#[test]
fn truncated_mid_payload() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 1 << 20);
    let segs = segments(dir.path());
    let (p, e) = segs.last().unwrap();
    let (off, len) = *e.last().unwrap();
    truncate(p, off + len - 3);
    let (t, r, _) = times(dir.path());
    assert_eq!(t, (1..N).collect::<Vec<_>>());
    assert!(r.wal.torn_tail.is_some());
}

#[test]
fn zero_length_segment() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 1 << 20);
    std::fs::write(dir.path().join("1/wal/0000009999.wal"), b"").unwrap();
    let (t, r, _) = times(dir.path());
    assert_eq!(t, (1..=N).collect::<Vec<_>>());
    assert_eq!(r.wal.lost_bytes(), 0);
}

#[test]
fn bit_flip_in_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 1 << 20);
    let segs = segments(dir.path());
    let (p, e) = segs.last().unwrap();
    let (off, len) = e[e.len() - 2];
    flip(p, off + len / 2);
    let (t, r, _) = times(dir.path());
    // The damaged entry and everything after it in the segment are dropped.
    assert_eq!(t, (1..N - 1).collect::<Vec<_>>());
    let torn = r.wal.torn_tail.expect("reported");
    assert_eq!(torn.1, off as u64);
}

#[test]
fn bad_crc() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 1 << 20);
    let segs = segments(dir.path());
    let (p, e) = segs.last().unwrap();
    let (off, _) = *e.last().unwrap();
    flip(p, off + 4); // the CRC field itself
    let (t, r, _) = times(dir.path());
    assert_eq!(t, (1..N).collect::<Vec<_>>());
    assert!(r.wal.torn_tail.is_some());
}

#[test]
fn bit_flip_in_earlier_segment_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 150); // a few entries per segment
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{}", segs.len());
    let (p, e) = &segs[1];
    assert!(e.len() >= 2);
    let (off, len) = e[1];
    flip(p, off + len - 2);
    // Entries of segment 0 and entry 0 of segment 1 survive; the rest of segment 1 is
    // lost; later segments are intact and kept.
    let first_lost = (segs[0].1.len() + 1) as i64 + 1;
    let lost_n = (e.len() - 1) as i64;
    let want: Vec<i64> = (1..=N)
        .filter(|t| *t < first_lost || *t >= first_lost + lost_n)
        .collect();
    let (t, r, s) = times(dir.path());
    assert_eq!(t, want);
    assert_eq!(r.wal.corrupt.len(), 1);
    assert_eq!(r.wal.corrupt[0].1, off as u64);
    assert!(
        r.wal.corrupt[0].3.contains("checksum"),
        "{}",
        r.wal.corrupt[0].3
    );
    assert_eq!(s.wal_corrupt_segments, 1);
    assert!(
        dir.path().join("1/wal/corrupt").exists(),
        "original kept aside"
    );

    // Strict mode refuses to open the shard instead (at its first use: shards open
    // on demand).
    let dir2 = tempfile::tempdir().unwrap();
    setup(dir2.path(), 150);
    let segs = segments(dir2.path());
    let (p, e) = &segs[1];
    flip(p, e[1].0 + e[1].1 - 2);
    let store = Store::open(dir2.path(), opts().wal_strict_recovery(true).build()).unwrap();
    let err = store.recovery_report(1).unwrap_err();
    assert!(err.to_string().contains("WAL segment"), "{err}");
    // Nothing was opened, so nothing is half-open: the next use fails the same way.
    assert!(store.recovery_report(1).is_err());
}

/// A graceful close flushes the memtables into files: the next open replays no
/// WAL entry and reads every point back from the files.
#[test]
fn a_graceful_close_leaves_nothing_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts().build()).unwrap();
    store.create_shard(1, "db").unwrap();
    for i in 1..=N {
        write(&store, 1, &format!("w,h=a v={i}i {i}\n"));
    }
    store.close().unwrap();
    let (t, r, _) = times(dir.path());
    assert_eq!(t, (1..=N).collect::<Vec<_>>());
    assert_eq!(r.wal.entries, 0, "{:?}", r.wal);
    // Dropped without close (what a crash leaves, less the page cache): replayed.
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 1 << 20);
    let (t, r, _) = times(dir.path());
    assert_eq!(t, (1..=N).collect::<Vec<_>>());
    assert_eq!(r.wal.entries, N as usize);
}

/// A power cut kept a delete's tombstone (fsynced first) but not its WAL entry: the
/// next write must not reuse the delete's sequence number, or the tombstone hides
/// it at the following replay.
#[test]
fn a_tombstone_without_its_wal_entry_does_not_hide_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    let o = || opts().auto_compaction(false).build();
    {
        let store = Store::open(dir.path(), o()).unwrap();
        store.create_shard(1, "db").unwrap();
        write(&store, 1, "m,h=a v=1 10\n");
        store
            .delete(1, "m", &sundial_engine::TagPredicate::eq("h", "a"), 0, 100)
            .unwrap();
        drop(store); // no flush: both entries stay in the WAL
    }
    // Cut the delete's entry off the WAL, as the power cut would have.
    let (seg, entries) = segments(dir.path()).pop().unwrap();
    assert_eq!(entries.len(), 2);
    let (off, len) = entries[0];
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len((off + len) as u64).unwrap();
    {
        let store = Store::open(dir.path(), o()).unwrap();
        // The delete was in flight: here it applies (its tombstone survived).
        assert!(dump(&store, 1, "m").is_empty());
        write(&store, 1, "m,h=a v=2 20\n");
        drop(store);
    }
    let store = Store::open(dir.path(), o()).unwrap();
    let d = dump(&store, 1, "m");
    assert_eq!(
        d.get(&("m,h=a".to_string(), "v".to_string()))
            .and_then(|m| m.get(&20)),
        Some(&sundial_engine::Value::Float(2.0)),
        "the acknowledged write after the recovery is gone: {d:?}"
    );
}
