//! The query reads' messages (`Measurements`, `Schema`, `ReadSeries`,
//! `ReadPartials`, `ListSeries`) and `DeleteSeries`: their
//! conversion between sundial-query's types and the protobuf ones, checked on
//! the way in (a column whose values do not match its times is refused, never
//! trusted).

use sundial_proto::store as pb;
use sundial_query::partial::{Partial, SeriesPartials};
use sundial_query::{
    Column, DeleteRequest, FieldType, NameMatch, ReadRequest, SeriesKey, SeriesRead, SeriesRequest,
    TagFilter, Value, Values,
};

/// The type code of the WAL and files (1 float … 5 string).
pub fn type_code(t: FieldType) -> u32 {
    match t {
        FieldType::Float => 1,
        FieldType::Integer => 2,
        FieldType::Unsigned => 3,
        FieldType::Boolean => 4,
        FieldType::String => 5,
    }
}

pub fn field_type(code: u32) -> Option<FieldType> {
    Some(match code {
        1 => FieldType::Float,
        2 => FieldType::Integer,
        3 => FieldType::Unsigned,
        4 => FieldType::Boolean,
        5 => FieldType::String,
        _ => return None,
    })
}

pub fn filter_to_pb(f: &TagFilter) -> pb::TagFilter {
    use pb::tag_filter::Op;
    let leaf = |op: Op, k: &str, v: &str| pb::TagFilter {
        op: op as i32,
        key: k.to_string(),
        value: v.to_string(),
        operands: Vec::new(),
    };
    match f {
        TagFilter::All => leaf(Op::All, "", ""),
        TagFilter::Eq(k, v) => leaf(Op::Eq, k, v),
        TagFilter::NotEq(k, v) => leaf(Op::NotEq, k, v),
        TagFilter::Regex(k, v) => leaf(Op::Regex, k, v),
        TagFilter::NotRegex(k, v) => leaf(Op::NotRegex, k, v),
        TagFilter::And(a, b) | TagFilter::Or(a, b) => pb::TagFilter {
            op: if matches!(f, TagFilter::And(..)) {
                Op::And
            } else {
                Op::Or
            } as i32,
            key: String::new(),
            value: String::new(),
            operands: vec![filter_to_pb(a), filter_to_pb(b)],
        },
    }
}

/// A filter from the wire; `depth` bounds the nesting a hostile caller can send.
pub fn filter_from_pb(f: &pb::TagFilter, depth: usize) -> Result<TagFilter, String> {
    use pb::tag_filter::Op;
    if depth > 256 {
        return Err("tag filter nested too deep".into());
    }
    let op = Op::try_from(f.op).map_err(|_| format!("unknown tag filter op {}", f.op))?;
    let (k, v) = (f.key.clone(), f.value.clone());
    Ok(match op {
        Op::All => TagFilter::All,
        Op::Eq => TagFilter::Eq(k, v),
        Op::NotEq => TagFilter::NotEq(k, v),
        Op::Regex => TagFilter::Regex(k, v),
        Op::NotRegex => TagFilter::NotRegex(k, v),
        Op::And | Op::Or => {
            let [a, b] = f.operands.as_slice() else {
                return Err("AND/OR needs two operands".into());
            };
            let (a, b) = (
                Box::new(filter_from_pb(a, depth + 1)?),
                Box::new(filter_from_pb(b, depth + 1)?),
            );
            if op == Op::And {
                TagFilter::And(a, b)
            } else {
                TagFilter::Or(a, b)
            }
        }
    })
}

/// A column's points from `lo` to `hi` (indices) as a message.
pub fn column_to_pb(name: &str, c: &Column, lo: usize, hi: usize) -> pb::ColumnData {
    let mut out = pb::ColumnData {
        name: name.to_string(),
        type_code: type_code(c.values.field_type()),
        times: c.times[lo..hi].to_vec(),
        ..Default::default()
    };
    match &c.values {
        Values::Float(v) => out.floats = v[lo..hi].to_vec(),
        Values::Integer(v) => out.integers = v[lo..hi].to_vec(),
        Values::Unsigned(v) => out.unsigneds = v[lo..hi].to_vec(),
        Values::Boolean(v) => out.booleans = v[lo..hi].to_vec(),
        Values::String(v) => out.strings = v[lo..hi].to_vec(),
    }
    out
}

pub fn column_from_pb(c: pb::ColumnData) -> Result<(String, Column), String> {
    let ty =
        field_type(c.type_code).ok_or_else(|| format!("unknown field type {}", c.type_code))?;
    let values = match ty {
        FieldType::Float => Values::Float(c.floats),
        FieldType::Integer => Values::Integer(c.integers),
        FieldType::Unsigned => Values::Unsigned(c.unsigneds),
        FieldType::Boolean => Values::Boolean(c.booleans),
        FieldType::String => Values::String(c.strings),
    };
    if values.len() != c.times.len() {
        return Err(format!(
            "field {}: {} times but {} values",
            c.name,
            c.times.len(),
            values.len()
        ));
    }
    Ok((
        c.name,
        Column {
            times: c.times,
            values,
        },
    ))
}

/// A series' tags as messages.
pub fn tags_to_pb(tags: &[(String, String)]) -> Vec<pb::Tag> {
    tags.iter()
        .map(|(k, v)| pb::Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// Series from a stream of chunks: a series continued in the next chunk (the
/// same tags) has its columns appended.
pub fn append_series(
    out: &mut Vec<SeriesRead>,
    chunk: pb::ReadSeriesResponse,
) -> Result<(), String> {
    for s in chunk.series {
        let tags: Vec<(String, String)> = s.tags.into_iter().map(|t| (t.key, t.value)).collect();
        let fields = s
            .fields
            .into_iter()
            .map(column_from_pb)
            .collect::<Result<Vec<_>, _>>()?;
        match out.last_mut() {
            Some(last) if last.tags == tags => {
                for (name, col) in fields {
                    match last.fields.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, c)) => append(c, col)?,
                        None => last.fields.push((name, col)),
                    }
                }
            }
            _ => out.push(SeriesRead { tags, fields }),
        }
    }
    Ok(())
}

fn append(c: &mut Column, more: Column) -> Result<(), String> {
    c.times.extend(more.times);
    match (&mut c.values, more.values) {
        (Values::Float(a), Values::Float(b)) => a.extend(b),
        (Values::Integer(a), Values::Integer(b)) => a.extend(b),
        (Values::Unsigned(a), Values::Unsigned(b)) => a.extend(b),
        (Values::Boolean(a), Values::Boolean(b)) => a.extend(b),
        (Values::String(a), Values::String(b)) => a.extend(b),
        _ => return Err("a continued column changed its type".into()),
    }
    Ok(())
}

// ---------------------------------------------------------------- partials

fn num_to_pb(v: &Value) -> Option<pb::Num> {
    use pb::num::V;
    Some(pb::Num {
        v: Some(match v {
            Value::Float(f) => V::Float(*f),
            Value::Integer(i) => V::Integer(*i),
            Value::Unsigned(u) => V::Unsigned(*u),
            _ => return None,
        }),
    })
}

fn num_from_pb(n: Option<&pb::Num>) -> Result<Value, String> {
    use pb::num::V;
    match n.and_then(|n| n.v.as_ref()) {
        Some(V::Float(f)) => Ok(Value::Float(*f)),
        Some(V::Integer(i)) => Ok(Value::Integer(*i)),
        Some(V::Unsigned(u)) => Ok(Value::Unsigned(*u)),
        None => Err("a partial aggregate without a number".into()),
    }
}

pub fn partials_to_pb(s: &SeriesPartials) -> pb::SeriesPartialsData {
    pb::SeriesPartialsData {
        tags: tags_to_pb(&s.tags),
        fields: s
            .fields
            .iter()
            .map(|(name, windows)| pb::FieldPartials {
                name: name.clone(),
                windows: windows
                    .iter()
                    .map(|(w, p)| pb::PartialData {
                        window: *w,
                        count: p.count,
                        sum: num_to_pb(&p.sum),
                        min: num_to_pb(&p.min.0),
                        min_time: p.min.1,
                        max: num_to_pb(&p.max.0),
                        max_time: p.max.1,
                        first: num_to_pb(&p.first.0),
                        first_time: p.first.1,
                        last: num_to_pb(&p.last.0),
                        last_time: p.last.1,
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub fn partials_from_pb(s: pb::SeriesPartialsData) -> Result<SeriesPartials, String> {
    let tags = s.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let mut fields = Vec::with_capacity(s.fields.len());
    for f in s.fields {
        let mut windows = Vec::with_capacity(f.windows.len());
        for p in f.windows {
            windows.push((
                p.window,
                Partial {
                    count: p.count,
                    sum: num_from_pb(p.sum.as_ref())?,
                    min: (num_from_pb(p.min.as_ref())?, p.min_time),
                    max: (num_from_pb(p.max.as_ref())?, p.max_time),
                    first: (num_from_pb(p.first.as_ref())?, p.first_time),
                    last: (num_from_pb(p.last.as_ref())?, p.last_time),
                },
            ));
        }
        fields.push((f.name, windows));
    }
    Ok(SeriesPartials { tags, fields })
}

/// The request of a read, as the messages carry it.
pub fn read_to_pb(shard_id: u64, req: &ReadRequest) -> pb::ReadSeriesRequest {
    pb::ReadSeriesRequest {
        shard_id,
        measurement: req.measurement.clone(),
        tags: Some(filter_to_pb(&req.tags)),
        fields: req.fields.clone(),
        min: req.min,
        max: req.max,
        condition: condition_to_pb(req.condition.as_ref()),
        max_bytes: req.max_bytes as u64,
    }
}

/// A read's condition as InfluxQL text — only when the text parses back to
/// the same expression: readers may apply a condition, so one the text would
/// change stays with the gateway ("").
fn condition_to_pb(c: Option<&sundial_influxql::select::Expr>) -> String {
    let Some(c) = c else {
        return String::new();
    };
    let text = c.to_string();
    match sundial_influxql::select::parse_expr(&text) {
        Ok(back) if back == *c => text,
        _ => String::new(),
    }
}

pub fn read_from_pb(r: pb::ReadSeriesRequest) -> Result<ReadRequest, String> {
    let tags = match &r.tags {
        Some(t) => filter_from_pb(t, 0)?,
        None => TagFilter::All,
    };
    Ok(ReadRequest {
        measurement: r.measurement,
        tags,
        fields: r.fields,
        min: r.min,
        max: r.max,
        // The gateway checks stamps itself (the stores send theirs).
        schema_stamp: 0,
        condition: if r.condition.is_empty() {
            None
        } else {
            Some(
                sundial_influxql::select::parse_expr(&r.condition)
                    .map_err(|e| format!("condition {:?}: {e}", r.condition))?,
            )
        },
        max_bytes: usize::try_from(r.max_bytes).unwrap_or(usize::MAX),
    })
}

/// A series' partials continued from the previous message (the same tags)
/// are appended to it.
pub fn append_partials(out: &mut Vec<SeriesPartials>, s: SeriesPartials) {
    match out.last_mut() {
        Some(last) if last.tags == s.tags => {
            for (name, windows) in s.fields {
                match last.fields.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, w)) => w.extend(windows),
                    None => last.fields.push((name, windows)),
                }
            }
        }
        _ => out.push(s),
    }
}

/// Windows per `ReadPartials` message (a series with more continues in the next).
pub const PARTIAL_CHUNK_WINDOWS: usize = 16 * 1024;

/// A series' partials cut into messages of at most [`PARTIAL_CHUNK_WINDOWS`]
/// windows per field.
pub fn partials_messages(s: &SeriesPartials, out: &mut Vec<pb::SeriesPartialsData>) {
    let longest = s.fields.iter().map(|(_, w)| w.len()).max().unwrap_or(0);
    let mut k = 0;
    loop {
        let piece = SeriesPartials {
            tags: s.tags.clone(),
            fields: s
                .fields
                .iter()
                .filter(|(_, w)| k < w.len())
                .map(|(n, w)| {
                    (
                        n.clone(),
                        w[k..(k + PARTIAL_CHUNK_WINDOWS).min(w.len())].to_vec(),
                    )
                })
                .collect(),
        };
        out.push(partials_to_pb(&piece));
        k += PARTIAL_CHUNK_WINDOWS;
        if k >= longest {
            break;
        }
    }
}

// ---------------------------------------------------------------- deletes

/// Which delete, where, and when it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteId {
    pub id: u64,
    pub shard_id: u64,
    pub issued_ms: i64,
}

pub fn delete_to_pb(at: DeleteId, database: &str, req: &DeleteRequest) -> pb::DeleteSeriesRequest {
    pb::DeleteSeriesRequest {
        shard_id: at.shard_id,
        database: database.to_string(),
        delete_id: at.id,
        issued_ms: at.issued_ms,
        measurements: req
            .measurements
            .iter()
            .map(|m| match m {
                NameMatch::Name(n) => pb::MeasurementMatch {
                    name: n.clone(),
                    regex: false,
                },
                NameMatch::Regex(r) => pb::MeasurementMatch {
                    name: r.clone(),
                    regex: true,
                },
            })
            .collect(),
        tags: Some(filter_to_pb(&req.tags)),
        min: req.min,
        max: req.max,
        drop_measurement: req.drop_measurement,
    }
}

pub fn delete_from_pb(r: &pb::DeleteSeriesRequest) -> Result<(DeleteId, DeleteRequest), String> {
    let tags = match &r.tags {
        Some(t) => filter_from_pb(t, 0)?,
        None => TagFilter::All,
    };
    if r.drop_measurement && (r.measurements.len() != 1 || r.measurements[0].regex) {
        return Err("DROP MEASUREMENT names one measurement".into());
    }
    let at = DeleteId {
        id: r.delete_id,
        shard_id: r.shard_id,
        issued_ms: r.issued_ms,
    };
    Ok((
        at,
        DeleteRequest {
            measurements: r
                .measurements
                .iter()
                .map(|m| {
                    if m.regex {
                        NameMatch::Regex(m.name.clone())
                    } else {
                        NameMatch::Name(m.name.clone())
                    }
                })
                .collect(),
            tags,
            min: r.min,
            max: r.max,
            drop_measurement: r.drop_measurement,
        },
    ))
}

// ---------------------------------------------------------------- series keys

/// The request of a listing of series keys, as the messages carry it.
pub fn series_request_to_pb(shard_id: u64, req: &SeriesRequest) -> pb::ListSeriesRequest {
    pb::ListSeriesRequest {
        shard_id,
        measurements: req.measurements.clone(),
        tags: Some(filter_to_pb(&req.tags)),
        max_bytes: req.max_bytes as u64,
    }
}

pub fn series_request_from_pb(r: pb::ListSeriesRequest) -> Result<SeriesRequest, String> {
    let tags = match &r.tags {
        Some(t) => filter_from_pb(t, 0)?,
        None => TagFilter::All,
    };
    Ok(SeriesRequest {
        measurements: r.measurements,
        tags,
        max_bytes: usize::try_from(r.max_bytes).unwrap_or(usize::MAX),
    })
}

pub fn series_key_to_pb(k: &SeriesKey) -> pb::SeriesKeyData {
    pb::SeriesKeyData {
        measurement: k.measurement.clone(),
        tags: tags_to_pb(&k.tags),
    }
}

/// A key from the wire: its tags must be sorted by key, each once (as the
/// seam promises its callers).
pub fn series_key_from_pb(k: pb::SeriesKeyData) -> Result<SeriesKey, String> {
    let tags: Vec<(String, String)> = k.tags.into_iter().map(|t| (t.key, t.value)).collect();
    if tags.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(format!(
            "series of {:?}: tags not sorted by key",
            k.measurement
        ));
    }
    Ok(SeriesKey {
        measurement: k.measurement,
        tags,
    })
}

/// Keys per `ListSeries` message, at most.
pub const LIST_CHUNK_KEYS: usize = 10_000;
/// Bytes of keys (as [`SeriesKey::heap_bytes`] counts them) per `ListSeries`
/// message, about: long keys make smaller batches, far below the message
/// size limit.
pub const LIST_CHUNK_BYTES: usize = 4 << 20;

/// A listing cut into messages of at most [`LIST_CHUNK_KEYS`] keys and about
/// [`LIST_CHUNK_BYTES`] bytes, in order (none for an empty listing).
pub fn series_key_messages(keys: &[SeriesKey]) -> Vec<pb::ListSeriesResponse> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for k in keys {
        batch.push(series_key_to_pb(k));
        bytes += k.heap_bytes();
        if batch.len() >= LIST_CHUNK_KEYS || bytes >= LIST_CHUNK_BYTES {
            out.push(pb::ListSeriesResponse {
                keys: std::mem::take(&mut batch),
            });
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        out.push(pb::ListSeriesResponse { keys: batch });
    }
    out
}

/// Keys from a stream of `ListSeries` messages, appended in order.
pub fn append_series_keys(
    out: &mut Vec<SeriesKey>,
    chunk: pb::ListSeriesResponse,
) -> Result<(), String> {
    out.reserve(chunk.keys.len());
    for k in chunk.keys {
        out.push(series_key_from_pb(k)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key `i`, its tag value `pad` bytes longer than its number.
    fn key(i: usize, pad: usize) -> SeriesKey {
        SeriesKey {
            measurement: "m".into(),
            tags: vec![("k".into(), format!("{i:08}{}", "x".repeat(pad)))],
        }
    }

    /// Listings are cut by keys and by bytes, keep their order, and come
    /// back whole.
    #[test]
    fn series_keys_are_batched_and_read_back() {
        let keys: Vec<SeriesKey> = (0..LIST_CHUNK_KEYS * 2 + 1).map(|i| key(i, 0)).collect();
        let msgs = series_key_messages(&keys);
        let sizes: Vec<usize> = msgs.iter().map(|m| m.keys.len()).collect();
        assert_eq!(sizes, vec![LIST_CHUNK_KEYS, LIST_CHUNK_KEYS, 1]);
        let mut back = Vec::new();
        for m in msgs {
            append_series_keys(&mut back, m).unwrap();
        }
        assert_eq!(back, keys);

        // Long keys: fewer per message.
        let long: Vec<SeriesKey> = (0..10).map(|i| key(i, 1 << 20)).collect();
        let msgs = series_key_messages(&long);
        assert!(msgs.len() >= 2, "{}", msgs.len());
        assert!(msgs.iter().all(|m| m.keys.len() <= 4));
        assert!(series_key_messages(&[]).is_empty());

        let req = SeriesRequest {
            measurements: vec!["a".into(), "b".into()],
            tags: TagFilter::And(
                Box::new(TagFilter::Regex("h".into(), "^x".into())),
                Box::new(TagFilter::NotEq("r".into(), "eu".into())),
            ),
            max_bytes: 123,
        };
        let pb = series_request_to_pb(9, &req);
        assert_eq!(pb.shard_id, 9);
        assert_eq!(series_request_from_pb(pb), Ok(req));
    }

    /// A key whose tags are not sorted by key (or repeat one) is refused.
    #[test]
    fn unsorted_tags_are_refused() {
        let tag = |k: &str| pb::Tag {
            key: k.into(),
            value: "v".into(),
        };
        for tags in [vec![tag("b"), tag("a")], vec![tag("a"), tag("a")]] {
            let k = pb::SeriesKeyData {
                measurement: "m".into(),
                tags,
            };
            assert!(series_key_from_pb(k).is_err());
        }
    }
}
