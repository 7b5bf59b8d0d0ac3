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
    // Float values alone as Gorilla XOR would store them, for comparison.
    let (mut gorilla, mut floats) = (0u64, 0u64);
    let mut buf = Vec::new();
    for path in std::env::args().skip(1) {
        let f = TsFile::open(path.as_ref())?;
        size += f.size();
        index += f.index_len();
        let mut seen = BTreeSet::new();
        for r in f.series_refs()? {
            for fi in f.series_index_of(&r)?.fields {
                for b in fi.blocks {
                    if let Values::Float(v) = f.read_block(fi.ty, &b)?.values {
                        buf.clear();
                        gorilla_encode(&v, &mut buf);
                        gorilla += buf.len() as u64;
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
    }
    Ok(())
}
