//! Raw (non-aggregate) queries: one row per timestamp of each series, the
//! condition checked on the row, the fields evaluated, rows merged by time.

use sundial_influxql::select::{DataType, Expr};

use crate::eval::{eval, holds, Regexes, Row};
use crate::exec::Group;
use crate::plan::Plan;
use crate::result::Row as OutRow;
use crate::seam::SeriesRead;
use crate::value::{Column, Value};

/// A row of one series: the values of its read fields at one time.
pub(crate) struct PointRow<'a> {
    pub names: &'a [&'a str],
    pub values: &'a [Value],
    pub tags: &'a [(String, String)],
    /// In a condition a missing tag reads as '' (InfluxDB's index); selected,
    /// it is null.
    pub in_condition: bool,
}

impl PointRow<'_> {
    fn tag(&self, name: &str) -> Value {
        match self.tags.iter().find(|(k, _)| k == name) {
            Some((_, v)) => Value::String(v.clone()),
            None if self.in_condition => Value::String(String::new()),
            None => Value::Null,
        }
    }

    fn field(&self, name: &str) -> Option<&Value> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| &self.values[i])
    }

    /// A typed reference: `::tag` reads the tag, `::field` (or a field type)
    /// the field, no type the field and else the tag.
    pub fn typed(&self, name: &str, ty: Option<DataType>) -> Value {
        match ty {
            Some(DataType::Tag) => self.tag(name),
            Some(DataType::AnyField) => self.field(name).cloned().unwrap_or_default(),
            Some(t) => cast(self.field(name).cloned().unwrap_or_default(), t),
            None => match self.field(name) {
                Some(v) if !v.is_null() => v.clone(),
                Some(_) if self.in_condition => Value::Null,
                Some(_) if !self.tags.iter().any(|(k, _)| k == name) => Value::Null,
                _ => self.tag(name),
            },
        }
    }
}

/// A field read as another type (`v::integer`): numbers convert (a float
/// truncates), anything else reads as null.
fn cast(v: Value, to: DataType) -> Value {
    match (v, to) {
        (Value::Float(f), DataType::Float) => Value::Float(f),
        (Value::Float(f), DataType::Integer) => Value::Integer(f as i64),
        (Value::Float(f), DataType::Unsigned) => Value::Unsigned(f as u64),
        (Value::Integer(i), DataType::Float) => Value::Float(i as f64),
        (Value::Integer(i), DataType::Integer) => Value::Integer(i),
        (Value::Integer(i), DataType::Unsigned) => Value::Unsigned(i as u64),
        (Value::Unsigned(u), DataType::Float) => Value::Float(u as f64),
        (Value::Unsigned(u), DataType::Integer) => Value::Integer(u as i64),
        (Value::Unsigned(u), DataType::Unsigned) => Value::Unsigned(u),
        (v @ Value::String(_), DataType::String) => v,
        (v @ Value::Boolean(_), DataType::Boolean) => v,
        _ => Value::Null,
    }
}

impl Row for PointRow<'_> {
    fn value(&self, name: &str) -> Value {
        self.typed(name, None)
    }
}

/// Evaluates a selected expression: typed references honour their cast.
pub(crate) fn eval_field(e: &Expr, row: &PointRow<'_>, plan: &Plan) -> Value {
    match e {
        Expr::VarRef { name, ty } => row.typed(name, *ty),
        e => eval(e, row, &plan.regexes),
    }
}

/// A series with only the times where `cond` holds on the row of all its
/// fields (`None` when no time is left): what a reader that evaluates a
/// statement's condition where the data is sends back. Exactly the rows the
/// statement would keep itself — it sees a field's value only at its time —
/// so it can check again without losing any.
pub fn keep_passing_rows(cond: &Expr, regexes: &Regexes, mut s: SeriesRead) -> Option<SeriesRead> {
    // Only the fields the condition names decide a row: walk their times, and
    // decide the times where none of them has a value once (all null).
    let mut named = Vec::new();
    cond.walk(&mut |e| {
        if let Expr::VarRef { name, .. } = e {
            named.push(name.as_str());
        }
    });
    let deciding: Vec<(&str, &Column)> = s
        .fields
        .iter()
        .filter(|(n, _)| named.contains(&n.as_str()))
        .map(|(n, c)| (n.as_str(), c))
        .collect();
    let names: Vec<&str> = deciding.iter().map(|(n, _)| *n).collect();
    let nulls = vec![Value::Null; deciding.len()];
    let elsewhere = row_holds(cond, regexes, &names, &nulls, &s.tags);
    // The deciding fields' times, and whether the condition holds at each.
    let (mut times, mut holds) = (Vec::new(), Vec::new());
    walk_rows(&deciding, &|_| true, |t, names, vals| {
        times.push(t);
        holds.push(row_holds(cond, regexes, names, vals, &s.tags));
    });
    let (mut any, mut all) = (false, true);
    let mut masks: Vec<Vec<bool>> = Vec::with_capacity(s.fields.len());
    for (_, c) in &s.fields {
        // Both time lists ascend: one merge finds each time's verdict.
        let mut k = 0;
        let mask: Vec<bool> = c
            .times
            .iter()
            .map(|t| {
                while k < times.len() && times[k] < *t {
                    k += 1;
                }
                let keep = if times.get(k) == Some(t) {
                    holds[k]
                } else {
                    elsewhere
                };
                any |= keep;
                all &= keep;
                keep
            })
            .collect();
        masks.push(mask);
    }
    if all {
        return Some(s);
    }
    if !any {
        return None;
    }
    for ((_, c), mask) in s.fields.iter_mut().zip(&masks) {
        c.retain_mask(mask);
    }
    s.fields.retain(|(_, c)| !c.times.is_empty());
    Some(s)
}

/// Walks the rows of a series: every time one of the fields `drives` accepts
/// has a value (the others, read for the condition, are looked up there).
pub(crate) fn for_each_row(
    s: &SeriesRead,
    drives: &dyn Fn(&str) -> bool,
    f: impl FnMut(i64, &[&str], &[Value]),
) {
    let fields: Vec<(&str, &Column)> = s.fields.iter().map(|(n, c)| (n.as_str(), c)).collect();
    walk_rows(&fields, drives, f);
}

/// [`for_each_row`] over some of a series' columns.
fn walk_rows(
    fields: &[(&str, &Column)],
    drives: &dyn Fn(&str) -> bool,
    mut f: impl FnMut(i64, &[&str], &[Value]),
) {
    let driving: Vec<bool> = fields.iter().map(|(n, _)| drives(n)).collect();
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let mut pos = vec![0usize; fields.len()];
    let mut vals = vec![Value::Null; fields.len()];
    loop {
        let mut t = i64::MAX;
        let mut any = false;
        for (i, (_, c)) in fields.iter().enumerate() {
            if let Some(&ct) = c.times.get(pos[i]) {
                if driving[i] {
                    any = true;
                    t = t.min(ct);
                }
            }
        }
        if !any {
            break;
        }
        // Values of the other fields before t are never looked at.
        for (i, (_, c)) in fields.iter().enumerate() {
            while !driving[i] && c.times.get(pos[i]).is_some_and(|&ct| ct < t) {
                pos[i] += 1;
            }
        }
        for (i, (_, c)) in fields.iter().enumerate() {
            if c.times.get(pos[i]) == Some(&t) {
                vals[i] = c.values.get(pos[i]);
                pos[i] += 1;
            } else {
                vals[i] = Value::Null;
            }
        }
        f(t, &names, &vals);
    }
}

/// Walks the rows of a series that the plan's condition lets through, each as
/// a [`PointRow`] for the selected expressions.
pub(crate) fn for_each_passing_row(
    plan: &Plan,
    s: &SeriesRead,
    drives: &dyn Fn(&str) -> bool,
    mut f: impl FnMut(i64, &PointRow<'_>),
) {
    for_each_row(s, drives, |t, names, vals| {
        if !passes(plan, names, vals, &s.tags) {
            return;
        }
        let row = PointRow {
            names,
            values: vals,
            tags: &s.tags,
            in_condition: false,
        };
        f(t, &row);
    });
}

/// Whether the plan's condition holds on a row.
pub(crate) fn passes(
    plan: &Plan,
    names: &[&str],
    vals: &[Value],
    tags: &[(String, String)],
) -> bool {
    plan.condition
        .as_ref()
        .is_none_or(|c| row_holds(c, &plan.regexes, names, vals, tags))
}

/// Whether `cond` holds on a row (in a condition a missing tag reads as '').
pub(crate) fn row_holds(
    cond: &Expr,
    regexes: &Regexes,
    names: &[&str],
    vals: &[Value],
    tags: &[(String, String)],
) -> bool {
    let row = PointRow {
        names,
        values: vals,
        tags,
        in_condition: true,
    };
    holds(cond, &row, regexes)
}

/// The fields a raw query's rows come from: those selected (not the ones
/// only the condition reads, not tags).
pub(crate) fn selected_fields(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for f in &plan.fields {
        f.expr.walk(&mut |e| match e {
            Expr::VarRef { name, ty } if *ty != Some(DataType::Tag) => out.push(name.clone()),
            _ => {}
        });
    }
    out
}

/// A group's rows, all at once.
pub fn run(plan: &Plan, g: &Group) -> Vec<OutRow> {
    Cursor::default().next(plan, g).0
}

/// OFFSET and LIMIT over a group answered in parts (time slices, in output
/// order): what the parts before took, so the next goes on from there.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    /// Rows seen per shard (the OFFSET-without-LIMIT rule below).
    per_shard: std::collections::HashMap<u64, usize>,
    skipped: usize,
    taken: usize,
}

impl Cursor {
    /// The rows `g` adds, and whether LIMIT has all it wants (no later part
    /// needs reading).
    pub(crate) fn next(&mut self, plan: &Plan, g: &Group) -> (Vec<OutRow>, bool) {
        let selected = selected_fields(plan);
        let drives = |n: &str| selected.iter().any(|s| s == n);
        // (time, series index, values)
        let mut rows: Vec<(i64, usize, Vec<Value>)> = Vec::new();
        for (si, s) in g.series.iter().enumerate() {
            for_each_passing_row(plan, s, &drives, |t, row| {
                let out: Vec<Value> = plan
                    .fields
                    .iter()
                    .map(|f| eval_field(&f.expr, row, plan))
                    .collect();
                rows.push((t, si, out));
            });
        }
        if plan.ascending {
            rows.sort_by_key(|r| (r.0, r.1));
        } else {
            // Descending reverses the series order too.
            rows.sort_by_key(|r| (std::cmp::Reverse(r.0), std::cmp::Reverse(r.1)));
        }
        if plan.offset_rows > 0 && plan.limit == 0 {
            // InfluxDB's engine stops each shard's points at OFFSET + LIMIT + 1
            // before the OFFSET is applied: OFFSET without LIMIT answers one row
            // per shard that has more than OFFSET.
            rows.retain(|r| {
                let n = self.per_shard.entry(g.shards[r.1]).or_insert(0);
                *n += 1;
                *n <= plan.offset_rows + 1
            });
        }
        let skip = (plan.offset_rows - self.skipped).min(rows.len());
        self.skipped += skip;
        let room = if plan.limit > 0 {
            plan.limit - self.taken
        } else {
            usize::MAX
        };
        let out: Vec<OutRow> = rows
            .into_iter()
            .skip(skip)
            .take(room)
            .map(|(time, _, values)| OutRow { time, values })
            .collect();
        self.taken += out.len();
        (out, plan.limit > 0 && self.taken >= plan.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Column, Values};

    fn series() -> SeriesRead {
        SeriesRead {
            tags: vec![("host".into(), "a".into())],
            fields: vec![
                (
                    "v".into(),
                    Column {
                        times: vec![1, 2, 3],
                        values: Values::Float(vec![1.0, 5.0, 9.0]),
                    },
                ),
                (
                    "w".into(),
                    Column {
                        times: vec![2, 4],
                        values: Values::Integer(vec![10, 20]),
                    },
                ),
            ],
        }
    }

    fn keep(cond: &str) -> Option<SeriesRead> {
        let c = sundial_influxql::select::parse_expr(cond).unwrap();
        let mut re = Regexes::default();
        re.add(&c).unwrap();
        keep_passing_rows(&c, &re, series())
    }

    fn times(s: &SeriesRead) -> Vec<(String, Vec<i64>)> {
        s.fields
            .iter()
            .map(|(n, c)| (n.clone(), c.times.clone()))
            .collect()
    }

    #[test]
    fn rows_are_the_union_of_the_fields_times_each_kept_whole() {
        let s = keep("v > 4 OR w > 15").unwrap();
        assert_eq!(
            times(&s),
            [("v".into(), vec![2, 3]), ("w".into(), vec![2, 4])]
        );
        assert_eq!(s.fields[0].1.values, Values::Float(vec![5.0, 9.0]));
        // A field with no passing time leaves; no passing row, no series.
        let s = keep("host = 'a' AND v < 2").unwrap();
        assert_eq!(times(&s), [("v".into(), vec![1])]);
        assert!(keep("v > 100").is_none());
        assert!(keep("host =~ /b/").is_none());
        // Everything passes: the series as it was — also a time where only
        // a field the condition does not name has a value.
        assert_eq!(keep("v > 0 OR w > 0"), Some(series()));
        assert_eq!(keep("v > 100 OR host = 'a'"), Some(series()));
        let s = keep("v > 100 OR w > 100 OR host = 'a'").unwrap();
        assert_eq!(times(&s), times(&series()));
    }
}
