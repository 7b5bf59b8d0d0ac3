//! Hand-built payloads for the error cases.

use sundial_lineproto::{MAX_NANO_TIME, MIN_NANO_TIME};

use super::*;
use crate::wire::decode::PAIRWISE_MAX;
use crate::wire::messages::quote;

fn err(buf: &[u8]) -> WireError {
    err_with(buf, &DecodeLimits::default())
}

fn err_with(buf: &[u8], limits: &DecodeLimits) -> WireError {
    match decode_points(buf, limits) {
        Ok(d) => panic!("decoded {} points from {buf:?}", d.len()),
        Err(e) => e,
    }
}

/// The error of a payload whose second point is `p` (the first is good).
fn point_err(p: Vec<u8>) -> PointError {
    match err(&payload(&[good(), p])) {
        WireError::Point { index: 1, error } => error,
        e => panic!("{e}"),
    }
}

fn key_err(key: &str) -> KeyProblem {
    match point_err(point(key.as_bytes(), 1, &[float(1.0)])) {
        PointError::SeriesKey { key: k, problem } => {
            assert!(k.starts_with('"'), "{k}");
            problem
        }
        e => panic!("{key:?}: {e}"),
    }
}

#[test]
fn hand_built_payload_decodes() {
    let fields = [
        (&b"f"[..], TYPE_FLOAT, 2.5f64.to_le_bytes().to_vec()),
        (b"i", TYPE_INTEGER, uv(zigzag(-3))),
        (b"u", TYPE_UNSIGNED, uv(u64::MAX)),
        (b"b", TYPE_BOOLEAN, vec![1]),
        (b"s", TYPE_STRING, [uv(2), b"ok".to_vec()].concat()),
    ];
    let buf = payload(&[point(b"m,a=1,b=2", -7, &fields)]);
    let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
    assert_eq!(
        d.get(0).unwrap().to_line(),
        "m,a=1,b=2 f=2.5,i=-3i,u=18446744073709551615u,b=true,s=\"ok\" -7"
    );
}

#[test]
fn rejects_bad_framing() {
    assert_eq!(err(&[]), WireError::Empty);
    assert_eq!(err(&[2, 0]), WireError::UnknownVersion(2));
    assert_eq!(err(&[0]), WireError::UnknownVersion(0));
    assert!(matches!(
        err(&[VERSION]),
        WireError::Header(ReadError::Truncated { offset: 1, .. })
    ));
    let mut b = vec![VERSION];
    b.extend([0xff; 10]);
    assert!(matches!(
        err(&b),
        WireError::Header(ReadError::VarintOverflow { offset: 1, .. })
    ));
    // Fewer points than announced.
    let mut b = payload(&[good()]);
    b[1] = 2;
    assert!(matches!(
        err(&b),
        WireError::Point {
            index: 1,
            error: PointError::Read(ReadError::Truncated { .. })
        }
    ));
    // More bytes than the points take.
    let mut b = payload(&[good()]);
    let len = b.len();
    b.extend([0, 0]);
    assert_eq!(
        err(&b),
        WireError::TrailingBytes {
            offset: len,
            count: 2
        }
    );
}

#[test]
fn enforces_limits() {
    let limits = DecodeLimits {
        max_points: 2,
        max_string_len: 4,
        max_key_len: 16,
    };
    let three = payload(&[good(), good(), good()]);
    assert_eq!(
        err_with(&three, &limits),
        WireError::TooManyPoints { count: 3, max: 2 }
    );
    assert!(decode_points(&payload(&[good(), good()]), &limits).is_ok());

    let key = "m,t=0123456789ab"; // 16 bytes: at the limit
    assert!(decode_points(&payload(&[point(key.as_bytes(), 1, &[])]), &limits).is_err());
    let at_limit = payload(&[point(key.as_bytes(), 1, &[float(1.0)])]);
    // 16 + 4 + 1 > 16: the field key is too long.
    assert!(matches!(
        err_with(&at_limit, &limits),
        WireError::Point {
            error: PointError::FieldKeyTooLong {
                len: 21,
                max: 16,
                ..
            },
            ..
        }
    ));
    let long = payload(&[point(b"m,t=0123456789abc", 1, &[float(1.0)])]);
    assert!(matches!(
        err_with(&long, &limits),
        WireError::Point {
            error: PointError::KeyTooLong { len: 17, max: 16 },
            ..
        }
    ));
    let limits = DecodeLimits {
        max_key_len: 64,
        ..limits
    };
    let s = |v: &[u8]| {
        payload(&[point(
            b"m",
            1,
            &[(b"s", TYPE_STRING, [uv(v.len() as u64), v.to_vec()].concat())],
        )])
    };
    assert!(decode_points(&s(b"abcd"), &limits).is_ok());
    assert!(matches!(
        err_with(&s(b"abcde"), &limits),
        WireError::Point {
            error: PointError::StringTooLong { len: 5, max: 4, .. },
            ..
        }
    ));
    // A length far past the limit is refused before anything is read.
    let mut b = payload(&[]);
    b.truncate(1);
    b.extend(uv(1));
    b.extend(uv(u64::MAX));
    assert!(matches!(
        err(&b),
        WireError::Point {
            error: PointError::KeyTooLong { .. },
            ..
        }
    ));
}

#[test]
fn huge_counts_are_not_trusted() {
    let all = DecodeLimits {
        max_points: usize::MAX,
        max_string_len: usize::MAX,
        max_key_len: usize::MAX,
    };
    let mut b = vec![VERSION];
    b.extend(uv(u64::MAX));
    b.extend(good());
    assert!(matches!(
        err_with(&b, &all),
        WireError::Point { index: 1, .. }
    ));
    // A point announcing 2^62 fields, a key length and a string length
    // near 2^64.
    let mut p = uv(1);
    p.extend(b"m");
    p.extend(uv(0));
    p.extend(uv(1 << 62));
    let b = payload(&[p]);
    assert!(matches!(
        err_with(&b, &all),
        WireError::Point {
            error: PointError::Read(ReadError::Truncated { .. }),
            ..
        }
    ));
    let b = payload(&[[uv(u64::MAX), b"m".to_vec()].concat()]);
    assert!(err_with(&b, &all).to_string().contains("series key"));
    let b = payload(&[point(
        b"m",
        0,
        &[(
            b"s",
            TYPE_STRING,
            [uv(u64::MAX - 1), b"x".to_vec()].concat(),
        )],
    )]);
    assert!(err_with(&b, &all).to_string().contains("string value"));
}

#[test]
fn rejects_bad_series_keys() {
    use KeyProblem as K;
    let tag = |s: &str| quote(s);
    assert_eq!(key_err(",t=1"), K::EmptyMeasurement);
    assert_eq!(key_err(",t\\ x=1"), K::EmptyMeasurement);
    assert_eq!(key_err("m,"), K::EmptyTagKey);
    assert_eq!(key_err("m,=1"), K::EmptyTagKey);
    assert_eq!(key_err("m\\ ,=1"), K::EmptyTagKey);
    assert_eq!(key_err("m,t=1,"), K::EmptyTagKey);
    assert_eq!(key_err("m,t"), K::MissingEquals { tag: tag("t") });
    assert_eq!(key_err("m,t,u=1"), K::MissingEquals { tag: tag("t") });
    assert_eq!(key_err("m,t\\=1"), K::MissingEquals { tag: tag("t=1") });
    assert_eq!(key_err("m,t="), K::EmptyTagValue { tag: tag("t") });
    assert_eq!(key_err("m,t=,u=1"), K::EmptyTagValue { tag: tag("t") });
    assert_eq!(key_err("m,t\\ =,u=1"), K::EmptyTagValue { tag: tag("t ") });
    assert_eq!(key_err("m,t=1=2"), K::EqualsInTagValue { tag: tag("t") });
    assert_eq!(key_err("m,t=\\ 1=2"), K::EqualsInTagValue { tag: tag("t") });
    assert_eq!(key_err("m x"), K::UnescapedSpace { at: 1 });
    assert_eq!(key_err("m,t=a b"), K::UnescapedSpace { at: 5 });
    assert_eq!(key_err("m,t b=a"), K::UnescapedSpace { at: 3 });
    assert_eq!(key_err("m\n,t=1"), K::Newline { at: 1 });
    assert_eq!(key_err("m,t=1\\\n"), K::Newline { at: 6 });
    assert_eq!(key_err("#m"), K::BadFirstByte("'#'"));
    assert_eq!(key_err("\tm"), K::BadFirstByte("a tab"));
    assert_eq!(key_err("\rm,t=1"), K::BadFirstByte("a carriage return"));
    assert_eq!(key_err("\0m"), K::BadFirstByte("a NUL byte"));
    assert_eq!(key_err("m\\"), K::DanglingBackslash);
    assert_eq!(key_err("m,t=1\\"), K::DanglingBackslash);
    assert_eq!(key_err("m,t=1\\\\"), K::DanglingBackslash);
    assert_eq!(
        key_err("m,b=1,a=2"),
        K::TagsOutOfOrder {
            before: tag("b"),
            after: tag("a")
        }
    );
    assert_eq!(
        key_err("m,service_version=1,service_environment=2"),
        K::TagsOutOfOrder {
            before: tag("service_version"),
            after: tag("service_environment")
        }
    );
    assert_eq!(key_err("m,a=1,a=2"), K::DuplicateTag { tag: tag("a") });
    assert_eq!(key_err("m\\ x,a=1,a=2"), K::DuplicateTag { tag: tag("a") });
    // Order is by unescaped key: "a b" < "a,b" < "a=b" < "ab" by bytes.
    assert!(decode_points(
        &payload(&[point(b"m,a\\ b=1,a\\,b=1,a\\=b=1,ab=1", 1, &[float(1.0)])]),
        &DecodeLimits::default()
    )
    .is_ok());
    assert_eq!(
        key_err("m,a\\=b=1,a\\,b=1"),
        K::TagsOutOfOrder {
            before: tag("a=b"),
            after: tag("a,b")
        }
    );
    // "a" and "a\0": equal 8-byte prefixes, the shorter first.
    assert!(decode_points(
        &payload(&[point(b"m,a=1,a\0=1", 1, &[float(1.0)])]),
        &DecodeLimits::default()
    )
    .is_ok());
    assert!(matches!(key_err("m,a\0=1,a=1"), K::TagsOutOfOrder { .. }));
    assert!(matches!(
        point_err(point(b"", 1, &[float(1.0)])),
        PointError::SeriesKey {
            problem: K::EmptyMeasurement,
            ..
        }
    ));
    assert!(matches!(
        point_err(point(b"m,t=\xff", 1, &[float(1.0)])),
        PointError::KeyNotUtf8 { .. }
    ));
}

#[test]
fn rejects_bad_points_and_fields() {
    use PointError as P;
    let name = |s: &str| quote(s);
    assert_eq!(point_err(point(b"m", 1, &[])), P::NoFields);
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
        assert_eq!(
            point_err(point(b"m", ts, &[float(1.0)])),
            P::TimestampOutOfRange(ts)
        );
    }
    assert!(decode_points(
        &payload(&[
            point(b"m", MIN_NANO_TIME, &[float(1.0)]),
            point(b"m", MAX_NANO_TIME, &[float(1.0)])
        ]),
        &DecodeLimits::default()
    )
    .is_ok());
    let f = |name: &'static [u8], code: u8, v: &[u8]| (name, code, v.to_vec());
    assert_eq!(
        point_err(point(b"m", 1, &[f(b"", TYPE_BOOLEAN, &[0])])),
        P::EmptyFieldName { field: 0 }
    );
    assert!(matches!(
        point_err(point(
            b"m",
            1,
            &[f(b"a", TYPE_BOOLEAN, &[0]), f(b"\xc3", TYPE_BOOLEAN, &[0])]
        )),
        P::FieldNameNotUtf8 { field: 1, .. }
    ));
    assert_eq!(
        point_err(point(b"m", 1, &[f(b"a\nb", TYPE_BOOLEAN, &[0])])),
        P::NewlineInFieldName { name: name("a\nb") }
    );
    for bad in [
        &b"a\\"[..],
        b"a\\\\\\",
        b"a\\,b",
        b"\\=",
        b"a\\ b",
        b"a\\\\\\=b",
    ] {
        assert!(
            matches!(
                point_err(point(b"m", 1, &[f(bad, TYPE_BOOLEAN, &[0])])),
                P::OddBackslashesInFieldName { .. }
            ),
            "{bad:?}"
        );
    }
    // Even runs, and any run before another byte, are fine.
    for good in [&b"a\\\\"[..], b"a\\b", b"a\\\\,b", b"\\\\\\x"] {
        let ok = payload(&[point(b"m", 1, &[float(1.0), f(good, TYPE_BOOLEAN, &[0])])]);
        assert!(
            decode_points(&ok, &DecodeLimits::default()).is_ok(),
            "{good:?}"
        );
    }
    assert_eq!(
        point_err(point(b"m", 1, &[f(b"\tx", TYPE_BOOLEAN, &[0])])),
        P::FirstFieldNameStartsWithTab { name: name("\tx") }
    );
    let later_tab = payload(&[point(b"m", 1, &[float(1.0), f(b"\tx", TYPE_BOOLEAN, &[0])])]);
    assert!(decode_points(&later_tab, &DecodeLimits::default()).is_ok());
    assert_eq!(
        point_err(point(
            b"m",
            1,
            &[
                f(b"a", TYPE_BOOLEAN, &[0]),
                f(b"b", TYPE_BOOLEAN, &[0]),
                f(b"a", TYPE_INTEGER, &[0])
            ]
        )),
        P::DuplicateField { name: name("a") }
    );
    assert_eq!(
        point_err(point(b"m", 1, &[f(b"x", 0, &[0])])),
        P::UnknownType {
            name: name("x"),
            code: 0
        }
    );
    assert_eq!(
        point_err(point(b"m", 1, &[f(b"x", 6, &[0])])),
        P::UnknownType {
            name: name("x"),
            code: 6
        }
    );
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            point_err(point(b"m", 1, &[f(b"x", TYPE_FLOAT, &v.to_le_bytes())])),
            P::NonFiniteFloat { .. }
        ));
    }
    assert_eq!(
        point_err(point(b"m", 1, &[f(b"x", TYPE_BOOLEAN, &[2])])),
        P::BadBoolean {
            name: name("x"),
            byte: 2
        }
    );
    assert!(matches!(
        point_err(point(b"m", 1, &[f(b"x", TYPE_STRING, &[2, b'a', 0xff])])),
        P::StringNotUtf8 { .. }
    ));
    assert!(matches!(
        point_err(point(b"m", 1, &[f(b"x", TYPE_INTEGER, &[0xff; 10])])),
        P::Read(ReadError::VarintOverflow {
            what: "integer value",
            ..
        })
    ));
}

#[test]
fn duplicate_fields_among_many() {
    let names: Vec<Vec<u8>> = (0..200).map(|i| format!("f{i}").into_bytes()).collect();
    let fields = |n: usize, dup: bool| -> Vec<(&[u8], u8, Vec<u8>)> {
        let mut v: Vec<(&[u8], u8, Vec<u8>)> = names[..n]
            .iter()
            .map(|k| (&k[..], TYPE_BOOLEAN, vec![1]))
            .collect();
        if dup {
            v.push((&names[n / 2][..], TYPE_BOOLEAN, vec![0]));
        }
        v
    };
    for n in [
        1,
        2,
        10,
        PAIRWISE_MAX - 1,
        PAIRWISE_MAX,
        PAIRWISE_MAX + 1,
        199,
    ] {
        let ok = payload(&[point(b"m", 1, &fields(n, false))]);
        assert!(decode_points(&ok, &DecodeLimits::default()).is_ok(), "{n}");
        let bad = payload(&[point(b"m", 1, &fields(n, true))]);
        assert!(
            matches!(
                err(&bad),
                WireError::Point {
                    error: PointError::DuplicateField { .. },
                    ..
                }
            ),
            "{n}"
        );
    }
}

#[test]
fn messages_name_the_point_and_quote_briefly() {
    let b = payload(&[
        good(),
        good(),
        good(),
        point(b"m,b=1,a=2", 1, &[float(1.0)]),
    ]);
    assert_eq!(
        err(&b).to_string(),
        "bad WriteToShard payload: point 3: series key \"m,b=1,a=2\": tag keys out of order: \"b\" before \"a\""
    );
    let b = payload(&[point(b"m", 1, &[(b"x", 9, vec![0])])]);
    assert_eq!(
        err(&b).to_string(),
        "bad WriteToShard payload: point 0: field \"x\": unknown type 9 (1 float, 2 integer, 3 unsigned, 4 boolean, 5 string)"
    );
    let b = payload(&[good()]);
    assert_eq!(
        err(&b[..b.len() - 3]).to_string(),
        "bad WriteToShard payload: point 0: truncated: float value at byte 13 runs past the end (18 bytes)"
    );
    let long = format!("m{} x", "é".repeat(100));
    let msg = err(&payload(&[point(long.as_bytes(), 1, &[float(1.0)])])).to_string();
    assert!(msg.contains("…\": unescaped space at byte 201"), "{msg}");
    assert!(msg.len() < 220, "{msg}");
    assert_eq!(quote("a\"b\\c\n"), r#""a\"b\c\n""#);
}

#[test]
fn every_truncation_is_an_error() {
    let body = concat!(
        "cpu,host=a,region=us-west usage=1.5,count=3i,big=4u,ok=true,msg=\"hi\" 1\n",
        "we\\ ather\\,x,k\\ 1=v\\,1 f=1 1700000000000000000\n",
    );
    let parsed = parse_lines(body.as_bytes(), &opts());
    let buf = encode_all(&parsed.iter().collect::<Vec<_>>());
    assert!(decode_points(&buf, &DecodeLimits::default()).is_ok());
    for n in 0..buf.len() {
        let e = decode_points(&buf[..n], &DecodeLimits::default());
        assert!(e.is_err(), "prefix of {n} bytes decoded");
    }
}
