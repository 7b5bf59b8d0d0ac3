//! Comparing InfluxDB's answer with Sundial's (status, headers, JSON and text
//! bodies, by the rules of the `qdiff` module documentation), and checking
//! InfluxDB's answer against the entry's `@expect`.

use serde_json::{Number, Value};

use super::{compare_csv, truncate, Entry, Expect, Response};

/// Why InfluxDB's answer does not fit the entry's `@expect`, if it does not.
pub fn check_expectation(e: &Entry, r: &Response) -> Option<String> {
    let csv = r.content_type.contains("csv");
    let (errors, statements, empty) = if csv {
        let data = r.body.lines().count() > 1;
        (r.status != 200, 1, usize::from(!data))
    } else {
        match json_documents(&r.body) {
            Ok(docs) => summarize(&docs, r.status),
            Err(_) => (true, 0, 0),
        }
    };
    let ok = match e.expect {
        Expect::Any => true,
        Expect::Error => errors,
        Expect::Empty => !errors && empty > 0,
        Expect::Data => !errors && statements > 0 && empty == 0,
    };
    (!ok).then(|| {
        let want = match e.expect {
            Expect::Data => "data from every statement",
            Expect::Empty => "an empty result",
            Expect::Error => "an error",
            Expect::Any => "anything",
        };
        format!(
            "InfluxDB's answer is not {want} (@expect): status {}, body {}",
            r.status,
            truncate(&r.body, 600)
        )
    })
}

/// (some error, number of statements, statements without series) over all
/// documents; a statement split over chunks counts once per chunk.
fn summarize(docs: &[Value], status: u16) -> (bool, usize, usize) {
    let mut errors = status != 200;
    let (mut statements, mut empty) = (0, 0);
    for d in docs {
        if d.get("error").is_some() {
            errors = true;
        }
        for r in d
            .get("results")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            statements += 1;
            if r.get("error").is_some() {
                errors = true;
            }
            let has = r
                .get("series")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            if !has {
                empty += 1;
            }
        }
    }
    (errors, statements, empty)
}

/// The JSON documents of a body, one or more (chunked answers), separated by
/// white space.
pub fn json_documents(body: &str) -> Result<Vec<Value>, String> {
    let docs: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(body)
        .into_iter::<Value>()
        .collect();
    let docs = docs.map_err(|e| format!("not JSON: {e}"))?;
    if docs.is_empty() {
        return Err("empty body".into());
    }
    Ok(docs)
}

/// The first difference between InfluxDB's answer `a` and Sundial's `b`.
pub fn compare(e: &Entry, a: &Response, b: &Response) -> Result<(), String> {
    if a.status != b.status {
        return Err(format!("status {} vs {}", a.status, b.status));
    }
    if a.content_type != b.content_type {
        return Err(format!(
            "Content-Type {:?} vs {:?}",
            a.content_type, b.content_type
        ));
    }
    if a.error_header != b.error_header {
        return Err(format!(
            "X-Influxdb-Error {:?} vs {:?}",
            a.error_header, b.error_header
        ));
    }
    if a.content_type.contains("csv") {
        return compare_csv(&a.body, &b.body);
    }
    let Ok(mut da) = json_documents(&a.body) else {
        return compare_text(&a.body, &b.body);
    };
    let mut db = json_documents(&b.body).map_err(|err| format!("Sundial's body is {err}"))?;
    if e.unordered {
        da.iter_mut()
            .chain(db.iter_mut())
            .for_each(sort_series_and_rows);
    }
    if !e.shape.is_empty() {
        for d in da.iter_mut().chain(db.iter_mut()) {
            mask_columns(d, &e.shape);
        }
    }
    if da.len() != db.len() {
        return Err(format!("{} JSON documents vs {}", da.len(), db.len()));
    }
    for (i, (x, y)) in da.iter().zip(&db).enumerate() {
        let path = if da.len() > 1 {
            format!("document[{i}]")
        } else {
            String::new()
        };
        compare_json(x, y, &path)?;
    }
    if e.is_pretty() {
        compare_text(&a.body, &b.body)?;
    }
    Ok(())
}

/// For `@shape`: every value of the named columns becomes its JSON type.
fn mask_columns(v: &mut Value, cols: &[String]) {
    match v {
        Value::Object(m) => {
            let at: Vec<usize> = match m.get("columns") {
                Some(Value::Array(c)) => c
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| cols.iter().any(|x| n.as_str() == Some(x)))
                    .map(|(i, _)| i)
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(Value::Array(rows)) = m.get_mut("values") {
                for row in rows.iter_mut() {
                    if let Value::Array(cells) = row {
                        for &i in &at {
                            if let Some(c) = cells.get_mut(i) {
                                *c = Value::String(json_type(c).to_string());
                            }
                        }
                    }
                }
            }
            m.values_mut().for_each(|x| mask_columns(x, cols));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_columns(x, cols)),
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<null>",
        Value::Bool(_) => "<bool>",
        Value::Number(_) => "<number>",
        Value::String(_) => "<string>",
        Value::Array(_) => "<array>",
        Value::Object(_) => "<object>",
    }
}

/// For `@unordered`: merges the series of a result that share name, tags and
/// columns (InfluxDB splits some series at random), sorts them by name and
/// tags, and sorts every `values` array by the rows' JSON text.
fn sort_series_and_rows(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(series)) = m.get_mut("series") {
                let key =
                    |s: &Value| ["name", "tags", "columns"].map(|k| s.get(k).map(Value::to_string));
                let mut merged: Vec<Value> = Vec::new();
                for s in series.drain(..) {
                    match merged.iter_mut().find(|t| key(t) == key(&s)) {
                        Some(t) => {
                            if let (Some(Value::Array(dst)), Some(Value::Array(src))) =
                                (t.get_mut("values"), s.get("values"))
                            {
                                dst.extend(src.iter().cloned());
                            }
                        }
                        None => merged.push(s),
                    }
                }
                *series = merged;
                series.sort_by_cached_key(|s| {
                    let tags = s.get("tags").map(Value::to_string).unwrap_or_default();
                    (
                        s.get("name").map(Value::to_string).unwrap_or_default(),
                        tags,
                    )
                });
            }
            if let Some(Value::Array(rows)) = m.get_mut("values") {
                rows.sort_by_cached_key(Value::to_string);
            }
            m.values_mut().for_each(sort_series_and_rows);
        }
        Value::Array(a) => a.iter_mut().for_each(sort_series_and_rows),
        _ => {}
    }
}

/// Text equality; the difference names the first line that differs.
pub fn compare_text(a: &str, b: &str) -> Result<(), String> {
    if a == b {
        return Ok(());
    }
    let (la, lb): (Vec<_>, Vec<_>) = (a.split('\n').collect(), b.split('\n').collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            return Err(format!(
                "text differs at line {}: {:?} vs {:?}",
                i + 1,
                x.map(|s| truncate(s, 200)),
                y.map(|s| truncate(s, 200))
            ));
        }
    }
    Err("text differs".into())
}

/// Structural JSON equality (see the module documentation for numbers).
pub fn compare_json(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    let at = || {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.to_string()
        }
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            compare_numbers(x, y).map_err(|why| format!("{}: {x} vs {y} ({why})", at()))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!("{}: {} elements vs {}", at(), x.len(), y.len()));
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                compare_json(u, v, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys() {
                if !y.contains_key(k) {
                    return Err(format!("{}: key {k:?} missing in Sundial's", at()));
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return Err(format!("{}: extra key {k:?} in Sundial's", at()));
                }
            }
            for (k, u) in x {
                if let Some(v) = y.get(k) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    compare_json(u, v, &p)?;
                }
            }
            Ok(())
        }
        _ if a == b => Ok(()),
        _ => Err(format!(
            "{}: {} vs {}",
            at(),
            truncate(&a.to_string(), 300),
            truncate(&b.to_string(), 300)
        )),
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Result<(), &'static str> {
    let int = |n: &Number| -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    let float = |n: &Number| n.as_f64().unwrap_or(f64::NAN);
    match (int(x), int(y)) {
        (Some(i), Some(j)) => (i == j).then_some(()).ok_or("integers differ"),
        (None, None) => floats_close(float(x), float(y))
            .then_some(())
            .ok_or("floats differ"),
        _ => mixed(float(x), float(y)),
    }
}

/// An integer token against a float token.
pub(super) fn mixed(x: f64, y: f64) -> Result<(), &'static str> {
    if x == y {
        Err("integer vs float")
    } else if floats_close(x, y) {
        Ok(())
    } else {
        Err("numbers differ")
    }
}

/// Relative 1e-9, and anything within 1e-12 of zero on both sides.
pub fn floats_close(x: f64, y: f64) -> bool {
    if x == y || (x.is_nan() && y.is_nan()) {
        return true;
    }
    if x.abs() < 1e-12 && y.abs() < 1e-12 {
        return true;
    }
    (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
}
