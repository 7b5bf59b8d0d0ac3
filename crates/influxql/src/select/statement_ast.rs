//! The syntax trees of the statements `statement.rs` parses besides SELECT
//! (SHOW MEASUREMENTS, SHOW TAG KEYS/VALUES, SHOW FIELD KEYS, SHOW SERIES, the
//! cardinality statements, DELETE, DROP SERIES, continuous queries), and their
//! rendering: `Display` writes what InfluxDB 1.6's `String()` writes (SHOW
//! QUERIES shows it; a continuous query is stored as it).
//!
//! 1.6 checks at parse time only the grammar (regexes compiled, ORDER BY only
//! on time, DELETE / DROP SERIES need FROM or WHERE and sources without
//! database or retention policy, a continuous query's checks: see
//! [`CreateContinuousQuery`]). Everything else happens when it runs a
//! statement, and is the executor's:
//! * the database: `None` when `ON` is not given; 1.6 takes the request's `db`
//!   then (`database name required` without one, `database not found: <db>`);
//!   DELETE, DROP SERIES and DROP MEASUREMENT always use the request's `db`;
//! * the WHERE clause is kept whole: 1.6 evaluates `now()` and splits off the
//!   time range ([`split_condition`]) for SHOW TAG KEYS / TAG VALUES (to pick
//!   shards) and DELETE, and rejects time where [`has_time_expr`] says;
//! * sources carry only what was written; 1.6 turns the FROM of SHOW TAG KEYS,
//!   TAG VALUES and MEASUREMENTS into conditions on the measurement name
//!   (`_name = 'm'`, `_name =~ /re/`), ignoring their database and policy.
use std::fmt::{self, Display, Formatter, Write};

use super::ast::{format_duration, quote_ident, Expr, Measurement, SelectStatement, SortField};
use super::condition::{condition_expr, Clock, TimeRange};
use super::token::T;
use crate::ast::DurationNs;

/// `WITH KEY …` of `SHOW TAG VALUES [CARDINALITY]`: which tag keys' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKeyFilter {
    /// `= key`
    Eq(String),
    /// `!= key`
    NotEq(String),
    /// `=~ /regex/`
    Regex(String),
    /// `!~ /regex/`
    NotRegex(String),
    /// `IN (k1, k2, …)`
    In(Vec<String>),
}

/// `SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =|=~ m] [WHERE …] [ORDER BY …]
/// [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowMeasurements {
    pub database: Option<String>,
    /// `WITH MEASUREMENT`: a name (possibly `db.rp.name`) or, `regex` set, a
    /// regex. Written `=` or `=~`, it is rendered by what it holds.
    pub measurement: Option<Measurement>,
    pub condition: Option<Expr>,
    pub sort: Vec<SortField>,
    /// 0: none.
    pub limit: i64,
    pub offset: i64,
}

/// `SHOW SERIES [ON db] [FROM …] [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowSeries {
    pub database: Option<String>,
    pub sources: Vec<Measurement>,
    pub condition: Option<Expr>,
    pub sort: Vec<SortField>,
    pub limit: i64,
    pub offset: i64,
}

/// `SHOW TAG KEYS [ON db] [FROM …] [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]
/// [SLIMIT n] [SOFFSET n]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowTagKeys {
    pub database: Option<String>,
    pub sources: Vec<Measurement>,
    pub condition: Option<Expr>,
    pub sort: Vec<SortField>,
    pub limit: i64,
    pub offset: i64,
    pub slimit: i64,
    pub soffset: i64,
}

/// `SHOW TAG VALUES [ON db] [FROM …] WITH KEY … [WHERE …] [ORDER BY …]
/// [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagValues {
    pub database: Option<String>,
    pub sources: Vec<Measurement>,
    pub key: TagKeyFilter,
    pub condition: Option<Expr>,
    pub sort: Vec<SortField>,
    pub limit: i64,
    pub offset: i64,
}

/// `SHOW FIELD KEYS [ON db] [FROM …] [ORDER BY …] [LIMIT n] [OFFSET n]` (no
/// WHERE in 1.6).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowFieldKeys {
    pub database: Option<String>,
    pub sources: Vec<Measurement>,
    pub sort: Vec<SortField>,
    pub limit: i64,
    pub offset: i64,
}

/// What a cardinality statement counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cardinality {
    /// `SHOW SERIES [EXACT] CARDINALITY`
    Series,
    /// `SHOW MEASUREMENT [EXACT] CARDINALITY`
    Measurement,
    /// `SHOW TAG KEY [EXACT] CARDINALITY`
    TagKey,
    /// `SHOW TAG VALUES [EXACT] CARDINALITY … WITH KEY …`
    TagValues(TagKeyFilter),
    /// `SHOW FIELD KEY [EXACT] CARDINALITY`
    FieldKey,
}

/// `SHOW <what> [EXACT] CARDINALITY [ON db] [FROM …] [WITH KEY …] [WHERE …]
/// [GROUP BY …] [LIMIT n] [OFFSET n]`: every form takes the same clauses in
/// 1.6 (WITH KEY only, and required, for tag values); none takes ORDER BY.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowCardinality {
    pub of: Cardinality,
    pub exact: bool,
    pub database: Option<String>,
    pub sources: Vec<Measurement>,
    pub condition: Option<Expr>,
    /// GROUP BY (expressions or regexes, unchecked at parse time).
    pub dimensions: Vec<Expr>,
    pub limit: i64,
    pub offset: i64,
}

/// `DROP SERIES [FROM …] [WHERE …]` (at least one of the two). The sources
/// have neither database nor retention policy (1.6 rejects them when parsing).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DropSeries {
    pub sources: Vec<Measurement>,
    pub condition: Option<Expr>,
}

/// `DELETE [FROM …] [WHERE …]` (at least one of the two); sources as in
/// [`DropSeries`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteSeries {
    pub sources: Vec<Measurement>,
    pub condition: Option<Expr>,
}

/// `CREATE CONTINUOUS QUERY name ON db [RESAMPLE [EVERY d] [FOR d]] BEGIN
/// <select> END`, checked as 1.6 checks it when parsing: INTO required, a
/// GROUP BY time(…) when the SELECT calls a function, FOR ≥ the interval.
///
/// 1.6 stores (and SHOW CONTINUOUS QUERIES shows) `Display` of the statement
/// *after* the executor qualified every measurement, INTO included, with a
/// database and retention policy: the request's `db` parameter when given,
/// else the CQ's `ON` database, and the request's `rp` parameter, else that
/// database's default policy (`INTO m2 … FROM cpu` is stored as
/// `INTO db.autogen.m2 … FROM db.autogen.cpu`). The parser does not do it.
/// Then 1.6 fails with `retention policy not found: <db>.<rp>` for a
/// qualified measurement whose policy is missing, `database not found: <db>`
/// for the `ON` database, and `continuous query already exists` when the name
/// is taken by a different text (the same text, ignoring case, is no error).
/// DROP CONTINUOUS QUERY of a missing query or database is no error.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateContinuousQuery {
    pub name: String,
    pub database: String,
    /// RESAMPLE EVERY (nanoseconds); `None` also for `EVERY 0s`, which 1.6
    /// does not tell apart from no EVERY.
    pub resample_every: Option<DurationNs>,
    /// RESAMPLE FOR; `None` likewise.
    pub resample_for: Option<DurationNs>,
    pub select: SelectStatement,
}

/// 1.6's `HasTimeExpr`: whether a comparison with `time` on its left side
/// appears under ANDs, ORs and parentheses. 1.6's executor rejects such WHERE
/// clauses with `<what> doesn't support time in WHERE clause`, `<what>` being
/// `SHOW MEASUREMENTS`, `DROP SERIES`, `SHOW FIELD KEY CARDINALITY` (exact or
/// not), `SHOW TAG KEY EXACT CARDINALITY` (exact or not), and `SHOW SERIES
/// EXACT CARDINALITY` / `SHOW MEASUREMENT EXACT CARDINALITY` (also for the
/// estimated forms once they have any clause); SHOW SERIES with time reads
/// the data instead of the index.
pub fn has_time_expr(e: &Expr) -> bool {
    match e {
        Expr::Binary { op, lhs, rhs } if matches!(op.0, T::And | T::Or) => {
            has_time_expr(lhs) || has_time_expr(rhs)
        }
        Expr::Binary { lhs, .. } => lhs.is_time_ref(),
        Expr::Paren(inner) => has_time_expr(inner),
        _ => false,
    }
}

/// A statement's WHERE clause split as 1.6's executor splits it when it runs
/// SHOW TAG KEYS, SHOW TAG VALUES or DELETE (`now()` is the clock's, times in
/// UTC): the condition left for tags (None: none) and the time range. No WHERE
/// clause gives no condition and an unbounded range.
pub fn split_condition(
    cond: Option<&Expr>,
    clock: &Clock,
) -> Result<(Option<Expr>, TimeRange), String> {
    match cond {
        None => Ok((None, TimeRange::default())),
        Some(c) => condition_expr(c, clock),
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

struct OnClause<'a>(&'a Option<String>);

impl Display for OnClause<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(db) => write!(f, " ON {}", quote_ident(&[db])),
            None => Ok(()),
        }
    }
}

struct FromClause<'a>(&'a [Measurement]);

impl Display for FromClause<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" FROM ")?;
        list(f, self.0)
    }
}

struct WhereClause<'a>(&'a Option<Expr>);

impl Display for WhereClause<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, " WHERE {c}"),
            None => Ok(()),
        }
    }
}

struct OrderByClause<'a>(&'a [SortField]);

impl Display for OrderByClause<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" ORDER BY ")?;
        list(f, self.0)
    }
}

struct GroupByClause<'a>(&'a [Expr]);

impl Display for GroupByClause<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" GROUP BY ")?;
        list(f, self.0)
    }
}

/// ` LIMIT n` and the like, for the counts given (> 0).
struct Counts<'a>(&'a [(&'a str, i64)]);

impl Display for Counts<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (kw, n) in self.0 {
            if *n > 0 {
                write!(f, " {kw} {n}")?;
            }
        }
        Ok(())
    }
}

fn list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    Ok(())
}

impl Display for TagKeyFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let regex = |r: &String| Expr::Regex(r.clone());
        match self {
            TagKeyFilter::Eq(k) => write!(f, "= {}", quote_ident(&[k])),
            TagKeyFilter::NotEq(k) => write!(f, "!= {}", quote_ident(&[k])),
            TagKeyFilter::Regex(r) => write!(f, "=~ {}", regex(r)),
            TagKeyFilter::NotRegex(r) => write!(f, "!~ {}", regex(r)),
            TagKeyFilter::In(keys) => {
                f.write_str("IN (")?;
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&quote_ident(&[k]))?;
                }
                f.write_char(')')
            }
        }
    }
}

impl Display for ShowMeasurements {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SHOW MEASUREMENTS")?;
        // 1.6 writes this database unquoted.
        if let Some(db) = &self.database {
            write!(f, " ON {db}")?;
        }
        if let Some(m) = &self.measurement {
            let op = if m.regex.is_some() { "=~" } else { "=" };
            write!(f, " WITH MEASUREMENT {op} {m}")?;
        }
        write!(
            f,
            "{}{}{}",
            WhereClause(&self.condition),
            OrderByClause(&self.sort),
            Counts(&[("LIMIT", self.limit), ("OFFSET", self.offset)])
        )
    }
}

impl Display for ShowSeries {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHOW SERIES{}{}{}{}{}",
            OnClause(&self.database),
            FromClause(&self.sources),
            WhereClause(&self.condition),
            OrderByClause(&self.sort),
            Counts(&[("LIMIT", self.limit), ("OFFSET", self.offset)])
        )
    }
}

impl Display for ShowTagKeys {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHOW TAG KEYS{}{}{}{}{}",
            OnClause(&self.database),
            FromClause(&self.sources),
            WhereClause(&self.condition),
            OrderByClause(&self.sort),
            Counts(&[
                ("LIMIT", self.limit),
                ("OFFSET", self.offset),
                ("SLIMIT", self.slimit),
                ("SOFFSET", self.soffset)
            ])
        )
    }
}

impl Display for ShowTagValues {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHOW TAG VALUES{}{} WITH KEY {}{}{}{}",
            OnClause(&self.database),
            FromClause(&self.sources),
            self.key,
            WhereClause(&self.condition),
            OrderByClause(&self.sort),
            Counts(&[("LIMIT", self.limit), ("OFFSET", self.offset)])
        )
    }
}

impl Display for ShowFieldKeys {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHOW FIELD KEYS{}{}{}{}",
            OnClause(&self.database),
            FromClause(&self.sources),
            OrderByClause(&self.sort),
            Counts(&[("LIMIT", self.limit), ("OFFSET", self.offset)])
        )
    }
}

impl Display for ShowCardinality {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let what = match self.of {
            Cardinality::Series => "SERIES",
            Cardinality::Measurement => "MEASUREMENT",
            Cardinality::TagKey => "TAG KEY",
            Cardinality::TagValues(_) => "TAG VALUES",
            Cardinality::FieldKey => "FIELD KEY",
        };
        let exact = if self.exact { " EXACT" } else { "" };
        write!(
            f,
            "SHOW {what}{exact} CARDINALITY{}{}",
            OnClause(&self.database),
            FromClause(&self.sources)
        )?;
        if let Cardinality::TagValues(key) = &self.of {
            write!(f, " WITH KEY {key}")?;
        }
        write!(
            f,
            "{}{}{}",
            WhereClause(&self.condition),
            GroupByClause(&self.dimensions),
            Counts(&[("LIMIT", self.limit), ("OFFSET", self.offset)])
        )
    }
}

impl Display for DropSeries {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DROP SERIES{}{}",
            FromClause(&self.sources),
            WhereClause(&self.condition)
        )
    }
}

impl Display for DeleteSeries {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DELETE{}{}",
            FromClause(&self.sources),
            WhereClause(&self.condition)
        )
    }
}

impl Display for CreateContinuousQuery {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CREATE CONTINUOUS QUERY {} ON {} ",
            quote_ident(&[&self.name]),
            quote_ident(&[&self.database])
        )?;
        let every = self.resample_every.filter(|d| *d > 0);
        let for_ = self.resample_for.filter(|d| *d > 0);
        if every.is_some() || for_.is_some() {
            f.write_str("RESAMPLE ")?;
            if let Some(d) = every {
                write!(f, "EVERY {} ", format_duration(d))?;
            }
            if let Some(d) = for_ {
                write!(f, "FOR {} ", format_duration(d))?;
            }
        }
        write!(f, "BEGIN {} END", self.select)
    }
}
