//! Crash-test helper: writes numbered batches with fsync `always` and prints
//! `ack <batch>` after each acknowledged write, until killed.
//!
//! Usage: `engine-crash-writer <dir> <first-batch>`. Tiny memtables make flushes and
//! compactions frequent, so a SIGKILL often lands in the middle of one.

use std::io::Write;

use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_lineproto::{parse_lines, ParseOptions};

/// Points of batch `b`: 20 points over 5 series, at times unique to the batch and
/// scattered (many land behind the watermark, i.e. in unsequence memtables).
pub fn batch_lines(b: u64) -> String {
    let base = (b * 7919) % 100_000 * 100;
    (0..20)
        .map(|j| format!("c,h=h{} v={b}i,w={}.5 {}\n", j % 5, b * 31 + j, base + j))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(first)) = (args.next(), args.next()) else {
        eprintln!("usage: engine-crash-writer <dir> <first-batch>");
        std::process::exit(2);
    };
    let Ok(first) = first.parse::<u64>() else {
        eprintln!("bad batch number {first:?}");
        std::process::exit(2);
    };
    let opts = EngineOptions::builder()
        .fsync(FsyncPolicy::Always)
        .memtable_size(16 << 10)
        .wal_segment_size(32 << 10)
        .compaction_trigger(2)
        .max_points_per_block(50)
        .build();
    let store = match Store::open(&dir, opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("open failed: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = store.ensure_shard(1, "db") {
        eprintln!("create shard failed: {e}");
        std::process::exit(1);
    }
    let mut out = std::io::stdout().lock();
    for b in first.. {
        let lp = batch_lines(b);
        let parsed = parse_lines(lp.as_bytes(), &ParseOptions::default());
        let pts: Vec<_> = parsed.iter().collect();
        match store.write_to_shard(1, &pts) {
            Ok(_) => {
                if writeln!(out, "ack {b}").and_then(|_| out.flush()).is_err() {
                    return;
                }
            }
            Err(e) => {
                eprintln!("write {b} failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
