//! The corpus: its entries (`@param`, `@expect`, … as the `qdiff` module
//! documentation describes them), parsing a corpus file, and checking coverage.

use std::fmt::Write as _;

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

    pub(super) fn is_pretty(&self) -> bool {
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
