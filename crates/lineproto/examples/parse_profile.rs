//! Parses a generated TSBS cpu-only body many times; for profilers
//! (`valgrind --tool=callgrind`, `perf`). `parse_profile N oracle` runs the
//! `influxdb-line-protocol` crate instead; `parse_profile N ours unique` a
//! body where every line is a new series.

#![allow(clippy::unwrap_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let hosts = if std::env::args().nth(3).as_deref() == Some("unique") {
        5_000
    } else {
        100
    };
    let body = sundial_tsbs::cpu_only_body(5_000, hosts);
    let opts = sundial_lineproto::ParseOptions::default();
    let oracle = std::env::args().nth(2).as_deref() == Some("oracle");
    let mut values = 0;
    for _ in 0..rounds {
        if oracle {
            for l in influxdb_line_protocol::parse_lines(&body) {
                values += l.map(|l| l.field_set.len()).unwrap_or(0);
            }
        } else {
            values += sundial_lineproto::parse_lines(body.as_bytes(), &opts).value_count();
        }
    }
    println!("{} bytes x {rounds}: {values} values", body.len());
}
