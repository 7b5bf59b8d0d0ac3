//! The shard-reader seam: one trait for reading a shard wherever it lives — the
//! in-process store (`sundial-store`'s `LocalShardReader`) or, on a cluster, a
//! store over gRPC. The planner asks for what a statement needs (a measurement,
//! the tags that can match, the fields, a time range); the seam answers series.

use async_trait::async_trait;
use sundial_meta::ShardInfo;

use crate::error::Result;
use crate::partial::{PartialRequest, SeriesPartials};
use crate::value::{Column, FieldType};

/// Which series a read wants, by their tags: a superset of those the statement's
/// condition can match (the rows are checked again against the whole condition).
#[derive(Debug, Clone, PartialEq)]
pub enum TagFilter {
    All,
    Eq(String, String),
    NotEq(String, String),
    Regex(String, String),
    NotRegex(String, String),
    And(Box<TagFilter>, Box<TagFilter>),
    Or(Box<TagFilter>, Box<TagFilter>),
}

impl TagFilter {
    /// The filter compiled for [`TagMatcher::matches`].
    pub fn matcher(&self) -> Result<TagMatcher> {
        let re = |k: &str, r: &str| Ok((k.to_string(), crate::eval::compile_regex(r)?));
        Ok(match self {
            TagFilter::All => TagMatcher::All,
            TagFilter::Eq(k, v) => TagMatcher::Eq(k.clone(), v.clone()),
            TagFilter::NotEq(k, v) => TagMatcher::NotEq(k.clone(), v.clone()),
            TagFilter::Regex(k, r) => {
                let (k, r) = re(k, r)?;
                TagMatcher::Regex(k, r)
            }
            TagFilter::NotRegex(k, r) => {
                let (k, r) = re(k, r)?;
                TagMatcher::NotRegex(k, r)
            }
            TagFilter::And(a, b) => TagMatcher::And(Box::new(a.matcher()?), Box::new(b.matcher()?)),
            TagFilter::Or(a, b) => TagMatcher::Or(Box::new(a.matcher()?), Box::new(b.matcher()?)),
        })
    }
}

/// A [`TagFilter`] with its regexes compiled.
#[derive(Debug, Clone)]
pub enum TagMatcher {
    All,
    Eq(String, String),
    NotEq(String, String),
    Regex(String, regex::Regex),
    NotRegex(String, regex::Regex),
    And(Box<TagMatcher>, Box<TagMatcher>),
    Or(Box<TagMatcher>, Box<TagMatcher>),
}

impl TagMatcher {
    /// Whether a series with `tags` passes (a tag it lacks reads as '', as in
    /// InfluxDB).
    pub fn matches(&self, tags: &[(String, String)]) -> bool {
        let tag = |k: &str| {
            tags.iter()
                .find(|(n, _)| n == k)
                .map_or("", |(_, v)| v.as_str())
        };
        match self {
            TagMatcher::All => true,
            TagMatcher::Eq(k, v) => tag(k) == v,
            TagMatcher::NotEq(k, v) => tag(k) != v,
            TagMatcher::Regex(k, r) => r.is_match(tag(k)),
            TagMatcher::NotRegex(k, r) => !r.is_match(tag(k)),
            TagMatcher::And(a, b) => a.matches(tags) && b.matches(tags),
            TagMatcher::Or(a, b) => a.matches(tags) || b.matches(tags),
        }
    }
}

/// A listing of series keys (SHOW SERIES, SHOW TAG VALUES, …).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRequest {
    /// The measurements listed.
    pub measurements: Vec<String>,
    /// Only series whose tags pass it (all of it: regexes included).
    pub tags: TagFilter,
    /// The most bytes of keys the listing may produce (0: no bound); past
    /// it the listing fails with [`crate::Error::MemoryLimit`].
    pub max_bytes: usize,
}

/// A series a listing found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    pub measurement: String,
    /// Sorted by key.
    pub tags: Vec<(String, String)>,
}

impl SeriesKey {
    /// Bytes it holds, for the per-query memory limit.
    pub fn heap_bytes(&self) -> usize {
        self.measurement.len()
            + self
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
            + 48
    }
}

/// One read of one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    pub measurement: String,
    pub tags: TagFilter,
    /// Fields to read (those selected and those the condition needs).
    pub fields: Vec<String>,
    /// Inclusive, ns.
    pub min: i64,
    pub max: i64,
    /// The stamp of the shard's schema the statement was planned with (0:
    /// not checked); a reader whose shard has another fails the read with
    /// [`crate::Error::SchemaChanged`].
    pub schema_stamp: u64,
    /// The statement's condition on fields (and tags), when a reader may
    /// leave out the times where it does not hold; readers that do must apply
    /// it as [`crate::keep_passing_rows`] does. Points alone: partial reads
    /// never carry one.
    pub condition: Option<sundial_influxql::select::Expr>,
    /// The most bytes of columns the read may produce (0: no bound); past
    /// it the read fails with [`crate::Error::MemoryLimit`], before the
    /// statement holds more than its memory limit.
    pub max_bytes: usize,
}

/// One series a read found: its tags (sorted by key) and the columns of the
/// requested fields it holds in the range (none empty).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRead {
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Column)>,
}

impl SeriesRead {
    /// Bytes its columns hold, for the per-query memory limit.
    pub fn heap_bytes(&self) -> usize {
        self.fields.iter().map(|(_, c)| c.heap_bytes()).sum()
    }
}

/// What a set of shards holds of one measurement: its fields with their types
/// (a name may have several across shards) and its tag keys, each sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub fields: Vec<(String, FieldType)>,
    pub tags: Vec<String>,
    /// Per shard, the stamp of the schema read (readers that cache schemas;
    /// empty otherwise).
    pub stamps: Vec<(u64, u64)>,
    /// Some of it came from a cache: a name it lacks may be new.
    pub cached: bool,
}

impl Schema {
    pub fn merge(&mut self, o: Schema) {
        self.fields.extend(o.fields);
        self.fields.sort();
        self.fields.dedup();
        self.tags.extend(o.tags);
        self.tags.sort();
        self.tags.dedup();
        self.stamps.extend(o.stamps);
        self.cached |= o.cached;
    }

    /// The stamp a read of `shard` checks (0: none).
    pub fn stamp_of(&self, shard: u64) -> u64 {
        self.stamps
            .iter()
            .find(|(s, _)| *s == shard)
            .map_or(0, |(_, st)| *st)
    }

    pub fn field_type(&self, name: &str) -> Option<FieldType> {
        // Several types across shards: InfluxDB picks the "widest" one
        // (float > integer > unsigned > string > boolean).
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .min()
    }

    pub fn has_tag(&self, name: &str) -> bool {
        self.tags.binary_search_by(|t| t.as_str().cmp(name)).is_ok()
    }
}

/// Reads shards for queries.
#[async_trait]
pub trait ShardReader: Send + Sync + std::fmt::Debug {
    /// Measurement names held by `shards`, sorted and deduplicated.
    async fn measurements(&self, database: &str, shards: &[ShardInfo]) -> Result<Vec<String>>;

    /// What `shards` hold of `measurement`.
    async fn schema(
        &self,
        database: &str,
        shards: &[ShardInfo],
        measurement: &str,
    ) -> Result<Schema>;

    /// What `shards` hold of `measurement` now, never from a cache.
    async fn schema_fresh(
        &self,
        database: &str,
        shards: &[ShardInfo],
        measurement: &str,
    ) -> Result<Schema> {
        self.schema(database, shards, measurement).await
    }

    /// The series keys of one shard that `req` lists, sorted by measurement
    /// then tags.
    async fn series(
        &self,
        database: &str,
        shard: &ShardInfo,
        req: &SeriesRequest,
    ) -> Result<Vec<SeriesKey>>;

    /// The series of one shard matching `req`, sorted by tags.
    async fn read(
        &self,
        database: &str,
        shard: &ShardInfo,
        req: &ReadRequest,
    ) -> Result<Vec<SeriesRead>>;

    /// The series of one shard matching `req.read`, as partial aggregates per
    /// window of each (numeric) field. Readers with statistics answer whole
    /// blocks from them; this default reads the points.
    async fn read_partials(
        &self,
        database: &str,
        shard: &ShardInfo,
        req: &PartialRequest,
    ) -> Result<Vec<SeriesPartials>> {
        let series = self.read(database, shard, &req.read).await?;
        Ok(crate::partial::of_series(req, series))
    }
}
