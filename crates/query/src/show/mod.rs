//! SHOW MEASUREMENTS, SHOW TAG KEYS, SHOW TAG VALUES, SHOW FIELD KEYS, SHOW
//! SERIES (and their cardinalities, `cardinality.rs`), answered as InfluxDB 1.6.7 answers them, from the shards through
//! the seam (series listings and schemas), merged across shards and stores.
//!
//! Which shards, as 1.6.7 (Debian's, on its in-memory index, one per
//! database) answers: MEASUREMENTS, TAG KEYS, TAG VALUES and SERIES look at
//! every shard of every retention policy of the database, whatever the time
//! range in WHERE says; FIELD KEYS reads the sources' retention policy (the
//! default one unless named). A database that does not exist answers
//! nothing. A WHERE clause is on tags.

mod cardinality;

use futures::{stream, StreamExt};
use sundial_influxql::select::{
    split_condition, Clock, Expr, Measurement, ShowFieldKeys, ShowMeasurements, ShowSeries,
    ShowTagKeys, ShowTagValues, TagKeyFilter,
};
use sundial_influxql::Statement;
use sundial_meta::ShardInfo;

use crate::error::{query_err, Error, Result};
use crate::eval::{compile_regex, Regexes};
use crate::plan::{tag_filter, Context};
use crate::raw::row_holds;
use crate::result::{Row, Series};
use crate::seam::{Schema, SeriesKey, SeriesRequest};
use crate::value::{FieldType, Value};

/// Shards listed at once.
const LIST_CONCURRENCY: usize = 8;

/// Answers `stmt` if it is one of the SHOW statements above (`None`
/// otherwise).
pub async fn show(stmt: &Statement, cx: &Context<'_>) -> Result<Option<Vec<Series>>> {
    Ok(Some(match stmt {
        Statement::ShowMeasurements(s) => measurements(s, cx).await?,
        Statement::ShowTagKeys(s) => tag_keys(s, cx).await?,
        Statement::ShowTagValues(s) => tag_values(s, cx).await?,
        Statement::ShowFieldKeys(s) => field_keys(s, cx).await?,
        Statement::ShowSeries(s) => series(s, cx).await?,
        Statement::ShowCardinality(s) => cardinality::cardinality(s, cx).await?,
        _ => return Ok(None),
    }))
}

// ------------------------------------------------------------------ statements

async fn measurements(s: &ShowMeasurements, cx: &Context<'_>) -> Result<Vec<Series>> {
    let db = database(s.database.as_deref(), cx)?;
    let Some(shards) = all_policies(cx, db) else {
        return Ok(Vec::new());
    };
    let mut names = all_names(cx, db, &shards).await?;
    if let Some(m) = &s.measurement {
        names = matching(&names, std::slice::from_ref(m))?;
    }
    if let Some(cond) = &s.condition {
        let listed = Listing::new(None)?.list(cx, db, &shards, &names).await?;
        let mut regexes = Regexes::default();
        regexes.add(cond)?;
        names.retain(|n| {
            let keys = of_measurement(&listed, n);
            measurement_holds(cond, keys, &regexes).unwrap_or_else(|| {
                keys.iter()
                    .any(|k| row_holds(cond, &regexes, &[], &[], &k.tags))
            })
        });
    }
    let names = page(names, s.offset, s.limit);
    Ok(one_table(
        "measurements",
        &["name"],
        names.into_iter().map(|n| vec![Value::String(n)]),
    ))
}

async fn tag_keys(s: &ShowTagKeys, cx: &Context<'_>) -> Result<Vec<Series>> {
    let db = database(s.database.as_deref(), cx)?;
    let cond = untimed(s.condition.as_ref(), cx)?;
    let Some(shards) = all_policies(cx, db) else {
        return Ok(Vec::new());
    };
    let names = source_names(cx, db, &shards, &s.sources).await?;
    let mut out = Vec::new();
    if cond.is_some() {
        let listed = Listing::new(cond.as_ref())?
            .list(cx, db, &shards, &names)
            .await?;
        for name in &names {
            let mut keys: Vec<String> = of_measurement(&listed, name)
                .iter()
                .flat_map(|k| k.tags.iter().map(|(t, _)| t.clone()))
                .collect();
            keys.sort();
            keys.dedup();
            out.push((name.clone(), keys));
        }
    } else {
        for name in &names {
            let schema = cx.reader.schema_fresh(db, &shards, name).await?;
            out.push((name.clone(), schema.tags));
        }
    }
    // SLIMIT and SOFFSET parse but do nothing in 1.6.
    let tables = out.into_iter().filter_map(|(name, keys)| {
        let keys = page(keys, s.offset, s.limit);
        (!keys.is_empty()).then(|| {
            table(
                &name,
                &["tagKey"],
                keys.into_iter().map(|k| vec![Value::String(k)]),
            )
        })
    });
    Ok(tables.collect())
}

async fn tag_values(s: &ShowTagValues, cx: &Context<'_>) -> Result<Vec<Series>> {
    let db = database(s.database.as_deref(), cx)?;
    let cond = untimed(s.condition.as_ref(), cx)?;
    let Some(shards) = all_policies(cx, db) else {
        return Ok(Vec::new());
    };
    let names = source_names(cx, db, &shards, &s.sources).await?;
    let wanted = KeyFilter::new(&s.key)?;
    let listed = Listing::new(cond.as_ref())?
        .list(cx, db, &shards, &names)
        .await?;
    let mut out = Vec::new();
    for name in &names {
        let mut pairs: Vec<(&str, &str)> = of_measurement(&listed, name)
            .iter()
            .flat_map(|k| k.tags.iter())
            .filter(|(k, _)| wanted.matches(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.sort();
        pairs.dedup();
        let pairs = page(pairs, s.offset, s.limit);
        if pairs.is_empty() {
            continue;
        }
        out.push(table(
            name,
            &["key", "value"],
            pairs
                .into_iter()
                .map(|(k, v)| vec![Value::String(k.into()), Value::String(v.into())]),
        ));
    }
    Ok(out)
}

async fn field_keys(s: &ShowFieldKeys, cx: &Context<'_>) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for (db, shards, names) in policy_sources(cx, s.database.as_deref(), &s.sources).await? {
        for name in names {
            let schema = cx.reader.schema_fresh(&db, &shards, &name).await?;
            let fields = page(typed_fields(&schema), s.offset, s.limit);
            if fields.is_empty() {
                continue;
            }
            out.push(table(
                &name,
                &["fieldKey", "fieldType"],
                fields
                    .into_iter()
                    .map(|(n, t)| vec![Value::String(n), Value::String(type_name(t).to_string())]),
            ));
        }
    }
    Ok(out)
}

async fn series(s: &ShowSeries, cx: &Context<'_>) -> Result<Vec<Series>> {
    let db = database(s.database.as_deref(), cx)?;
    let cond = untimed(s.condition.as_ref(), cx)?;
    let Some(shards) = all_policies(cx, db) else {
        return Ok(Vec::new());
    };
    let names = source_names(cx, db, &shards, &s.sources).await?;
    let listed = Listing::new(cond.as_ref())?
        .list(cx, db, &shards, &names)
        .await?;
    let keys = page(listed.iter().map(series_key).collect(), s.offset, s.limit);
    Ok(one_table(
        "",
        &["key"],
        keys.into_iter().map(|k| vec![Value::String(k)]),
    ))
}

// ------------------------------------------------------------------ listing

/// A listing's tag filter for the shards and the whole condition, checked
/// again on each key (the filter may be wider than the condition).
pub(super) struct Listing<'a> {
    cond: Option<&'a Expr>,
    regexes: Regexes,
    req: SeriesRequest,
}

impl<'a> Listing<'a> {
    pub(super) fn new(cond: Option<&'a Expr>) -> Result<Self> {
        let mut regexes = Regexes::default();
        let mut names = Vec::new();
        if let Some(c) = cond {
            regexes.add(c)?;
            c.walk(&mut |x| {
                if let Expr::VarRef { name, .. } = x {
                    names.push(name.clone());
                }
            });
        }
        names.sort();
        names.dedup();
        // Every name in a SHOW condition is a tag.
        let schema = Schema {
            tags: names,
            ..Schema::default()
        };
        Ok(Listing {
            cond,
            regexes,
            req: SeriesRequest {
                measurements: Vec::new(),
                tags: tag_filter(cond, &schema),
                max_bytes: 0,
            },
        })
    }

    /// The series of `names` in `shards` that pass, sorted and deduplicated,
    /// held to the statement's memory limit.
    pub(super) async fn list(
        &self,
        cx: &Context<'_>,
        db: &str,
        shards: &[ShardInfo],
        names: &[String],
    ) -> Result<Vec<SeriesKey>> {
        if names.is_empty() || shards.is_empty() {
            return Ok(Vec::new());
        }
        let limit = cx.memory_limit;
        let req = SeriesRequest {
            measurements: names.to_vec(),
            max_bytes: limit,
            ..self.req.clone()
        };
        // Owned per read: a future borrowing across the buffered stream
        // would not be `Send` for every lifetime.
        let mut reads = stream::iter(shards.iter().cloned())
            .map(|shard| {
                let (db, req) = (db.to_string(), req.clone());
                async move { cx.reader.series(&db, &shard, &req).await }
            })
            .buffered(LIST_CONCURRENCY);
        // Kept once however many shards hold a series, and only those that
        // pass: the limit counts what the answer holds.
        let (mut keys, mut held) = (std::collections::BTreeSet::new(), 0usize);
        while let Some(listed) = reads.next().await {
            for k in listed? {
                if self
                    .cond
                    .is_some_and(|c| !row_holds(c, &self.regexes, &[], &[], &k.tags))
                    || keys.contains(&k)
                {
                    continue;
                }
                held = held.saturating_add(k.heap_bytes());
                if held > limit {
                    return Err(Error::MemoryLimit { limit });
                }
                keys.insert(k);
            }
        }
        Ok(keys.into_iter().collect())
    }
}

/// Whether SHOW MEASUREMENTS keeps a measurement with the series `keys`, as
/// 1.6 decides it: per measurement, not per series — `k = v` / `k =~ /re/`
/// when some series has such a value, `k != v` / `k !~ /re/` when the
/// measurement has the key and none of its values is `v` (matches), AND and
/// OR as intersection and union. `None` for a condition of another form
/// (then decided per series).
fn measurement_holds(cond: &Expr, keys: &[SeriesKey], regexes: &Regexes) -> Option<bool> {
    match cond {
        Expr::Paren(e) => measurement_holds(e, keys, regexes),
        Expr::Binary { op, lhs, rhs } => {
            let sym = op.symbol();
            if sym == "AND" || sym == "OR" {
                let (a, b) = (
                    measurement_holds(lhs, keys, regexes)?,
                    measurement_holds(rhs, keys, regexes)?,
                );
                return Some(if sym == "AND" { a && b } else { a || b });
            }
            let Expr::VarRef { name, .. } = lhs.as_ref() else {
                return None;
            };
            let values: Vec<&str> = keys
                .iter()
                .filter_map(|k| k.tags.iter().find(|(t, _)| t == name))
                .map(|(_, v)| v.as_str())
                .collect();
            if values.is_empty() {
                return Some(false);
            }
            let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
            Some(match (sym, rhs.as_ref()) {
                ("=", Expr::Str(v)) => any(&|x| x == v),
                ("!=", Expr::Str(v)) => !any(&|x| x == v),
                ("=~", Expr::Regex(r)) => any(&|x| regexes.get(r).is_some_and(|re| re.is_match(x))),
                ("!~", Expr::Regex(r)) => {
                    !any(&|x| regexes.get(r).is_some_and(|re| re.is_match(x)))
                }
                _ => return None,
            })
        }
        _ => None,
    }
}

/// The keys of measurement `name` in a listing (sorted by measurement).
pub(super) fn of_measurement<'k>(listed: &'k [SeriesKey], name: &str) -> &'k [SeriesKey] {
    let from = listed.partition_point(|k| k.measurement.as_str() < name);
    let to = listed.partition_point(|k| k.measurement.as_str() <= name);
    &listed[from..to]
}

/// `WITH KEY …`, compiled.
pub(super) enum KeyFilter {
    Is(Vec<String>),
    IsNot(String),
    Regex(regex::Regex, bool),
}

impl KeyFilter {
    pub(super) fn new(f: &TagKeyFilter) -> Result<Self> {
        Ok(match f {
            TagKeyFilter::Eq(k) => KeyFilter::Is(vec![k.clone()]),
            TagKeyFilter::In(ks) => KeyFilter::Is(ks.clone()),
            TagKeyFilter::NotEq(k) => KeyFilter::IsNot(k.clone()),
            TagKeyFilter::Regex(r) => KeyFilter::Regex(compile_regex(r)?, true),
            TagKeyFilter::NotRegex(r) => KeyFilter::Regex(compile_regex(r)?, false),
        })
    }

    pub(super) fn matches(&self, key: &str) -> bool {
        match self {
            KeyFilter::Is(ks) => ks.iter().any(|k| k == key),
            KeyFilter::IsNot(k) => k != key,
            KeyFilter::Regex(r, yes) => r.is_match(key) == *yes,
        }
    }
}

// ------------------------------------------------------------------ shards and names

/// The statement's database: its `ON`, else the request's.
pub(super) fn database<'a>(on: Option<&'a str>, cx: &'a Context<'_>) -> Result<&'a str> {
    match on.unwrap_or(cx.database) {
        "" => Err(query_err("database name required")),
        db => Ok(db),
    }
}

/// The WHERE clause without its time part: 1.6 (its in-memory index is
/// per database, not per shard) answers these statements from every shard
/// whatever the time range says.
pub(super) fn untimed(cond: Option<&Expr>, cx: &Context<'_>) -> Result<Option<Expr>> {
    let clock = Clock::new(cx.now, None).map_err(Error::Query)?;
    let (rest, _) = split_condition(cond, &clock).map_err(Error::Query)?;
    Ok(rest)
}

/// The shards of every retention policy of `db`; `None` when the database
/// does not exist.
pub(super) fn all_policies(cx: &Context<'_>, db: &str) -> Option<Vec<ShardInfo>> {
    cx.meta.database(db)?;
    Some(
        cx.meta
            .all_shard_groups()
            .into_iter()
            .filter(|g| g.database == db)
            .flat_map(|g| g.shards)
            .collect(),
    )
}

/// Every measurement `shards` hold.
pub(super) async fn all_names(
    cx: &Context<'_>,
    db: &str,
    shards: &[ShardInfo],
) -> Result<Vec<String>> {
    if shards.is_empty() {
        return Ok(Vec::new());
    }
    cx.reader.measurements(db, shards).await
}

/// The measurements a FROM names among those `shards` hold (all without
/// FROM), sorted.
async fn source_names(
    cx: &Context<'_>,
    db: &str,
    shards: &[ShardInfo],
    sources: &[Measurement],
) -> Result<Vec<String>> {
    let all = all_names(cx, db, shards).await?;
    if sources.is_empty() {
        return Ok(all);
    }
    matching(&all, sources)
}

/// Those of `names` a source names or matches.
fn matching(names: &[String], sources: &[Measurement]) -> Result<Vec<String>> {
    let mut regexes = Vec::new();
    for m in sources {
        if let Some(r) = &m.regex {
            regexes.push(compile_regex(r)?);
        }
    }
    Ok(names
        .iter()
        .filter(|n| {
            sources.iter().any(|m| m.regex.is_none() && &m.name == *n)
                || regexes.iter().any(|r| r.is_match(n))
        })
        .cloned()
        .collect())
}

/// Per database and retention policy the sources read (the statement's
/// database and its default policy without FROM): its shards and the
/// measurements named there.
pub(super) async fn policy_sources(
    cx: &Context<'_>,
    on: Option<&str>,
    sources: &[Measurement],
) -> Result<Vec<(String, Vec<ShardInfo>, Vec<String>)>> {
    let db = database(on, cx)?.to_string();
    let whole = [Measurement {
        database: String::new(),
        retention_policy: String::new(),
        name: String::new(),
        regex: Some(".+".into()),
    }];
    let sources = if sources.is_empty() {
        &whole[..]
    } else {
        sources
    };
    let mut out: Vec<(String, String, Vec<ShardInfo>, Vec<String>)> = Vec::new();
    for m in sources {
        let db = if m.database.is_empty() {
            db.clone()
        } else {
            m.database.clone()
        };
        let Some(info) = cx.meta.database(&db) else {
            continue;
        };
        let rp = crate::plan::policy_of(m, cx, &info);
        let shards: Vec<ShardInfo> = cx
            .meta
            .shard_groups(&db, &rp)
            .into_iter()
            .flat_map(|g| g.shards)
            .collect();
        let names = matching(&all_names(cx, &db, &shards).await?, std::slice::from_ref(m))?;
        match out.iter_mut().find(|(d, r, _, _)| d == &db && r == &rp) {
            Some(o) => o.3.extend(names),
            None => out.push((db, rp, shards, names)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(db, _, shards, mut names)| {
            names.sort();
            names.dedup();
            (db, shards, names)
        })
        .collect())
}

// ------------------------------------------------------------------ answers

/// `items` after OFFSET and LIMIT (0: none).
fn page<T>(items: Vec<T>, offset: i64, limit: i64) -> Vec<T> {
    let skip = usize::try_from(offset.max(0)).unwrap_or(usize::MAX);
    let take = match usize::try_from(limit) {
        Ok(n) if n > 0 => n,
        _ => usize::MAX,
    };
    items.into_iter().skip(skip).take(take).collect()
}

pub(super) fn table(
    name: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> Series {
    Series {
        name: name.to_string(),
        tags: Vec::new(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows.map(|values| Row { time: 0, values }).collect(),
    }
}

/// One table, or none when it would have no rows (1.6 answers nothing then).
pub(super) fn one_table(
    name: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> Vec<Series> {
    let t = table(name, columns, rows);
    if t.rows.is_empty() {
        Vec::new()
    } else {
        vec![t]
    }
}

/// Each field once, with the type SELECT gives it where shards disagree.
pub(super) fn typed_fields(schema: &Schema) -> Vec<(String, FieldType)> {
    let mut out: Vec<(String, FieldType)> = Vec::new();
    for (name, _) in &schema.fields {
        if out.last().is_some_and(|(n, _)| n == name) {
            continue;
        }
        if let Some(t) = schema.field_type(name) {
            out.push((name.clone(), t));
        }
    }
    out
}

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Float => "float",
        FieldType::Integer => "integer",
        FieldType::Unsigned => "unsigned",
        FieldType::String => "string",
        FieldType::Boolean => "boolean",
    }
}

/// A series' key as 1.6 shows it: the measurement and `,key=value` per tag,
/// escaped as in line protocol.
fn series_key(k: &SeriesKey) -> String {
    sundial_lineproto::series_key(&k.measurement, k.tags.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_as_in_line_protocol() {
        let k = SeriesKey {
            measurement: "h2o level,x".into(),
            tags: vec![("the=key".into(), "a b".into())],
        };
        assert_eq!(series_key(&k), r"h2o\ level\,x,the\=key=a\ b");
    }

    #[test]
    fn pages_skip_then_take() {
        assert_eq!(page(vec![1, 2, 3, 4], 1, 2), vec![2, 3]);
        assert_eq!(page(vec![1, 2, 3], 0, 0), vec![1, 2, 3]);
        assert_eq!(page(vec![1, 2, 3], 5, 0), Vec::<i32>::new());
    }
}
