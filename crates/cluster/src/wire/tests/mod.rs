//! Tests of the wire format: shared helpers here, one file per section.

use std::borrow::Cow;

use sundial_lineproto::{parse_lines, ParseOptions, Point, Precision};

use super::encode::{put_uvarint, zigzag};
use super::*;

mod errors;
mod generated;
mod round_trip;

fn opts() -> ParseOptions {
    ParseOptions::new(Precision::Nanosecond, 1_700_000_000_000_000_000)
}

fn encode_all(points: &[Point<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_points(points.iter().copied(), &mut buf);
    buf
}

fn assert_same(a: &Point<'_>, b: &Point<'_>) {
    assert_eq!(a.measurement, b.measurement);
    assert_eq!(a.series_key, b.series_key);
    assert_eq!(a.tags, b.tags);
    assert_eq!(a.fields, b.fields);
    assert_eq!(a.timestamp, b.timestamp);
    assert_eq!(a.to_line(), b.to_line());
}

/// Parses `body`, sends every good point through the wire and back, and
/// checks nothing changed. Returns the number of points.
fn round_trip_body(body: &str) -> usize {
    let parsed = parse_lines(body.as_bytes(), &opts());
    let points: Vec<Point<'_>> = parsed.iter().collect();
    let buf = encode_all(&points);
    let decoded = match decode_points(&buf, &DecodeLimits::default()) {
        Ok(d) => d,
        Err(e) => panic!("{body:?}: {e}"),
    };
    assert_eq!(decoded.len(), points.len());
    let back = decoded.points();
    for (a, b) in points.iter().zip(&back) {
        assert_same(a, b);
    }
    // Encoding the decoded points gives the same bytes.
    assert_eq!(encode_all(&back), buf, "{body:?}");
    points.len()
}

// ---- hand-built payloads for the error cases --------------------------

fn uv(v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    put_uvarint(&mut b, v);
    b
}

/// One point: key, timestamp, and (name, type, raw value bytes) fields.
fn point(key: &[u8], ts: i64, fields: &[(&[u8], u8, Vec<u8>)]) -> Vec<u8> {
    let mut b = uv(key.len() as u64);
    b.extend_from_slice(key);
    b.extend(uv(zigzag(ts)));
    b.extend(uv(fields.len() as u64));
    for (name, code, value) in fields {
        b.extend(uv(name.len() as u64));
        b.extend_from_slice(name);
        b.push(*code);
        b.extend_from_slice(value);
    }
    b
}

fn float(v: f64) -> (&'static [u8], u8, Vec<u8>) {
    (b"v", TYPE_FLOAT, v.to_le_bytes().to_vec())
}

fn payload(points: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![VERSION];
    b.extend(uv(points.len() as u64));
    for p in points {
        b.extend_from_slice(p);
    }
    b
}

fn good() -> Vec<u8> {
    point(b"m,t=1", 1, &[float(1.0)])
}
