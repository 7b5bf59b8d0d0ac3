//! A statement's sources: databases and retention policies resolved, the shard
//! groups its time range overlaps, measurements (regexes through the seam)
//! with their schemas; a subquery run first, its rows becoming sources.

use std::collections::BTreeSet;

use sundial_influxql::select::{Expr, SelectStatement, Source as QlSource};
use sundial_meta::ShardInfo;

use super::{field_name, Context, Parent, Source};
use crate::error::{query_err, Result};
use crate::eval::compile_regex;
use crate::seam::{Schema, SeriesRead};
use crate::value::{Column, FieldType, Value, Values};

pub(super) async fn resolve_sources(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    min: i64,
    max: i64,
    here: &Parent,
) -> Result<Vec<Source>> {
    let mut out: Vec<Source> = Vec::new();
    let names_used = named(stmt);
    for src in &stmt.sources {
        let m = match src {
            QlSource::Measurement(m) => m,
            QlSource::Subquery(inner) => {
                let mut parent = here.clone();
                parent.dimensions.extend(outer_tag_dimensions(stmt));
                let series = Box::pin(crate::exec::select_in(inner, cx, Some(&parent))).await?;
                out.extend(subquery_sources(inner, series));
                continue;
            }
        };
        let database = if m.database.is_empty() {
            cx.database
        } else {
            &m.database
        };
        if database.is_empty() {
            return Err(query_err("database name required"));
        }
        let Some(db) = cx.meta.database(database) else {
            return Err(query_err(format!("database not found: {database}")));
        };
        let rp = policy_of(m, cx, &db);
        if !db.retention_policies.contains_key(&rp) {
            return Err(query_err(format!("retention policy not found: {rp}")));
        }
        let mut shards: Vec<ShardInfo> = Vec::new();
        let mut spans = Vec::new();
        for g in cx.meta.shard_groups(database, &rp) {
            if g.end > min && g.start <= max {
                spans.extend(g.shards.iter().map(|_| (g.start, g.end)));
                shards.extend(g.shards);
            }
        }
        let names = match &m.regex {
            Some(re) => {
                let rx = compile_regex(re)?;
                let all = if shards.is_empty() {
                    Vec::new()
                } else {
                    cx.reader.measurements(database, &shards).await?
                };
                all.into_iter().filter(|n| rx.is_match(n)).collect()
            }
            None => vec![m.name.clone()],
        };
        for name in names {
            let mut schema = if shards.is_empty() {
                Schema::default()
            } else {
                cx.reader.schema(database, &shards, &name).await?
            };
            // A cached schema may lack a field or tag written since: a name
            // it does not know is looked up afresh (reads check the rest).
            let knows = |n: &String| schema.has_tag(n) || schema.field_type(n).is_some();
            if schema.cached && !names_used.iter().all(knows) {
                schema = cx.reader.schema_fresh(database, &shards, &name).await?;
            }
            if schema.fields.is_empty() {
                continue;
            }
            out.push(Source {
                database: database.to_string(),
                measurement: name,
                shards: shards.clone(),
                spans: spans.clone(),
                schema,
                rows: None,
            });
        }
    }
    out.sort_by(|a, b| a.measurement.cmp(&b.measurement));
    Ok(out)
}

/// The retention policy a source reads: its own, else the request's `rp`,
/// else the database's default.
pub(crate) fn policy_of(
    m: &sundial_influxql::select::Measurement,
    cx: &Context<'_>,
    db: &sundial_meta::DatabaseInfo,
) -> String {
    if !m.retention_policy.is_empty() {
        m.retention_policy.clone()
    } else if !cx.retention_policy.is_empty() {
        cx.retention_policy.to_string()
    } else {
        db.default_retention_policy.clone()
    }
}

/// Every field or tag name a statement writes (not `time`).
fn named(stmt: &SelectStatement) -> Vec<String> {
    let mut names = Vec::new();
    let exprs = stmt.fields.iter().map(|f| &f.expr);
    for e in exprs.chain(&stmt.condition).chain(&stmt.dimensions) {
        crate::exec::var_names(e, &mut names);
    }
    names.retain(|n| !n.eq_ignore_ascii_case("time"));
    names.sort();
    names.dedup();
    names
}

/// The GROUP BY tag names written in a statement (no regexes, no time).
fn outer_tag_dimensions(stmt: &SelectStatement) -> Vec<String> {
    stmt.dimensions
        .iter()
        .filter_map(|d| match d {
            Expr::VarRef { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// A subquery's answer as sources: one per measurement name, its columns the
/// subquery's field names (the first of a name wins), its tags the GROUP BY ones.
fn subquery_sources(inner: &SelectStatement, series: Vec<crate::result::Series>) -> Vec<Source> {
    let names: Vec<String> = inner
        .fields
        .iter()
        .filter(|f| !f.expr.is_time_ref())
        .map(field_name)
        .collect();
    let mut out: Vec<Source> = Vec::new();
    for s in series {
        let mut fields: Vec<(String, Column)> = Vec::new();
        for (ci, name) in names.iter().enumerate() {
            if fields.iter().any(|(n, _)| n == name) {
                continue;
            }
            let cells = s.rows.iter().map(|r| (r.time, r.values.get(ci)));
            if let Some(col) = column_of(cells) {
                fields.push((name.clone(), col));
            }
        }
        let mut tags = s.tags.clone();
        tags.sort();
        let schema = Schema {
            fields: fields
                .iter()
                .map(|(n, c)| (n.clone(), c.values.field_type()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            tags: tags.iter().map(|(k, _)| k.clone()).collect(),
            ..Schema::default()
        };
        let read = SeriesRead { tags, fields };
        match out.iter_mut().find(|o| o.measurement == s.name) {
            Some(o) => {
                o.schema.merge(schema);
                o.rows.get_or_insert_with(Vec::new).push(read);
            }
            None => out.push(Source {
                database: String::new(),
                measurement: s.name,
                shards: Vec::new(),
                spans: Vec::new(),
                schema,
                rows: Some(vec![read]),
            }),
        }
    }
    out
}

/// One column of a subquery's rows, typed by its first value (numbers of
/// another type converted, the rest left out).
fn column_of<'a>(cells: impl Iterator<Item = (i64, Option<&'a Value>)>) -> Option<Column> {
    let cells: Vec<(i64, &Value)> = cells
        .filter_map(|(t, v)| v.filter(|v| !v.is_null()).map(|v| (t, v)))
        .collect();
    let first = cells.first()?.1.field_type()?;
    // The cells `conv` takes, as times and values in one pass.
    fn pick<T>(cells: &[(i64, &Value)], conv: impl Fn(&Value) -> Option<T>) -> (Vec<i64>, Vec<T>) {
        cells
            .iter()
            .filter_map(|(t, v)| Some((*t, conv(v)?)))
            .unzip()
    }
    let (times, values) = match first {
        FieldType::Float => {
            let (t, v) = pick(&cells, Value::as_f64);
            (t, Values::Float(v))
        }
        FieldType::Integer => {
            let (t, v) = pick(&cells, |v| match v {
                Value::Integer(i) => Some(*i),
                Value::Float(f) => Some(*f as i64),
                _ => None,
            });
            (t, Values::Integer(v))
        }
        FieldType::Unsigned => {
            let (t, v) = pick(&cells, |v| match v {
                Value::Unsigned(u) => Some(*u),
                _ => None,
            });
            (t, Values::Unsigned(v))
        }
        FieldType::String => {
            let (t, v) = pick(&cells, |v| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            });
            (t, Values::String(v))
        }
        FieldType::Boolean => {
            let (t, v) = pick(&cells, |v| match v {
                Value::Boolean(b) => Some(*b),
                _ => None,
            });
            (t, Values::Boolean(v))
        }
    };
    Some(Column { times, values })
}
