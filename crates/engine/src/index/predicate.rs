//! Tag predicates evaluated against a measurement's bitmaps.

use regex::Regex;
use roaring::RoaringBitmap;

use crate::catalog::MeasurementIndex;
use crate::error::{Error, Result};

/// A filter on tags with InfluxQL semantics: a missing tag has the value `""`, so
/// `host != 'a'` and `host = ''` include series that have no `host` tag.
#[derive(Debug, Clone)]
pub enum TagPredicate {
    All,
    Eq(String, String),
    NotEq(String, String),
    Regex(String, Regex),
    NotRegex(String, Regex),
    And(Box<TagPredicate>, Box<TagPredicate>),
    Or(Box<TagPredicate>, Box<TagPredicate>),
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| Error::InvalidRegex {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })
}

impl TagPredicate {
    pub fn eq(k: impl Into<String>, v: impl Into<String>) -> Self {
        TagPredicate::Eq(k.into(), v.into())
    }
    pub fn not_eq(k: impl Into<String>, v: impl Into<String>) -> Self {
        TagPredicate::NotEq(k.into(), v.into())
    }
    pub fn regex(k: impl Into<String>, pattern: &str) -> Result<Self> {
        Ok(TagPredicate::Regex(k.into(), compile(pattern)?))
    }
    pub fn not_regex(k: impl Into<String>, pattern: &str) -> Result<Self> {
        Ok(TagPredicate::NotRegex(k.into(), compile(pattern)?))
    }
    pub fn and(self, o: TagPredicate) -> Self {
        TagPredicate::And(Box::new(self), Box::new(o))
    }
    pub fn or(self, o: TagPredicate) -> Self {
        TagPredicate::Or(Box::new(self), Box::new(o))
    }

    /// Does a series with these (unescaped) tags match?
    pub fn matches(&self, tags: &[(String, String)]) -> bool {
        let get = |k: &str| {
            tags.iter()
                .find(|(tk, _)| tk == k)
                .map_or("", |(_, v)| v.as_str())
        };
        match self {
            TagPredicate::All => true,
            TagPredicate::Eq(k, v) => get(k) == v,
            TagPredicate::NotEq(k, v) => get(k) != v,
            TagPredicate::Regex(k, r) => r.is_match(get(k)),
            TagPredicate::NotRegex(k, r) => !r.is_match(get(k)),
            TagPredicate::And(a, b) => a.matches(tags) && b.matches(tags),
            TagPredicate::Or(a, b) => a.matches(tags) || b.matches(tags),
        }
    }

    /// Series that carry tag `k` with a value accepted by `f`; plus, when `f("")`,
    /// series without the tag.
    fn by_value(m: &MeasurementIndex, k: &str, f: &dyn Fn(&str) -> bool) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let mut with_key = RoaringBitmap::new();
        if let Some(vals) = m.tags.get(k) {
            vals.for_each(|v, ids| {
                ids.or_into(&mut with_key);
                if f(v) {
                    ids.or_into(&mut out);
                }
            });
        }
        if f("") {
            out |= &m.series - &with_key;
        }
        out
    }

    pub(crate) fn eval(&self, m: &MeasurementIndex) -> RoaringBitmap {
        match self {
            TagPredicate::All => m.series.clone(),
            TagPredicate::Eq(k, v) => {
                if v.is_empty() {
                    Self::by_value(m, k, &|x| x.is_empty())
                } else {
                    m.tags
                        .get(k.as_str())
                        .map(|vals| vals.postings(v))
                        .unwrap_or_default()
                }
            }
            TagPredicate::NotEq(k, v) => Self::by_value(m, k, &|x| x != v),
            TagPredicate::Regex(k, r) => Self::by_value(m, k, &|x| r.is_match(x)),
            TagPredicate::NotRegex(k, r) => Self::by_value(m, k, &|x| !r.is_match(x)),
            TagPredicate::And(a, b) => a.eval(m) & b.eval(m),
            TagPredicate::Or(a, b) => a.eval(m) | b.eval(m),
        }
    }
}
