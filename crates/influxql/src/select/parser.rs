//! The SELECT parser, following InfluxDB 1.6's recursive descent call for call
//! (which token reads skip whitespace, which look at the raw next rune, where
//! tokens are pushed back): that is what decides its error texts and positions.
//! `INFLUXQL-1.6.md` §2 describes each step.

use std::fmt;

use super::ast::{
    quote_ident, BinOp, DataType, Expr, Field, Fill, Measurement, SelectStatement, SortField,
    Source,
};
use super::scanner::{tokstr, Pos, Scanner, Tok, T};

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

fn plain(message: impl Into<String>) -> QlError {
    QlError {
        message: message.into(),
        pos: None,
    }
}

fn at(message: impl Into<String>, pos: Pos) -> QlError {
    QlError {
        message: message.into(),
        pos: Some(pos),
    }
}

fn found(tok: &Tok, expected: &[&str]) -> QlError {
    at(
        format!(
            "found {}, expected {}",
            tokstr(tok.t, &tok.lit),
            expected.join(", ")
        ),
        tok.pos,
    )
}

type Result<T> = std::result::Result<T, QlError>;

/// Statement keywords InfluxDB lists when a statement cannot start.
const STATEMENT_START: &[&str] = &[
    "SELECT", "DELETE", "SHOW", "CREATE", "DROP", "EXPLAIN", "GRANT", "REVOKE", "ALTER", "SET",
    "KILL",
];

/// Parses a query of SELECT statements (separated by `;`) as InfluxDB's
/// `ParseQuery` would. Other statements are not handled here yet: they fail with
/// an error naming them.
pub fn parse_select_query(q: &str) -> Result<Vec<SelectStatement>> {
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
                if tok.t != T::Kw("SELECT") {
                    if STATEMENT_START.iter().any(|k| tok.t == T::Kw(k)) {
                        return Err(at("only SELECT statements are parsed here", tok.pos));
                    }
                    return Err(found(&tok, STATEMENT_START));
                }
                out.push(p.select_statement(false)?);
                semi = false;
            }
        }
    }
}

struct Parser {
    s: Scanner,
}

impl Parser {
    // ------------------------------------------------------------- primitives

    fn consume_ws(&mut self) {
        if self.s.scan().t != T::Ws {
            self.s.unscan();
        }
    }

    fn ident(&mut self) -> Result<String> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Ident {
            return Err(found(&t, &["identifier"]));
        }
        Ok(t.lit)
    }

    fn expect(&mut self, want: T) -> Result<()> {
        let t = self.s.scan_ignore_ws();
        if t.t != want {
            return Err(found(&t, &[want.name()]));
        }
        Ok(())
    }

    /// `KEYWORD n` when the keyword comes next; 0 otherwise.
    fn optional_int(&mut self, kw: &'static str) -> Result<i64> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Kw(kw) {
            self.s.unscan();
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
    fn regex(&mut self) -> Result<Option<String>> {
        if is_ws(self.s.peek_rune()) {
            self.consume_ws();
        }
        if self.s.peek_rune() != '/' {
            return Ok(None);
        }
        let t = self.s.scan_regex();
        match t.t {
            T::Regex => Ok(Some(t.lit)),
            T::BadRegex => Err(at("bad regex: ", t.pos)),
            _ => Err(found(&t, &["regex"])),
        }
    }

    // ------------------------------------------------------------- SELECT

    fn select_statement(&mut self, subquery: bool) -> Result<SelectStatement> {
        let fields = self.fields()?;
        let t = self.s.scan_ignore_ws();
        let target = if t.t == T::Kw("INTO") {
            Some(self.target()?)
        } else {
            self.s.unscan();
            None
        };
        let _ = subquery;
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
        let t = self.s.scan_ignore_ws();
        let alias = if t.t == T::Kw("AS") {
            Some(self.ident()?)
        } else {
            self.s.unscan();
            None
        };
        self.consume_ws();
        Ok(Field { expr, alias })
    }

    /// `ident { "." ident }` (at most three; an empty segment when `..`).
    fn segmented_idents(&mut self) -> Result<Vec<String>> {
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

    fn target(&mut self) -> Result<Measurement> {
        let idents = self.segmented_idents()?;
        let mut m = Measurement::default();
        if idents.len() < 3 && self.s.peek_rune() == ':' {
            self.expect(T::Colon)?;
            self.expect(T::Kw("MEASUREMENT"))?;
            match idents.len() {
                1 => m.database = idents[0].clone(),
                _ => {
                    m.database = idents[0].clone();
                    m.retention_policy = idents[1].clone();
                }
            }
            return Ok(m);
        }
        assign_segments(&mut m, idents);
        Ok(m)
    }

    fn sources(&mut self) -> Result<Vec<Source>> {
        let mut out = Vec::new();
        loop {
            out.push(self.source()?);
            let t = self.s.scan_ignore_ws();
            if t.t != T::Comma {
                self.s.unscan();
                return Ok(out);
            }
        }
    }

    fn source(&mut self) -> Result<Source> {
        if let Some(r) = self.regex()? {
            return Ok(Source::Measurement(Measurement {
                regex: Some(r),
                ..Measurement::default()
            }));
        }
        let t = self.s.scan_ignore_ws();
        if t.t == T::LParen {
            self.expect(T::Kw("SELECT"))?;
            let q = self.select_statement(true)?;
            self.expect(T::RParen)?;
            return Ok(Source::Subquery(Box::new(q)));
        }
        self.s.unscan();
        let idents = self.segmented_idents()?;
        let mut m = Measurement::default();
        if idents.len() == 3 {
            assign_segments(&mut m, idents);
            return Ok(Source::Measurement(m));
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
        Ok(Source::Measurement(m))
    }

    fn condition(&mut self) -> Result<Option<Expr>> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Kw("WHERE") {
            self.s.unscan();
            return Ok(None);
        }
        self.expr().map(Some)
    }

    fn dimensions(&mut self) -> Result<Vec<Expr>> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Kw("GROUP") {
            self.s.unscan();
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

    fn order_by(&mut self) -> Result<Vec<SortField>> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Kw("ORDER") {
            self.s.unscan();
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
        loop {
            let t = self.s.scan_ignore_ws();
            if t.t != T::Comma {
                self.s.unscan();
                break;
            }
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
            n if known_zone(n) => Ok(Some(n.to_string())),
            n => Err(plain(format!("unable to find time zone {n}"))),
        }
    }

    // ------------------------------------------------------------- expressions

    fn expr(&mut self) -> Result<Expr> {
        let mut root = self.unary()?;
        loop {
            let op = self.s.scan_ignore_ws();
            if !op.t.is_operator() {
                self.s.unscan();
                return Ok(root);
            }
            let rhs = if matches!(op.t, T::EqRegex | T::NeqRegex) {
                match self.regex()? {
                    Some(r) => Expr::Regex(r),
                    None => {
                        let t = self.s.scan_ignore_ws();
                        return Err(found(&t, &["regex"]));
                    }
                }
            } else {
                self.unary()?
            };
            root = insert_binary(root, BinOp(op.t), rhs);
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        let t = self.s.scan_ignore_ws();
        if t.t == T::LParen {
            let e = self.expr()?;
            self.expect(T::RParen)?;
            return Ok(Expr::Paren(Box::new(e)));
        }
        self.s.unscan();
        let t = self.s.scan_ignore_ws();
        match t.t {
            T::Ident => {
                if self.s.scan().t == T::LParen {
                    return self.call(&t.lit);
                }
                self.s.unscan();
                self.s.unscan();
                self.var_ref()
            }
            T::Kw("DISTINCT") => {
                let n = self.s.scan();
                match n.t {
                    T::LParen => self.call("distinct"),
                    T::Ws => {
                        let v = self.s.scan_ignore_ws();
                        if v.t != T::Ident {
                            return Err(found(&v, &["identifier"]));
                        }
                        Ok(Expr::Distinct(v.lit))
                    }
                    _ => Err(found(&n, &["(", "identifier"])),
                }
            }
            T::Str => Ok(Expr::Str(t.lit)),
            T::Number => t
                .lit
                .parse::<f64>()
                .map(Expr::Number)
                .map_err(|_| at("unable to parse number", t.pos)),
            T::Integer => match t.lit.parse::<i64>() {
                Ok(i) => Ok(Expr::Integer(i)),
                Err(_) => t
                    .lit
                    .parse::<u64>()
                    .map(Expr::Unsigned)
                    .map_err(|_| at("unable to parse integer", t.pos)),
            },
            T::True | T::False => Ok(Expr::Bool(t.t == T::True)),
            T::DurationVal => parse_duration(&t.lit).map(Expr::Duration),
            T::Mul => {
                let n = self.s.scan();
                if n.t != T::DoubleColon {
                    self.s.unscan();
                    return Ok(Expr::Wildcard(None));
                }
                let ty = self.s.scan();
                match ty.t {
                    T::Kw("FIELD") => Ok(Expr::Wildcard(Some(DataType::AnyField))),
                    T::Kw("TAG") => Ok(Expr::Wildcard(Some(DataType::Tag))),
                    _ => Err(found(&ty, &["field", "tag"])),
                }
            }
            T::BoundParam => {
                let key = t.lit.trim_start_matches('$');
                if key.is_empty() {
                    return Err(plain("empty bound parameter"));
                }
                Err(plain(format!("missing parameter: {key}")))
            }
            T::Add | T::Sub => {
                let n = self.s.scan_ignore_ws();
                if !matches!(
                    n.t,
                    T::Number | T::Integer | T::DurationVal | T::LParen | T::Ident
                ) {
                    return Err(found(&n, &["identifier", "number", "duration", "("]));
                }
                self.s.unscan();
                let e = self.unary()?;
                let neg = t.t == T::Sub;
                Ok(match e {
                    Expr::Number(v) if neg => Expr::Number(-v),
                    Expr::Integer(v) if neg => Expr::Integer(v.wrapping_neg()),
                    Expr::Duration(v) if neg => Expr::Duration(v.wrapping_neg()),
                    Expr::Unsigned(u) if neg => {
                        if u == 1 << 63 {
                            Expr::Integer(i64::MIN)
                        } else {
                            return Err(plain(format!("constant -{u} underflows int64")));
                        }
                    }
                    e @ (Expr::VarRef { .. } | Expr::Call { .. } | Expr::Paren(_)) => {
                        Expr::Binary {
                            op: BinOp(T::Mul),
                            lhs: Box::new(Expr::Integer(if neg { -1 } else { 1 })),
                            rhs: Box::new(e),
                        }
                    }
                    e => e,
                })
            }
            _ => Err(found(&t, &["identifier", "string", "number", "bool"])),
        }
    }

    fn var_ref(&mut self) -> Result<Expr> {
        let name = self.segmented_idents()?.join(".");
        let t = self.s.scan();
        if t.t != T::DoubleColon {
            self.s.unscan();
            return Ok(Expr::VarRef { name, ty: None });
        }
        let ty = self.s.scan();
        let dt = match ty.t {
            T::Ident => match ty.lit.to_ascii_lowercase().as_str() {
                "float" => DataType::Float,
                "integer" => DataType::Integer,
                "unsigned" => DataType::Unsigned,
                "string" => DataType::String,
                "boolean" => DataType::Boolean,
                _ => {
                    return Err(found(
                        &ty,
                        &[
                            "float", "integer", "unsigned", "string", "boolean", "field", "tag",
                        ],
                    ))
                }
            },
            T::Kw("FIELD") => DataType::AnyField,
            T::Kw("TAG") => DataType::Tag,
            _ => {
                return Err(found(
                    &ty,
                    &["float", "integer", "string", "boolean", "field", "tag"],
                ))
            }
        };
        Ok(Expr::VarRef { name, ty: Some(dt) })
    }

    fn call(&mut self, name: &str) -> Result<Expr> {
        let name = name.to_lowercase();
        let mut args = Vec::new();
        match self.regex()? {
            Some(r) => args.push(Expr::Regex(r)),
            None => {
                if self.s.scan().t == T::RParen {
                    return Ok(Expr::Call { name, args });
                }
                self.s.unscan();
                args.push(self.expr()?);
            }
        }
        loop {
            let t = self.s.scan_ignore_ws();
            if t.t != T::Comma {
                self.s.unscan();
                break;
            }
            match self.regex()? {
                Some(r) => args.push(Expr::Regex(r)),
                None => args.push(self.expr()?),
            }
        }
        let t = self.s.scan();
        if t.t != T::RParen {
            return Err(found(&t, &[")"]));
        }
        Ok(Expr::Call { name, args })
    }
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n'
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

/// Adds `op rhs` to a left-associative tree, below every binary node on the right
/// spine that binds less tightly.
fn insert_binary(root: Expr, op: BinOp, rhs: Expr) -> Expr {
    match root {
        Expr::Binary { op: o, lhs, rhs: r } if o.precedence() < op.precedence() => Expr::Binary {
            op: o,
            lhs,
            rhs: Box::new(insert_binary(*r, op, rhs)),
        },
        root => Expr::Binary {
            op,
            lhs: Box::new(root),
            rhs: Box::new(rhs),
        },
    }
}

/// The condition operator InfluxDB's SELECT-field check reports: pre-order, not
/// descending below one, the last found wins.
fn last_condition_op(e: &Expr) -> Option<BinOp> {
    fn walk(e: &Expr, bad: &mut Option<BinOp>) {
        match e {
            Expr::Binary { op, lhs, rhs } => {
                if op.is_condition() {
                    *bad = Some(*op);
                    return;
                }
                walk(lhs, bad);
                walk(rhs, bad);
            }
            Expr::Paren(x) => walk(x, bad),
            Expr::Call { args, .. } => args.iter().for_each(|a| walk(a, bad)),
            _ => {}
        }
    }
    let mut bad = None;
    walk(e, &mut bad);
    bad
}

/// InfluxQL's duration literal: `<digits><unit>` groups, summed (wrapping).
pub fn parse_duration(s: &str) -> Result<i64> {
    let invalid = || plain("invalid duration");
    if s.len() < 2 {
        return Err(invalid());
    }
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last = String::new();
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(invalid());
        }
        let digits: String = chars[start..i].iter().collect();
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        let u0 = chars.get(i).copied();
        let (mul, unit) = match (u0, chars.get(i + 1).copied()) {
            (Some('n'), Some('s')) => (1, "ns"),
            (Some('m'), Some('s')) => (1_000_000, "ms"),
            (Some('u'), _) => (1_000, "u"),
            (Some('µ'), _) => (1_000, "µ"),
            (Some('s'), _) => (1_000_000_000, "s"),
            (Some('m'), _) => (60_000_000_000, "m"),
            (Some('h'), _) => (3_600_000_000_000, "h"),
            (Some('d'), _) => (86_400_000_000_000, "d"),
            (Some('w'), _) => (604_800_000_000_000, "w"),
            _ => return Err(invalid()),
        };
        i += unit.chars().count();
        total = total.wrapping_add(n.wrapping_mul(mul));
        last = format!("{digits}{unit}");
    }
    if negative {
        total = total.wrapping_neg();
    }
    if total < 0 && !negative {
        return Err(plain(format!(
            "overflowed duration {last}: choose a smaller duration or INF"
        )));
    }
    Ok(total)
}

/// Time zone names `tz()` accepts: IANA names as the system's zone database has
/// them, and `Local`.
fn known_zone(name: &str) -> bool {
    if name == "Local" {
        return true;
    }
    if name.starts_with('/') || name.contains("..") {
        return false;
    }
    std::path::Path::new("/usr/share/zoneinfo")
        .join(name)
        .is_file()
}
