//! Raw statements answered a time slice at a time. A raw SELECT without
//! GROUP BY tags answers one series per measurement whose rows run in time
//! order, so it can be read slice by slice — a shard group's range, halved
//! while a read of it passes the slice budget — each slice's rows handed on
//! before the next is read. A statement then holds about one slice however
//! much it answers, and LIMIT stops reading once it has its rows.

use sundial_influxql::select::SelectStatement;

use crate::error::{Error, Result};
use crate::exec::{fetch, group, point_names, pushed_condition, shard_reads, REPLANS};
use crate::plan::{plan, Context, Parent, Plan};
use crate::raw::Cursor;
use crate::result::{Series, SeriesSink};

/// Bytes of points one slice's reads may hold before the slice is halved
/// (the memory limit when that is lower).
const SLICE_BYTES: usize = 64 << 20;

/// Whether a planned statement is answered slice by slice: raw, one group per
/// measurement (no GROUP BY tags, SLIMIT or SOFFSET), read from shards.
pub(crate) fn eligible(plan: &Plan) -> bool {
    plan.shape.is_none()
        && plan.dimensions.is_empty()
        && plan.slimit == 0
        && plan.soffset == 0
        && plan.sources.iter().all(|s| s.rows.is_none())
}

/// The disjoint time ranges (inclusive) the shards of measurement `name`
/// cover within the statement's, in output order.
fn slices(plan: &Plan, name: &str) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = plan
        .sources
        .iter()
        .filter(|s| s.measurement == name)
        .flat_map(|s| s.spans.iter())
        .map(|&(start, end)| (start.max(plan.read_min), (end - 1).min(plan.max)))
        .filter(|(lo, hi)| lo <= hi)
        .collect();
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (lo, hi) in spans {
        match out.last_mut() {
            // Shard groups of several retention policies may overlap.
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    if !plan.ascending {
        out.reverse();
    }
    out
}

/// Answers an eligible statement slice by slice.
pub(crate) async fn run(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    parent: Option<&Parent>,
    mut plan: Plan,
    sink: &mut dyn SeriesSink,
) -> Result<()> {
    let mut measurements: Vec<String> =
        plan.sources.iter().map(|s| s.measurement.clone()).collect();
    measurements.dedup();
    if !plan.ascending {
        measurements.reverse();
    }
    let budget = plan.memory_limit.min(SLICE_BYTES);
    // What every read asks for; a plan made again keeps both (same fields,
    // same statement).
    let names = point_names(&plan);
    let condition = pushed_condition(&plan);
    let mut emitted = false;
    for name in measurements {
        let mut cursor = Cursor::default();
        // A stack: the next slice in output order on top.
        let mut todo = slices(&plan, &name);
        todo.reverse();
        let mut replans = 0;
        while let Some((lo, hi)) = todo.pop() {
            // Slices that answer nothing send nothing: ask whether anyone
            // still reads.
            if sink.gone() {
                return Err(Error::Interrupted);
            }
            // A slice that cannot be halved may use the whole limit.
            let cap = if lo < hi { budget } else { plan.memory_limit };
            let jobs = shard_reads(&plan, &names, (lo, hi), cap, condition.clone(), Some(&name));
            let reads = match fetch(cx, jobs, cap).await {
                Ok((reads, _)) => reads,
                Err(Error::MemoryLimit { .. }) if lo < hi => {
                    let mid = lo + (hi - lo) / 2;
                    let (first, second) = if plan.ascending {
                        ((lo, mid), (mid + 1, hi))
                    } else {
                        ((mid + 1, hi), (lo, mid))
                    };
                    todo.push(second);
                    todo.push(first);
                    continue;
                }
                Err(Error::MemoryLimit { .. }) => {
                    return Err(Error::MemoryLimit {
                        limit: plan.memory_limit,
                    })
                }
                // A cached schema went stale after part of the answer went
                // out: planned again (the stale entry is gone), the statement
                // goes on if its columns stay what they were.
                Err(e @ Error::SchemaChanged { .. }) if emitted && replans < REPLANS => {
                    replans += 1;
                    let again = plan_again(stmt, cx, parent).await?;
                    if again.columns != plan.columns || again.fields != plan.fields {
                        return Err(e);
                    }
                    plan = again;
                    todo.push((lo, hi));
                    continue;
                }
                Err(e) => return Err(e),
            };
            replans = 0;
            for g in group(&plan, reads, |_| true).into_values() {
                let (rows, full) = cursor.next(&plan, &g);
                if !rows.is_empty() {
                    emitted = true;
                    sink.put(Series {
                        name: g.measurement,
                        tags: g.tags,
                        columns: plan.columns.clone(),
                        rows,
                    })
                    .await?;
                }
                if full {
                    todo.clear();
                }
            }
        }
    }
    Ok(())
}

async fn plan_again(
    stmt: &SelectStatement,
    cx: &Context<'_>,
    parent: Option<&Parent>,
) -> Result<Plan> {
    let again = plan(stmt, cx, parent).await?;
    if eligible(&again) {
        Ok(again)
    } else {
        Err(Error::Internal(
            "a raw statement's plan changed its kind".into(),
        ))
    }
}
