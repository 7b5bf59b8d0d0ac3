//! One test per rule of the line protocol, plus the known crashers of other parsers.

use crate::*;
use std::borrow::Cow;

const T0: i64 = 1_700_000_000_123_456_789;

fn opts() -> ParseOptions {
    ParseOptions::new(Precision::Nanosecond, T0)
}

fn parse(s: &str) -> ParsedBatch<'_> {
    parse_lines(s.as_bytes(), &opts())
}

/// Parses one line that must be good.
fn one(s: &str) -> OwnedPoint {
    let b = parse(s);
    assert!(b.errors().is_empty(), "{s:?}: {:?}", b.errors());
    assert_eq!(b.len(), 1, "{s:?}");
    b.get(0).to_owned_point()
}

/// Parses one line that must be bad; returns its reason.
fn bad(s: &str) -> ParseErrorKind {
    let b = parse(s);
    assert_eq!(
        b.len(),
        0,
        "{s:?} parsed: {:?}",
        b.iter().map(|p| p.to_line()).collect::<Vec<_>>()
    );
    assert_eq!(b.errors().len(), 1, "{s:?}");
    b.errors()[0].kind.clone()
}

fn f(v: f64) -> OwnedFieldValue {
    OwnedFieldValue::Float(v)
}

#[test]
fn basic_point() {
    let p = one("weather,location=us-midwest,season=summer temperature=82 1465839830100400200");
    assert_eq!(p.measurement, "weather");
    assert_eq!(
        p.tags,
        vec![
            ("location".into(), "us-midwest".into()),
            ("season".into(), "summer".into())
        ]
    );
    assert_eq!(p.fields, vec![("temperature".into(), f(82.0))]);
    assert_eq!(p.timestamp, 1465839830100400200);
}

#[test]
fn measurement_escapes() {
    assert_eq!(one(r"cpu\,01 v=1").measurement, "cpu,01");
    assert_eq!(one(r"cpu\ load v=1").measurement, "cpu load");
    // '=' needs no escape in a measurement, and `\=` stays literal there.
    assert_eq!(one(r"a=b v=1").measurement, "a=b");
    assert_eq!(one(r"a\=b v=1").measurement, r"a\=b");
    // Other backslashes are kept.
    assert_eq!(one(r"a\b v=1").measurement, r"a\b");
    assert_eq!(one(r"a\\b v=1").measurement, r"a\\b");
    // As in 1.x's scanner, a separator right after a backslash is escaped even
    // when that backslash follows another one.
    assert_eq!(one(r"a\\,b v=1").measurement, r"a\,b");
    let p = one(r"m,t=x\\,u v=1");
    assert_eq!(p.tags, vec![("t".into(), r"x\,u".into())]);
    assert_eq!(bad(r"m,t=x\\,u=1 v=1"), ParseErrorKind::InvalidTagFormat);
    assert_eq!(bad(",t=1 v=1"), ParseErrorKind::MissingMeasurement);
}

#[test]
fn tag_escapes_and_series_key() {
    let b = parse(r"m,k\ 1=v\,1,k\=2=v\=2 f=1 1");
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    let p = b.get(0);
    assert_eq!(p.tags[0].key, "k 1");
    assert_eq!(p.tags[0].value, "v,1");
    assert_eq!(p.tags[1].key, "k=2");
    assert_eq!(p.tags[1].value, "v=2");
    assert_eq!(p.series_key, r"m,k\ 1=v\,1,k\=2=v\=2");
    assert!(matches!(p.tags[0].key, Cow::Owned(_)));
}

#[test]
fn tags_are_sorted_into_the_canonical_key() {
    let b = parse("cpu,region=us,host=a,az=1 v=1 1");
    let p = b.get(0);
    assert_eq!(p.series_key, "cpu,az=1,host=a,region=us");
    let keys: Vec<&str> = p.tags.iter().map(|t| t.key.as_ref()).collect();
    assert_eq!(keys, ["az", "host", "region"]);
    // Sorted input borrows the key straight from the body.
    let b = parse("cpu,az=1,host=a v=1 1");
    assert_eq!(b.get(0).series_key, "cpu,az=1,host=a");
}

#[test]
fn duplicate_tags_rejected() {
    assert_eq!(bad("cpu,host=a,host=b v=1"), ParseErrorKind::DuplicateTags);
    assert_eq!(
        bad("cpu,z=1,host=a,host=b v=1"),
        ParseErrorKind::DuplicateTags
    );
}

#[test]
fn tag_format_errors() {
    assert_eq!(bad("cpu, v=1"), ParseErrorKind::MissingTagKey);
    assert_eq!(bad("cpu,=a v=1"), ParseErrorKind::MissingTagKey);
    assert_eq!(bad("cpu,host= v=1"), ParseErrorKind::MissingTagValue);
    assert_eq!(bad("cpu,host v=1"), ParseErrorKind::MissingTagValue);
    assert_eq!(bad("cpu,host=a=b v=1"), ParseErrorKind::InvalidTagFormat);
    assert_eq!(bad("cpu,host=a"), ParseErrorKind::MissingFields);
}

#[test]
fn key_length_limit() {
    let long = "m".repeat(65536);
    assert_eq!(
        bad(&format!("{long} v=1")),
        ParseErrorKind::MaxKeyLength(65536)
    );
    let ok = "m".repeat(65535 - 5);
    // series key 65530 + "#!~#" + "v" = 65535: still fine.
    one(&format!("{ok} v=1"));
    let edge = "m".repeat(65535);
    assert_eq!(
        bad(&format!("{edge} v=1")),
        ParseErrorKind::MaxKeyLength(65540)
    );
    let err = parse(&format!("{long} v=1")).errors()[0].to_string();
    assert!(
        err.ends_with(": max key length exceeded: 65536 > 65535"),
        "{err}"
    );
    assert!(err.len() < 400, "error text is cut");
}

#[test]
fn floats() {
    let p = one("m a=1,b=-1.5,c=.5,d=1e3,e=-2.5E-3,g=5.,h=0,i=-0 1");
    let v: Vec<OwnedFieldValue> = p.fields.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        v,
        vec![
            f(1.0),
            f(-1.5),
            f(0.5),
            f(1000.0),
            f(-0.0025),
            f(5.0),
            f(0.0),
            f(-0.0)
        ]
    );
    if let OwnedFieldValue::Float(z) = v[7] {
        assert!(z.is_sign_negative());
    }
}

#[test]
fn float_rejections() {
    for s in [
        "m v=1.1.1",
        "m v=-",
        "m v=.",
        "m v=1x",
        "m v=1e",
        "m v=--1",
        "m v=1-",
    ] {
        assert_eq!(bad(s), ParseErrorKind::InvalidNumber, "{s}");
    }
    // NaN and Inf are not numbers here: InfluxDB reads them as bad booleans.
    assert_eq!(bad("m v=NaN"), ParseErrorKind::InvalidBoolean);
    assert_eq!(bad("m v=Inf"), ParseErrorKind::InvalidBoolean);
    assert_eq!(bad("m v=-Inf"), ParseErrorKind::InvalidNumber);
    assert_eq!(bad("m v=-NaN"), ParseErrorKind::InvalidNumber);
    assert_eq!(bad("m v=1e400"), ParseErrorKind::InvalidFloat);
    assert_eq!(bad("m v=-1e400"), ParseErrorKind::InvalidFloat);
}

#[test]
fn integers_and_unsigned() {
    let p =
        one("m a=1i,b=-9223372036854775808i,c=9223372036854775807i,d=0u,e=18446744073709551615u 1");
    let v: Vec<OwnedFieldValue> = p.fields.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        v,
        vec![
            OwnedFieldValue::Integer(1),
            OwnedFieldValue::Integer(i64::MIN),
            OwnedFieldValue::Integer(i64::MAX),
            OwnedFieldValue::Unsigned(0),
            OwnedFieldValue::Unsigned(u64::MAX),
        ]
    );
    assert_eq!(
        bad("m v=9223372036854775808i"),
        ParseErrorKind::IntegerOutOfRange("9223372036854775808".into())
    );
    assert_eq!(
        bad("m v=18446744073709551616u"),
        ParseErrorKind::InvalidUnsigned("18446744073709551616".into())
    );
    assert_eq!(bad("m v=-1u"), ParseErrorKind::InvalidUnsigned("-1".into()));
    for s in [
        "m v=1.5i", "m v=9i10", "m v=1e3i", "m v=i", "m v=-i", "m v=1iu", "m v=1ii",
    ] {
        assert!(
            bad(s) == ParseErrorKind::InvalidNumber || bad(s) == ParseErrorKind::InvalidBoolean,
            "{s}"
        );
    }
}

#[test]
fn booleans() {
    for (s, want) in [
        ("t", true),
        ("T", true),
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("f", false),
        ("F", false),
        ("false", false),
        ("False", false),
        ("FALSE", false),
    ] {
        let p = one(&format!("m v={s} 1"));
        assert_eq!(p.fields[0].1, OwnedFieldValue::Boolean(want), "{s}");
    }
    for s in ["tru", "TRue", "yes", "fals", "t1"] {
        assert_eq!(
            bad(&format!("m v={s}")),
            ParseErrorKind::InvalidBoolean,
            "{s}"
        );
    }
}

#[test]
fn strings() {
    let p = one(r#"m s="hello, \"world\" = \\ \n",t="" 1"#);
    assert_eq!(
        p.fields[0].1,
        OwnedFieldValue::String(r#"hello, "world" = \ \n"#.into())
    );
    assert_eq!(p.fields[1].1, OwnedFieldValue::String(String::new()));
    // Newlines inside quotes belong to the value, and line numbers keep counting.
    let b = parse("m s=\"a\nb\" 1\nm v=oops\n");
    assert_eq!(b.len(), 1);
    assert_eq!(b.get(0).fields[0].value, FieldValue::String("a\nb".into()));
    assert_eq!(b.errors()[0].line, 3);
    // Commas and spaces inside strings are data.
    let p = one(r#"m s="a b,c=d" 1"#);
    assert_eq!(p.fields[0].1, OwnedFieldValue::String("a b,c=d".into()));
}

#[test]
fn string_errors() {
    assert_eq!(bad(r#"m s="open"#), ParseErrorKind::UnbalancedQuotes);
    assert_eq!(bad(r#"m s="open\""#), ParseErrorKind::UnbalancedQuotes);
    let big = "x".repeat(MAX_STRING_FIELD_LENGTH + 1);
    assert_eq!(
        bad(&format!("m s=\"{big}\"")),
        ParseErrorKind::StringFieldTooLong(MAX_STRING_FIELD_LENGTH + 1)
    );
    let ok = "x".repeat(MAX_STRING_FIELD_LENGTH);
    one(&format!("m s=\"{ok}\" 1"));
    // An unclosed quote costs only its own line.
    let b = parse("m s=\"open 1\nm v=1 2\nm v=2 3");
    assert_eq!(b.len(), 2);
    assert_eq!(b.errors()[0].line, 1);
}

#[test]
fn field_format_errors() {
    assert_eq!(bad("m"), ParseErrorKind::MissingFields);
    assert_eq!(bad("m "), ParseErrorKind::MissingFields);
    assert_eq!(bad("m,t=1 "), ParseErrorKind::MissingFields);
    assert_eq!(bad("m =1"), ParseErrorKind::MissingFieldKey);
    assert_eq!(bad("m v=1,=2"), ParseErrorKind::MissingFieldKey);
    assert_eq!(bad("m v=1,"), ParseErrorKind::MissingFieldKey);
    assert_eq!(bad("m v="), ParseErrorKind::MissingFieldValue);
    assert_eq!(bad("m v= 1"), ParseErrorKind::MissingFieldValue);
    assert_eq!(bad("m v=,w=1"), ParseErrorKind::MissingFieldValue);
    assert_eq!(bad("m v"), ParseErrorKind::InvalidFieldFormat);
    assert_eq!(bad("m v w=1"), ParseErrorKind::InvalidFieldFormat);
}

#[test]
fn field_key_escapes() {
    let p = one(r"m f\ 1=1,f\,2=2,f\=3=3 1");
    let keys: Vec<&str> = p.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["f 1", "f,2", "f=3"]);
}

#[test]
fn duplicate_fields_last_wins() {
    let p = one("m a=1,b=2,a=3,a=4i 1");
    assert_eq!(
        p.fields,
        vec![
            ("a".into(), OwnedFieldValue::Integer(4)),
            ("b".into(), f(2.0))
        ]
    );
}

#[test]
fn many_fields_dedupe() {
    let fields: Vec<String> = (0..300).map(|i| format!("f{i}={i}")).collect();
    let line = format!("m {},f7=99 1", fields.join(","));
    let p = one(&line);
    assert_eq!(p.fields.len(), 300);
    assert_eq!(p.fields[7], ("f7".into(), f(99.0)));
}

#[test]
fn timestamps_and_precision() {
    let cases = [
        (Precision::Nanosecond, 1_i64),
        (Precision::Microsecond, 1_000),
        (Precision::Millisecond, 1_000_000),
        (Precision::Second, 1_000_000_000),
        (Precision::Minute, 60_000_000_000),
        (Precision::Hour, 3_600_000_000_000),
    ];
    for (prec, mult) in cases {
        let b = parse_lines(b"m v=1 42\nm v=1 -3", &ParseOptions::new(prec, T0));
        assert_eq!(b.get(0).timestamp, 42 * mult);
        assert_eq!(b.get(1).timestamp, -3 * mult);
        // Lines without a time get the default time, truncated to the precision.
        let b = parse_lines(b"m v=1", &ParseOptions::new(prec, T0));
        assert_eq!(b.get(0).timestamp, T0 - T0.rem_euclid(mult));
    }
    // Overflow when scaling, and the InfluxDB range ends.
    let h = ParseOptions::new(Precision::Hour, T0);
    let b = parse_lines(b"m v=1 9223372036854775807", &h);
    assert_eq!(b.errors()[0].kind, ParseErrorKind::TimeOutsideRange);
    assert_eq!(
        bad("m v=1 9223372036854775807"),
        ParseErrorKind::TimeOutsideRange
    );
    assert_eq!(
        bad("m v=1 -9223372036854775808"),
        ParseErrorKind::TimeOutsideRange
    );
    assert_eq!(
        bad("m v=1 99999999999999999999"),
        ParseErrorKind::TimeOutsideRange
    );
    assert_eq!(one("m v=1 9223372036854775806").timestamp, MAX_NANO_TIME);
    assert_eq!(one("m v=1 -9223372036854775806").timestamp, MIN_NANO_TIME);
}

#[test]
fn bad_timestamps() {
    for s in [
        "m v=1 12a",
        "m v=1 1.5",
        "m v=1 -",
        "m v=1 1 2",
        "m v=1 0x10",
        "m v=1 1e9",
    ] {
        assert_eq!(bad(s), ParseErrorKind::BadTimestamp, "{s}");
    }
}

#[test]
fn whitespace_comments_blank_lines_crlf() {
    let body =
        "# a comment\n\n   \n  m v=1 1\r\nm v=2 2\r\n\t# indented comment\nm v=3 3   \nm v=4\r\n";
    let b = parse(body);
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    let got: Vec<(i64, String)> = b.iter().map(|p| (p.timestamp, p.to_line())).collect();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].1, "m v=1 1");
    assert_eq!(got[3].0, T0);
    assert_eq!(b.lines(), 8);
    // Several spaces between sections are fine.
    one("m,t=1   v=1   5");
}

#[test]
fn errors_carry_line_numbers_and_good_lines_survive() {
    let body = "m v=1 1\nm v=bad 2\n\nm,t= v=1 3\nm v=4 4\n";
    let b = parse(body);
    assert_eq!(b.len(), 2);
    let lines: Vec<usize> = b.errors().iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 4]);
    assert_eq!(
        b.errors()[0].to_string(),
        "unable to parse 'm v=bad 2': invalid boolean"
    );
    assert_eq!(
        b.errors()[1].to_string(),
        "unable to parse 'm,t= v=1 3': missing tag value"
    );
}

#[test]
fn invalid_utf8_loses_only_its_line() {
    let mut body = b"m v=1 1\n".to_vec();
    body.extend_from_slice(b"m\xff v=1 2\n");
    body.extend_from_slice("m,t=\u{e9} v=3 3\n".as_bytes());
    let b = parse_lines(&body, &opts());
    assert_eq!(b.len(), 2);
    assert_eq!(b.errors()[0].kind, ParseErrorKind::InvalidUtf8);
    assert_eq!(b.errors()[0].line, 2);
    assert_eq!(b.get(1).tags[0].value, "\u{e9}");
}

// The known crashers of other parsers.

#[test]
fn crasher_string_followed_by_equals() {
    assert_eq!(
        bad(r#"m f="blah"=123,r 1531703600000000000"#),
        ParseErrorKind::InvalidFieldFormat
    );
}

#[test]
fn crasher_exactly_100_tags() {
    let tags: Vec<String> = (0..100).map(|i| format!("tag{i:03}=v{i}")).collect();
    let p = one(&format!("m,{} v=1 1", tags.join(",")));
    assert_eq!(p.tags.len(), 100);
    // Reversed order gives the same canonical key.
    let rev: Vec<String> = tags.iter().rev().cloned().collect();
    let q = one(&format!("m,{} v=1 1", rev.join(",")));
    assert_eq!(p.series_key(), q.series_key());
}

#[test]
fn crasher_escaped_comma_measurement_without_fields() {
    assert_eq!(
        bad(r"cpu\,01,host=serverA,region=us-west"),
        ParseErrorKind::MissingFields
    );
}

#[test]
fn crasher_tags_without_values() {
    assert_eq!(
        bad("log,host=domain.1,service=service-1,a,b,c d=1"),
        ParseErrorKind::MissingTagValue
    );
}

#[test]
fn hash_id_is_fnv64a_of_series_key() {
    let b = parse("cpu,region=us,host=a v=1 1");
    assert_eq!(b.get(0).hash_id(), fnv64a(b"cpu,host=a,region=us"));
}

#[test]
fn serializer_writes_canonical_form() {
    let b = parse(r#"m\ 1,z=1,a=x\,y f\=1=1.5,i=-3i,u=7u,b=T,s="q\"\\" 99"#);
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    let line = b.get(0).to_line();
    assert_eq!(
        line,
        r#"m\ 1,a=x\,y,z=1 f\=1=1.5,i=-3i,u=7u,b=true,s="q\"\\" 99"#
    );
    let again = parse(&line);
    assert_eq!(again.get(0).to_owned_point(), b.get(0).to_owned_point());
}

#[test]
fn value_count_and_empty_body() {
    let b = parse("m a=1,b=2 1\nm c=3 2");
    assert_eq!(b.value_count(), 3);
    let e = parse("");
    assert!(e.is_empty() && e.errors().is_empty());
    assert_eq!(e.lines(), 0);
}

/// The arenas are sized from the first point, scaled by bytes: a first line with
/// many fields followed by a million blank lines must not ask for terabytes
/// (with the line count alone it asked for 10^10 fields and aborted).
#[test]
fn a_fat_first_line_does_not_blow_up_the_arena_reservation() {
    let mut body: String = (0..10_000)
        .map(|i| format!("f{i}=1"))
        .collect::<Vec<_>>()
        .join(",");
    body.insert_str(0, "m ");
    body.push_str(&"\n".repeat(1_000_000));
    body.push_str("m g=2");
    let b = parse(&body);
    assert!(b.errors().is_empty());
    assert_eq!(b.len(), 2);
    assert_eq!(b.value_count(), 10_001);
    assert_eq!(b.lines(), 1_000_001);
}

/// Many distinct series keys: the series map stays linear whatever the keys
/// hash to, and gives up (without changing results) when nothing repeats.
#[test]
fn many_distinct_series_parse_like_single_lines() {
    let body: String = (0..5_000)
        .map(|i| format!("measurement_{i:08},host=h{i},region=r{} v={i}i\n", i % 7))
        .collect();
    let b = parse(&body);
    assert_eq!(b.len(), 5_000);
    for (i, p) in b.iter().enumerate() {
        assert_eq!(
            p.series_key,
            format!("measurement_{i:08},host=h{i},region=r{}", i % 7)
        );
        assert_eq!(p.fields[0].value, FieldValue::Integer(i as i64));
    }
}

#[test]
fn rejected_lines_past_the_cap_are_counted_not_kept() {
    let n = MAX_LINE_ERRORS * 3;
    let mut body = "x\n".repeat(n);
    body.push_str("cpu v=1 1\n");
    let b = parse(&body);
    assert_eq!(b.len(), 1);
    assert_eq!(b.error_count(), n);
    assert_eq!(b.errors().len(), MAX_LINE_ERRORS);
    assert_eq!(b.errors()[MAX_LINE_ERRORS - 1].line, MAX_LINE_ERRORS);
    let small = parse("x\ncpu v=1 1\ny\n");
    assert_eq!((small.error_count(), small.errors().len()), (2, 2));
}

#[test]
fn duplicate_fields_in_wide_points_last_wins() {
    // Past 32 fields duplicates are found through a map, not the fingerprint scan.
    let mut line = String::from("m ");
    for i in 0..100 {
        line.push_str(&format!("f{i}={i}i,"));
    }
    line.push_str("f5=500i,f70=\"late\",f99=t 1\n");
    // Twice: the second line follows the first's keys up to the duplicates.
    let body = format!("{line}{line}");
    let b = parse(&body);
    assert!(b.errors().is_empty(), "{:?}", b.errors());
    for p in b.iter() {
        assert_eq!(p.fields.len(), 100);
        let get = |k: &str| &p.fields.iter().find(|f| f.key == k).expect(k).value;
        assert_eq!(get("f5"), &FieldValue::Integer(500));
        assert_eq!(get("f70"), &FieldValue::String("late".into()));
        assert_eq!(get("f99"), &FieldValue::Boolean(true));
        assert_eq!(get("f98"), &FieldValue::Integer(98));
        // Body order of first appearance is kept.
        assert_eq!(p.fields[70].key, "f70");
    }
}

#[test]
fn a_line_of_300k_fields_parses() {
    let n = 300_000;
    let mut line = String::from("m ");
    for i in 0..n {
        line.push_str(&format!("f{i}={i},"));
    }
    line.push_str("f0=-1 1");
    let b = parse(&line);
    assert_eq!(b.len(), 1, "{:?}", b.errors());
    let p = b.get(0);
    assert_eq!(p.fields.len(), n);
    assert_eq!(p.fields[0].value, FieldValue::Float(-1.0));
    assert_eq!(p.fields[n - 1].value, FieldValue::Float((n - 1) as f64));
}
