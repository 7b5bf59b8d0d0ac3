//! Runs a planned statement: reads the shards (concurrently), groups the series
//! by measurement and GROUP BY tags, and hands each group to the raw or the
//! aggregate path; then SLIMIT/SOFFSET.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use sundial_influxql::select::SelectStatement;

use crate::error::{Error, Result};
use crate::eval::holds;
use crate::partial::{PartialRequest, SeriesPartials};
use crate::plan::{plan, tag_filter, Context, Parent, Plan};
use crate::raw::PointRow;
use crate::result::Series;
use crate::seam::{ReadRequest, SeriesRead};
use crate::{agg, raw};

/// Shards read at once by one statement.
const READ_CONCURRENCY: usize = 8;

/// An output group: the measurement and the GROUP BY tag values.
type GroupKey = (String, Vec<String>);

/// The series of one output group.
#[derive(Debug, Default)]
pub struct Group {
    pub measurement: String,
    /// The GROUP BY tags and their values ('' when a series lacks one).
    pub tags: Vec<(String, String)>,
    pub series: Vec<SeriesRead>,
    /// The shard each series was read from (0 for a subquery's rows).
    pub shards: Vec<u64>,
}

/// Runs one SELECT.
pub async fn select(stmt: &SelectStatement, cx: &Context<'_>) -> Result<Vec<Series>> {
    select_in(stmt, cx, None).await
}

/// Runs a SELECT, or a subquery of one.
pub(crate) async fn select_in(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    parent: Option<&Parent>,
) -> Result<Vec<Series>> {
    let plan = plan(stmt, cx, parent).await?;
    if plan.is_aggregate() {
        if let Some(fields) = agg::pushdown(&plan) {
            return select_partials(&plan, cx, fields).await;
        }
    }
    let groups = read_groups(&plan, cx).await?;
    let mut out = Vec::new();
    // ORDER BY time DESC reverses the series too.
    let groups: Vec<Group> = if plan.ascending {
        groups.into_values().collect()
    } else {
        groups.into_values().rev().collect()
    };
    for g in groups {
        let rows = if plan.is_aggregate() {
            agg::run(&plan, &g)?
        } else {
            raw::run(&plan, &g)
        };
        if rows.is_empty() {
            continue;
        }
        out.push(Series {
            name: g.measurement,
            tags: g.tags,
            columns: plan.columns.clone(),
            rows,
        });
    }
    Ok(out)
}

/// The GROUP BY tag values of a series ('' where it has no such tag).
fn group_key(plan: &Plan, tags: &[(String, String)]) -> Vec<String> {
    plan.dimensions
        .iter()
        .map(|d| {
            tags.iter()
                .find(|(k, _)| k == d)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// SLIMIT/SOFFSET as InfluxDB 1.6 applies them: in each shard, to the sorted
/// groups of one measurement (`LimitTagSets`) — so SOFFSET without SLIMIT
/// keeps nothing, and a statement over several shards may keep more groups
/// than SLIMIT. `None`: every group.
fn series_limits<'a>(
    plan: &Plan,
    series: impl Iterator<Item = &'a [(String, String)]>,
) -> Option<std::collections::BTreeSet<Vec<String>>> {
    if plan.slimit == 0 && plan.soffset == 0 {
        return None;
    }
    let mut keys: Vec<Vec<String>> = series.map(|t| group_key(plan, t)).collect();
    keys.sort();
    keys.dedup();
    if plan.soffset > keys.len() {
        return Some(Default::default());
    }
    let end = (plan.soffset + plan.slimit).min(keys.len());
    Some(keys[plan.soffset..end].iter().cloned().collect())
}

/// Names every field and tag an expression reads.
fn var_names(e: &sundial_influxql::select::Expr, out: &mut Vec<String>) {
    use sundial_influxql::select::Expr;
    match e {
        Expr::VarRef { name, .. } => out.push(name.clone()),
        Expr::Binary { lhs, rhs, .. } => {
            var_names(lhs, out);
            var_names(rhs, out);
        }
        Expr::Paren(x) => var_names(x, out),
        Expr::Call { args, .. } => args.iter().for_each(|a| var_names(a, out)),
        Expr::Distinct(v) => out.push(v.clone()),
        _ => {}
    }
}

async fn read_groups(plan: &Plan, cx: &Context<'_>) -> Result<BTreeMap<GroupKey, Group>> {
    let mut names = Vec::new();
    for f in &plan.fields {
        var_names(&f.expr, &mut names);
    }
    if let Some(c) = &plan.condition {
        var_names(c, &mut names);
    }
    names.sort();
    names.dedup();

    let mut jobs = Vec::new();
    let mut ready: Vec<(u64, String, Vec<SeriesRead>)> = Vec::new();
    for src in &plan.sources {
        if let Some(rows) = &src.rows {
            ready.push((0, src.measurement.clone(), rows.clone()));
            continue;
        }
        let fields: Vec<String> = names
            .iter()
            .filter(|n| src.schema.field_type(n).is_some())
            .cloned()
            .collect();
        if fields.is_empty() {
            continue;
        }
        let req = ReadRequest {
            measurement: src.measurement.clone(),
            tags: tag_filter(plan.condition.as_ref(), &src.schema),
            fields,
            min: plan.read_min,
            max: plan.max,
        };
        for shard in &src.shards {
            jobs.push((src.database.clone(), shard.clone(), req.clone()));
        }
    }
    let mut reads: Vec<(u64, String, Vec<SeriesRead>)> = stream::iter(jobs)
        .map(|(db, shard, req)| async move {
            let series = cx.reader.read(&db, &shard, &req).await?;
            Ok::<_, Error>((shard.id, req.measurement, series))
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    reads.append(&mut ready);

    let mut bytes = 0usize;
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for (shard, measurement, series) in reads {
        let keep = series_limits(plan, series.iter().map(|s| s.tags.as_slice()));
        for s in series {
            bytes += s.fields.iter().map(|(_, c)| c.heap_bytes()).sum::<usize>();
            if bytes > cx.memory_limit {
                return Err(Error::MemoryLimit {
                    limit: cx.memory_limit,
                });
            }
            let values = group_key(plan, &s.tags);
            if !keep.as_ref().is_none_or(|k| k.contains(&values)) {
                continue;
            }
            let g = groups
                .entry((measurement.clone(), values.clone()))
                .or_insert_with(|| Group {
                    measurement: measurement.clone(),
                    tags: plan.dimensions.iter().cloned().zip(values).collect(),
                    series: Vec::new(),
                    shards: Vec::new(),
                });
            g.series.push(s);
            g.shards.push(shard);
        }
    }
    Ok(groups)
}

/// An aggregate answered from partials: each shard's series as per-window
/// partials (the reader computes them where the data is), filtered by the
/// tag condition, grouped, merged.
async fn select_partials(
    plan: &Plan,
    cx: &Context<'_>,
    fields: Vec<String>,
) -> Result<Vec<Series>> {
    let mut jobs = Vec::new();
    for src in &plan.sources {
        let fields: Vec<String> = fields
            .iter()
            .filter(|n| src.schema.field_type(n).is_some())
            .cloned()
            .collect();
        if fields.is_empty() {
            continue;
        }
        let req = PartialRequest {
            read: ReadRequest {
                measurement: src.measurement.clone(),
                tags: tag_filter(plan.condition.as_ref(), &src.schema),
                fields,
                min: plan.min,
                max: plan.max,
            },
            interval: plan.interval,
            offset: plan.offset,
        };
        for shard in &src.shards {
            jobs.push((src.database.clone(), shard.clone(), req.clone()));
        }
    }
    let reads: Vec<(String, Vec<SeriesPartials>)> = stream::iter(jobs)
        .map(|(db, shard, req)| async move {
            let series = cx.reader.read_partials(&db, &shard, &req).await?;
            Ok::<_, Error>((req.read.measurement, series))
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    let mut groups: BTreeMap<GroupKey, Vec<SeriesPartials>> = BTreeMap::new();
    for (measurement, series) in reads {
        let series: Vec<SeriesPartials> = series
            .into_iter()
            .filter(|s| {
                plan.condition.as_ref().is_none_or(|c| {
                    let row = PointRow {
                        names: &[],
                        values: &[],
                        tags: &s.tags,
                        in_condition: true,
                    };
                    holds(c, &row, &plan.regexes)
                })
            })
            .collect();
        let keep = series_limits(plan, series.iter().map(|s| s.tags.as_slice()));
        for s in series {
            let key = group_key(plan, &s.tags);
            if keep.as_ref().is_some_and(|k| !k.contains(&key)) {
                continue;
            }
            groups
                .entry((measurement.clone(), key))
                .or_default()
                .push(s);
        }
    }
    let groups: Vec<(GroupKey, Vec<SeriesPartials>)> = if plan.ascending {
        groups.into_iter().collect()
    } else {
        groups.into_iter().rev().collect()
    };
    let mut out = Vec::new();
    for ((measurement, values), series) in groups {
        let rows = agg::run_partials(plan, &series)?;
        if rows.is_empty() {
            continue;
        }
        out.push(Series {
            name: measurement,
            tags: plan.dimensions.iter().cloned().zip(values).collect(),
            columns: plan.columns.clone(),
            rows,
        });
    }
    Ok(out)
}
