//! Statement dispatch as InfluxDB 1.6's `Language` parse tree does it (the
//! keyword lists of its errors, in its order), and the statements parsed here
//! besides SELECT: SHOW MEASUREMENTS / SERIES / TAG KEYS / TAG VALUES / FIELD
//! KEYS, the cardinality statements, SHOW SHARDS / SHARD GROUPS / QUERIES /
//! CONTINUOUS QUERIES, DROP MEASUREMENT / SERIES / CONTINUOUS QUERY, DELETE,
//! KILL QUERY and CREATE CONTINUOUS QUERY (`cq.rs`). Each follows its
//! `parser.go` function token for token (which clauses, in which order, which
//! reads push back), so errors and positions are InfluxDB's.
//!
//! Statements whose parse lives in `crate::parser` (databases, retention
//! policies, users, grants, and those not parsed yet) are walked down the
//! tree here, so a wrong keyword fails with InfluxDB's list, then handed
//! over as text.

use super::ast::{Expr, Measurement};
use super::parser::{at, found, Parsed, Parser, Result};
use super::scanner::Tok;
use super::statement_ast::{
    Cardinality, DeleteSeries, DropSeries, ShowCardinality, ShowFieldKeys, ShowMeasurements,
    ShowSeries, ShowTagKeys, ShowTagValues, TagKeyFilter,
};
use super::token::{Pos, T};
use crate::ast::Statement;

/// Statement keywords InfluxDB lists when a statement cannot start.
pub(super) const STATEMENT_START: &[&str] = &[
    "SELECT", "DELETE", "SHOW", "CREATE", "DROP", "EXPLAIN", "GRANT", "REVOKE", "ALTER", "SET",
    "KILL",
];

const AFTER_SHOW: &[&str] = &[
    "CONTINUOUS",
    "DATABASES",
    "DIAGNOSTICS",
    "FIELD",
    "GRANTS",
    "MEASUREMENT",
    "MEASUREMENTS",
    "QUERIES",
    "RETENTION",
    "SERIES",
    "SHARD",
    "SHARDS",
    "STATS",
    "SUBSCRIPTIONS",
    "TAG",
    "USERS",
];

const AFTER_CREATE: &[&str] = &[
    "CONTINUOUS",
    "DATABASE",
    "USER",
    "RETENTION",
    "SUBSCRIPTION",
];

const AFTER_DROP: &[&str] = &[
    "CONTINUOUS",
    "DATABASE",
    "MEASUREMENT",
    "RETENTION",
    "SERIES",
    "SHARD",
    "SUBSCRIPTION",
    "USER",
];

fn parsed(s: Statement) -> Result<Parsed> {
    Ok(Parsed::Statement(Box::new(s)))
}

impl Parser {
    /// The statement whose first token `first` was just read.
    pub(super) fn statement(&mut self, q: &str, first: &Tok) -> Result<Parsed> {
        let start = first.pos;
        match first.t {
            T::Kw("SELECT") => Ok(Parsed::Select(Box::new(self.select_statement(false)?))),
            T::Kw("DELETE") => parsed(Statement::Delete(self.delete()?)),
            T::Kw("SHOW") => self.show(q, start),
            T::Kw("CREATE") => self.create(q, start),
            T::Kw("DROP") => self.drop(q, start),
            T::Kw("KILL") => {
                self.expect(T::Kw("QUERY"))?;
                parsed(self.kill_query()?)
            }
            T::Kw("ALTER") => {
                self.expect(T::Kw("RETENTION"))?;
                self.expect(T::Kw("POLICY"))?;
                Ok(self.other_statement(q, start))
            }
            T::Kw("SET") => {
                self.expect(T::Kw("PASSWORD"))?;
                self.expect(T::Kw("FOR"))?;
                Ok(self.other_statement(q, start))
            }
            T::Kw("EXPLAIN") | T::Kw("GRANT") | T::Kw("REVOKE") => {
                Ok(self.other_statement(q, start))
            }
            _ => Err(found(first, STATEMENT_START)),
        }
    }

    fn show(&mut self, q: &str, start: Pos) -> Result<Parsed> {
        let t = self.s.scan_ignore_ws();
        let stmt = match t.t {
            T::Kw("CONTINUOUS") => {
                self.expect(T::Kw("QUERIES"))?;
                Statement::ShowContinuousQueries
            }
            T::Kw("GRANTS") => {
                self.expect(T::Kw("FOR"))?;
                return Ok(self.other_statement(q, start));
            }
            T::Kw("RETENTION") => {
                self.expect(T::Kw("POLICIES"))?;
                return Ok(self.other_statement(q, start));
            }
            T::Kw("DATABASES")
            | T::Kw("DIAGNOSTICS")
            | T::Kw("STATS")
            | T::Kw("SUBSCRIPTIONS")
            | T::Kw("USERS") => return Ok(self.other_statement(q, start)),
            T::Kw("FIELD") => {
                let t = self.s.scan_ignore_ws();
                match t.t {
                    T::Kw("KEY") => {
                        Statement::ShowCardinality(self.key_cardinality(Cardinality::FieldKey)?)
                    }
                    T::Kw("KEYS") => Statement::ShowFieldKeys(self.show_field_keys()?),
                    _ => return Err(found(&t, &["KEY", "KEYS"])),
                }
            }
            T::Kw("MEASUREMENT") => {
                let t = self.s.scan_ignore_ws();
                let exact = match t.t {
                    T::Kw("EXACT") => {
                        self.expect(T::Kw("CARDINALITY"))?;
                        true
                    }
                    T::Kw("CARDINALITY") => false,
                    _ => return Err(found(&t, &["EXACT", "CARDINALITY"])),
                };
                Statement::ShowCardinality(self.cardinality(Cardinality::Measurement, exact)?)
            }
            T::Kw("MEASUREMENTS") => Statement::ShowMeasurements(self.show_measurements()?),
            T::Kw("QUERIES") => Statement::ShowQueries,
            T::Kw("SERIES") => self.show_series()?,
            T::Kw("SHARD") => {
                self.expect(T::Kw("GROUPS"))?;
                Statement::ShowShardGroups
            }
            T::Kw("SHARDS") => Statement::ShowShards,
            T::Kw("TAG") => {
                let t = self.s.scan_ignore_ws();
                match t.t {
                    T::Kw("KEY") => {
                        Statement::ShowCardinality(self.key_cardinality(Cardinality::TagKey)?)
                    }
                    T::Kw("KEYS") => Statement::ShowTagKeys(self.show_tag_keys()?),
                    T::Kw("VALUES") => self.show_tag_values()?,
                    _ => return Err(found(&t, &["KEY", "KEYS", "VALUES"])),
                }
            }
            _ => return Err(found(&t, AFTER_SHOW)),
        };
        parsed(stmt)
    }

    fn create(&mut self, q: &str, start: Pos) -> Result<Parsed> {
        let t = self.s.scan_ignore_ws();
        match t.t {
            T::Kw("CONTINUOUS") => {
                self.expect(T::Kw("QUERY"))?;
                parsed(Statement::CreateContinuousQuery(Box::new(
                    self.create_continuous_query()?,
                )))
            }
            T::Kw("RETENTION") => {
                self.expect(T::Kw("POLICY"))?;
                Ok(self.other_statement(q, start))
            }
            T::Kw("DATABASE") | T::Kw("USER") | T::Kw("SUBSCRIPTION") => {
                Ok(self.other_statement(q, start))
            }
            _ => Err(found(&t, AFTER_CREATE)),
        }
    }

    fn drop(&mut self, q: &str, start: Pos) -> Result<Parsed> {
        let t = self.s.scan_ignore_ws();
        match t.t {
            T::Kw("CONTINUOUS") => {
                self.expect(T::Kw("QUERY"))?;
                let name = self.ident()?;
                self.expect(T::Kw("ON"))?;
                let database = self.ident()?;
                parsed(Statement::DropContinuousQuery { name, database })
            }
            T::Kw("MEASUREMENT") => parsed(Statement::DropMeasurement {
                name: self.ident()?,
            }),
            T::Kw("SERIES") => parsed(Statement::DropSeries(self.drop_series()?)),
            T::Kw("RETENTION") => {
                self.expect(T::Kw("POLICY"))?;
                Ok(self.other_statement(q, start))
            }
            T::Kw("DATABASE") | T::Kw("SHARD") | T::Kw("SUBSCRIPTION") | T::Kw("USER") => {
                Ok(self.other_statement(q, start))
            }
            _ => Err(found(&t, AFTER_DROP)),
        }
    }

    // ------------------------------------------------------------- clauses

    /// `ON db`, if next. An empty name (`ON ""`) counts as none, as in 1.6.
    fn on_database(&mut self) -> Result<Option<String>> {
        if !self.accept(T::Kw("ON")) {
            return Ok(None);
        }
        let db = self.ident()?;
        Ok((!db.is_empty()).then_some(db))
    }

    /// `FROM sources` (no subqueries), if next.
    fn parse_from(&mut self) -> Result<Vec<Measurement>> {
        if !self.accept(T::Kw("FROM")) {
            return Ok(Vec::new());
        }
        self.measurements()
    }

    /// `LIMIT n OFFSET n`, each optional.
    fn limit_offset(&mut self) -> Result<(i64, i64)> {
        let limit = self.optional_int("LIMIT")?;
        let offset = self.optional_int("OFFSET")?;
        Ok((limit, offset))
    }

    // ------------------------------------------------------------- SHOW

    fn show_measurements(&mut self) -> Result<ShowMeasurements> {
        let database = self.on_database()?;
        let mut measurement = None;
        if self.accept(T::Kw("WITH")) {
            self.expect(T::Kw("MEASUREMENT"))?;
            let t = self.s.scan_ignore_ws();
            if !matches!(t.t, T::Eq | T::EqRegex) {
                return Err(found(&t, &["=", "=~"]));
            }
            measurement = Some(self.measurement()?);
        }
        let condition = self.condition()?;
        let sort = self.order_by()?;
        let (limit, offset) = self.limit_offset()?;
        Ok(ShowMeasurements {
            database,
            measurement,
            condition,
            sort,
            limit,
            offset,
        })
    }

    /// After SHOW SERIES: the series, or their cardinality (`EXACT` not
    /// followed by `CARDINALITY` is ignored, as in 1.6).
    fn show_series(&mut self) -> Result<Statement> {
        let exact = self.accept(T::Kw("EXACT"));
        if self.accept(T::Kw("CARDINALITY")) {
            return Ok(Statement::ShowCardinality(
                self.cardinality(Cardinality::Series, exact)?,
            ));
        }
        let database = self.on_database()?;
        let sources = self.parse_from()?;
        let condition = self.condition()?;
        let sort = self.order_by()?;
        let (limit, offset) = self.limit_offset()?;
        Ok(Statement::ShowSeries(ShowSeries {
            database,
            sources,
            condition,
            sort,
            limit,
            offset,
        }))
    }

    fn show_tag_keys(&mut self) -> Result<ShowTagKeys> {
        let database = self.on_database()?;
        let sources = self.parse_from()?;
        let condition = self.condition()?;
        let sort = self.order_by()?;
        let (limit, offset) = self.limit_offset()?;
        let slimit = self.optional_int("SLIMIT")?;
        let soffset = self.optional_int("SOFFSET")?;
        Ok(ShowTagKeys {
            database,
            sources,
            condition,
            sort,
            limit,
            offset,
            slimit,
            soffset,
        })
    }

    /// After SHOW TAG VALUES: the values, or their cardinality.
    fn show_tag_values(&mut self) -> Result<Statement> {
        let t = self.s.scan_ignore_ws();
        let exact = match t.t {
            T::Kw("EXACT") => Some(true),
            T::Kw("CARDINALITY") => Some(false),
            _ => None,
        };
        if let Some(exact) = exact {
            if exact {
                self.expect(T::Kw("CARDINALITY"))?;
            }
            let database = self.on_database()?;
            let sources = self.parse_from()?;
            let key = self.tag_key_filter()?;
            return Ok(Statement::ShowCardinality(self.cardinality_rest(
                Cardinality::TagValues(key),
                exact,
                database,
                sources,
            )?));
        }
        self.s.unscan();
        let database = self.on_database()?;
        let sources = self.parse_from()?;
        let key = self.tag_key_filter()?;
        let condition = self.condition()?;
        let sort = self.order_by()?;
        let (limit, offset) = self.limit_offset()?;
        Ok(Statement::ShowTagValues(ShowTagValues {
            database,
            sources,
            key,
            condition,
            sort,
            limit,
            offset,
        }))
    }

    fn show_field_keys(&mut self) -> Result<ShowFieldKeys> {
        let database = self.on_database()?;
        let sources = self.parse_from()?;
        let sort = self.order_by()?;
        let (limit, offset) = self.limit_offset()?;
        Ok(ShowFieldKeys {
            database,
            sources,
            sort,
            limit,
            offset,
        })
    }

    /// After SHOW TAG KEY / SHOW FIELD KEY: `[EXACT] CARDINALITY` and the rest.
    fn key_cardinality(&mut self, of: Cardinality) -> Result<ShowCardinality> {
        let exact = self.accept(T::Kw("EXACT"));
        let t = self.s.scan_ignore_ws();
        if t.t != T::Kw("CARDINALITY") {
            let expected: &[&str] = if exact {
                &["CARDINALITY"]
            } else {
                &["EXACT", "CARDINALITY"]
            };
            return Err(found(&t, expected));
        }
        self.cardinality(of, exact)
    }

    /// The clauses after `… CARDINALITY` but for tag values (whose WITH KEY
    /// comes between FROM and WHERE).
    fn cardinality(&mut self, of: Cardinality, exact: bool) -> Result<ShowCardinality> {
        let database = self.on_database()?;
        let sources = self.parse_from()?;
        self.cardinality_rest(of, exact, database, sources)
    }

    /// `[WHERE …] [GROUP BY …] [LIMIT n] [OFFSET n]` of every cardinality form.
    fn cardinality_rest(
        &mut self,
        of: Cardinality,
        exact: bool,
        database: Option<String>,
        sources: Vec<Measurement>,
    ) -> Result<ShowCardinality> {
        let condition = self.condition()?;
        let dimensions = self.dimensions()?;
        let (limit, offset) = self.limit_offset()?;
        Ok(ShowCardinality {
            of,
            exact,
            database,
            sources,
            condition,
            dimensions,
            limit,
            offset,
        })
    }

    /// `WITH KEY (= k | != k | =~ /re/ | !~ /re/ | IN (k, …))`.
    fn tag_key_filter(&mut self) -> Result<TagKeyFilter> {
        self.expect(T::Kw("WITH"))?;
        self.expect(T::Kw("KEY"))?;
        let t = self.s.scan_ignore_ws();
        match t.t {
            T::Kw("IN") => {
                self.expect(T::LParen)?;
                let mut keys = vec![self.ident()?];
                while self.accept(T::Comma) {
                    keys.push(self.ident()?);
                }
                self.expect(T::RParen)?;
                Ok(TagKeyFilter::In(keys))
            }
            T::Eq => Ok(TagKeyFilter::Eq(self.ident()?)),
            T::Neq => Ok(TagKeyFilter::NotEq(self.ident()?)),
            T::EqRegex | T::NeqRegex => {
                let Some(r) = self.regex()? else {
                    let t = self.s.scan_ignore_ws();
                    return Err(found(&t, &["regex"]));
                };
                Ok(if t.t == T::EqRegex {
                    TagKeyFilter::Regex(r)
                } else {
                    TagKeyFilter::NotRegex(r)
                })
            }
            _ => Err(found(&t, &["IN", "=", "=~"])),
        }
    }

    // ------------------------------------------------------------- DROP, DELETE, KILL

    /// `[FROM …] [WHERE …]` of DROP SERIES and DELETE: one of the two is
    /// required, and the sources may name no database or retention policy.
    fn series_filter(&mut self) -> Result<(Vec<Measurement>, Option<Expr>)> {
        let first = self.s.scan_ignore_ws();
        let mut sources = Vec::new();
        if first.t == T::Kw("FROM") {
            sources = self.measurements()?;
            // The last source naming either wins; within one, the retention
            // policy's message.
            let mut err = None;
            for m in &sources {
                if !m.database.is_empty() {
                    err = Some("database not supported");
                }
                if !m.retention_policy.is_empty() {
                    err = Some("retention policy not supported");
                }
            }
            if let Some(msg) = err {
                return Err(at(msg, Pos::default()));
            }
        } else {
            self.s.unscan();
        }
        let condition = self.condition()?;
        if sources.is_empty() && condition.is_none() {
            return Err(found(&first, &["FROM", "WHERE"]));
        }
        Ok((sources, condition))
    }

    fn drop_series(&mut self) -> Result<DropSeries> {
        let (sources, condition) = self.series_filter()?;
        Ok(DropSeries { sources, condition })
    }

    fn delete(&mut self) -> Result<DeleteSeries> {
        let (sources, condition) = self.series_filter()?;
        Ok(DeleteSeries { sources, condition })
    }

    /// After KILL QUERY: `id [ON host]`.
    fn kill_query(&mut self) -> Result<Statement> {
        let t = self.s.scan_ignore_ws();
        if t.t != T::Integer {
            return Err(found(&t, &["integer"]));
        }
        let id = t.lit.parse::<u64>().map_err(|_| {
            at(
                format!("strconv.ParseUint: parsing {:?}: value out of range", t.lit),
                t.pos,
            )
        })?;
        let host = if self.accept(T::Kw("ON")) {
            Some(self.ident()?).filter(|h| !h.is_empty())
        } else {
            None
        };
        Ok(Statement::KillQuery { id, host })
    }
}
