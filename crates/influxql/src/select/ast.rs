//! The SELECT statement and expressions, and their rendering as InfluxDB 1.6 writes
//! them back (`SHOW QUERIES`, stored continuous queries): `INFLUXQL-1.6.md` §6.

use std::fmt::{self, Display, Formatter, Write};

use super::token::{lookup, T};

/// A field's declared type (`value::float`, `host::tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
    Tag,
    /// `::field`: any field type.
    AnyField,
}

impl DataType {
    fn name(self) -> &'static str {
        match self {
            DataType::Float => "float",
            DataType::Integer => "integer",
            DataType::Unsigned => "unsigned",
            DataType::String => "string",
            DataType::Boolean => "boolean",
            DataType::Tag => "tag",
            DataType::AnyField => "field",
        }
    }
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinOp(pub(super) T);

impl BinOp {
    pub fn precedence(self) -> u8 {
        self.0.precedence()
    }

    /// True for the comparisons and logic meant for WHERE.
    pub fn is_condition(self) -> bool {
        matches!(
            self.0,
            T::Eq
                | T::Neq
                | T::EqRegex
                | T::NeqRegex
                | T::Lt
                | T::Lte
                | T::Gt
                | T::Gte
                | T::And
                | T::Or
        )
    }

    pub fn symbol(self) -> &'static str {
        self.0.name()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    VarRef {
        name: String,
        ty: Option<DataType>,
    },
    Call {
        name: String,
        args: Vec<Expr>,
    },
    /// `DISTINCT value` (the keyword form; `distinct(value)` is a call).
    Distinct(String),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Paren(Box<Expr>),
    Integer(i64),
    Unsigned(u64),
    Number(f64),
    Str(String),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    /// A point in time (nanoseconds since the epoch): `now()` and time strings,
    /// once evaluated.
    Time(i64),
    Regex(String),
    /// `*`, `*::field`, `*::tag`.
    Wildcard(Option<DataType>),
}

impl Expr {
    /// `time` (any case), the column conditions compare for the time range.
    pub fn is_time_ref(&self) -> bool {
        matches!(self, Expr::VarRef { name, .. } if name.eq_ignore_ascii_case("time"))
    }

    /// Calls `f` with this expression and every one inside it (operands,
    /// parenthesised expressions, call arguments), the outer first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            Expr::Paren(x) => x.walk(f),
            Expr::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            _ => {}
        }
    }
}

/// A SELECT field: an expression (or a regex of field names) and its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// A measurement source: a name or a regex, with its database and retention policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurement {
    pub database: String,
    pub retention_policy: String,
    pub name: String,
    pub regex: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Measurement(Measurement),
    Subquery(Box<SelectStatement>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    Null,
    None,
    Previous,
    Linear,
    Integer(i64),
    Float(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortField {
    /// Empty for a bare `ASC`/`DESC`.
    pub name: String,
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectStatement {
    pub fields: Vec<Field>,
    /// `INTO`: a measurement (its name empty for `:MEASUREMENT`).
    pub target: Option<Measurement>,
    pub sources: Vec<Source>,
    pub condition: Option<Expr>,
    /// GROUP BY dimensions (expressions or regexes).
    pub dimensions: Vec<Expr>,
    pub fill: Fill,
    pub sort: Vec<SortField>,
    pub limit: i64,
    pub offset: i64,
    pub slimit: i64,
    pub soffset: i64,
    /// `tz('…')`: the zone name.
    pub location: Option<String>,
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Whether an identifier must be double-quoted.
fn needs_quotes(s: &str) -> bool {
    if lookup(s).is_some() {
        return true;
    }
    let mut cs = s.chars();
    match cs.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return true,
    }
    cs.any(|c| !(c.is_ascii_alphanumeric() || c == '_'))
}

/// Quotes segments of an identifier as InfluxDB's `QuoteIdent` does.
pub fn quote_ident(segments: &[&str]) -> String {
    let mut out = String::new();
    let last = segments.len().saturating_sub(1);
    for (i, s) in segments.iter().enumerate() {
        let quote = needs_quotes(s) && !s.is_empty()
            || (!s.is_empty() && i != last)
            || (s.is_empty() && (i == 0 || i == last) && segments.len() == 1);
        if quote {
            out.push('"');
            for c in s.chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
            out.push('"');
        } else {
            out.push_str(s);
        }
        if i != last {
            out.push('.');
        }
    }
    out
}

fn quote_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// InfluxQL's duration rendering: the largest unit that divides it, else
/// microseconds (truncated).
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    const UNITS: [(i64, &str); 6] = [
        (604_800_000_000_000, "w"),
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
    ];
    for (n, u) in UNITS {
        if d % n == 0 {
            return format!("{}{u}", d / n);
        }
    }
    format!("{}u", d / 1000)
}

/// Go's `%v` of a float64, for `fill(x)`: the shortest digits, in exponent form
/// (`1e+06`) when the decimal exponent is below -4 or at least 6.
fn go_float(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::VarRef { name, ty } => {
                f.write_str(&quote_ident(&[name]))?;
                if let Some(t) = ty {
                    write!(f, "::{}", t.name())?;
                }
                Ok(())
            }
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
            Expr::Distinct(v) => write!(f, "DISTINCT {v}"),
            Expr::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.symbol()),
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Integer(i) => write!(f, "{i}"),
            Expr::Unsigned(u) => write!(f, "{u}"),
            Expr::Number(n) => write!(f, "{n:.3}"),
            Expr::Str(s) => f.write_str(&quote_string(s)),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Duration(d) => f.write_str(&format_duration(*d)),
            Expr::Time(t) => match jiff::Timestamp::from_nanosecond(i128::from(*t)) {
                Ok(ts) => write!(f, "'{ts}'"),
                Err(_) => write!(f, "'{t}'"),
            },
            Expr::Regex(r) => write!(f, "/{}/", r.replace('/', "\\/")),
            Expr::Wildcard(t) => {
                f.write_char('*')?;
                if let Some(t) = t {
                    write!(f, "::{}", t.name())?;
                }
                Ok(())
            }
        }
    }
}

impl Display for Measurement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.database.is_empty() {
            write!(f, "{}.", quote_ident(&[&self.database]))?;
        }
        if !self.retention_policy.is_empty() {
            f.write_str(&quote_ident(&[&self.retention_policy]))?;
        }
        if !self.database.is_empty() || !self.retention_policy.is_empty() {
            f.write_char('.')?;
        }
        match &self.regex {
            Some(r) => write!(f, "{}", Expr::Regex(r.clone())),
            // An empty name (`FROM ""`, `INTO db.rp.:MEASUREMENT`) prints nothing.
            None if self.name.is_empty() => Ok(()),
            None => f.write_str(&quote_ident(&[&self.name])),
        }
    }
}

impl Display for SortField {
    /// `[name ]ASC|DESC`, the name unquoted (as InfluxDB writes it).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.name.is_empty() {
            write!(f, "{} ", self.name)?;
        }
        f.write_str(if self.ascending { "ASC" } else { "DESC" })
    }
}

impl Display for SelectStatement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        for (i, fl) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", fl.expr)?;
            if let Some(a) = &fl.alias {
                write!(f, " AS {}", quote_ident(&[a]))?;
            }
        }
        if let Some(t) = &self.target {
            write!(f, " INTO {t}")?;
            if t.name.is_empty() && t.regex.is_none() {
                f.write_str(":MEASUREMENT")?;
            }
        }
        if !self.sources.is_empty() {
            f.write_str(" FROM ")?;
            for (i, s) in self.sources.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                match s {
                    Source::Measurement(m) => write!(f, "{m}")?,
                    Source::Subquery(q) => write!(f, "({q})")?,
                }
            }
        }
        if let Some(c) = &self.condition {
            write!(f, " WHERE {c}")?;
        }
        if !self.dimensions.is_empty() {
            f.write_str(" GROUP BY ")?;
            for (i, d) in self.dimensions.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{d}")?;
            }
        }
        match &self.fill {
            Fill::Null => {}
            Fill::None => f.write_str(" fill(none)")?,
            Fill::Previous => f.write_str(" fill(previous)")?,
            Fill::Linear => f.write_str(" fill(linear)")?,
            Fill::Integer(i) => write!(f, " fill({i})")?,
            Fill::Float(v) => write!(f, " fill({})", go_float(*v))?,
        }
        if !self.sort.is_empty() {
            f.write_str(" ORDER BY ")?;
            for (i, s) in self.sort.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{s}")?;
            }
        }
        for (kw, n) in [
            ("LIMIT", self.limit),
            ("OFFSET", self.offset),
            ("SLIMIT", self.slimit),
            ("SOFFSET", self.soffset),
        ] {
            if n > 0 {
                write!(f, " {kw} {n}")?;
            }
        }
        if let Some(tz) = &self.location {
            write!(f, " TZ('{tz}')")?;
        }
        Ok(())
    }
}
