//! Small helpers: the engine's hash map types and checksum framing.

/// Maps keyed by series keys and field names, which clients choose: a fixed hash
/// would let a client craft colliding keys and slow every later write to the
/// shard (the series index lives for good). foldhash with a random seed per
/// process and map is as fast as FxHash on these keys and has no fixed collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The set twin of [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Body + trailing crc32c: the framing used for the manifest and the index snapshot.
pub fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// Check and strip the trailing crc32c written by [`seal`].
pub fn unseal(data: &[u8]) -> Option<&[u8]> {
    let n = data.len().checked_sub(4)?;
    let (body, crc) = data.split_at(n);
    let want = u32::from_le_bytes(crc.try_into().ok()?);
    (crc32c::crc32c(body) == want).then_some(body)
}
