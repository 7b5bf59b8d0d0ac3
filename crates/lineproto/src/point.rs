//! Parsed points (borrowed from the request body) and their owned twin.

use crate::escape::{escape_into, Ctx};
use crate::hash::fnv64a;
use std::borrow::Cow;
use std::fmt::Write as _;

/// A tag, unescaped. Tags of a point are sorted by key and unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tag<'a> {
    pub key: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// A field, key unescaped. Keys of a point are unique (the last duplicate wins).
#[derive(Debug, Clone, PartialEq)]
pub struct Field<'a> {
    pub key: Cow<'a, str>,
    pub value: FieldValue<'a>,
}

/// A typed field value. Strings are unescaped and borrow from the body when they can.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(Cow<'a, str>),
}

impl FieldValue<'_> {
    /// The owned form.
    pub fn to_owned_value(&self) -> OwnedFieldValue {
        match self {
            FieldValue::Float(v) => OwnedFieldValue::Float(*v),
            FieldValue::Integer(v) => OwnedFieldValue::Integer(*v),
            FieldValue::Unsigned(v) => OwnedFieldValue::Unsigned(*v),
            FieldValue::Boolean(v) => OwnedFieldValue::Boolean(*v),
            FieldValue::String(v) => OwnedFieldValue::String(v.to_string()),
        }
    }

    /// Appends the value in line-protocol form (`1.5`, `3i`, `4u`, `true`, `"s"`).
    pub fn write_to(&self, out: &mut String) {
        match self {
            FieldValue::Float(v) => write_float(out, *v),
            FieldValue::Integer(v) => {
                let _ = write!(out, "{v}i");
            }
            FieldValue::Unsigned(v) => {
                let _ = write!(out, "{v}u");
            }
            FieldValue::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
            FieldValue::String(s) => {
                out.push('"');
                escape_into(out, s, Ctx::StringField);
                out.push('"');
            }
        }
    }
}

/// Shortest text that parses back to the same f64 (plain digits in the usual
/// range, exponent form at the extremes so subnormals stay short).
fn write_float(out: &mut String, v: f64) {
    let a = v.abs();
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}

/// One parsed point, borrowing from its [`crate::ParsedBatch`] and request body.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    /// Measurement name, unescaped.
    pub measurement: &'a str,
    /// Canonical series key: escaped measurement and escaped tags sorted by key,
    /// e.g. `cpu,host=a,region=b`. InfluxDB's key, shard-hash input and index key.
    pub series_key: &'a str,
    pub tags: &'a [Tag<'a>],
    pub fields: &'a [Field<'a>],
    /// Nanoseconds since the Unix epoch.
    pub timestamp: i64,
}

impl<'a> Point<'a> {
    /// FNV-64a of the series key: InfluxDB's `HashID`, used to pick a shard.
    #[inline]
    pub fn hash_id(&self) -> u64 {
        fnv64a(self.series_key.as_bytes())
    }

    /// Appends the point in canonical line protocol (with timestamp, no newline).
    pub fn write_line(&self, out: &mut String) {
        out.push_str(self.series_key);
        out.push(' ');
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            escape_into(out, &f.key, Ctx::Key);
            out.push('=');
            f.value.write_to(out);
        }
        let _ = write!(out, " {}", self.timestamp);
    }

    /// The point in canonical line protocol.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(self.series_key.len() + 16 * self.fields.len() + 24);
        self.write_line(&mut s);
        s
    }

    /// Copies the point out of the request body.
    pub fn to_owned_point(&self) -> OwnedPoint {
        OwnedPoint {
            measurement: self.measurement.to_string(),
            tags: self
                .tags
                .iter()
                .map(|t| (t.key.to_string(), t.value.to_string()))
                .collect(),
            fields: self
                .fields
                .iter()
                .map(|f| (f.key.to_string(), f.value.to_owned_value()))
                .collect(),
            timestamp: self.timestamp,
        }
    }
}

/// Owned field value.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedFieldValue {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(String),
}

impl OwnedFieldValue {
    pub fn as_borrowed(&self) -> FieldValue<'_> {
        match self {
            OwnedFieldValue::Float(v) => FieldValue::Float(*v),
            OwnedFieldValue::Integer(v) => FieldValue::Integer(*v),
            OwnedFieldValue::Unsigned(v) => FieldValue::Unsigned(*v),
            OwnedFieldValue::Boolean(v) => FieldValue::Boolean(*v),
            OwnedFieldValue::String(v) => FieldValue::String(Cow::Borrowed(v)),
        }
    }
}

/// A point that owns its data: for building points in code and for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedPoint {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, OwnedFieldValue)>,
    pub timestamp: i64,
}

/// The series key of `measurement` with `tags` in the order given (sort them
/// for the canonical key), escaped as line protocol escapes them.
pub fn series_key<'a>(
    measurement: &str,
    tags: impl Iterator<Item = &'a (String, String)>,
) -> String {
    let mut s = String::new();
    escape_into(&mut s, measurement, Ctx::Measurement);
    for (k, v) in tags {
        s.push(',');
        escape_into(&mut s, k, Ctx::Key);
        s.push('=');
        escape_into(&mut s, v, Ctx::Key);
    }
    s
}

impl OwnedPoint {
    /// Canonical series key: tags sorted by key, escaped.
    pub fn series_key(&self) -> String {
        let mut tags: Vec<&(String, String)> = self.tags.iter().collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        series_key(&self.measurement, tags.into_iter())
    }

    /// The point in canonical line protocol (with timestamp, no newline).
    pub fn to_line(&self) -> String {
        let mut s = self.series_key();
        s.push(' ');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            escape_into(&mut s, k, Ctx::Key);
            s.push('=');
            v.as_borrowed().write_to(&mut s);
        }
        let _ = write!(s, " {}", self.timestamp);
        s
    }
}
