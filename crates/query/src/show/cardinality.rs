//! The cardinality SHOWs, as 1.6.7 answers them: `SHOW SERIES CARDINALITY`
//! and `SHOW MEASUREMENT CARDINALITY` without clauses count the whole
//! database (every retention policy) under `cardinality estimation` — 1.6
//! estimates with a sketch, Sundial counts exactly; every other form is 1.6's
//! EXACT one, a count over the sources' retention policy (the default one
//! unless named) per measurement. For SERIES, 1.6 counts shard by shard and
//! adds the counts up (a series written in two shard groups counts twice), and
//! so does Sundial: the differential test holds both to the same answers.

use std::collections::BTreeMap;

use sundial_influxql::select::{Cardinality, ShowCardinality};

use super::{
    all_names, all_policies, database, one_table, policy_sources, table, typed_fields, untimed,
    KeyFilter, Listing,
};
use crate::error::Result;
use crate::plan::Context;
use crate::result::Series;
use crate::seam::SeriesKey;
use crate::value::Value;

pub(super) async fn cardinality(s: &ShowCardinality, cx: &Context<'_>) -> Result<Vec<Series>> {
    let bare = s.sources.is_empty()
        && s.condition.is_none()
        && s.dimensions.is_empty()
        && s.limit == 0
        && s.offset == 0;
    if !s.exact && bare && matches!(s.of, Cardinality::Series | Cardinality::Measurement) {
        return whole_database(s, cx).await;
    }
    let cond = untimed(s.condition.as_ref(), cx)?;
    let listing = Listing::new(cond.as_ref())?;
    // Per measurement: the count, and for MEASUREMENT whether it has any.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (db, shards, names) in policy_sources(cx, s.database.as_deref(), &s.sources).await? {
        match &s.of {
            Cardinality::Series => {
                // 1.6 counts shard by shard and adds the counts up: a series
                // written in two shard groups counts twice.
                for shard in &shards {
                    let one = std::slice::from_ref(shard);
                    for k in listing.list(cx, &db, one, &names).await? {
                        *counts.entry(k.measurement).or_default() += 1;
                    }
                }
            }
            Cardinality::Measurement => {
                for k in listing.list(cx, &db, &shards, &names).await? {
                    *counts.entry(k.measurement).or_default() += 1;
                }
            }
            Cardinality::TagKey => {
                let keys = listing.list(cx, &db, &shards, &names).await?;
                count_distinct(&keys, &mut counts, |k| {
                    k.tags.iter().map(|(t, _)| t.clone()).collect()
                });
            }
            Cardinality::TagValues(filter) => {
                let wanted = KeyFilter::new(filter)?;
                let keys = listing.list(cx, &db, &shards, &names).await?;
                count_distinct(&keys, &mut counts, |k| {
                    k.tags
                        .iter()
                        .filter(|(t, _)| wanted.matches(t))
                        .map(|(t, v)| format!("{t}\u{0}{v}"))
                        .collect()
                });
            }
            Cardinality::FieldKey => {
                for name in names {
                    let schema = cx.reader.schema_fresh(&db, &shards, &name).await?;
                    let n = typed_fields(&schema).len();
                    if n > 0 {
                        *counts.entry(name).or_default() += n;
                    }
                }
            }
        }
    }
    if s.of == Cardinality::Measurement {
        let n = counts.values().filter(|&&c| c > 0).count();
        return Ok(counted("", "count", n));
    }
    Ok(counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| count_table(&m, "count", n))
        .collect())
}

/// The whole database's distinct series or measurements.
async fn whole_database(s: &ShowCardinality, cx: &Context<'_>) -> Result<Vec<Series>> {
    let db = database(s.database.as_deref(), cx)?;
    let Some(shards) = all_policies(cx, db) else {
        return Ok(Vec::new());
    };
    let names = all_names(cx, db, &shards).await?;
    let n = match s.of {
        Cardinality::Measurement => names.len(),
        _ => Listing::new(None)?
            .list(cx, db, &shards, &names)
            .await?
            .len(),
    };
    Ok(counted("", "cardinality estimation", n))
}

/// Per measurement, the distinct values `of` gives its series.
fn count_distinct(
    keys: &[SeriesKey],
    counts: &mut BTreeMap<String, usize>,
    of: impl Fn(&SeriesKey) -> Vec<String>,
) {
    let mut seen: BTreeMap<&str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for k in keys {
        seen.entry(&k.measurement).or_default().extend(of(k));
    }
    for (m, set) in seen {
        *counts.entry(m.to_string()).or_default() += set.len();
    }
}

fn count_table(name: &str, column: &str, n: usize) -> Series {
    table(
        name,
        &[column],
        std::iter::once(vec![Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))]),
    )
}

/// One count, or nothing when it is zero (1.6 answers no rows then).
fn counted(name: &str, column: &str, n: usize) -> Vec<Series> {
    one_table(
        name,
        &[column],
        (n > 0)
            .then(|| vec![Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))])
            .into_iter(),
    )
}
