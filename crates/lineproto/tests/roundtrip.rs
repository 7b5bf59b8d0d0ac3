//! Property: for any representable point, `parse(serialize(p)) == p`.

use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use sundial_lineproto::{
    parse_lines, OwnedFieldValue, OwnedPoint, ParseOptions, Precision, MAX_NANO_TIME, MIN_NANO_TIME,
};

/// Keys and tag values: anything but characters line protocol cannot carry in
/// them (newline, tab and CR, which separate or are trimmed; a backslash, which
/// InfluxDB 1.x has no escape for before `,`/`=`/space or at the end; NUL).
fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ ,=\"'#.éµ日本-]{1,12}"
}

fn measurement() -> impl Strategy<Value = String> {
    // A leading '#' would make the line a comment, in InfluxDB too.
    key().prop_filter("not a comment", |m| !m.starts_with('#'))
}

fn value() -> impl Strategy<Value = OwnedFieldValue> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(OwnedFieldValue::Float),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE / 4.0),
            Just(f64::MAX),
            Just(f64::MIN)
        ]
        .prop_map(OwnedFieldValue::Float),
        any::<i64>().prop_map(OwnedFieldValue::Integer),
        any::<u64>().prop_map(OwnedFieldValue::Unsigned),
        any::<bool>().prop_map(OwnedFieldValue::Boolean),
        // Strings may hold anything, newlines, quotes and backslashes included.
        any::<String>().prop_map(OwnedFieldValue::String),
        "[\\\\\"\n, =]{0,8}".prop_map(OwnedFieldValue::String),
    ]
}

fn point() -> impl Strategy<Value = OwnedPoint> {
    (
        measurement(),
        hash_map(key(), key(), 0..6),
        vec((key(), value()), 1..8),
        MIN_NANO_TIME..=MAX_NANO_TIME,
    )
        .prop_map(|(measurement, tags, fields, timestamp)| {
            let mut tags: Vec<(String, String)> = tags.into_iter().collect();
            tags.sort();
            // Unique field keys: the parser keeps the last of duplicates.
            let mut seen = std::collections::HashSet::new();
            let fields = fields
                .into_iter()
                .filter(|(k, _)| seen.insert(k.clone()))
                .collect();
            OwnedPoint {
                measurement,
                tags,
                fields,
                timestamp,
            }
        })
}

fn same_bits(a: &OwnedPoint, b: &OwnedPoint) -> bool {
    a.fields
        .iter()
        .zip(&b.fields)
        .all(|((_, x), (_, y))| match (x, y) {
            (OwnedFieldValue::Float(x), OwnedFieldValue::Float(y)) => x.to_bits() == y.to_bits(),
            _ => true,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_serialize_round_trip(p in point()) {
        let line = p.to_line();
        let opts = ParseOptions::new(Precision::Nanosecond, 0);
        let batch = parse_lines(line.as_bytes(), &opts);
        prop_assert!(batch.errors().is_empty(), "{line:?}: {:?}", batch.errors());
        prop_assert_eq!(batch.len(), 1);
        let got = batch.get(0).to_owned_point();
        prop_assert_eq!(&got, &p, "line {:?}", line);
        prop_assert!(same_bits(&got, &p));
        // The borrowed serializer writes the very same canonical line.
        prop_assert_eq!(batch.get(0).to_line(), line.clone());
        prop_assert_eq!(batch.get(0).series_key, p.series_key());
    }

    #[test]
    fn many_points_in_one_body(ps in vec(point(), 1..20)) {
        let body: String = ps.iter().map(|p| p.to_line() + "\n").collect();
        let batch = parse_lines(body.as_bytes(), &ParseOptions::new(Precision::Nanosecond, 0));
        prop_assert!(batch.errors().is_empty(), "{:?}", batch.errors());
        let got: Vec<OwnedPoint> = batch.iter().map(|p| p.to_owned_point()).collect();
        prop_assert_eq!(got, ps);
    }

    /// Arbitrary bytes never panic, and every line ends up either parsed or reported.
    #[test]
    fn arbitrary_bytes_never_panic(body in vec(any::<u8>(), 0..400)) {
        let batch = parse_lines(&body, &ParseOptions::new(Precision::Second, 0));
        for p in batch.iter() {
            prop_assert!(!p.fields.is_empty());
            let _ = p.to_line();
        }
    }
}
