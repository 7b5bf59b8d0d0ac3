//! The query reads' messages (`Measurements`, `Schema`, `ReadSeries`): their
//! conversion between sundial-query's types and the protobuf ones, checked on
//! the way in (a column whose values do not match its times is refused, never
//! trusted).

use sundial_proto::store as pb;
use sundial_query::{Column, FieldType, SeriesRead, TagFilter, Values};

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
