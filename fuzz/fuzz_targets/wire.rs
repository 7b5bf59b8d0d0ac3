//! The `WriteToShard` wire decoder on arbitrary bytes: never panics; a payload
//! that decodes re-encodes to one that decodes to the same points, each of which
//! reads back from its line protocol unchanged. The same bytes as line protocol:
//! every point the parser accepts crosses the wire unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial_cluster::wire::{decode_points, encode_points, DecodeLimits};
use sundial_lineproto::{parse_lines, ParseOptions, Precision};

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::new(Precision::Nanosecond, 0);
    let limits = DecodeLimits::default();

    if let Ok(decoded) = decode_points(data, &limits) {
        let points = decoded.points();
        let mut buf = Vec::new();
        encode_points(points.iter().copied(), &mut buf);
        let again = match decode_points(&buf, &limits) {
            Ok(d) => d,
            Err(e) => panic!("re-encoded payload: {e}"),
        };
        assert_eq!(again.len(), points.len());
        for (a, b) in points.iter().zip(again.iter()) {
            let line = a.to_line();
            assert_eq!(line, b.to_line());
            let parsed = parse_lines(line.as_bytes(), &opts);
            assert_eq!(parsed.len(), 1, "{line:?}: {:?}", parsed.errors());
            assert_eq!(parsed.get(0).to_line(), line);
            assert_eq!(parsed.get(0).tags, a.tags, "{line:?}");
            assert_eq!(parsed.get(0).measurement, a.measurement, "{line:?}");
        }
    }

    let parsed = parse_lines(data, &opts);
    let mut buf = Vec::new();
    encode_points(parsed.iter(), &mut buf);
    let decoded = match decode_points(&buf, &limits) {
        Ok(d) => d,
        Err(e) => panic!("parsed points: {e}"),
    };
    assert_eq!(decoded.len(), parsed.len());
    for (a, b) in parsed.iter().zip(decoded.iter()) {
        assert_eq!(a.to_line(), b.to_line());
        assert_eq!(a.tags, b.tags);
    }
});
