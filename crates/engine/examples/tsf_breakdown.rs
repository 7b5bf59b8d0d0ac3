//! Where the bytes of data files go: time blocks, value blocks, index, the rest.
//!
//! ```sh
//! cargo run --release -p sundial-engine --example tsf_breakdown -- DATA/store/*/data/*.tsf
//! ```

use std::collections::BTreeSet;

use sundial_engine::codec::float::gorilla_encode;
use sundial_engine::tsfile::TsFile;
use sundial_engine::Values;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut size, mut times, mut values, mut index, mut count, mut blocks) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    // Float values as Gorilla XOR would store them, and its timestamps (bits), for
    // comparison.
    let (mut gorilla, mut gorilla_time_bits, mut floats) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    for path in std::env::args().skip(1) {
        let f = TsFile::open(path.as_ref())?;
        size += f.size();
        index += f.index_len();
        let mut seen = BTreeSet::new();
        for r in f.series_refs()? {
            for fi in f.series_index_of(&r)?.fields {
                for b in fi.blocks {
                    let c = f.read_block(fi.ty, &b)?;
                    if let Values::Float(v) = &c.values {
                        buf.clear();
                        gorilla_encode(v, &mut buf);
                        gorilla += buf.len() as u64;
                        gorilla_time_bits += time_bits(&c.times);
                        floats += v.len() as u64;
                    }
                    blocks += 1;
                    count += u64::from(b.count);
                    values += u64::from(b.values.size);
                    if let Some(t) = b.times {
                        if seen.insert(t.offset) {
                            times += u64::from(t.size);
                        }
                    }
                }
            }
        }
    }
    let per = |x: u64| x as f64 / count.max(1) as f64;
    println!(
        "{count} values in {blocks} blocks ({:.0} values a block), {size} bytes = {:.3} bytes/value",
        count as f64 / blocks.max(1) as f64,
        per(size)
    );
    println!("  time blocks  {times:>12} = {:.3}", per(times));
    println!("  value blocks {values:>12} = {:.3}", per(values));
    println!("  index        {index:>12} = {:.3}", per(index));
    println!(
        "  rest         {:>12} = {:.3}",
        size - times - values - index,
        per(size - times - values - index)
    );
    if floats > 0 {
        println!(
            "  float values alone as Gorilla XOR: {:.3} bytes/value",
            gorilla as f64 / floats as f64
        );
        println!(
            "  Gorilla with its timestamps (XOR values, delta-of-delta times per series and field, same blocks, no index): {:.3} bytes/value",
            (gorilla as f64 + gorilla_time_bits as f64 / 8.0) / floats as f64
        );
    }
    Ok(())
}

/// Bits Gorilla's timestamp encoding takes for one block: the first time and the
/// first delta in 64 bits each (nanoseconds), then each delta of deltas in the
/// paper's buckets ('0'; '10' + 7 bits; '110' + 9; '1110' + 12; '1111' + 32).
fn time_bits(t: &[i64]) -> u64 {
    let head = 64 * t.len().min(2) as u64;
    head + t
        .windows(3)
        .map(|w| match (w[2] - w[1]) - (w[1] - w[0]) {
            0 => 1,
            -63..=64 => 9,
            -255..=256 => 12,
            -2047..=2048 => 16,
            _ => 36,
        })
        .sum::<u64>()
}
