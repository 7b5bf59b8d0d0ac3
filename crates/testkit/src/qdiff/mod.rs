//! Differential testing of `/query`: a corpus of InfluxQL requests run against a
//! real InfluxDB 1.x and against Sundial, and their responses compared.
//!
//! # Corpus format
//!
//! Entries are separated by blank lines. Inside an entry, in any order before the
//! query text:
//!
//! * `# covers: label1 label2 …` — labels of the coverage list (several lines add up);
//! * `# …` — any other comment line;
//! * `@param name=value` — a request parameter: `epoch`, `chunked`, `chunk_size`,
//!   `pretty`, `db`, `rp`. `db` defaults to the runner's database; `@param db=`
//!   (empty) sends no `db` at all;
//! * `@accept MEDIA-TYPE` — the `Accept` header (e.g. `application/csv`);
//! * `@method POST` — send `q` in a form body (other parameters stay in the URL,
//!   as Grafana does); GET (all in the URL) otherwise;
//! * `@expect data|empty|error|any` — what InfluxDB's answer must look like, so
//!   that a typo cannot turn an entry into a comparison of two empty results:
//!   `data` (the default): 200 and every statement returns series; `empty`: 200,
//!   no error, some statement without series; `error`: a status other than 200 or
//!   some statement failed; `any`: not checked;
//! * `@unordered` — series and rows may come in any order, and a series may be
//!   split in pieces (for answers InfluxDB leaves to chance, e.g. integral()
//!   with GROUP BY tags);
//! * `@shape col,col…` — those columns are compared by JSON type only (ids
//!   InfluxDB and Sundial number differently: shard and group ids, owners).
//!
//! The remaining lines are the query text, kept with their line breaks (error
//! positions count lines); it may hold several statements separated by `;`.
//! An entry without query text (e.g. a block of comments) is ignored.
//!
//! # Comparison
//!
//! Status codes, `Content-Type` and `X-Influxdb-Error` headers must be equal.
//! JSON bodies (one document, or the sequence of documents of a chunked answer)
//! are compared structurally: object keys in any order, strings exactly, integers
//! exactly, floats to a relative 1e-9. JSON from Go writes a float without a
//! fractional part as an integer (`1`, not `1.0`), so an integer token against a
//! float token of the same value is a mismatch (a different value within the
//! tolerance — a rounding difference where one side came out whole — is not).
//! Values within 1e-12 of zero on both sides count as equal. CSV bodies are
//! compared line by line and cell by cell with the same number rules. With
//! `pretty=true` the text must also be identical once the JSON is equal
//! (indentation matters). Any other body is compared as text.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Number, Value};

/// The parameters an entry may set with `@param`.
pub const PARAMS: &[&str] = &["epoch", "chunked", "chunk_size", "pretty", "db", "rp"];

/// What InfluxDB's answer to an entry must look like (`@expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Data,
    Empty,
    Error,
    Any,
}

/// One corpus entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The corpus file's name (for reports).
    pub file: String,
    /// 1-based line of the entry's first line.
    pub line: usize,
    pub labels: Vec<String>,
    /// `@param`s in order; a `db` with an empty value means "send no db".
    pub params: Vec<(String, String)>,
    pub accept: Option<String>,
    pub post: bool,
    pub expect: Expect,
    /// Series and rows are compared in any order (`@unordered`).
    pub unordered: bool,
    /// Columns compared by JSON type only (`@shape`).
    pub shape: Vec<String>,
    pub query: String,
}

impl Entry {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The request's parameters other than `q`, with the default database.
    pub fn request_params(&self, default_db: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match self.param("db") {
            None => out.push(("db".to_string(), default_db.to_string())),
            Some("") => {}
            Some(db) => out.push(("db".to_string(), db.to_string())),
        }
        for (k, v) in &self.params {
            if k != "db" {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    /// A one-line description of the request (method, parameters, Accept).
    pub fn describe(&self, default_db: &str) -> String {
        let mut s = String::from(if self.post { "POST" } else { "GET" });
        for (k, v) in self.request_params(default_db) {
            let _ = write!(s, " {k}={v}");
        }
        if let Some(a) = &self.accept {
            let _ = write!(s, " Accept: {a}");
        }
        s
    }

    fn is_pretty(&self) -> bool {
        self.param("pretty") == Some("true")
    }
}

/// Parses a corpus file (format in the module documentation).
pub fn parse_corpus(text: &str, file: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut block: Vec<(usize, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                if let Some(e) = parse_entry(&block, file)? {
                    entries.push(e);
                }
                block.clear();
            }
        } else {
            block.push((i + 1, line));
        }
    }
    if !block.is_empty() {
        if let Some(e) = parse_entry(&block, file)? {
            entries.push(e);
        }
    }
    Ok(entries)
}

fn parse_entry(block: &[(usize, &str)], file: &str) -> Result<Option<Entry>, String> {
    let mut e = Entry {
        file: file.to_string(),
        line: block.first().map_or(0, |(n, _)| *n),
        labels: Vec::new(),
        params: Vec::new(),
        accept: None,
        post: false,
        expect: Expect::Data,
        unordered: false,
        shape: Vec::new(),
        query: String::new(),
    };
    let mut query: Vec<&str> = Vec::new();
    for &(n, line) in block {
        let err = |what: &str| format!("{file}:{n}: {what}: {line}");
        let t = line.trim();
        if !query.is_empty() {
            // Once the query started, every line belongs to it.
            query.push(line);
        } else if let Some(rest) = t.strip_prefix('#') {
            if let Some(labels) = rest.trim().strip_prefix("covers:") {
                e.labels
                    .extend(labels.split_whitespace().map(str::to_string));
            }
        } else if let Some(rest) = t.strip_prefix("@param ") {
            let (k, v) = rest
                .trim()
                .split_once('=')
                .ok_or_else(|| err("@param wants name=value"))?;
            if !PARAMS.contains(&k) {
                return Err(err("unknown parameter"));
            }
            e.params.push((k.to_string(), v.to_string()));
        } else if let Some(rest) = t.strip_prefix("@accept ") {
            e.accept = Some(rest.trim().to_string());
        } else if let Some(rest) = t.strip_prefix("@method ") {
            e.post = match rest.trim() {
                "POST" => true,
                "GET" => false,
                _ => return Err(err("@method is GET or POST")),
            };
        } else if let Some(rest) = t.strip_prefix("@expect ") {
            e.expect = match rest.trim() {
                "data" => Expect::Data,
                "empty" => Expect::Empty,
                "error" => Expect::Error,
                "any" => Expect::Any,
                _ => return Err(err("@expect is data, empty, error or any")),
            };
        } else if t == "@unordered" {
            e.unordered = true;
        } else if let Some(rest) = t.strip_prefix("@shape ") {
            e.shape = rest.split(',').map(|c| c.trim().to_string()).collect();
        } else if t.starts_with('@') {
            return Err(err("unknown directive"));
        } else {
            query.push(line);
        }
    }
    if query.is_empty() {
        if e.labels.is_empty() && e.params.is_empty() {
            return Ok(None);
        }
        return Err(format!("{file}:{}: entry without a query", e.line));
    }
    e.query = query.join("\n");
    Ok(Some(e))
}

/// The labels of a coverage list: the first word of every line that is neither
/// empty nor a `#` comment (the rest of the line describes it).
pub fn parse_coverage(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Problems of coverage: labels of the list no entry covers, and labels used by
/// entries that the list does not have (typos).
pub fn check_coverage(list: &[String], entries: &[Entry]) -> Vec<String> {
    let mut problems = Vec::new();
    for l in list {
        if !entries.iter().any(|e| e.labels.contains(l)) {
            problems.push(format!("label `{l}` is covered by no corpus entry"));
        }
    }
    for e in entries {
        for l in &e.labels {
            if !list.contains(l) {
                problems.push(format!(
                    "{}: label `{l}` is not in the coverage list",
                    e.location()
                ));
            }
        }
    }
    problems
}

/// What a server answered.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    /// The `X-Influxdb-Error` header (empty when absent).
    pub error_header: String,
    pub body: String,
}

/// An HTTP client for the corpus.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("build the HTTP client")
}

/// Sends an entry's request to `base` (`http://host:port`).
pub fn fetch(
    client: &reqwest::blocking::Client,
    base: &str,
    e: &Entry,
    default_db: &str,
) -> Result<Response, String> {
    let url = format!("{base}/query");
    let params = e.request_params(default_db);
    let mut req = if e.post {
        client
            .post(&url)
            .query(&params)
            .form(&[("q", e.query.as_str())])
    } else {
        let mut all = params;
        all.insert(0, ("q".to_string(), e.query.clone()));
        client.get(&url).query(&all)
    };
    if let Some(a) = &e.accept {
        req = req.header("Accept", a);
    }
    let resp = req.send().map_err(|err| format!("request failed: {err}"))?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let status = resp.status().as_u16();
    let content_type = header("content-type");
    let error_header = header("x-influxdb-error");
    let body = resp
        .text()
        .map_err(|err| format!("reading the body failed: {err}"))?;
    Ok(Response {
        status,
        content_type,
        error_header,
        body,
    })
}

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
fn mixed(x: f64, y: f64) -> Result<(), &'static str> {
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

/// Splits one CSV line (Go's encoding/csv quoting: `"` around cells holding
/// commas, quotes or line breaks, `""` for a quote).
pub fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if cur.is_empty() => quoted = true,
            ',' if !quoted => cells.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    cells.push(cur);
    cells
}

/// Records of a CSV body: lines, except that a quoted cell may hold line breaks.
fn csv_records(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in body.split('\n') {
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(line.strip_suffix('\r').unwrap_or(line));
        if cur.matches('"').count().is_multiple_of(2) {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn csv_number(cell: &str) -> Option<(bool, f64)> {
    let v: f64 = cell.parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    let int = !cell.contains(['.', 'e', 'E']);
    Some((int, v))
}

/// CSV equality, record by record and cell by cell.
pub fn compare_csv(a: &str, b: &str) -> Result<(), String> {
    let (ra, rb) = (csv_records(a), csv_records(b));
    if ra.len() != rb.len() {
        return Err(format!("{} CSV lines vs {}", ra.len(), rb.len()));
    }
    for (n, (x, y)) in ra.iter().zip(&rb).enumerate() {
        let (cx, cy) = (csv_cells(x), csv_cells(y));
        if cx.len() != cy.len() {
            return Err(format!(
                "CSV line {}: {} cells vs {}: {:?} vs {:?}",
                n + 1,
                cx.len(),
                cy.len(),
                truncate(x, 200),
                truncate(y, 200)
            ));
        }
        for (i, (u, v)) in cx.iter().zip(&cy).enumerate() {
            if u == v {
                continue;
            }
            let same = match (csv_number(u), csv_number(v)) {
                (Some((iu, fu)), Some((iv, fv))) if iu == iv => !iu && floats_close(fu, fv),
                (Some((_, fu)), Some((_, fv))) => mixed(fu, fv).is_ok(),
                _ => false,
            };
            if !same {
                return Err(format!(
                    "CSV line {}, cell {}: {u:?} vs {v:?}",
                    n + 1,
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

/// At most `max` bytes of `s` (on a character boundary), with a mark when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

mod run;

pub use run::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resp(status: u16, ct: &str, body: &str) -> Response {
        Response {
            status,
            content_type: ct.into(),
            error_header: String::new(),
            body: body.into(),
        }
    }

    fn entry(text: &str) -> Entry {
        parse_corpus(text, "t").unwrap().remove(0)
    }

    const J: &str = "application/json";

    #[test]
    fn parses_entries() {
        let text = "# header comment only\n\n# covers: a b\n# covers: c\n@param epoch=ms\n@param db=\n@accept application/csv\n@method POST\n@expect empty\nSELECT 1\n  FROM x\n\n\nSELECT y FROM z\n";
        let es = parse_corpus(text, "f").unwrap();
        assert_eq!(es.len(), 2);
        assert_eq!(es[0].labels, ["a", "b", "c"]);
        assert_eq!(es[0].line, 3);
        assert_eq!(es[0].query, "SELECT 1\n  FROM x");
        assert!(es[0].post);
        assert_eq!(es[0].expect, Expect::Empty);
        assert_eq!(es[0].accept.as_deref(), Some("application/csv"));
        assert_eq!(
            es[0].request_params("diff"),
            [("epoch".to_string(), "ms".to_string())]
        );
        assert_eq!(es[1].line, 14);
        assert_eq!(es[1].request_params("diff")[0].1, "diff");
        assert!(parse_corpus("@param nope=1\nSELECT 1", "f").is_err());
        assert!(parse_corpus("@bogus\nSELECT 1", "f").is_err());
    }

    #[test]
    fn numbers_keep_integer_and_float_apart() {
        let e = entry("SELECT 1");
        let cmp = |a: &str, b: &str| compare(&e, &resp(200, J, a), &resp(200, J, b));
        assert!(cmp("[1, 2.5]", "[1, 2.5000000000001]").is_ok());
        assert!(cmp("[1]", "[1.0]").is_err());
        assert!(cmp("[2]", "[3]").is_err());
        assert!(cmp("[2.5]", "[2.6]").is_err());
        assert!(cmp("[3]", "[2.9999999999999996]").is_ok());
        assert!(cmp(r#"{"a":1,"b":[null,"x"]}"#, r#"{"b":[null,"x"],"a":1}"#).is_ok());
        assert!(cmp(r#"{"a":1}"#, r#"{"a":1,"b":2}"#).is_err());
        assert!(cmp("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n").is_err());
        assert!(cmp("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}").is_ok());
    }

    #[test]
    fn status_headers_and_pretty_text_count() {
        let e = entry("SELECT 1");
        assert!(compare(&e, &resp(200, J, "{}"), &resp(400, J, "{}")).is_err());
        assert!(compare(&e, &resp(200, J, "{}"), &resp(200, "text/csv", "{}")).is_err());
        let p = entry("@param pretty=true\nSELECT 1");
        let a = resp(200, J, "{\n    \"a\": 1\n}");
        assert!(compare(&p, &a, &resp(200, J, "{\n  \"a\": 1\n}")).is_err());
        assert!(compare(&p, &a, &a.clone()).is_ok());
        assert!(compare(&e, &a, &resp(200, J, "{\"a\":1}")).is_ok());
    }

    #[test]
    fn shape_compares_named_columns_by_type() {
        let e = entry("@shape id,owners\nSHOW SHARDS");
        assert_eq!(e.shape, vec!["id".to_string(), "owners".to_string()]);
        let resp = |body: &str| Response {
            status: 200,
            content_type: "application/json".into(),
            error_header: String::new(),
            body: body.into(),
        };
        let a = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[[1,"x",""]]}]}]}"#,
        );
        let b = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[[7,"x","1,2"]]}]}]}"#,
        );
        let c = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[[7,"y","1"]]}]}]}"#,
        );
        let d = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[["7","x","1"]]}]}]}"#,
        );
        assert_eq!(compare(&e, &a, &b), Ok(()));
        assert!(compare(&e, &a, &c).is_err());
        assert!(compare(&e, &a, &d).is_err());
    }

    #[test]
    fn unordered_ignores_series_and_row_order() {
        let x = r#"{"results":[{"series":[{"name":"m","tags":{"h":"a"},"values":[[1,2],[0,3]]},{"name":"m","tags":{"h":"b"},"values":[[5,5]]}]}]}"#;
        let y = r#"{"results":[{"series":[{"name":"m","tags":{"h":"b"},"values":[[5,5]]},{"name":"m","tags":{"h":"a"},"values":[[0,3]]},{"name":"m","tags":{"h":"a"},"values":[[1,2]]}]}]}"#;
        let e = entry("SELECT 1");
        assert!(compare(&e, &resp(200, J, x), &resp(200, J, y)).is_err());
        let u = entry("@unordered\nSELECT 1");
        assert!(u.unordered);
        assert!(compare(&u, &resp(200, J, x), &resp(200, J, y)).is_ok());
    }

    #[test]
    fn csv_cells_and_numbers() {
        assert_eq!(
            csv_cells(r#"a,"b,c","d""e",,1"#),
            ["a", "b,c", "d\"e", "", "1"]
        );
        let ct = "text/csv";
        let e = entry("@accept application/csv\nSELECT 1");
        let cmp = |a: &str, b: &str| compare(&e, &resp(200, ct, a), &resp(200, ct, b));
        assert!(cmp(
            "name,time,x\nm,1,2.5\n",
            "name,time,x\nm,1,2.50000000000001\n"
        )
        .is_ok());
        assert!(cmp("name,time,x\nm,1,2\n", "name,time,x\nm,1,2.0\n").is_err());
        assert!(cmp("name,time,x\nm,1,2\n", "name,time,x\nm,2,2\n").is_err());
        assert!(cmp("a,\"x\ny\"\n", "a,\"x\ny\"\n").is_ok());
    }

    #[test]
    fn expectations() {
        let data = resp(
            200,
            J,
            r#"{"results":[{"statement_id":0,"series":[{"name":"m"}]}]}"#,
        );
        let empty = resp(200, J, r#"{"results":[{"statement_id":0}]}"#);
        let failed = resp(200, J, r#"{"results":[{"statement_id":0,"error":"x"}]}"#);
        let bad = resp(400, J, r#"{"error":"x"}"#);
        let e = entry("SELECT 1");
        assert!(check_expectation(&e, &data).is_none());
        assert!(check_expectation(&e, &empty).is_some());
        assert!(check_expectation(&e, &failed).is_some());
        let e = entry("@expect error\nSELECT 1");
        assert!(check_expectation(&e, &failed).is_none());
        assert!(check_expectation(&e, &bad).is_none());
        assert!(check_expectation(&e, &data).is_some());
        let e = entry("@expect empty\nSELECT 1");
        assert!(check_expectation(&e, &empty).is_none());
        assert!(check_expectation(&e, &data).is_some());
    }

    #[test]
    fn coverage() {
        let list = parse_coverage("# c\nfoo  the foo thing\nbar\n\n");
        assert_eq!(list, ["foo", "bar"]);
        let es = parse_corpus("# covers: foo baz\nSELECT 1", "f").unwrap();
        let p = check_coverage(&list, &es);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
