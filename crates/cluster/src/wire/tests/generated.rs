//! Generated input: round trips, and garbage that must not panic.

use proptest::prelude::*;
use sundial_lineproto::{OwnedFieldValue, OwnedPoint};

use super::*;

// ---- generated input ---------------------------------------------------

/// Text heavy in the characters line protocol escapes.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-c ,=\\\\\"\t#é日0-9]{{1,{max}}}")).expect("regex")
}

fn value() -> impl Strategy<Value = OwnedFieldValue> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(OwnedFieldValue::Float),
        any::<i64>().prop_map(OwnedFieldValue::Integer),
        any::<u64>().prop_map(OwnedFieldValue::Unsigned),
        any::<bool>().prop_map(OwnedFieldValue::Boolean),
        proptest::string::string_regex("[a-c \"\\\\\n,=é]{0,12}")
            .expect("regex")
            .prop_map(OwnedFieldValue::String),
    ]
}

fn owned_point() -> impl Strategy<Value = OwnedPoint> {
    (
        text(6),
        proptest::collection::vec((text(5), text(5)), 0..4),
        proptest::collection::vec((text(5), value()), 1..5),
        sundial_lineproto::MIN_NANO_TIME..=sundial_lineproto::MAX_NANO_TIME,
    )
        .prop_map(|(measurement, tags, fields, timestamp)| OwnedPoint {
            measurement,
            tags,
            fields,
            timestamp,
        })
}

/// Up to three lines of `measurement[,tag=value…] field=value[,…] [time]`
/// whose tokens are mostly letters, with escapes, lone backslashes and
/// bare separators mixed in.
const LINES: &str = concat!(
    r#"((a|b|c|é|\\[,= \\]|\\|[,= ]){1,5}"#,
    r#"(,(a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}=(a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}){0,3}"#,
    r#" (a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}=(1|-2.5e3|3i|4u|t|FALSE|"[a-c\\ ",=]{0,5}")"#,
    r#"(,(a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}=(1|3i|"x")){0,2}( [0-9]{1,3})?\n){1,3}"#,
);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the parser makes of lines written from generated points,
    /// the wire carries unchanged.
    #[test]
    fn generated_points_round_trip(points in proptest::collection::vec(owned_point(), 1..6)) {
        let body: String = points.iter().map(|p| p.to_line() + "\n").collect();
        round_trip_body(&body);
    }


    #[test]
    fn garbage_never_panics(mut buf in proptest::collection::vec(any::<u8>(), 0..256), v1 in any::<bool>()) {
        if v1 && !buf.is_empty() {
            buf[0] = VERSION;
        }
        check_garbage(&buf);
    }

    #[test]
    fn mutated_payloads_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let body = "cpu,host=a\\ b,region=us usage=1.5,n=3i,u=7u,ok=true,s=\"x\\\"y\" 1\nm v=2 3\n";
        let parsed = parse_lines(body.as_bytes(), &opts());
        let mut buf = encode_all(&parsed.iter().collect::<Vec<_>>());
        for (at, byte) in edits {
            let n = buf.len();
            buf[at % n] = byte;
        }
        let cut = cut % (buf.len() + 1);
        check_garbage(&buf);
        check_garbage(&buf[..cut]);
    }
}

proptest! {
    // About one body in five has a good line.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The same for lines shaped like line protocol, with noise (escapes,
    /// separators) inside their tokens.
    #[test]
    fn generated_lines_round_trip(body in LINES) {
        round_trip_body(&body);
    }
}

/// A decoded point is as good as a parsed one: its line protocol parses
/// back to the same point.
fn assert_reparses(p: &Point<'_>) {
    let line = p.to_line();
    let parsed = parse_lines(line.as_bytes(), &opts());
    assert!(
        parsed.errors().is_empty() && parsed.len() == 1,
        "{line:?}: {:?}",
        parsed.errors()
    );
    assert_same(p, &parsed.get(0));
}

/// Keys and names over an alphabet of separators, escapes and the bytes
/// line protocol treats specially.
fn wild(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("(a|b|\\\\|,|=| |\t|\r|#|\\x00|\"|é){{0,{max}}}"))
        .expect("regex")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Whatever series key and field names the decoder accepts, the point
    /// survives line protocol.
    #[test]
    fn accepted_points_reparse(
        key in wild(12),
        names in proptest::collection::vec(wild(4), 1..4),
    ) {
        let fields: Vec<(&[u8], u8, Vec<u8>)> = names
            .iter()
            .map(|n| (n.as_bytes(), TYPE_BOOLEAN, vec![1]))
            .collect();
        let buf = payload(&[point(key.as_bytes(), 1, &fields)]);
        if let Ok(d) = decode_points(&buf, &DecodeLimits::default()) {
            for p in d.iter() {
                assert_reparses(&p);
            }
        }
    }
}

/// Decodes `buf`; when that works, re-encoding gives a payload that
/// decodes to the same points.
fn check_garbage(buf: &[u8]) {
    let Ok(d) = decode_points(buf, &DecodeLimits::default()) else {
        return;
    };
    let points = d.points();
    let again = encode_all(&points);
    let d2 = decode_points(&again, &DecodeLimits::default()).unwrap();
    assert_eq!(d2.len(), points.len());
    for (a, b) in points.iter().zip(d2.iter()) {
        assert_same(a, &b);
        assert_reparses(a);
    }
}
