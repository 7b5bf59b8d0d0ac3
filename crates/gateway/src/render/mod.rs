//! Query answers written as InfluxDB writes them: Go's `encoding/json` (floats
//! in their shortest form, `2` not `2.0`, `1e+21` past 1e21; `<`, `>`, `&`
//! escaped), `pretty=true` indented by four spaces, times as RFC 3339 with
//! trailing zeros trimmed (in the query's `tz()` zone) or as epoch numbers.
//! Answers are written straight from the query's rows ([`JsonWriter`]), whole
//! ([`json_body`]), a chunk at a time as they are made ([`Chunker`]) or as CSV.

use std::fmt::Write;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use sundial_query::{Row, Series, Value};

mod csv;
mod json;

pub use csv::{csv_body, csv_error};
pub use json::{json_body, Chunker, DEFAULT_CHUNK_SIZE};

// ---------------------------------------------------------------- JSON text

/// InfluxDB's error body `{"error":"…"}`, ending in a newline.
pub fn error_body(text: &str, pretty: bool) -> String {
    let mut out = String::new();
    let mut w = JsonWriter::new(&mut out, pretty);
    w.begin('{');
    w.key("error");
    w.str(text);
    w.end('}');
    out.push('\n');
    out
}

/// Writes JSON text piece by piece as Go's encoder lays it out: commas
/// between items, and with `pretty` a new line indented four spaces per level
/// before each item and before a non-empty container's close.
#[derive(Debug)]
pub struct JsonWriter<'a> {
    pub out: &'a mut String,
    pretty: bool,
    /// Per open container: whether it has an item yet.
    open: Vec<bool>,
}

impl<'a> JsonWriter<'a> {
    pub fn new(out: &'a mut String, pretty: bool) -> Self {
        JsonWriter {
            out,
            pretty,
            open: Vec::new(),
        }
    }

    fn newline(&mut self) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..self.open.len() {
                self.out.push_str("    ");
            }
        }
    }

    /// Before each array element.
    pub fn elem(&mut self) {
        if let Some(has) = self.open.last_mut() {
            if std::mem::replace(has, true) {
                self.out.push(',');
            }
            self.newline();
        }
    }

    /// An object's key (then its value).
    pub fn key(&mut self, k: &str) {
        self.elem();
        go_string(self.out, k);
        self.out.push(':');
        if self.pretty {
            self.out.push(' ');
        }
    }

    pub fn begin(&mut self, c: char) {
        self.out.push(c);
        self.open.push(false);
    }

    pub fn end(&mut self, c: char) {
        if self.open.pop() == Some(true) {
            self.newline();
        }
        self.out.push(c);
    }

    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    pub fn str(&mut self, s: &str) {
        go_string(self.out, s);
    }

    pub fn int(&mut self, i: i64) {
        self.out.push_str(itoa::Buffer::new().format(i));
    }

    pub fn uint(&mut self, u: u64) {
        self.out.push_str(itoa::Buffer::new().format(u));
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.raw("null"),
            Value::Float(f) => go_float(self.out, *f),
            Value::Integer(i) => self.int(*i),
            Value::Unsigned(u) => self.uint(*u),
            Value::String(s) => go_string(self.out, s),
            Value::Boolean(b) => self.raw(if *b { "true" } else { "false" }),
        }
    }
}

/// A float as Go's `encoding/json` writes it (NaN and infinities, which Go
/// refuses, as null).
fn go_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` and `1.5e-7`; Go `1e+21` and `1.5e-07`, then
        // trims a single-digit negative exponent's zero back to `e-7`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                let zero = if e.len() < 2 { "0" } else { "" };
                let _ = write!(out, "{m}e+{zero}{e}");
            }
            Some((m, e)) => {
                let _ = write!(out, "{m}e-{}", &e[1..]);
            }
            None => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{f}");
    }
}

/// A string as Go's `encoding/json` escapes it.
fn go_string(out: &mut String, s: &str) {
    out.push('"');
    let plain =
        |c: char| !matches!(c, '"' | '\\' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}') && c >= ' ';
    if s.chars().all(plain) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !plain(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------- times

/// How times are written: RFC 3339 in a zone, or an epoch unit.
#[derive(Debug, Clone)]
pub enum TimeFormat {
    Rfc3339,
    /// Nanoseconds per unit (`epoch=ms`: 1_000_000).
    Epoch(i64),
}

impl TimeFormat {
    /// The `epoch` parameter: h, m, s, ms, u (or µ), ns; anything else is
    /// nanoseconds, as in InfluxDB.
    pub fn from_param(epoch: Option<&str>) -> TimeFormat {
        match epoch {
            None | Some("") => TimeFormat::Rfc3339,
            Some("h") => TimeFormat::Epoch(3_600_000_000_000),
            Some("m") => TimeFormat::Epoch(60_000_000_000),
            Some("s") => TimeFormat::Epoch(1_000_000_000),
            Some("ms") => TimeFormat::Epoch(1_000_000),
            Some("u") | Some("µ") => TimeFormat::Epoch(1_000),
            Some(_) => TimeFormat::Epoch(1),
        }
    }

    fn write(&self, w: &mut JsonWriter<'_>, t: i64, tz: Option<&TimeZone>) {
        match self {
            TimeFormat::Epoch(d) => w.int(t / d),
            TimeFormat::Rfc3339 => {
                w.out.push('"');
                push_rfc3339(w.out, t, tz);
                w.out.push('"');
            }
        }
    }
}

/// Go's `time.RFC3339Nano`: fraction trimmed of trailing zeros, `Z` in UTC.
fn push_rfc3339(out: &mut String, t: i64, tz: Option<&TimeZone>) {
    push_time(out, t, tz, true);
}

/// Go's `time.RFC3339` in UTC: whole seconds (SHOW SHARDS' times).
pub(crate) fn rfc3339_seconds(t: i64) -> String {
    let mut out = String::new();
    push_time(&mut out, t, None, false);
    out
}

/// RFC 3339 of `t` in `tz` (UTC when none), its fraction of a second
/// (trimmed of trailing zeros) when `fraction`.
fn push_time(out: &mut String, t: i64, tz: Option<&TimeZone>, fraction: bool) {
    let offset = match tz {
        None => 0,
        Some(zone) => match Timestamp::from_nanosecond(i128::from(t)) {
            Ok(ts) => zone.to_offset(ts).seconds(),
            Err(_) => 0,
        },
    };
    let local = t.div_euclid(1_000_000_000) + i64::from(offset);
    let nanos = t.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400);
    let two = |out: &mut String, n: i64| {
        out.push(char::from(b'0' + (n / 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    let _ = write!(out, "{y:04}-");
    two(out, m);
    out.push('-');
    two(out, d);
    out.push('T');
    two(out, sod / 3600);
    out.push(':');
    two(out, sod % 3600 / 60);
    out.push(':');
    two(out, sod % 60);
    if fraction && nanos != 0 {
        let mut digits = [b'0'; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let keep = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push('.');
        out.extend(digits[..keep].iter().map(|&d| char::from(d)));
    }
    if offset == 0 {
        out.push('Z');
    } else {
        out.push(if offset < 0 { '-' } else { '+' });
        let a = i64::from(offset.unsigned_abs());
        two(out, a / 3600);
        out.push(':');
        two(out, a % 3600 / 60);
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

// ---------------------------------------------------------------- answers

/// What one statement answered.
#[derive(Debug, Clone, Default)]
pub struct StmtOut {
    pub tables: Vec<Series>,
    /// Whether its rows have a time (a SELECT's) before their values.
    pub timed: bool,
    pub error: Option<String>,
    /// The `tz()` zone its times are written in.
    pub tz: Option<TimeZone>,
    /// Warnings shown with its answer (`messages`, level `warning`).
    pub warnings: Vec<String>,
}

/// The series of another statement (SHOW …), as `serde_json` built them:
/// untimed rows.
pub fn json_tables(v: &serde_json::Value) -> Vec<Series> {
    let Some(arr) = v.as_array() else {
        return Vec::new();
    };
    let text = |s: &serde_json::Value, k: &str| {
        s.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    arr.iter()
        .map(|s| Series {
            name: text(s, "name"),
            tags: s
                .get("tags")
                .and_then(|t| t.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            columns: s
                .get("columns")
                .and_then(|c| c.as_array())
                .map(|c| {
                    c.iter()
                        .map(|x| x.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            rows: s
                .get("values")
                .and_then(|v| v.as_array())
                .map(|rows| {
                    rows.iter()
                        .map(|r| Row {
                            time: 0,
                            values: r
                                .as_array()
                                .map(|r| r.iter().map(cell_of).collect())
                                .unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// A SHOW answer's cell as a value (they hold no arrays or objects; one
/// would be written as its JSON text).
fn cell_of(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Integer(i),
            (None, Some(u)) => Value::Unsigned(u),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON value tree: the oracle the writer's layout is checked against.
    #[derive(Debug, Clone, PartialEq)]
    enum Json {
        Int(i64),
        Float(f64),
        Str(String),
        Arr(Vec<Json>),
        /// Keys in the order written.
        Obj(Vec<(String, Json)>),
    }

    impl Json {
        /// The text; `pretty` indents by four spaces as Go's `MarshalIndent`.
        fn render(&self, pretty: bool) -> String {
            let mut out = String::new();
            self.write(&mut JsonWriter::new(&mut out, pretty));
            out
        }

        fn write(&self, w: &mut JsonWriter<'_>) {
            match self {
                Json::Int(i) => w.int(*i),
                Json::Float(f) => go_float(w.out, *f),
                Json::Str(s) => go_string(w.out, s),
                Json::Arr(a) => {
                    w.begin('[');
                    for v in a {
                        w.elem();
                        v.write(w);
                    }
                    w.end(']');
                }
                Json::Obj(o) => {
                    w.begin('{');
                    for (k, v) in o {
                        w.key(k);
                        v.write(w);
                    }
                    w.end('}');
                }
            }
        }
    }

    fn rfc3339(t: i64, tz: Option<&TimeZone>) -> String {
        let mut s = String::new();
        push_rfc3339(&mut s, t, tz);
        s
    }

    fn f(x: f64) -> String {
        Json::Float(x).render(false)
    }

    #[test]
    fn floats_read_like_go() {
        assert_eq!(f(2.0), "2");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(-1.5), "-1.5");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(1.5e-10), "1.5e-10");
        assert_eq!(f(123456789012345680000.0), "123456789012345680000");
        assert_eq!(f(0.000001), "0.000001");
    }

    #[test]
    fn strings_escape_like_go() {
        assert_eq!(
            Json::Str("a<b>&\"\\\n\u{1}".into()).render(false),
            r#""a\u003cb\u003e\u0026\"\\\n\u0001""#
        );
    }

    #[test]
    fn times_are_rfc3339_nano_trimmed() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500_000_000, None), "1970-01-01T00:00:01.5Z");
        let chicago = TimeZone::get("America/Chicago").ok();
        assert_eq!(rfc3339(0, chicago.as_ref()), "1969-12-31T18:00:00-06:00");
    }

    #[test]
    fn pretty_indents_four_spaces() {
        let j = Json::Obj(vec![("a".into(), Json::Arr(vec![Json::Int(1)]))]);
        assert_eq!(j.render(true), "{\n    \"a\": [\n        1\n    ]\n}");
    }

    /// The RFC 3339 text through jiff's own formatting, trimmed as Go does.
    fn oracle(t: i64, tz: Option<&TimeZone>) -> String {
        let ts = Timestamp::from_nanosecond(i128::from(t)).unwrap();
        let zone = tz.cloned().unwrap_or(TimeZone::UTC);
        let z = ts.to_zoned(zone);
        let mut s = z.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        let nanos = z.subsec_nanosecond();
        if nanos != 0 {
            s.push('.');
            s.push_str(format!("{nanos:09}").trim_end_matches('0'));
        }
        let off = z.offset().seconds();
        if off == 0 {
            s.push('Z');
        } else {
            let a = off.unsigned_abs();
            let sign = if off < 0 { '-' } else { '+' };
            s.push_str(&format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60));
        }
        s
    }

    #[test]
    fn rfc3339_agrees_with_jiff_across_the_range() {
        let zones = [
            None,
            TimeZone::get("America/Chicago").ok(),
            TimeZone::get("Asia/Kolkata").ok(),
        ];
        let mut t: i64 = -9_223_372_036_854_775_806;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            for z in &zones {
                assert_eq!(rfc3339(t, z.as_ref()), oracle(t, z.as_ref()), "{t}");
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Any nanosecond, or whole seconds (no fraction written).
            t = (x as i64).max(-9_223_372_036_854_775_806);
            if x.is_multiple_of(3) {
                t -= t % 1_000_000_000;
            }
        }
        for t in [
            0,
            -1,
            951_782_400_000_000_000,
            4_107_542_400_000_000_000,
            i64::MAX - 1,
        ] {
            assert_eq!(rfc3339(t, None), oracle(t, None), "{t}");
        }
    }

    fn series(name: &str, host: &str, times: std::ops::Range<i64>) -> Series {
        Series {
            name: name.into(),
            tags: vec![("host".into(), host.into())],
            columns: vec!["time".into(), "v".into()],
            rows: times
                .map(|t| Row {
                    time: t,
                    values: vec![Value::Float(t as f64 / 2.0)],
                })
                .collect(),
        }
    }

    /// Pieces cut at `cuts` rows of each series.
    fn chunked(all: &[Series], cut: usize, chunk: usize) -> String {
        let mut c = Chunker::new(TimeFormat::Epoch(1), false, chunk);
        c.start(0, true, None);
        for s in all {
            for rows in s.rows.chunks(cut) {
                c.push(Series {
                    rows: rows.to_vec(),
                    ..s.clone()
                });
            }
        }
        c.finish();
        c.take()
    }

    #[test]
    fn chunks_do_not_depend_on_how_the_answer_came_in() {
        let all = [series("cpu", "a", 0..5), series("cpu", "b", 10..11)];
        let want = concat!(
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","v"],"values":[[0,0],[1,0.5]],"partial":true}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","v"],"values":[[2,1],[3,1.5]],"partial":true}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","v"],"values":[[4,2]]}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"b"},"columns":["time","v"],"values":[[10,5]]}]}]}"#,
            "\n",
        );
        for cut in 1..7 {
            assert_eq!(chunked(&all, cut, 2), want, "pieces of {cut}");
        }
        // A statement that fails before it starts answers under its own id.
        let mut c = Chunker::new(TimeFormat::Epoch(1), false, 2);
        c.start(0, true, None);
        c.push(series("cpu", "a", 0..3));
        c.finish();
        c.fail(1, "boom");
        let text = c.take();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].ends_with(r#""values":[[2,1]]}]}]}"#), "{text}");
        assert_eq!(
            lines[2],
            r#"{"results":[{"statement_id":1,"error":"boom"}]}"#
        );
        // A statement with no series still answers one line.
        assert_eq!(chunked(&[], 1, 2), "{\"results\":[{\"statement_id\":0}]}\n");
    }

    #[test]
    fn a_whole_body_marks_long_series_partial_and_writes_pretty_as_go() {
        let out = StmtOut {
            tables: vec![series("cpu", "a", 0..2)],
            timed: true,
            ..StmtOut::default()
        };
        let tree = Json::Obj(vec![(
            "results".into(),
            Json::Arr(vec![Json::Obj(vec![
                ("statement_id".into(), Json::Int(0)),
                (
                    "series".into(),
                    Json::Arr(vec![Json::Obj(vec![
                        ("name".into(), Json::Str("cpu".into())),
                        (
                            "tags".into(),
                            Json::Obj(vec![("host".into(), Json::Str("a".into()))]),
                        ),
                        (
                            "columns".into(),
                            Json::Arr(vec![Json::Str("time".into()), Json::Str("v".into())]),
                        ),
                        (
                            "values".into(),
                            Json::Arr(vec![
                                Json::Arr(vec![
                                    Json::Str("1970-01-01T00:00:00Z".into()),
                                    Json::Int(0),
                                ]),
                                Json::Arr(vec![
                                    Json::Str("1970-01-01T00:00:00.000000001Z".into()),
                                    Json::Float(0.5),
                                ]),
                            ]),
                        ),
                    ])]),
                ),
            ])]),
        )]);
        for pretty in [false, true] {
            let body = json_body(std::slice::from_ref(&out), 1, &TimeFormat::Rfc3339, pretty);
            assert_eq!(body, tree.render(pretty) + "\n");
        }
        let long = StmtOut {
            tables: vec![series("cpu", "a", 0..DEFAULT_CHUNK_SIZE as i64 + 1)],
            timed: true,
            ..StmtOut::default()
        };
        let body = json_body(&[long], 1, &TimeFormat::Epoch(1), false);
        assert!(body.ends_with("]],\"partial\":true}]}]}\n"), "{body}");
    }
}
