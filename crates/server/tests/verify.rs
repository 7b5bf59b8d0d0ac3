//! `sundial verify` on a real data directory: healthy files pass (exit 0), a flipped
//! bit in a block is reported with its file and series (exit 1).

use std::process::Command;

use sundial_engine::{EngineOptions, FsyncPolicy, Store};
use sundial_lineproto::{parse_lines, ParseOptions};

fn verify(dir: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sundial"))
        .args(["verify", "--data-dir"])
        .arg(dir)
        .output()
        .expect("run sundial verify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_reports_a_damaged_block_and_passes_healthy_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store_dir = dir.path().join("store");
    let store = Store::open(
        &store_dir,
        EngineOptions::builder().fsync(FsyncPolicy::Never).build(),
    )
    .expect("open");
    store.create_shard(1, "db").expect("shard");
    let lp: String = (0..100)
        .map(|i| format!("cpu,host=h{} v={i}.5,n={i}i {}\n", i % 2, i * 1000))
        .collect();
    let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(1, &pts).expect("write");
    store.flush_shard(1).expect("flush");
    let id = store.shard_files(1).expect("files")[0].id;
    store.close().expect("close");

    let (code, out) = verify(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("healthy (2 series, 4 blocks)"), "{out}");
    assert!(
        out.contains("verified 1 files, 4 blocks: 0 damaged"),
        "{out}"
    );

    let path = store_dir.join("1/data").join(format!("{id:010}.tsf"));
    let mut data = std::fs::read(&path).expect("read");
    data[12] ^= 0x10; // inside the first series' first block
    std::fs::write(&path, data).expect("write");
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{}: 1 of 4 blocks damaged", path.display()))
            || out.contains(&format!("{}: 2 of 4 blocks damaged", path.display())),
        "{out}"
    );
    assert!(out.contains("series \"cpu,host=h0\""), "{out}");
    assert!(out.contains("checksum mismatch"), "{out}");
    assert!(out.contains("1 damaged"), "{out}");
}
