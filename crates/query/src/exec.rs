//! Runs a planned statement: reads the shards (concurrently), groups the series
//! by measurement and GROUP BY tags (SLIMIT/SOFFSET as 1.6 applies them), and
//! hands each group to the raw or the aggregate path — an aggregate the stores
//! can answer in partials reads those instead of points.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use sundial_influxql::select::{Expr, SelectStatement};
use sundial_meta::ShardInfo;

use crate::error::{Error, Result};
use crate::partial::{PartialRequest, SeriesPartials};
use crate::plan::{plan, tag_filter, Context, Parent, Plan};
use crate::result::{Collect, Row, Series, SeriesSink, Watch};
use crate::seam::{ReadRequest, SeriesRead};
use crate::{agg, raw};

/// Shards read at once by one statement.
const READ_CONCURRENCY: usize = 8;

/// An output group: the measurement and the GROUP BY tag values.
type GroupKey = (String, Vec<String>);

/// The series of one output group.
#[derive(Debug)]
pub struct Group<S = SeriesRead> {
    pub measurement: String,
    /// The GROUP BY tags and their values ('' when a series lacks one).
    pub tags: Vec<(String, String)>,
    pub series: Vec<S>,
    /// The shard each series was read from (0 for a subquery's rows).
    pub shards: Vec<u64>,
}

/// What a read answers per series: points or partials, both with their tags.
pub(crate) trait Tagged {
    fn tags(&self) -> &[(String, String)];
}

impl Tagged for SeriesRead {
    fn tags(&self) -> &[(String, String)] {
        &self.tags
    }
}

impl Tagged for SeriesPartials {
    fn tags(&self) -> &[(String, String)] {
        &self.tags
    }
}

/// One shard's answer: its id, the measurement, the series.
pub(crate) type Read<S> = (u64, String, Vec<S>);

/// Times a statement is planned again when a cached schema turns out stale.
pub(crate) const REPLANS: usize = 3;

/// Runs one SELECT, its answer collected (and counted against the memory
/// limit).
pub async fn select(stmt: &SelectStatement, cx: &Context<'_>) -> Result<Vec<Series>> {
    let mut out = Collect::new(cx.memory_limit);
    select_into(stmt, cx, &mut out).await?;
    Ok(out.series)
}

/// Runs one SELECT, its answer handed to `sink` as it is made.
pub async fn select_into(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    sink: &mut dyn SeriesSink,
) -> Result<()> {
    let mut sink = Watch {
        inner: sink,
        emitted: false,
    };
    let mut tries = 0;
    loop {
        match answer(stmt, cx, None, &mut sink).await {
            // The reader dropped the stale schema: the next plan reads it
            // afresh — unless part of the answer is already out.
            Err(Error::SchemaChanged { .. }) if tries < REPLANS && !sink.emitted => tries += 1,
            r => return r,
        }
    }
}

/// Runs a subquery (or a SELECT), its answer collected.
pub(crate) async fn select_in(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    parent: Option<&Parent>,
) -> Result<Vec<Series>> {
    let mut out = Collect::new(cx.memory_limit);
    answer(stmt, cx, parent, &mut out).await?;
    Ok(out.series)
}

/// Plans a statement and answers it: raw statements that can be read a time
/// slice at a time are ([`crate::sliced`]), the rest read whole.
async fn answer(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    parent: Option<&Parent>,
    sink: &mut dyn SeriesSink,
) -> Result<()> {
    let plan = plan(stmt, cx, parent).await?;
    if crate::sliced::eligible(&plan) {
        return crate::sliced::run(stmt, cx, parent, plan, sink).await;
    }
    for s in answer_whole(&plan, cx).await? {
        sink.put(s).await?;
    }
    Ok(())
}

/// A planned statement's answer, from everything it reads at once.
async fn answer_whole(plan: &Plan, cx: &Context<'_>) -> Result<Vec<Series>> {
    let Some(shape) = &plan.shape else {
        let groups = group(plan, read_points(plan, cx).await?, |_| true);
        return output(plan, groups, |g| Ok(raw::run(plan, g)));
    };
    match agg::pushdown(plan, shape) {
        Some(fields) => {
            let reads = read_partials(plan, cx, fields).await?;
            // The condition is on tags alone: it keeps or drops whole series.
            let groups = group(plan, reads, |s: &SeriesPartials| {
                raw::passes(plan, &[], &[], &s.tags)
            });
            output(plan, groups, |g| agg::run_partials(plan, shape, &g.series))
        }
        None => {
            let groups = group(plan, read_points(plan, cx).await?, |_| true);
            output(plan, groups, |g| agg::run(plan, shape, g))
        }
    }
}

/// The groups' series in output order (ORDER BY time DESC reverses them too),
/// each from `rows`; groups without rows are left out.
fn output<S>(
    plan: &Plan,
    groups: BTreeMap<GroupKey, Group<S>>,
    rows: impl Fn(&Group<S>) -> Result<Vec<Row>>,
) -> Result<Vec<Series>> {
    let groups: Vec<Group<S>> = if plan.ascending {
        groups.into_values().collect()
    } else {
        groups.into_values().rev().collect()
    };
    let mut out = Vec::new();
    for g in groups {
        let rows = rows(&g)?;
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

/// The shards' series that `keep` accepts, grouped by measurement and GROUP BY
/// tags, SLIMIT/SOFFSET applied per shard.
pub(crate) fn group<S: Tagged>(
    plan: &Plan,
    reads: Vec<Read<S>>,
    keep: impl Fn(&S) -> bool,
) -> BTreeMap<GroupKey, Group<S>> {
    let mut groups: BTreeMap<GroupKey, Group<S>> = BTreeMap::new();
    for (shard, measurement, series) in reads {
        let series: Vec<S> = series.into_iter().filter(|s| keep(s)).collect();
        let limits = series_limits(plan, series.iter().map(|s| s.tags()));
        for s in series {
            let values = group_key(plan, s.tags());
            if limits.as_ref().is_some_and(|k| !k.contains(&values)) {
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
    groups
}

/// Names every field and tag an expression reads.
pub(crate) fn var_names(e: &Expr, out: &mut Vec<String>) {
    e.walk(&mut |x| match x {
        Expr::VarRef { name, .. } | Expr::Distinct(name) => out.push(name.clone()),
        _ => {}
    });
}

/// The condition a reader may apply to the rows it reads: one on fields
/// (tags alone are the tag filter's).
pub(crate) fn pushed_condition(plan: &Plan) -> Option<Expr> {
    plan.condition
        .clone()
        .filter(|c| !crate::plan::tags_only(c, plan))
}

/// A read of each shard of each source (of measurement `only`, if given)
/// that holds one of `names` as a field and overlaps `min..=max`. Points
/// reads carry the condition a reader may apply and the memory limit
/// (partial reads neither).
pub(crate) fn shard_reads(
    plan: &Plan,
    names: &[String],
    (min, max): (i64, i64),
    memory_limit: usize,
    condition: Option<Expr>,
    only: Option<&str>,
) -> Vec<(String, ShardInfo, ReadRequest)> {
    let mut jobs = Vec::new();
    let sources = plan
        .sources
        .iter()
        .filter(|s| s.rows.is_none() && only.is_none_or(|m| s.measurement == m));
    for src in sources {
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
            min,
            max,
            schema_stamp: 0,
            condition: condition.clone(),
            max_bytes: memory_limit,
        };
        for (shard, &(start, end)) in src.shards.iter().zip(&src.spans) {
            if end <= min || start > max {
                continue;
            }
            let req = ReadRequest {
                schema_stamp: src.schema.stamp_of(shard.id),
                ..req.clone()
            };
            jobs.push((src.database.clone(), shard.clone(), req));
        }
    }
    jobs
}

/// Every field a statement's points reads need: those it selects and those
/// its condition names.
pub(crate) fn point_names(plan: &Plan) -> Vec<String> {
    let mut names = Vec::new();
    for f in &plan.fields {
        var_names(&f.expr, &mut names);
    }
    if let Some(c) = &plan.condition {
        var_names(c, &mut names);
    }
    names.sort();
    names.dedup();
    names
}

/// Runs points reads (a few at once), their sum held to `limit` bytes as
/// they come in — each read also stops past it itself — so a statement
/// never holds much more than its limit. Also answers the bytes held.
pub(crate) async fn fetch(
    cx: &Context<'_>,
    jobs: Vec<(String, ShardInfo, ReadRequest)>,
    limit: usize,
) -> Result<(Vec<Read<SeriesRead>>, usize)> {
    stream::iter(jobs)
        .map(|(db, shard, req)| async move {
            let series = cx.reader.read(&db, &shard, &req).await?;
            count_read(
                cx,
                &req.tags,
                series.iter().map(|s| {
                    let values = s.fields.iter().map(|(_, c)| c.len()).sum();
                    (s.tags.as_slice(), values)
                }),
            )?;
            Ok::<_, Error>((shard.id, req.measurement, series))
        })
        .buffered(READ_CONCURRENCY)
        .try_fold((Vec::new(), 0usize), |(mut reads, held), r| async move {
            let held = held.saturating_add(bytes_of(&r.2));
            if held > limit {
                return Err(Error::MemoryLimit { limit });
            }
            reads.push(r);
            Ok((reads, held))
        })
        .await
}

/// One shard read's series (their tags and values read) against
/// `max-select-series` and `max-select-point`: the series the tag filter
/// takes (1.6 selects series by its index first; a reader may answer a
/// wider set) that hold a value.
fn count_read<'s>(
    cx: &Context<'_>,
    filter: &crate::seam::TagFilter,
    series: impl Iterator<Item = (&'s [(String, String)], usize)>,
) -> Result<()> {
    if cx.max_series == 0 && cx.max_points == 0 {
        return Ok(());
    }
    let tags = filter.matcher()?;
    let (mut n, mut points) = (0, 0);
    for (_, values) in series.filter(|(t, _)| tags.matches(t)) {
        n += usize::from(values > 0);
        points += values;
    }
    cx.count_read(n, points)
}

fn bytes_of(series: &[SeriesRead]) -> usize {
    series.iter().map(SeriesRead::heap_bytes).sum()
}

/// The points a statement reads: every field it names, from its shards and
/// its subqueries' rows, counted against its memory limit.
async fn read_points(plan: &Plan, cx: &Context<'_>) -> Result<Vec<Read<SeriesRead>>> {
    let limit = cx.memory_limit;
    let jobs = shard_reads(
        plan,
        &point_names(plan),
        (plan.read_min, plan.max),
        limit,
        pushed_condition(plan),
        None,
    );
    let (mut reads, mut held) = fetch(cx, jobs, limit).await?;
    for src in &plan.sources {
        if let Some(rows) = &src.rows {
            held = held.saturating_add(bytes_of(rows));
            reads.push((0, src.measurement.clone(), rows.clone()));
        }
    }
    if held > limit {
        return Err(Error::MemoryLimit { limit });
    }
    Ok(reads)
}

/// Each shard's series as per-window partials of `fields` (the reader
/// computes them where the data is).
async fn read_partials(
    plan: &Plan,
    cx: &Context<'_>,
    fields: Vec<String>,
) -> Result<Vec<Read<SeriesPartials>>> {
    stream::iter(shard_reads(
        plan,
        &fields,
        (plan.min, plan.max),
        0,
        None,
        None,
    ))
    .map(|(db, shard, read)| async move {
        let req = PartialRequest {
            read,
            interval: plan.interval,
            offset: plan.offset,
        };
        let series = cx.reader.read_partials(&db, &shard, &req).await?;
        count_read(
            cx,
            &req.read.tags,
            series.iter().map(|s| {
                let values = s
                    .fields
                    .iter()
                    .flat_map(|(_, windows)| windows)
                    .map(|(_, p)| p.count as usize)
                    .sum();
                (s.tags.as_slice(), values)
            }),
        )?;
        Ok::<_, Error>((shard.id, req.read.measurement, series))
    })
    .buffered(READ_CONCURRENCY)
    .try_collect()
    .await
}
