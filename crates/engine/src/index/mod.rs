//! A shard's index: which series of its database's catalog (see `catalog`) the shard
//! holds, and each measurement's field types.
//!
//! Series ids come from the catalog and are stable on disk for one catalog
//! generation. Data files and the WAL store series *keys*, so a shard can always
//! rebuild its list from them. The index is persisted as a checksummed snapshot and
//! a log of the changes since (`snapshot`) after flushes and at close; series that
//! arrive later are recovered from the WAL, and a lost snapshot — or one naming
//! another catalog generation — is rebuilt from the data files.

mod predicate;
mod snapshot;
pub use predicate::TagPredicate;
pub(crate) use snapshot::{Delta, Snapshot};

use std::borrow::Cow;

use roaring::RoaringBitmap;

use crate::types::FieldType;
use crate::util::FastMap;

/// Field name → type of one measurement.
pub(crate) type FieldTypes = FastMap<Box<str>, FieldType>;

#[derive(Debug, Default)]
pub(crate) struct ShardIndex {
    /// Catalog ids of the series this shard holds data for.
    pub present: RoaringBitmap,
    fields: FastMap<Box<str>, FieldTypes>,
    /// What changed since the last snapshot (or record of its log).
    pub delta: Delta,
    /// Bumped whenever a field type is forgotten (a dropped measurement), so a write
    /// validated before can tell, under the shard's write lock, that it must check
    /// its types again.
    pub schema_epoch: u64,
    /// Names this shard's schema (field types and series, hence tag keys) as
    /// it is now: a new value whenever either changes. See [`SchemaStamp`].
    pub stamp: SchemaStamp,
}

/// A value that names one state of one shard's schema in this process: drawn
/// from a process-wide counter (a reopened shard never repeats an old value)
/// mixed with a random number per process (another process, another store,
/// never produces the same values). Query gateways cache a shard's schema
/// with its stamp and have each read check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStamp(pub u64);

impl Default for SchemaStamp {
    fn default() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::OnceLock;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        static NONCE: OnceLock<u64> = OnceLock::new();
        let nonce = *NONCE.get_or_init(rand::random);
        // Never 0: requests use 0 for "not checked".
        SchemaStamp((nonce ^ NEXT.fetch_add(1, Ordering::Relaxed)).max(1))
    }
}

/// The parts of a series key, borrowed from it unless they hold escapes.
pub(crate) type KeyParts<'a> = (Cow<'a, str>, Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// Split a canonical series key (`m,k1=v1,k2=v2`, escaped) into unescaped parts,
/// without allocating for parts that have no escapes.
pub(crate) fn split_series_key(key: &str) -> KeyParts<'_> {
    let b = key.as_bytes();
    // Split on unescaped commas: the measurement, then `key=value` parts.
    let mut parts: Vec<&str> = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b',' => {
                parts.push(&key[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&key[start.min(key.len())..]);
    let measurement = unescape(parts.remove(0), b", ");
    let tags = parts
        .into_iter()
        .map(|p| {
            let pb = p.as_bytes();
            let mut j = 0;
            let mut eq = None;
            while j < pb.len() {
                match pb[j] {
                    b'\\' => j += 2,
                    b'=' => {
                        eq = Some(j);
                        break;
                    }
                    _ => j += 1,
                }
            }
            let (k, v) = match eq {
                Some(e) => (&p[..e], &p[e + 1..]),
                None => (p, ""),
            };
            (unescape(k, b", ="), unescape(v, b", ="))
        })
        .collect();
    (measurement, tags)
}

/// [`split_series_key`] with owned parts.
pub fn parse_series_key(key: &str) -> (String, Vec<(String, String)>) {
    let (m, tags) = split_series_key(key);
    (
        m.into_owned(),
        tags.into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

fn unescape<'a>(s: &'a str, escapable: &[u8]) -> Cow<'a, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && escapable.contains(&b[i + 1]) {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

impl ShardIndex {
    pub fn fields_of(&self, measurement: &str) -> Option<&FieldTypes> {
        self.fields.get(measurement)
    }

    #[cfg(test)]
    pub fn field_type(&self, measurement: &str, field: &str) -> Option<FieldType> {
        self.fields.get(measurement)?.get(field).copied()
    }

    /// Register a field type unless one exists; returns the type in force.
    pub fn register_field(&mut self, measurement: &str, field: &str, ty: FieldType) -> FieldType {
        let m = match self.fields.get_mut(measurement) {
            Some(m) => m,
            None => self.fields.entry(measurement.into()).or_default(),
        };
        if let Some(t) = m.get(field) {
            return *t;
        }
        m.insert(field.into(), ty);
        self.stamp = SchemaStamp::default();
        self.delta
            .fields
            .push((measurement.into(), field.into(), ty));
        ty
    }

    pub fn field_keys(&self, measurement: &str) -> Vec<(String, FieldType)> {
        let mut v: Vec<(String, FieldType)> =
            self.fields.get(measurement).map_or_else(Vec::new, |m| {
                m.iter().map(|(k, t)| (k.to_string(), *t)).collect()
            });
        v.sort();
        v
    }

    /// Whether any of `ids` (other than `u32::MAX`) is not in the list yet.
    pub fn misses(&self, ids: &[u32]) -> bool {
        ids.iter()
            .any(|&i| i != u32::MAX && !self.present.contains(i))
    }

    /// No field types known (a snapshot never saw a write).
    pub fn is_empty_schema(&self) -> bool {
        self.fields.is_empty()
    }

    /// Adds series ids; true when one was new.
    pub fn add_series(&mut self, ids: impl IntoIterator<Item = u32>) -> bool {
        let mut grew = false;
        for i in ids.into_iter().filter(|&i| i != u32::MAX) {
            if self.present.insert(i) {
                self.delta.added.insert(i);
                self.delta.removed.remove(i);
                grew = true;
            }
        }
        if grew {
            self.stamp = SchemaStamp::default();
        }
        grew
    }

    pub fn remove_series(&mut self, ids: &RoaringBitmap) {
        if !self.present.is_disjoint(ids) {
            self.stamp = SchemaStamp::default();
        }
        self.present -= ids;
        self.delta.added -= ids;
        self.delta.removed |= ids;
    }

    /// Forget a measurement's field types (its series are removed by the caller).
    pub fn drop_measurement_schema(&mut self, measurement: &str) {
        if self.fields.remove(measurement).is_some() {
            // The log only adds field types: the next snapshot is a whole one.
            self.delta.whole = true;
            self.schema_epoch += 1;
            self.stamp = SchemaStamp::default();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.present.serialized_size()
            + self
                .fields
                .iter()
                .map(|(m, f)| m.len() + 64 + f.len() * 48)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_keys() {
        let (m, t) = parse_series_key(r"c\ p\,u,h\=x=a\ b,z=1");
        assert_eq!(m, "c p,u");
        assert_eq!(
            t,
            vec![("h=x".into(), "a b".into()), ("z".into(), "1".into())]
        );
        assert_eq!(parse_series_key("cpu").0, "cpu");
    }
}
