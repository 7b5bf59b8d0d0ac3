//! Property: a body parses exactly as its lines do one by one.
//!
//! The parser carries context from line to line inside a body (a series key
//! seen before is not parsed again, the previous line's tag and field keys are
//! tried first, the last tag-sorting permutation is reused). None of that may
//! change a result: the lines are drawn from small pools so that keys repeat,
//! tags come in shuffled orders, keys collide, escapes appear and many lines
//! are bad.

use proptest::prelude::*;
use proptest::sample::select;
use sundial_lineproto::{parse_chunk, parse_lines, Cursor, ParseOptions, Precision};

// Long names too: short series keys are parsed every time, not looked up.
const MEASUREMENTS: &[&str] = &[
    "cpu",
    "disk",
    "m\\ x",
    "m\\,y",
    "c=pu",
    "a_measurement_with_a_rather_long_name",
];
const TAG_KEYS: &[&str] = &[
    "host",
    "region",
    "service",
    "service_version",
    "service_environment",
    "service_",
    "a\\,b",
    "a\\=b",
    "zone",
];
const TAG_VALUES: &[&str] = &[
    "h1",
    "h2",
    "us-west",
    "x\\ y",
    "",
    "v=w",
    "é",
    "host-0123456789abcdef.example.com",
];
const FIELD_KEYS: &[&str] = &["usage_user", "usage_system", "x", "f\\ g", "f\\=g", ""];
const VALUES: &[&str] = &[
    "58.13171323049762",
    "0.1",
    "-3.25",
    ".5",
    "1.",
    "123456789012345678.5",
    "1e5",
    "12i",
    "-9223372036854775808i",
    "9223372036854775808i",
    "7u",
    "t",
    "FALSE",
    "\"s p,a=c\\\"e\"",
    "1.2.3",
    "",
    "nope",
];
const TIMESTAMPS: &[&str] = &[
    "",
    " 1",
    " -1",
    " 1451606400000000000",
    " 99999999999999999999",
    " 1x",
];

fn line() -> impl Strategy<Value = String> {
    (
        select(MEASUREMENTS),
        proptest::collection::vec((select(TAG_KEYS), select(TAG_VALUES)), 0..6),
        proptest::collection::vec((select(FIELD_KEYS), select(VALUES)), 0..5),
        select(TIMESTAMPS),
    )
        .prop_map(|(m, tags, fields, ts)| {
            let mut s = m.to_string();
            for (k, v) in tags {
                s += &format!(",{k}={v}");
            }
            s.push(' ');
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s += &fields.join(",");
            s + ts
        })
}

/// A pool of lines, then a body drawing from it with repeats.
fn body() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(line(), 1..8)
        .prop_flat_map(|pool| proptest::collection::vec(select(pool), 1..40))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_body_parses_as_its_lines_do(lines in body()) {
        let opts = ParseOptions::new(Precision::Nanosecond, 42);
        let text = lines.join("\n");
        let whole = parse_lines(text.as_bytes(), &opts);

        let mut points = Vec::new();
        let mut errors = Vec::new();
        for (n, l) in lines.iter().enumerate() {
            let one = parse_lines(l.as_bytes(), &opts);
            for p in one.iter() {
                points.push((p.series_key.to_string(), p.to_owned_point()));
            }
            for e in one.errors() {
                errors.push((n + 1, e.text.clone(), e.kind.to_string()));
            }
        }
        let got: Vec<_> = whole
            .iter()
            .map(|p| (p.series_key.to_string(), p.to_owned_point()))
            .collect();
        prop_assert_eq!(got, points, "body {:?}", text);
        let got: Vec<_> = whole
            .errors()
            .iter()
            .map(|e| (e.line, e.text.clone(), e.kind.to_string()))
            .collect();
        prop_assert_eq!(got, errors, "body {:?}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Parsed a chunk at a time (as the gateway does with big bodies), a body gives
    /// the same points, errors and line numbers as parsed at once, also when a
    /// string value spans lines.
    #[test]
    fn a_body_parses_the_same_in_chunks(
        lines in body(),
        multiline in proptest::option::of(0usize..40),
        chunk in 1usize..6,
        crlf in any::<bool>(),
    ) {
        let opts = ParseOptions::new(Precision::Nanosecond, 42);
        let mut lines = lines;
        if let Some(at) = multiline {
            let at = at.min(lines.len());
            lines.insert(at, "log msg=\"two\nlines, a=b\" 7".to_string());
        }
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        let whole = parse_lines(text.as_bytes(), &opts);
        let mut points = Vec::new();
        let mut errors = Vec::new();
        let mut total_lines = 0;
        let mut at = Some(Cursor::START);
        let mut rounds = 0;
        while let Some(c) = at {
            let part = parse_chunk(text.as_bytes(), c, chunk, &opts);
            prop_assert!(part.len() <= chunk);
            points.extend(part.iter().map(|p| (p.series_key.to_string(), p.to_owned_point())));
            errors.extend(part.errors().iter().map(|e| (e.line, e.text.clone(), e.kind.to_string())));
            total_lines += part.lines();
            at = part.next();
            rounds += 1;
            prop_assert!(rounds <= lines.len() + 1, "no progress");
        }
        let got: Vec<_> = whole
            .iter()
            .map(|p| (p.series_key.to_string(), p.to_owned_point()))
            .collect();
        prop_assert_eq!(points, got, "body {:?}", text);
        let got: Vec<_> = whole
            .errors()
            .iter()
            .map(|e| (e.line, e.text.clone(), e.kind.to_string()))
            .collect();
        prop_assert_eq!(errors, got, "body {:?}", text);
        prop_assert_eq!(total_lines, whole.lines(), "body {:?}", text);
    }
}

/// The same check on TSBS-shaped bodies: unsorted tags, 10 fields, repeated
/// and unique series.
#[test]
fn tsbs_bodies_parse_as_their_lines_do() {
    for hosts in [1, 7, 300] {
        let body = sundial_tsbs::cpu_only_body(300, hosts);
        let opts = ParseOptions::new(Precision::Nanosecond, 0);
        let whole = parse_lines(body.as_bytes(), &opts);
        assert!(whole.errors().is_empty());
        assert_eq!(whole.len(), 300);
        for (p, l) in whole.iter().zip(body.lines()) {
            let one = parse_lines(l.as_bytes(), &opts);
            assert_eq!(p.series_key, one.get(0).series_key);
            assert_eq!(p.to_owned_point(), one.get(0).to_owned_point());
        }
    }
}
