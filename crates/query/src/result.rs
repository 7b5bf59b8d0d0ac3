//! A statement's answer: series of rows, as InfluxDB's `models.Row`.

use crate::value::Value;

/// One row: its time (ns) and a value per column after `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub time: i64,
    pub values: Vec<Value>,
}

/// One result series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// The GROUP BY tags (empty without GROUP BY tags).
    pub tags: Vec<(String, String)>,
    /// Column names, the time column first.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}
