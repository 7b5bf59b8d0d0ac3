//! A statement's answer: series of rows, as InfluxDB's `models.Row`.

use async_trait::async_trait;

use crate::error::{Error, Result};
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

impl Series {
    /// Whether `next` goes on with this series (the same name and tags).
    pub fn continued_by(&self, next: &Series) -> bool {
        self.name == next.name && self.tags == next.tags
    }

    /// Bytes its rows hold, counted as columns are (8 per time and number,
    /// a string's length).
    pub fn data_bytes(&self) -> usize {
        let cell = |v: &Value| match v {
            Value::String(s) => s.len() + 8,
            _ => 8,
        };
        self.rows
            .iter()
            .map(|r| 8 + r.values.iter().map(cell).sum::<usize>())
            .sum()
    }
}

/// Where a statement's answer goes as it is made: series in output order, a
/// series possibly in several pieces (a piece with the same name and tags as
/// the one before goes on with it).
#[async_trait]
pub trait SeriesSink: Send {
    /// Takes one piece; an error (the client went away, too much held) ends
    /// the statement.
    async fn put(&mut self, piece: Series) -> Result<()>;

    /// Whether the answer's reader went away: a statement stops reading.
    fn gone(&self) -> bool {
        false
    }
}

/// An answer collected whole, its pieces joined, held to a memory limit.
#[derive(Debug)]
pub struct Collect {
    pub series: Vec<Series>,
    bytes: usize,
    limit: usize,
}

impl Collect {
    pub fn new(limit: usize) -> Collect {
        Collect {
            series: Vec::new(),
            bytes: 0,
            limit,
        }
    }
}

#[async_trait]
impl SeriesSink for Collect {
    async fn put(&mut self, piece: Series) -> Result<()> {
        self.bytes = self.bytes.saturating_add(piece.data_bytes());
        if self.bytes > self.limit {
            return Err(Error::MemoryLimit { limit: self.limit });
        }
        match self.series.last_mut() {
            Some(last) if last.continued_by(&piece) => last.rows.extend(piece.rows),
            _ => self.series.push(piece),
        }
        Ok(())
    }
}

/// Passes pieces on and remembers whether any went out (after that a
/// statement cannot start over).
pub(crate) struct Watch<'a> {
    pub inner: &'a mut dyn SeriesSink,
    pub emitted: bool,
}

#[async_trait]
impl SeriesSink for Watch<'_> {
    async fn put(&mut self, piece: Series) -> Result<()> {
        self.emitted = true;
        self.inner.put(piece).await
    }

    fn gone(&self) -> bool {
        self.inner.gone()
    }
}
