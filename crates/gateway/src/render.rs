//! Query answers written as InfluxDB writes them: Go's `encoding/json` (floats
//! in their shortest form, `2` not `2.0`, `1e+21` past 1e21; `<`, `>`, `&`
//! escaped), `pretty=true` indented by four spaces, times as RFC 3339 with
//! trailing zeros trimmed (in the query's `tz()` zone) or as epoch numbers.

use std::fmt::Write;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use sundial_query::{Series, Value};

/// A JSON value with Go's formatting.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    /// Keys in the order written.
    Obj(Vec<(String, Json)>),
}

impl From<&serde_json::Value> for Json {
    fn from(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Json::Int(i),
                (None, Some(u)) => Json::UInt(u),
                _ => Json::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Json::Str(s.clone()),
            serde_json::Value::Array(a) => Json::Arr(a.iter().map(Json::from).collect()),
            serde_json::Value::Object(o) => {
                Json::Obj(o.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect())
            }
        }
    }
}

impl Json {
    /// The text; `pretty` indents by four spaces as Go's `MarshalIndent`.
    pub fn render(&self, pretty: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, pretty, 0);
        out
    }

    fn write(&self, out: &mut String, pretty: bool, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if pretty {
                out.push('\n');
                for _ in 0..depth {
                    out.push_str("    ");
                }
            }
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            Json::Float(f) => go_float(out, *f),
            Json::Str(s) => go_string(out, s),
            Json::Arr(a) if a.is_empty() => out.push_str("[]"),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    v.write(out, pretty, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Obj(o) if o.is_empty() => out.push_str("{}"),
            Json::Obj(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    go_string(out, k);
                    out.push(':');
                    if pretty {
                        out.push(' ');
                    }
                    v.write(out, pretty, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
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
                let _ = write!(out, "{m}e+{}", pad2(e));
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

fn pad2(e: &str) -> String {
    if e.len() < 2 {
        format!("0{e}")
    } else {
        e.to_string()
    }
}

/// A string as Go's `encoding/json` escapes it.
fn go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

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

    fn time(&self, t: i64, tz: Option<&TimeZone>) -> Json {
        match self {
            TimeFormat::Epoch(d) => Json::Int(t / d),
            TimeFormat::Rfc3339 => Json::Str(rfc3339(t, tz)),
        }
    }
}

/// Go's `time.RFC3339Nano`: fraction trimmed of trailing zeros, `Z` in UTC.
pub fn rfc3339(t: i64, tz: Option<&TimeZone>) -> String {
    let Ok(ts) = Timestamp::from_nanosecond(i128::from(t)) else {
        return t.to_string();
    };
    let zone = tz.cloned().unwrap_or(TimeZone::UTC);
    let offset = zone.to_offset(ts);
    let dt = offset.to_datetime(ts);
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.subsec_nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    let secs = offset.seconds();
    if secs == 0 {
        s.push('Z');
    } else {
        let sign = if secs < 0 { '-' } else { '+' };
        let a = secs.unsigned_abs();
        let _ = write!(s, "{sign}{:02}:{:02}", a / 3600, a % 3600 / 60);
    }
    s
}

fn value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Float(f) => Json::Float(*f),
        Value::Integer(i) => Json::Int(*i),
        Value::Unsigned(u) => Json::UInt(*u),
        Value::String(s) => Json::Str(s.clone()),
        Value::Boolean(b) => Json::Bool(*b),
    }
}

/// A cell of an answer: a time (written per format) or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Time(i64),
    V(Json),
}

/// One series of an answer, format-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// What one statement answered.
#[derive(Debug, Clone, Default)]
pub struct StmtOut {
    pub tables: Vec<Table>,
    pub error: Option<String>,
    /// The `tz()` zone its times are written in.
    pub tz: Option<TimeZone>,
}

/// A SELECT's series as tables.
pub fn select_tables(series: Vec<Series>) -> Vec<Table> {
    series
        .into_iter()
        .map(|s| Table {
            name: s.name,
            tags: s.tags,
            columns: s.columns,
            rows: s
                .rows
                .into_iter()
                .map(|r| {
                    let mut row = Vec::with_capacity(r.values.len() + 1);
                    row.push(Cell::Time(r.time));
                    row.extend(r.values.iter().map(|v| Cell::V(value(v))));
                    row
                })
                .collect(),
        })
        .collect()
}

/// The series of another statement (SHOW …), as `serde_json` built them.
pub fn json_tables(v: &serde_json::Value) -> Vec<Table> {
    let Some(arr) = v.as_array() else {
        return Vec::new();
    };
    arr.iter()
        .map(|s| {
            let text = |k: &str| s.get(k).and_then(|x| x.as_str()).unwrap_or_default();
            Table {
                name: text("name").to_string(),
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
                            .map(|r| {
                                r.as_array()
                                    .map(|r| r.iter().map(|x| Cell::V(Json::from(x))).collect())
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// InfluxDB's emitter chunk: also the size past which a whole (not chunked)
/// series is marked partial.
pub const DEFAULT_CHUNK_SIZE: usize = 10_000;

fn table_json(
    t: &Table,
    rows: &[Vec<Cell>],
    partial: bool,
    tf: &TimeFormat,
    tz: Option<&TimeZone>,
) -> Json {
    let mut o = vec![("name".to_string(), Json::Str(t.name.clone()))];
    if !t.tags.is_empty() {
        let mut tags: Vec<(String, Json)> = t
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Json::Str(v.clone())))
            .collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        o.push(("tags".into(), Json::Obj(tags)));
    }
    if !t.columns.is_empty() {
        o.push((
            "columns".into(),
            Json::Arr(t.columns.iter().map(|c| Json::Str(c.clone())).collect()),
        ));
    }
    if !rows.is_empty() {
        let values = rows
            .iter()
            .map(|r| {
                Json::Arr(
                    r.iter()
                        .map(|c| match c {
                            Cell::Time(t) => tf.time(*t, tz),
                            Cell::V(v) => v.clone(),
                        })
                        .collect(),
                )
            })
            .collect();
        o.push(("values".into(), Json::Arr(values)));
    }
    if partial {
        o.push(("partial".into(), Json::Bool(true)));
    }
    Json::Obj(o)
}

fn result(id: usize, series: Option<Json>, partial: bool, error: Option<&str>) -> Json {
    let mut o = vec![("statement_id".to_string(), Json::Int(id as i64))];
    if let Some(s) = series {
        o.push(("series".into(), s));
    }
    if partial {
        o.push(("partial".into(), Json::Bool(true)));
    }
    if let Some(e) = error {
        o.push(("error".into(), Json::Str(e.to_string())));
    }
    Json::Obj(o)
}

/// The error a statement shows: InfluxDB 1.6 answers `not executed` for a
/// failing statement that is not the last (upstream issue #10353).
fn shown_error(i: usize, total: usize, e: &str) -> String {
    if i + 1 < total {
        "not executed".into()
    } else {
        e.to_string()
    }
}

/// The infinity a float column holds, if any: Go's JSON encoder refuses it,
/// and InfluxDB then answers the encoder's error as the body.
fn infinity(stmts: &[StmtOut]) -> Option<&'static str> {
    stmts
        .iter()
        .flat_map(|s| &s.tables)
        .flat_map(|t| &t.rows)
        .flatten()
        .find_map(|c| match c {
            Cell::V(Json::Float(f)) if f.is_infinite() => {
                Some(if *f > 0.0 { "+Inf" } else { "-Inf" })
            }
            _ => None,
        })
}

/// The JSON body of `/query` (not chunked).
pub fn json_body(stmts: &[StmtOut], total: usize, tf: &TimeFormat, pretty: bool) -> String {
    if let Some(inf) = infinity(stmts) {
        return format!(
            "json: error calling MarshalJSON for type httpd.Response: json: error calling MarshalJSON for type *query.Result: json: unsupported value: {inf}\n"
        );
    }
    let results = stmts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if let Some(e) = &s.error {
                return result(i, None, false, Some(&shown_error(i, total, e)));
            }
            let series = (!s.tables.is_empty()).then(|| {
                Json::Arr(
                    s.tables
                        .iter()
                        .map(|t| {
                            table_json(
                                t,
                                &t.rows,
                                t.rows.len() > DEFAULT_CHUNK_SIZE,
                                tf,
                                s.tz.as_ref(),
                            )
                        })
                        .collect(),
                )
            });
            result(i, series, false, None)
        })
        .collect();
    let mut text = Json::Obj(vec![("results".into(), Json::Arr(results))]).render(pretty);
    text.push('\n');
    text
}

/// The body of a `chunked=true` answer: one JSON object per line, a new one at
/// every series and every `chunk_size` rows.
pub fn chunked_body(
    stmts: &[StmtOut],
    total: usize,
    tf: &TimeFormat,
    pretty: bool,
    chunk_size: usize,
) -> String {
    let chunk = chunk_size.max(1);
    let mut out = String::new();
    let mut line = |j: Json| {
        out.push_str(&Json::Obj(vec![("results".into(), Json::Arr(vec![j]))]).render(pretty));
        out.push('\n');
    };
    for (i, s) in stmts.iter().enumerate() {
        if let Some(e) = &s.error {
            line(result(i, None, false, Some(e)));
            for _ in i + 1..total {
                line(result(i, None, false, Some("not executed")));
            }
            continue;
        }
        if s.tables.is_empty() {
            line(result(i, None, false, None));
            continue;
        }
        let mut pieces: Vec<(usize, &[Vec<Cell>], bool)> = Vec::new();
        for (ti, t) in s.tables.iter().enumerate() {
            if t.rows.is_empty() {
                pieces.push((ti, &[], false));
            }
            let n = t.rows.chunks(chunk).count();
            for (k, rows) in t.rows.chunks(chunk).enumerate() {
                pieces.push((ti, rows, k + 1 < n));
            }
        }
        let last = pieces.len().saturating_sub(1);
        for (k, (ti, rows, more)) in pieces.into_iter().enumerate() {
            let t = &s.tables[ti];
            let series = Json::Arr(vec![table_json(t, rows, more, tf, s.tz.as_ref())]);
            line(result(i, Some(series), k < last, None));
        }
    }
    out
}

/// A CSV field as Go's `encoding/csv` writes it.
fn csv_field(out: &mut String, f: &str) {
    let quote = f.contains([',', '"', '\r', '\n']) || f.starts_with(' ') || f == "\\.";
    if !quote {
        out.push_str(f);
        return;
    }
    out.push('"');
    for c in f.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

fn csv_line(out: &mut String, fields: &[String]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}

/// Tags as a series key writes them (`k=v,k2=v2`, escaped, empty values left out).
fn tags_key(tags: &[(String, String)]) -> String {
    let esc = |s: &str| {
        s.replace(',', "\\,")
            .replace(' ', "\\ ")
            .replace('=', "\\=")
    };
    let mut t: Vec<&(String, String)> = tags.iter().filter(|(_, v)| !v.is_empty()).collect();
    t.sort();
    t.iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_cell(c: &Cell, tf: &TimeFormat) -> String {
    match c {
        Cell::Time(t) => match tf {
            TimeFormat::Epoch(d) => (t / d).to_string(),
            TimeFormat::Rfc3339 => t.to_string(),
        },
        Cell::V(Json::Null) => String::new(),
        Cell::V(Json::Float(f)) if f.is_finite() => format!("{f}"),
        Cell::V(Json::Str(s)) => s.clone(),
        Cell::V(j) => j.render(false),
    }
}

/// The CSV body (`Accept: application/csv`): a `name,tags,…` header per
/// statement (again when the columns change), statements apart by an empty
/// line, statement errors left out.
pub fn csv_body(stmts: &[StmtOut], tf: &TimeFormat) -> String {
    let mut out = String::new();
    let mut first = true;
    for s in stmts {
        if s.error.is_some() || s.tables.is_empty() {
            continue;
        }
        if !first {
            out.push('\n');
        }
        first = false;
        let header = |t: &Table| {
            let mut h = vec!["name".to_string(), "tags".to_string()];
            h.extend(t.columns.iter().cloned());
            h
        };
        csv_line(&mut out, &header(&s.tables[0]));
        for (i, t) in s.tables.iter().enumerate() {
            if i > 0 && s.tables[i - 1].columns != t.columns {
                out.push('\n');
                csv_line(&mut out, &header(t));
            }
            for r in &t.rows {
                let mut fields = vec![t.name.clone(), tags_key(&t.tags)];
                fields.extend(r.iter().map(|c| csv_cell(c, tf)));
                csv_line(&mut out, &fields);
            }
        }
    }
    out
}

/// A request-level error in CSV.
pub fn csv_error(msg: &str) -> String {
    let mut out = String::new();
    csv_line(&mut out, &["error".to_string()]);
    csv_line(&mut out, &[msg.to_string()]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
