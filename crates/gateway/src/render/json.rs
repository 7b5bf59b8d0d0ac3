//! `/query`'s JSON bodies: whole, or chunked (one object per line) as the
//! answer is made.

use jiff::tz::TimeZone;
use sundial_query::{Row, Series, Value};

use super::{JsonWriter, StmtOut, TimeFormat};

/// InfluxDB's emitter chunk: also the size past which a whole (not chunked)
/// series is marked partial.
pub const DEFAULT_CHUNK_SIZE: usize = 10_000;

/// How a statement's rows are written.
#[derive(Debug, Clone)]
struct Rows<'a> {
    tf: &'a TimeFormat,
    tz: Option<&'a TimeZone>,
    /// A SELECT's rows start with their time; SHOW's have none.
    timed: bool,
}

/// One series object with `rows` of it; `partial`: more rows of it follow.
fn write_series(w: &mut JsonWriter<'_>, s: &Series, rows: &[Row], partial: bool, how: &Rows<'_>) {
    w.begin('{');
    // InfluxDB leaves out an empty name (SHOW SERIES, SHOW RETENTION POLICIES).
    if !s.name.is_empty() {
        w.key("name");
        w.str(&s.name);
    }
    if !s.tags.is_empty() {
        let mut tags: Vec<&(String, String)> = s.tags.iter().collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        w.key("tags");
        w.begin('{');
        for (k, v) in tags {
            w.key(k);
            w.str(v);
        }
        w.end('}');
    }
    if !s.columns.is_empty() {
        w.key("columns");
        w.begin('[');
        for c in &s.columns {
            w.elem();
            w.str(c);
        }
        w.end(']');
    }
    if !rows.is_empty() {
        w.key("values");
        w.begin('[');
        for r in rows {
            w.elem();
            w.begin('[');
            if how.timed {
                w.elem();
                how.tf.write(w, r.time, how.tz);
            }
            for v in &r.values {
                w.elem();
                w.value(v);
            }
            w.end(']');
        }
        w.end(']');
    }
    if partial {
        w.key("partial");
        w.raw("true");
    }
    w.end('}');
}

/// A statement's result object: its series (each with its rows and partial
/// flag), `partial` (more of the statement follows) or its error.
fn write_result(
    w: &mut JsonWriter<'_>,
    id: usize,
    series: &[(&Series, &[Row], bool)],
    partial: bool,
    error: Option<&str>,
    warnings: &[String],
    how: &Rows<'_>,
) {
    w.begin('{');
    w.key("statement_id");
    w.uint(id as u64);
    if !series.is_empty() {
        w.key("series");
        w.begin('[');
        for (s, rows, more) in series {
            w.elem();
            write_series(w, s, rows, *more, how);
        }
        w.end(']');
    }
    if !warnings.is_empty() {
        w.key("messages");
        w.begin('[');
        for text in warnings {
            w.elem();
            w.begin('{');
            w.key("level");
            w.str("warning");
            w.key("text");
            w.str(text);
            w.end('}');
        }
        w.end(']');
    }
    if partial {
        w.key("partial");
        w.raw("true");
    }
    if let Some(e) = error {
        w.key("error");
        w.str(e);
    }
    w.end('}');
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
        .flat_map(|r| &r.values)
        .find_map(|v| match v {
            Value::Float(f) if f.is_infinite() => Some(if *f > 0.0 { "+Inf" } else { "-Inf" }),
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
    // About what the rows take (times as RFC 3339), so the text grows once.
    let cells: usize = stmts
        .iter()
        .flat_map(|s| &s.tables)
        .map(|t| t.rows.len() * (t.columns.len() + 1))
        .sum();
    let mut out = String::with_capacity(256 + cells * 14);
    let mut w = JsonWriter::new(&mut out, pretty);
    w.begin('{');
    w.key("results");
    w.begin('[');
    for (i, s) in stmts.iter().enumerate() {
        let how = Rows {
            tf,
            tz: s.tz.as_ref(),
            timed: s.timed,
        };
        w.elem();
        if let Some(e) = &s.error {
            write_result(
                &mut w,
                i,
                &[],
                false,
                Some(&shown_error(i, total, e)),
                &[],
                &how,
            );
            continue;
        }
        let series: Vec<(&Series, &[Row], bool)> = s
            .tables
            .iter()
            .map(|t| (t, t.rows.as_slice(), t.rows.len() > DEFAULT_CHUNK_SIZE))
            .collect();
        write_result(&mut w, i, &series, false, None, &s.warnings, &how);
    }
    w.end(']');
    w.end('}');
    out.push('\n');
    out
}

/// A `chunked=true` body, written as the answer is made: one JSON object per
/// line, a new one at every series and every `chunk_size` rows, each but a
/// statement's last marked partial. Pieces go in with [`Chunker::push`] (a
/// piece with the same name and tags as the one before goes on with its
/// series); the text is taken out with [`Chunker::take`] as it grows.
#[derive(Debug)]
pub struct Chunker {
    chunk: usize,
    pretty: bool,
    tf: TimeFormat,
    out: String,
    /// The statement being written.
    stmt: usize,
    timed: bool,
    tz: Option<TimeZone>,
    /// The series whose rows are not all written yet.
    current: Option<Series>,
    /// The data bytes of its rows (`Series::data_bytes`).
    current_bytes: usize,
    /// A line ready but for its result's partial flag (whether anything of
    /// the statement follows): its series and whether more of it follow.
    held: Option<(Series, bool)>,
    /// Warnings of the statement, shown on its last line.
    warnings: Vec<String>,
}

impl Chunker {
    pub fn new(tf: TimeFormat, pretty: bool, chunk_size: usize) -> Chunker {
        Chunker {
            chunk: chunk_size.max(1),
            pretty,
            tf,
            out: String::new(),
            stmt: 0,
            timed: false,
            tz: None,
            current: None,
            current_bytes: 0,
            held: None,
            warnings: Vec::new(),
        }
    }

    /// Starts statement `id`.
    pub fn start(&mut self, id: usize, timed: bool, tz: Option<TimeZone>) {
        self.stmt = id;
        self.timed = timed;
        self.tz = tz;
    }

    /// Rows of a series: continuing the current one or starting the next.
    pub fn push(&mut self, piece: Series) {
        let bytes = piece.data_bytes();
        match &mut self.current {
            Some(cur) if cur.continued_by(&piece) => cur.rows.extend(piece.rows),
            _ => {
                self.close_series();
                self.current = Some(piece);
            }
        }
        self.current_bytes += bytes;
        self.cut_full_chunks();
    }

    /// Rows a line takes.
    pub fn chunk_size(&self) -> usize {
        self.chunk
    }

    /// Data bytes of the rows held for lines not written yet (a series'
    /// rows wait until a chunk is full or the series ends).
    pub fn held_bytes(&self) -> usize {
        self.current_bytes
    }

    /// A whole series (a SHOW answer's), never joined to the one before.
    pub fn push_whole(&mut self, series: Series) {
        self.close_series();
        self.current_bytes = series.data_bytes();
        self.current = Some(series);
        self.cut_full_chunks();
    }

    /// Ends the statement: its last line (an empty result when it had none).
    pub fn finish(&mut self) {
        self.close_series();
        let warnings = std::mem::take(&mut self.warnings);
        match self.held.take() {
            Some((s, more)) => self.line_with(Some((&s, more)), false, None, &warnings),
            None => self.line_with(None, false, None, &warnings),
        }
    }

    /// A warning for the statement being written (on its last line).
    pub fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }

    /// Ends statement `id` with an error (after what it wrote already).
    pub fn fail(&mut self, id: usize, error: &str) {
        self.stmt = id;
        self.warnings.clear();
        self.close_series();
        if let Some((s, more)) = self.held.take() {
            self.line(Some((&s, more)), true, None);
        }
        self.line(None, false, Some(error));
    }

    /// The statement `id` names as not run (InfluxDB's chunked form).
    pub fn not_executed(&mut self, id: usize) {
        self.stmt = id;
        self.line(None, false, Some("not executed"));
    }

    /// Bytes written since the last take.
    pub fn written(&self) -> usize {
        self.out.len()
    }

    /// The text written since the last take.
    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    /// Cuts chunks off the current series while more than one chunk's rows
    /// remain (with exactly one chunk left, whether more follow is unknown).
    fn cut_full_chunks(&mut self) {
        while let Some(cur) = &mut self.current {
            if cur.rows.len() <= self.chunk {
                break;
            }
            let rest = cur.rows.split_off(self.chunk);
            let rows = std::mem::replace(&mut cur.rows, rest);
            let chunk = Series {
                name: cur.name.clone(),
                tags: cur.tags.clone(),
                columns: cur.columns.clone(),
                rows,
            };
            self.current_bytes = self.current_bytes.saturating_sub(chunk.data_bytes());
            self.hold(chunk, true);
        }
    }

    fn close_series(&mut self) {
        self.current_bytes = 0;
        if let Some(cur) = self.current.take() {
            self.hold(cur, false);
        }
    }

    /// Holds a line back until it is known whether another follows it.
    fn hold(&mut self, s: Series, more: bool) {
        if let Some((prev, prev_more)) = self.held.take() {
            // 1.6 sends each series of a SHOW answer as a result of its own,
            // none marked partial.
            self.line(Some((&prev, prev_more)), self.timed, None);
        }
        self.held = Some((s, more));
    }

    fn line(&mut self, series: Option<(&Series, bool)>, partial: bool, error: Option<&str>) {
        self.line_with(series, partial, error, &[]);
    }

    fn line_with(
        &mut self,
        series: Option<(&Series, bool)>,
        partial: bool,
        error: Option<&str>,
        warnings: &[String],
    ) {
        let how = Rows {
            tf: &self.tf,
            tz: self.tz.as_ref(),
            timed: self.timed,
        };
        let mut w = JsonWriter::new(&mut self.out, self.pretty);
        w.begin('{');
        w.key("results");
        w.begin('[');
        w.elem();
        let one;
        let series: &[(&Series, &[Row], bool)] = match series {
            Some((s, more)) => {
                one = [(s, s.rows.as_slice(), more)];
                &one
            }
            None => &[],
        };
        write_result(&mut w, self.stmt, series, partial, error, warnings, &how);
        w.end(']');
        w.end('}');
        self.out.push('\n');
    }
}
