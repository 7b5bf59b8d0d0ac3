//! The SELECT parser, following InfluxDB 1.6's recursive descent call for call
//! (which token reads skip whitespace, which look at the raw next rune, where
//! tokens are pushed back): that is what decides its error texts and positions.
//! `INFLUXQL-1.6.md` §2 describes each step.

use std::fmt;

use super::ast::{quote_ident, Expr, Field, Fill, Measurement, SelectStatement, SortField, Source};
use super::expr::last_condition_op;
use super::scanner::{is_ws, Scanner, Tok};
use super::statement::STATEMENT_START;
use super::token::{tokstr, Pos, T};

/// A parse error as InfluxDB words it (`Display` is the text after
/// `error parsing query: `). Some carry no position, as in InfluxDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QlError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl fmt::Display for QlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(
                f,
                "{} at line {}, char {}",
                self.message,
                p.line + 1,
                p.char + 1
            ),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for QlError {}

pub(super) fn plain(message: impl Into<String>) -> QlError {
    QlError {
        message: message.into(),
        pos: None,
    }
}

pub(super) fn at(message: impl Into<String>, pos: Pos) -> QlError {
    QlError {
        message: message.into(),
        pos: Some(pos),
    }
}

pub(super) fn found(tok: &Tok, expected: &[&str]) -> QlError {
    at(
        format!(
            "found {}, expected {}",
            tokstr(tok.t, &tok.lit),
            expected.join(", ")
        ),
        tok.pos,
    )
}

pub(super) type Result<T> = std::result::Result<T, QlError>;

/// One statement of a query as the driver found it: a SELECT or another
/// statement parsed here (`statement.rs`), or the text of a statement the
/// parser of `crate::parser` reads (databases, retention policies, users, and
/// the statements not parsed yet) and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Select(Box<SelectStatement>),
    Statement(Box<crate::ast::Statement>),
    Other { text: String, start: Pos },
}

/// Splits a query into statements (separated by `;`) as InfluxDB's `ParseQuery`
/// does, parsing the SELECTs and the statements of `statement.rs`.
pub fn parse_statements(q: &str) -> Result<Vec<Parsed>> {
    let mut p = Parser { s: Scanner::new(q) };
    let mut out = Vec::new();
    let mut semi = true;
    loop {
        let tok = p.s.scan_ignore_ws();
        match tok.t {
            T::Eof => {
                if out.is_empty() {
                    return Err(found(&tok, STATEMENT_START));
                }
                return Ok(out);
            }
            T::Semicolon => semi = true,
            _ => {
                if !semi {
                    return Err(found(&tok, &[";"]));
                }
                out.push(p.statement(q, &tok)?);
                semi = false;
            }
        }
    }
}

/// Parses a query of SELECT statements only (other statements fail, naming
/// themselves): what the fixtures and the fuzz target drive.
pub fn parse_select_query(q: &str) -> Result<Vec<SelectStatement>> {
    parse_statements(q)?
        .into_iter()
        .map(|s| match s {
            Parsed::Select(s) => Ok(*s),
            Parsed::Statement(_) => Err(plain("only SELECT statements are parsed here")),
            Parsed::Other { start, .. } => Err(at("only SELECT statements are parsed here", start)),
        })
        .collect()
}

/// Parses one expression (a condition a gateway sends a store as text).
pub fn parse_expr(q: &str) -> Result<Expr> {
    let mut p = Parser { s: Scanner::new(q) };
    let e = p.expr()?;
    let tok = p.s.scan_ignore_ws();
    if tok.t != T::Eof {
        return Err(found(&tok, &["EOF"]));
    }
    Ok(e)
}

/// The byte offset of a position in `q`.
fn offset_of(q: &str, pos: Pos) -> usize {
    let mut line = 0;
    let mut col = 0;
    let mut chars = q.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if line == pos.line && col == pos.char {
            return i;
        }
        // The scanner reads "\r\n" and "\r" as one newline.
        if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek().map(|&(_, n)| n) == Some('\n') {
                chars.next();
            }
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
    }
    q.len()
}

pub(super) struct Parser {
    pub(super) s: Scanner,
}

impl Parser {
    // ------------------------------------------------------------- primitives

    fn consume_ws(&mut self) {
        if self.s.scan().t != T::Ws {
            self.s.unscan();
        }
    }

    pub(super) fn ident(&mut self) -> Result<String> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Ident {
            return Err(found(&t, &["identifier"]));
        }
        Ok(t.lit)
    }

    pub(super) fn expect(&mut self, want: T) -> Result<()> {
        let t = self.s.scan_ignore_ws();
        if t.t != want {
            return Err(found(&t, &[want.name()]));
        }
        Ok(())
    }

    /// Takes the next token if it is `want` (whitespace skipped); otherwise it
    /// stays for the next read.
    pub(super) fn accept(&mut self, want: T) -> bool {
        if self.s.scan_ignore_ws().t == want {
            return true;
        }
        self.s.unscan();
        false
    }

    /// `KEYWORD n` when the keyword comes next; 0 otherwise.
    pub(super) fn optional_int(&mut self, kw: &'static str) -> Result<i64> {
        if !self.accept(T::Kw(kw)) {
            return Ok(0);
        }
        let t = self.s.scan_ignore_ws();
        if t.t != T::Integer {
            return Err(found(&t, &["integer"]));
        }
        // InfluxDB ignores the parse error: an overflow saturates.
        Ok(t.lit.parse::<i64>().unwrap_or(i64::MAX))
    }

    /// A regex literal if one comes next (after optional whitespace).
    pub(super) fn regex(&mut self) -> Result<Option<String>> {
        if is_ws(self.s.peek_rune()) {
            self.consume_ws();
        }
        if self.s.peek_rune() != '/' {
            return Ok(None);
        }
        let t = self.s.scan_regex();
        match t.t {
            T::Regex => match super::regex::check(&t.lit) {
                Ok(()) => Ok(Some(t.lit)),
                Err(msg) => Err(at(msg, t.pos)),
            },
            T::BadRegex => Err(at("bad regex: ", t.pos)),
            _ => Err(found(&t, &["regex"])),
        }
    }

    /// Skips a statement left to `crate::parser` (its first tokens read) to its
    /// `;` or the end, returning its text.
    pub(super) fn other_statement(&mut self, q: &str, start: Pos) -> Parsed {
        let end = loop {
            let t = self.s.scan_ignore_ws();
            if matches!(t.t, T::Semicolon | T::Eof) {
                self.s.unscan();
                break t.pos;
            }
        };
        let (a, b) = (offset_of(q, start), offset_of(q, end));
        Parsed::Other {
            text: q.get(a..b.max(a)).unwrap_or_default().to_owned(),
            start,
        }
    }

    // ------------------------------------------------------------- SELECT

    /// A SELECT after its keyword; `into_required` in a continuous query.
    pub(super) fn select_statement(&mut self, into_required: bool) -> Result<SelectStatement> {
        let fields = self.fields()?;
        let target = self.parse_into(into_required)?;
        self.expect(T::Kw("FROM"))?;
        let sources = self.sources()?;
        let condition = self.condition()?;
        let dimensions = self.dimensions()?;
        let fill = self.fill()?;
        let sort = self.order_by()?;
        let limit = self.optional_int("LIMIT")?;
        let offset = self.optional_int("OFFSET")?;
        let slimit = self.optional_int("SLIMIT")?;
        let soffset = self.optional_int("SOFFSET")?;
        let location = self.location()?;
        Ok(SelectStatement {
            fields,
            target,
            sources,
            condition,
            dimensions,
            fill,
            sort,
            limit,
            offset,
            slimit,
            soffset,
            location,
        })
    }

    fn fields(&mut self) -> Result<Vec<Field>> {
        let mut out = Vec::new();
        loop {
            out.push(self.field()?);
            if self.s.scan().t != T::Comma {
                self.s.unscan();
                return Ok(out);
            }
        }
    }

    fn field(&mut self) -> Result<Field> {
        let expr = match self.regex()? {
            Some(r) => Expr::Regex(r),
            None => {
                let t = self.s.scan_ignore_ws();
                let pos = t.pos;
                self.s.unscan();
                let e = self.expr()?;
                if let Some(op) = last_condition_op(&e) {
                    return Err(plain(format!(
                        "invalid operator {} in SELECT clause at line {}, char {}; operator is intended for WHERE clause",
                        op.symbol(),
                        pos.line + 1,
                        pos.char + 1
                    )));
                }
                e
            }
        };
        let alias = if self.accept(T::Kw("AS")) {
            Some(self.ident()?)
        } else {
            None
        };
        self.consume_ws();
        Ok(Field { expr, alias })
    }

    /// `ident { "." ident }` (at most three; an empty segment when `..`).
    pub(super) fn segmented_idents(&mut self) -> Result<Vec<String>> {
        let mut idents = vec![self.ident()?];
        loop {
            if self.s.scan().t != T::Dot {
                self.s.unscan();
                break;
            }
            match self.s.peek_rune() {
                '/' | ':' => break,
                '.' => idents.push(String::new()),
                _ => idents.push(self.ident()?),
            }
        }
        if idents.len() > 3 {
            let segs: Vec<&str> = idents.iter().map(String::as_str).collect();
            return Err(at(
                format!("too many segments in {}", quote_ident(&segs)),
                Pos::default(),
            ));
        }
        Ok(idents)
    }

    fn parse_into(&mut self, required: bool) -> Result<Option<Measurement>> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Kw("INTO") {
            if required {
                return Err(found(&t, &["INTO"]));
            }
            self.s.unscan();
            return Ok(None);
        }
        self.target().map(Some)
    }

    fn target(&mut self) -> Result<Measurement> {
        let mut idents = self.segmented_idents()?;
        let mut m = Measurement::default();
        if idents.len() < 3 && self.s.peek_rune() == ':' {
            self.expect(T::Colon)?;
            self.expect(T::Kw("MEASUREMENT"))?;
            // An empty name after `rp.` or `db.rp.` (`rp.:MEASUREMENT` names
            // the retention policy, as in InfluxDB).
            idents.push(String::new());
        }
        assign_segments(&mut m, idents);
        Ok(m)
    }

    fn sources(&mut self) -> Result<Vec<Source>> {
        let mut out = Vec::new();
        loop {
            out.push(self.source()?);
            if !self.accept(T::Comma) {
                return Ok(out);
            }
        }
    }

    /// A SELECT's source: a measurement or a subquery.
    fn source(&mut self) -> Result<Source> {
        if let Some(r) = self.regex()? {
            return Ok(Source::Measurement(Measurement {
                regex: Some(r),
                ..Measurement::default()
            }));
        }
        if self.accept(T::LParen) {
            self.expect(T::Kw("SELECT"))?;
            let q = self.select_statement(false)?;
            self.expect(T::RParen)?;
            return Ok(Source::Subquery(Box::new(q)));
        }
        self.named_measurement().map(Source::Measurement)
    }

    /// Sources where InfluxDB allows no subqueries (SHOW …, DELETE, DROP SERIES).
    pub(super) fn measurements(&mut self) -> Result<Vec<Measurement>> {
        let mut out = Vec::new();
        loop {
            out.push(self.measurement()?);
            if !self.accept(T::Comma) {
                return Ok(out);
            }
        }
    }

    /// A measurement source (no subquery): a regex or segmented names.
    pub(super) fn measurement(&mut self) -> Result<Measurement> {
        if let Some(r) = self.regex()? {
            return Ok(Measurement {
                regex: Some(r),
                ..Measurement::default()
            });
        }
        self.named_measurement()
    }

    /// `[db.][rp.]name`, or `[db.]rp.` followed by a regex.
    fn named_measurement(&mut self) -> Result<Measurement> {
        let idents = self.segmented_idents()?;
        let mut m = Measurement::default();
        if idents.len() == 3 {
            assign_segments(&mut m, idents);
            return Ok(m);
        }
        let regex = self.regex()?;
        match (idents.len(), regex) {
            (1, Some(r)) => {
                m.retention_policy = idents[0].clone();
                m.regex = Some(r);
            }
            (_, Some(r)) => {
                m.database = idents[0].clone();
                m.retention_policy = idents[1].clone();
                m.regex = Some(r);
            }
            (_, None) => assign_segments(&mut m, idents),
        }
        Ok(m)
    }

    pub(super) fn condition(&mut self) -> Result<Option<Expr>> {
        if !self.accept(T::Kw("WHERE")) {
            return Ok(None);
        }
        self.expr().map(Some)
    }

    pub(super) fn dimensions(&mut self) -> Result<Vec<Expr>> {
        if !self.accept(T::Kw("GROUP")) {
            return Ok(Vec::new());
        }
        self.expect(T::Kw("BY"))?;
        let mut out = Vec::new();
        loop {
            match self.regex()? {
                Some(r) => out.push(Expr::Regex(r)),
                None => {
                    out.push(self.expr()?);
                    self.consume_ws();
                }
            }
            if self.s.scan().t != T::Comma {
                self.s.unscan();
                return Ok(out);
            }
        }
    }

    /// Whether the next token is the identifier `name` (any case); nothing is consumed.
    fn next_is_ident(&mut self, name: &str) -> bool {
        let t = self.s.scan_ignore_ws();
        self.s.unscan();
        t.t == T::Ident && t.lit.eq_ignore_ascii_case(name)
    }

    fn fill(&mut self) -> Result<Fill> {
        if !self.next_is_ident("fill") {
            return Ok(Fill::Null);
        }
        let Expr::Call { args, .. } = self.expr()? else {
            return Err(plain("fill must be a function call"));
        };
        if args.len() != 1 {
            return Err(plain(
                "fill requires an argument, e.g.: 0, null, none, previous, linear",
            ));
        }
        Ok(match args[0].to_string().as_str() {
            "null" => Fill::Null,
            "none" => Fill::None,
            "previous" => Fill::Previous,
            "linear" => Fill::Linear,
            _ => match args[0] {
                Expr::Integer(i) => Fill::Integer(i),
                Expr::Number(n) => Fill::Float(n),
                _ => return Err(plain("expected number argument in fill()")),
            },
        })
    }

    pub(super) fn order_by(&mut self) -> Result<Vec<SortField>> {
        if !self.accept(T::Kw("ORDER")) {
            return Ok(Vec::new());
        }
        self.expect(T::Kw("BY"))?;
        let only_time = || plain("only ORDER BY time supported at this time");
        let first = self.s.scan_ignore_ws();
        let mut fields = vec![match first.t {
            T::Kw("ASC") | T::Kw("DESC") => SortField {
                name: String::new(),
                ascending: first.t == T::Kw("ASC"),
            },
            T::Ident => {
                self.s.unscan();
                let f = self.sort_field()?;
                if f.name != "time" {
                    return Err(only_time());
                }
                f
            }
            _ => return Err(found(&first, &["identifier", "ASC", "DESC"])),
        }];
        while self.accept(T::Comma) {
            fields.push(self.sort_field()?);
        }
        if fields.len() > 1 {
            return Err(only_time());
        }
        Ok(fields)
    }

    fn sort_field(&mut self) -> Result<SortField> {
        let name = self.ident()?;
        let t = self.s.scan_ignore_ws();
        let ascending = match t.t {
            T::Kw("ASC") => true,
            T::Kw("DESC") => false,
            _ => {
                self.s.unscan();
                true
            }
        };
        Ok(SortField { name, ascending })
    }

    fn location(&mut self) -> Result<Option<String>> {
        if !self.next_is_ident("tz") {
            return Ok(None);
        }
        let Expr::Call { args, .. } = self.expr()? else {
            return Err(plain("tz must be a function call"));
        };
        if args.len() != 1 {
            return Err(plain("tz requires exactly one argument"));
        }
        let Expr::Str(name) = &args[0] else {
            return Err(plain("expected string argument in tz()"));
        };
        match name.as_str() {
            "" | "UTC" => Ok(Some("UTC".into())),
            n if n == "Local" || super::condition::load_zone(n).is_some() => {
                Ok(Some(n.to_string()))
            }
            n => Err(plain(format!("unable to find time zone {n}"))),
        }
    }
}

/// db, rp and name from one to three segments.
fn assign_segments(m: &mut Measurement, mut idents: Vec<String>) {
    match idents.len() {
        3 => {
            m.name = idents.pop().unwrap_or_default();
            m.retention_policy = idents.pop().unwrap_or_default();
            m.database = idents.pop().unwrap_or_default();
        }
        2 => {
            m.name = idents.pop().unwrap_or_default();
            m.retention_policy = idents.pop().unwrap_or_default();
        }
        _ => m.name = idents.pop().unwrap_or_default(),
    }
}
