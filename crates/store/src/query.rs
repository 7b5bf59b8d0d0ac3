//! The shard reader of a single node: queries read the in-process engine.

use std::sync::Arc;

use async_trait::async_trait;
use sundial_engine::tsfile::{BlockStats, NumStats, TypedStats};
use sundial_engine::{Store, TagPredicate};
use sundial_meta::ShardInfo;
use sundial_query::partial::{self, Partial, PartialRequest, SeriesPartials};
use sundial_query::{
    keep_passing_rows, Column, Error, FieldType, ReadRequest, Regexes, Result, Schema, SeriesKey,
    SeriesRead, SeriesRequest, ShardReader, TagFilter, Value, Values,
};

/// Reads the shards of the local engine.
#[derive(Debug, Clone)]
pub struct LocalShardReader {
    store: Arc<Store>,
}

impl LocalShardReader {
    pub fn new(store: Arc<Store>) -> Self {
        LocalShardReader { store }
    }

    /// Runs `f` on the blocking pool (the engine reads files).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            f(&store)
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }
}

fn shard_err(id: u64) -> impl Fn(sundial_engine::Error) -> Error {
    move |e| Error::Shard {
        shard: id,
        message: e.to_string(),
    }
}

/// The part of a filter the engine's index answers exactly (equalities under
/// AND/OR); the rest is left to the rows.
fn predicate(f: &TagFilter) -> TagPredicate {
    match f {
        TagFilter::Eq(k, v) => TagPredicate::eq(k.clone(), v.clone()),
        TagFilter::And(a, b) => match (predicate(a), predicate(b)) {
            (TagPredicate::All, x) | (x, TagPredicate::All) => x,
            (a, b) => a.and(b),
        },
        TagFilter::Or(a, b) => match (predicate(a), predicate(b)) {
            (TagPredicate::All, _) | (_, TagPredicate::All) => TagPredicate::All,
            (a, b) => a.or(b),
        },
        _ => TagPredicate::All,
    }
}

fn field_type(t: sundial_engine::FieldType) -> FieldType {
    match t {
        sundial_engine::FieldType::Float => FieldType::Float,
        sundial_engine::FieldType::Integer => FieldType::Integer,
        sundial_engine::FieldType::Unsigned => FieldType::Unsigned,
        sundial_engine::FieldType::String => FieldType::String,
        sundial_engine::FieldType::Boolean => FieldType::Boolean,
    }
}

fn column(c: sundial_engine::Column) -> Column {
    let values = match c.values {
        sundial_engine::Values::Float(v) => Values::Float(v),
        sundial_engine::Values::Integer(v) => Values::Integer(v),
        sundial_engine::Values::Unsigned(v) => Values::Unsigned(v),
        sundial_engine::Values::String(v) => Values::String(v),
        sundial_engine::Values::Boolean(v) => Values::Boolean(v),
    };
    Column {
        times: c.times,
        values,
    }
}

/// The measurements of the shards this node holds among `ids`, sorted.
pub fn measurements(store: &Store, ids: &[u64]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for &id in ids {
        if !store.has_shard(id) {
            continue;
        }
        out.extend(store.measurements(id).map_err(shard_err(id))?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// What the shards this node holds among `ids` hold of `m`.
pub fn schema(store: &Store, ids: &[u64], m: &str) -> Result<Schema> {
    let mut schema = Schema::default();
    for &id in ids {
        if !store.has_shard(id) {
            continue;
        }
        let fields = store.field_keys(id, m).map_err(shard_err(id))?;
        let tags = store.tag_keys(id, m).map_err(shard_err(id))?;
        schema.merge(Schema {
            fields: fields
                .into_iter()
                .map(|(n, t)| (n, field_type(t)))
                .collect(),
            tags,
            ..Schema::default()
        });
    }
    Ok(schema)
}

/// The series keys of shard `id` that `req` lists (its whole tag filter
/// applied), sorted; a shard this node does not hold has none.
pub fn list_series(store: &Store, id: u64, req: &SeriesRequest) -> Result<Vec<SeriesKey>> {
    if !store.has_shard(id) {
        return Ok(Vec::new());
    }
    let matcher = req.tags.matcher()?;
    let pred = predicate(&req.tags);
    let mut names: Vec<&String> = req.measurements.iter().collect();
    names.sort();
    names.dedup();
    let (mut out, mut held) = (Vec::new(), 0usize);
    for m in names {
        for key in store.series_keys(id, m, &pred).map_err(shard_err(id))? {
            let (measurement, mut tags) = sundial_engine::index::parse_series_key(&key);
            tags.sort();
            if !matcher.matches(&tags) {
                continue;
            }
            let k = SeriesKey { measurement, tags };
            held = held.saturating_add(k.heap_bytes());
            if req.max_bytes != 0 && held > req.max_bytes {
                return Err(Error::MemoryLimit {
                    limit: req.max_bytes,
                });
            }
            out.push(k);
        }
    }
    // The engine's keys are sorted as escaped text; the seam promises
    // (measurement, tags) order.
    out.sort();
    Ok(out)
}

/// Calls `f` with each series of shard `id` matching `req` (stops when it
/// returns false); a shard this node does not hold has none.
pub fn for_each_series(
    store: &Store,
    id: u64,
    req: &ReadRequest,
    f: &mut dyn FnMut(SeriesRead) -> bool,
) -> Result<()> {
    if !store.has_shard(id) {
        return Ok(());
    }
    let fields: Vec<&str> = req.fields.iter().map(String::as_str).collect();
    // The statement's field condition, applied here: only passing rows leave.
    let mut regexes = Regexes::default();
    if let Some(c) = &req.condition {
        regexes.add(c)?;
    }
    let mut held = 0usize;
    let iter = store
        .scan(
            id,
            &req.measurement,
            &predicate(&req.tags),
            Some(&fields),
            req.min,
            req.max,
        )
        .map_err(shard_err(id))?;
    for s in iter {
        let s = s.map_err(shard_err(id))?;
        let mut tags = s.tags;
        tags.sort();
        let read = SeriesRead {
            tags,
            fields: s
                .fields
                .into_iter()
                .map(|f| (f.name, column(f.column)))
                .collect(),
        };
        let read = match &req.condition {
            Some(c) => match keep_passing_rows(c, &regexes, read) {
                Some(r) => r,
                None => continue,
            },
            None => read,
        };
        if req.max_bytes != 0 {
            held = held.saturating_add(read.heap_bytes());
            if held > req.max_bytes {
                return Err(Error::MemoryLimit {
                    limit: req.max_bytes,
                });
            }
        }
        if !f(read) {
            break;
        }
    }
    Ok(())
}

/// A block's statistics as a partial aggregate (numbers only: the query
/// engine asks for partials of numeric fields alone).
fn stats_partial(st: &BlockStats) -> Option<Partial> {
    fn of<T: Copy>(n: &NumStats<T>, v: impl Fn(T) -> Value, st: &BlockStats) -> Partial {
        Partial {
            count: u64::from(st.count),
            sum: v(n.sum),
            min: (v(n.min), n.min_time),
            max: (v(n.max), n.max_time),
            first: (v(n.first), st.first_time),
            last: (v(n.last), st.last_time),
        }
    }
    Some(match &st.values {
        TypedStats::Float(n) => of(n, Value::Float, st),
        TypedStats::Integer(n) => of(n, Value::Integer, st),
        TypedStats::Unsigned(n) => of(n, Value::Unsigned, st),
        TypedStats::Boolean { .. } | TypedStats::String => return None,
    })
}

/// Partial aggregates per window of shard `id`'s series matching `req`: whole
/// blocks from their statistics, the rest from their points.
pub fn partials(store: &Store, id: u64, req: &PartialRequest) -> Result<Vec<SeriesPartials>> {
    if !store.has_shard(id) {
        return Ok(Vec::new());
    }
    let r = &req.read;
    let fields: Vec<&str> = r.fields.iter().map(String::as_str).collect();
    let same_window = |a: i64, b: i64| req.window(a) == req.window(b);
    let mut out = Vec::new();
    let mut bad: Option<Error> = None;
    store
        .summarize(
            id,
            &r.measurement,
            &predicate(&r.tags),
            &fields,
            r.min,
            r.max,
            &same_window,
            &mut |mut tags, per_field| {
                tags.sort();
                let mut fields = Vec::with_capacity(per_field.len());
                for (name, sum) in per_field {
                    let parts = sum.stats.len() + sum.points.as_ref().map_or(0, |c| c.times.len());
                    let mut windows: Vec<(i64, Partial)> =
                        Vec::with_capacity(req.windows_hint(parts));
                    for st in &sum.stats {
                        let Some(p) = stats_partial(st) else {
                            bad = Some(Error::Internal(format!(
                                "field {name} of shard {id} is not a number"
                            )));
                            return false;
                        };
                        partial::add(&mut windows, req.window(st.first_time), p);
                    }
                    if let Some(c) = sum.points {
                        partial::add_column(&mut windows, req, &column(c));
                    }
                    fields.push((name, windows));
                }
                out.push(SeriesPartials { tags, fields });
                true
            },
        )
        .map_err(shard_err(id))?;
    match bad {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[async_trait]
impl ShardReader for LocalShardReader {
    async fn read_partials(
        &self,
        _database: &str,
        shard: &ShardInfo,
        req: &PartialRequest,
    ) -> Result<Vec<SeriesPartials>> {
        let (id, req) = (shard.id, req.clone());
        self.blocking(move |store| partials(store, id, &req)).await
    }

    // Names and schemas come from the in-memory index: no file is read, so
    // no hop to the blocking pool.
    async fn measurements(&self, _database: &str, shards: &[ShardInfo]) -> Result<Vec<String>> {
        let ids: Vec<u64> = shards.iter().map(|s| s.id).collect();
        measurements(&self.store, &ids)
    }

    async fn schema(
        &self,
        _database: &str,
        shards: &[ShardInfo],
        measurement: &str,
    ) -> Result<Schema> {
        let ids: Vec<u64> = shards.iter().map(|s| s.id).collect();
        schema(&self.store, &ids, measurement)
    }

    // From the in-memory index, but a big shard's listing (regexes over
    // every key) would hold a runtime worker.
    async fn series(
        &self,
        _database: &str,
        shard: &ShardInfo,
        req: &SeriesRequest,
    ) -> Result<Vec<SeriesKey>> {
        let (id, req) = (shard.id, req.clone());
        self.blocking(move |store| list_series(store, id, &req))
            .await
    }

    async fn read(
        &self,
        _database: &str,
        shard: &ShardInfo,
        req: &ReadRequest,
    ) -> Result<Vec<SeriesRead>> {
        let id = shard.id;
        let req = req.clone();
        self.blocking(move |store| {
            let mut out = Vec::new();
            for_each_series(store, id, &req, &mut |s| {
                out.push(s);
                true
            })?;
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sundial_lineproto::{parse_lines, ParseOptions};

    /// A read with a field condition sends only the rows where it holds.
    #[test]
    fn a_read_applies_the_field_condition() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let eng = |e: sundial_engine::Error| Error::Internal(e.to_string());
        let store = Store::open(dir.path(), Default::default()).map_err(eng)?;
        store.create_shard(1, "db").map_err(eng)?;
        let lp = "m,h=a v=1,w=10i 1\nm,h=a v=5 2\nm,h=b v=7 3\nm,h=a w=30i 4\n";
        let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
        let pts: Vec<_> = batch.iter().collect();
        store.write_to_shard(1, &pts).map_err(eng)?;
        let cond = sundial_influxql::select::parse_expr("v > 2 OR w > 20").ok();
        let req = ReadRequest {
            measurement: "m".into(),
            tags: TagFilter::All,
            fields: vec!["v".into(), "w".into()],
            min: 0,
            max: 10,
            schema_stamp: 0,
            condition: cond,
            max_bytes: 0,
        };
        let mut got = Vec::new();
        for_each_series(&store, 1, &req, &mut |s| {
            let times: Vec<(String, Vec<i64>)> = s
                .fields
                .iter()
                .map(|(n, c)| (n.clone(), c.times.clone()))
                .collect();
            got.push((s.tags[0].1.clone(), times));
            true
        })?;
        let want = vec![
            (
                "a".to_string(),
                vec![("v".to_string(), vec![2]), ("w".to_string(), vec![4])],
            ),
            ("b".to_string(), vec![("v".to_string(), vec![3])]),
        ];
        assert_eq!(got, want);
        // A read past its byte bound stops with the statement's memory error.
        let small = ReadRequest {
            max_bytes: 8,
            ..req
        };
        let r = for_each_series(&store, 1, &small, &mut |_| true);
        assert_eq!(r, Err(Error::MemoryLimit { limit: 8 }));
        Ok(())
    }
}
