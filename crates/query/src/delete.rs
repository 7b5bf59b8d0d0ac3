//! DROP MEASUREMENT, DROP SERIES and DELETE planned as InfluxDB 1.6.7 runs
//! them (coordinator `executeDropMeasurementStatement`,
//! `executeDropSeriesStatement`, `executeDeleteSeriesStatement`; tsdb
//! `Store.DeleteSeries`/`DeleteMeasurement`): the database must exist; the
//! delete covers every shard of every retention policy of the database (1.6
//! walks them all; shards wholly outside a DELETE's time range hold nothing it
//! covers and are left out); FROM names measurements or matches them by regex
//! (none: every measurement); WHERE is on tags (DELETE: and time; DROP SERIES
//! refuses time). Which series a delete takes is decided on each shard by its
//! owners, from the same [`DeleteRequest`], so an owner that applies it later
//! (a store that was down) takes what was there.

use sundial_influxql::select::{split_condition, Clock, Expr, Measurement};
use sundial_influxql::Statement;
use sundial_meta::{MetaSnapshot, ShardInfo};

use crate::error::{query_err, Error, Result};
use crate::plan::{MAX_TIME, MIN_TIME};
use crate::seam::TagFilter;

/// Which measurements a delete covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    Name(String),
    Regex(String),
}

/// A delete of one shard's series, as each owner applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteRequest {
    /// Empty: every measurement.
    pub measurements: Vec<NameMatch>,
    /// Exactly the series the statement's WHERE takes (never wider).
    pub tags: TagFilter,
    /// Inclusive, ns.
    pub min: i64,
    pub max: i64,
    /// DROP MEASUREMENT: the measurement's field types go too.
    pub drop_measurement: bool,
}

impl DeleteRequest {
    /// Whether the request takes the whole time range (the series then leave
    /// the shard's index).
    pub fn all_time(&self) -> bool {
        self.min <= MIN_TIME && self.max >= MAX_TIME
    }
}

/// What one statement deletes: the request and the shards it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletePlan {
    pub database: String,
    pub shards: Vec<ShardInfo>,
    pub request: DeleteRequest,
}

/// Plans `stmt` if it is DROP MEASUREMENT, DROP SERIES or DELETE (`None`
/// otherwise). `database` is the request's `db`; `now` the statement's clock.
pub fn plan_delete(
    stmt: &Statement,
    database: &str,
    meta: &MetaSnapshot,
    now: i64,
) -> Result<Option<DeletePlan>> {
    let (sources, cond, drop_measurement): (Vec<Measurement>, Option<&Expr>, bool) = match stmt {
        Statement::DropMeasurement { name } => (
            vec![Measurement {
                name: name.clone(),
                ..Measurement::default()
            }],
            None,
            true,
        ),
        Statement::DropSeries(s) => {
            if s.condition.as_ref().is_some_and(has_time_ref) {
                return Err(query_err(
                    "DROP SERIES doesn't support time in WHERE clause",
                ));
            }
            (s.sources.clone(), s.condition.as_ref(), false)
        }
        Statement::Delete(s) => (s.sources.clone(), s.condition.as_ref(), false),
        _ => return Ok(None),
    };
    // No `db` at all answers as a database named "" (1.6's text).
    if meta.database(database).is_none() {
        return Err(query_err(format!("database not found: {database}")));
    }
    let clock = Clock::new(now, None).map_err(Error::Query)?;
    let (rest, range) = split_condition(cond, &clock).map_err(Error::Query)?;
    let tags = match &rest {
        None => TagFilter::All,
        Some(e) => exact_filter(e)?,
    };
    let (min, max) = (
        range.min.unwrap_or(MIN_TIME).max(MIN_TIME),
        range.max.unwrap_or(MAX_TIME).min(MAX_TIME),
    );
    let measurements = sources
        .iter()
        .map(|m| match &m.regex {
            Some(r) => NameMatch::Regex(r.clone()),
            None => NameMatch::Name(m.name.clone()),
        })
        .collect();
    let shards = meta
        .shard_groups
        .get(database)
        .into_iter()
        .flat_map(|rps| rps.values())
        .flat_map(|groups| groups.values())
        .filter(|g| g.start <= max && g.end > min)
        .flat_map(|g| g.shards.iter().cloned())
        .collect();
    Ok(Some(DeletePlan {
        database: database.to_string(),
        shards,
        request: DeleteRequest {
            measurements,
            tags,
            min,
            max,
            drop_measurement,
        },
    }))
}

fn has_time_ref(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if let Expr::VarRef { name, .. } = x {
            found |= name.eq_ignore_ascii_case("time");
        }
    });
    found
}

/// The tag filter that takes exactly the series `e` describes: comparisons
/// of a tag with a string (`=`, `!=`) or a regex (`=~`, `!~`), under AND and
/// OR. Anything else is refused: a delete must never take more than it says.
fn exact_filter(e: &Expr) -> Result<TagFilter> {
    match e {
        Expr::Paren(inner) => exact_filter(inner),
        Expr::Binary { op, lhs, rhs } => match op.symbol() {
            sym @ ("AND" | "OR") => {
                let (a, b) = (Box::new(exact_filter(lhs)?), Box::new(exact_filter(rhs)?));
                Ok(if sym == "AND" {
                    TagFilter::And(a, b)
                } else {
                    TagFilter::Or(a, b)
                })
            }
            sym => {
                let (key, value) = match (&**lhs, &**rhs) {
                    (Expr::VarRef { name, .. }, v) | (v, Expr::VarRef { name, .. }) => (name, v),
                    _ => return Err(unsupported(e)),
                };
                let key = key.clone();
                match (sym, value) {
                    ("=", Expr::Str(v)) => Ok(TagFilter::Eq(key, v.clone())),
                    ("!=", Expr::Str(v)) => Ok(TagFilter::NotEq(key, v.clone())),
                    ("=~", Expr::Regex(r)) => Ok(TagFilter::Regex(key, r.clone())),
                    ("!~", Expr::Regex(r)) => Ok(TagFilter::NotRegex(key, r.clone())),
                    _ => Err(unsupported(e)),
                }
            }
        },
        _ => Err(unsupported(e)),
    }
}

fn unsupported(e: &Expr) -> Error {
    query_err(format!(
        "unsupported condition in a delete: {e}; compare tags with =, !=, =~ or !~ and strings or regexes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sundial_influxql::parse_query;

    fn plan(q: &str) -> Result<Option<DeletePlan>> {
        let mut meta = MetaSnapshot::default();
        meta.databases.insert(
            "db".into(),
            sundial_meta::DatabaseInfo {
                name: "db".into(),
                default_retention_policy: "autogen".into(),
                retention_policies: Default::default(),
                policy_order: Vec::new(),
                continuous_queries: Vec::new(),
            },
        );
        let stmts = parse_query(q).unwrap();
        plan_delete(&stmts[0], "db", &meta, 1_000_000_000_000)
    }

    #[test]
    fn filters_are_exact_or_refused() {
        let p =
            plan("DELETE FROM cpu WHERE host = 'a' AND (region =~ /x/ OR dc != 'b') AND time < 10")
                .unwrap()
                .unwrap();
        assert_eq!(p.request.max, 9);
        assert_eq!(p.request.min, MIN_TIME);
        assert_eq!(p.request.measurements, vec![NameMatch::Name("cpu".into())]);
        assert!(matches!(p.request.tags, TagFilter::And(..)));
        assert!(plan("DELETE FROM cpu WHERE host > 'a'").is_err());
        assert!(plan("DROP SERIES FROM cpu WHERE value = 1").is_err());
        let e = plan("DROP SERIES FROM cpu WHERE time > 0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "DROP SERIES doesn't support time in WHERE clause"
        );
        let d = plan("DROP MEASUREMENT cpu").unwrap().unwrap();
        assert!(d.request.drop_measurement && d.request.all_time());
        assert!(plan("SELECT * FROM cpu").unwrap().is_none());
    }
}
