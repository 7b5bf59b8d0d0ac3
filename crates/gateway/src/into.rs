//! `SELECT … INTO`: a SELECT's rows written back as points, as InfluxDB 1.6
//! does it (coordinator `executeSelectStatement`, `writeInto`,
//! `convertRowToPoints`):
//!
//! * the target's database is the statement's, else the request's `db`; its
//!   policy the statement's, else the request's `rp`, else the database's
//!   default; a database that does not exist fails before anything is read;
//! * the measurement is the target's, or with `:MEASUREMENT` each row's own;
//! * a point's tags are its series' GROUP BY tags (empty values left out),
//!   its fields every other column (a selected tag becomes a string field),
//!   its time the row's (a window's start under GROUP BY time());
//! * null values are left out; a row with no value left, or with an
//!   infinite one, is not written; a time column named otherwise fails with
//!   "error finding time index in result";
//! * the default fill(null) becomes fill(none): empty windows write nothing;
//! * points go out in batches of 10,000; the answer is one `result` series
//!   with `written`, the points made.

use sundial_influxql::select::{Fill, Measurement, SelectStatement};
use sundial_lineproto::{OwnedFieldValue, OwnedPoint};
use sundial_meta::MetaSnapshot;
use sundial_query::{Row, Series, Value};

use crate::error::{Error, Result};
use crate::http::Gateway;

/// Points written at once (InfluxDB's `BufferedPointsWriter` size).
pub const BATCH: usize = 10_000;

/// Where an INTO writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub database: String,
    pub retention_policy: String,
    /// `None`: each row's own measurement (`:MEASUREMENT`).
    pub measurement: Option<String>,
}

/// The target of `INTO t` for a request with `db` and `rp`.
pub fn resolve(t: &Measurement, db: &str, rp: &str, meta: &MetaSnapshot) -> Result<Target> {
    let database = if t.database.is_empty() {
        db
    } else {
        &t.database
    };
    if database.is_empty() {
        return Err(Error::Query(sundial_query::Error::Query(
            "database name required".into(),
        )));
    }
    let Some(info) = meta.database(database) else {
        return Err(Error::Query(sundial_query::Error::Query(format!(
            "database not found: {database}"
        ))));
    };
    let retention_policy = match (t.retention_policy.as_str(), rp) {
        ("", "") if info.default_retention_policy.is_empty() => {
            return Err(Error::Query(sundial_query::Error::Query(format!(
                "default retention policy not set for: {database}"
            ))))
        }
        ("", "") => info.default_retention_policy.clone(),
        ("", rp) => rp.to_string(),
        (named, _) => named.to_string(),
    };
    Ok(Target {
        database: database.to_string(),
        retention_policy,
        measurement: (!t.name.is_empty()).then(|| t.name.clone()),
    })
}

/// The SELECT an INTO runs: no target, and an aggregate's fill(null) read
/// as fill(none).
pub fn reading(stmt: &SelectStatement) -> SelectStatement {
    let mut s = stmt.clone();
    s.target = None;
    if s.fill == Fill::Null && !sundial_influxql::select::is_raw_query(&s) {
        s.fill = Fill::None;
    }
    s
}

/// The points `series` make for `measurement` (`None`: each series' name).
pub fn to_points(series: &[Series], measurement: Option<&str>) -> Result<Vec<OwnedPoint>> {
    let mut out = Vec::new();
    for s in series {
        if s.columns.first().map(String::as_str) != Some("time") {
            return Err(Error::Query(sundial_query::Error::Query(
                "error finding time index in result".into(),
            )));
        }
        let name = measurement.unwrap_or(&s.name);
        let tags: Vec<(String, String)> = s
            .tags
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect();
        for row in &s.rows {
            if let Some(fields) = fields_of(&s.columns[1..], row) {
                out.push(OwnedPoint {
                    measurement: name.to_string(),
                    tags: tags.clone(),
                    fields,
                    timestamp: row.time,
                });
            }
        }
    }
    Ok(out)
}

/// A row's values as fields; `None` when none is left or one is infinite
/// (InfluxDB cannot make that point and skips the row).
fn fields_of(columns: &[String], row: &Row) -> Option<Vec<(String, OwnedFieldValue)>> {
    let mut fields = Vec::with_capacity(columns.len());
    for (name, v) in columns.iter().zip(&row.values) {
        let value = match v {
            Value::Null => continue,
            Value::Float(f) if f.is_nan() => continue,
            Value::Float(f) if f.is_infinite() => return None,
            Value::Float(f) => OwnedFieldValue::Float(*f),
            Value::Integer(i) => OwnedFieldValue::Integer(*i),
            Value::Unsigned(u) => OwnedFieldValue::Unsigned(*u),
            Value::String(s) => OwnedFieldValue::String(s.clone()),
            Value::Boolean(b) => OwnedFieldValue::Boolean(*b),
        };
        fields.push((name.clone(), value));
    }
    (!fields.is_empty()).then_some(fields)
}

/// Runs `SELECT … INTO` for a request with `db` and `rp`; the answer is the
/// points written.
pub async fn run(gw: &Gateway, stmt: &SelectStatement, db: &str, rp: &str) -> Result<usize> {
    let Some(target) = &stmt.target else {
        return Err(Error::Internal("SELECT INTO without a target".into()));
    };
    let target = resolve(target, db, rp, &gw.meta.snapshot())?;
    let cx = gw.select_context(db, rp)?;
    let series = sundial_query::select(&reading(stmt), &cx).await?;
    // A series at a time into points, written every 10,000: the points held
    // stay about a batch besides the answer being drained.
    let mut written = 0;
    let mut batch = Vec::with_capacity(BATCH);
    for s in series {
        batch.extend(to_points(
            std::slice::from_ref(&s),
            target.measurement.as_deref(),
        )?);
        while batch.len() >= BATCH {
            let rest = batch.split_off(BATCH);
            written += write_into(gw, &target, &batch).await?;
            batch = rest;
        }
    }
    if !batch.is_empty() {
        written += write_into(gw, &target, &batch).await?;
    }
    Ok(written)
}

/// Writes points of a `SELECT … INTO` (consistency one, as 1.6 writes
/// them); the answer is how many.
async fn write_into(
    gw: &Gateway,
    target: &crate::into::Target,
    points: &[sundial_lineproto::OwnedPoint],
) -> Result<usize> {
    let mut body = String::with_capacity(points.len() * 64);
    for p in points {
        body.push_str(&p.to_line());
        body.push('\n');
    }
    let batch = sundial_cluster::Batch::parse_chunk(
        axum::body::Bytes::from(body),
        sundial_lineproto::Cursor::START,
        usize::MAX,
        &sundial_lineproto::ParseOptions::default(),
    );
    let summary = gw
        .writer
        .write_points(
            &target.database,
            &target.retention_policy,
            &batch,
            sundial_cluster::Consistency::One,
        )
        .await?;
    if summary.points_dropped > 0 {
        return Err(Error::PartialWrite {
            reason: summary.drop_reasons.join(", "),
            dropped: summary.points_dropped,
        });
    }
    Ok(points.len())
}

/// The answer of an INTO: one `result` row of the points written.
pub fn result(written: usize) -> Series {
    Series {
        name: "result".into(),
        tags: Vec::new(),
        columns: vec!["time".into(), "written".into()],
        rows: vec![Row {
            time: 0,
            values: vec![Value::Integer(written as i64)],
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, tags: &[(&str, &str)], columns: &[&str], rows: Vec<Row>) -> Series {
        Series {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }

    #[test]
    fn rows_become_points_as_influxdb_makes_them() {
        let s = [
            series(
                "cpu",
                &[("host", "a"), ("dc", "")],
                &["time", "mean", "host_field"],
                vec![
                    Row {
                        time: 10,
                        values: vec![Value::Float(1.5), Value::String("x".into())],
                    },
                    // All null: not written.
                    Row {
                        time: 20,
                        values: vec![Value::Null, Value::Null],
                    },
                    // An infinite value: the row is not written.
                    Row {
                        time: 30,
                        values: vec![Value::Float(f64::INFINITY), Value::Integer(1)],
                    },
                    Row {
                        time: 40,
                        values: vec![Value::Float(f64::NAN), Value::Integer(7)],
                    },
                ],
            ),
            series(
                "mem",
                &[],
                &["time", "max"],
                vec![Row {
                    time: 5,
                    values: vec![Value::Unsigned(3)],
                }],
            ),
        ];
        let lines: Vec<String> = to_points(&s, None)
            .unwrap()
            .iter()
            .map(OwnedPoint::to_line)
            .collect();
        assert_eq!(
            lines,
            [
                "cpu,host=a mean=1.5,host_field=\"x\" 10",
                "cpu,host=a host_field=7i 40",
                "mem max=3u 5"
            ]
        );
        let named: Vec<String> = to_points(&s[1..], Some("m2"))
            .unwrap()
            .iter()
            .map(OwnedPoint::to_line)
            .collect();
        assert_eq!(named, ["m2 max=3u 5"]);
        let aliased = [series("cpu", &[], &["ts", "v"], vec![])];
        assert_eq!(
            to_points(&aliased, None).unwrap_err().to_string(),
            "error finding time index in result"
        );
    }
}
