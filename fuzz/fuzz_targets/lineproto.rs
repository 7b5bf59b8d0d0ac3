//! The line-protocol parser on arbitrary bytes: never panics, every good point
//! serializes to a line that parses back to the same point, and a body parses
//! as its lines do one by one (the context carried between lines changes nothing)
//! and as its chunks do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial_lineproto::{parse_chunk, parse_lines, Cursor, ParseOptions, Precision};

fuzz_target!(|data: &[u8]| {
    let opts = ParseOptions::new(Precision::Nanosecond, 0);
    let batch = parse_lines(data, &opts);
    for p in batch.iter() {
        assert!(!p.fields.is_empty());
        let line = p.to_line();
        let again = parse_lines(line.as_bytes(), &opts);
        // Values with a backslash before a separator or at the end have no
        // line-protocol spelling in InfluxDB 1.x; everything else must round-trip.
        let representable = !p
            .tags
            .iter()
            .flat_map(|t| [t.key.as_ref(), t.value.as_ref()])
            .chain(p.fields.iter().map(|f| f.key.as_ref()))
            .chain([p.measurement])
            .any(|s| s.contains('\\'));
        if representable {
            assert_eq!(again.len(), 1, "{line:?} {:?}", again.errors());
            assert_eq!(again.get(0).to_owned_point(), p.to_owned_point(), "{line:?}");
        }
    }

    // Parsed two points at a time: the same points, error lines and line count.
    let (mut points, mut lines, mut errors) = (Vec::new(), 0, Vec::new());
    let mut at = Some(Cursor::START);
    while let Some(c) = at {
        let part = parse_chunk(data, c, 2, &opts);
        points.extend(part.iter().map(|p| p.to_owned_point()));
        errors.extend(part.errors().iter().map(|e| e.line));
        lines += part.lines();
        at = part.next();
    }
    assert_eq!(points, batch.iter().map(|p| p.to_owned_point()).collect::<Vec<_>>());
    assert_eq!(lines, batch.lines());
    let all: Vec<usize> = batch.errors().iter().map(|e| e.line).collect();
    assert_eq!(&errors[..all.len().min(errors.len())], &all[..all.len().min(errors.len())]);

    // Without quotes no line spans a newline, so lines can be cut by hand.
    if !data.contains(&b'"') {
        let mut points = Vec::new();
        let mut errors = Vec::new();
        for (n, l) in data.split(|&c| c == b'\n').enumerate() {
            let one = parse_lines(l, &opts);
            points.extend(one.iter().map(|p| (p.series_key.to_string(), p.to_owned_point())));
            errors.extend(one.errors().iter().map(|e| (n + 1, e.kind.to_string())));
        }
        let got: Vec<_> = batch
            .iter()
            .map(|p| (p.series_key.to_string(), p.to_owned_point()))
            .collect();
        assert_eq!(got, points);
        assert_eq!(batch.error_count(), errors.len());
        errors.truncate(sundial_lineproto::MAX_LINE_ERRORS);
        let got: Vec<_> = batch.errors().iter().map(|e| (e.line, e.kind.to_string())).collect();
        assert_eq!(got, errors);
    }
});
