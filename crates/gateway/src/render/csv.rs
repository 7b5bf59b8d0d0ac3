//! `/query`'s CSV body (`Accept: application/csv`), as InfluxDB's CSV
//! formatter writes it.

use sundial_query::{Series, Value};

use super::{StmtOut, TimeFormat};

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

fn csv_time(t: i64, tf: &TimeFormat) -> String {
    match tf {
        TimeFormat::Epoch(d) => (t / d).to_string(),
        TimeFormat::Rfc3339 => t.to_string(),
    }
}

fn csv_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Float(f) if f.is_finite() => format!("{f}"),
        Value::Float(_) => "null".into(),
        Value::Integer(i) => i.to_string(),
        Value::Unsigned(u) => u.to_string(),
        Value::String(s) => s.clone(),
        Value::Boolean(b) => b.to_string(),
    }
}

/// The CSV body: a `name,tags,…` header per statement (again when the
/// columns change), statements apart by an empty line, statement errors left
/// out.
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
        let header = |t: &Series| {
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
            let tags = tags_key(&t.tags);
            for r in &t.rows {
                let mut fields = vec![t.name.clone(), tags.clone()];
                if s.timed {
                    fields.push(csv_time(r.time, tf));
                }
                fields.extend(r.values.iter().map(csv_value));
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
