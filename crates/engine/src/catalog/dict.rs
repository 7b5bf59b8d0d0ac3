//! Compact string storage for the series catalog: strings live in chunked arenas
//! and are found through a hash table of 4-byte ids, so a series costs its key's
//! bytes plus a few bytes of bookkeeping instead of an `Arc<str>` per map.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Largest arena chunk; offsets inside a chunk fit 20 bits.
const MAX_CHUNK: usize = 1 << 20;
/// First chunk of a new arena: most tag-value dictionaries stay tiny.
const FIRST_CHUNK: usize = 64;
/// Longest string an arena stores (series keys are capped at 65535 bytes by the parser).
pub(crate) const MAX_STRING: usize = u16::MAX as usize;

/// Append-only bytes in chunks that never move: no reallocation copies, and the
/// slack is at most the last chunk.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    chunks: Vec<Vec<u8>>,
}

/// Where a string lives: chunk (28 bits) | offset (20 bits) | length (16 bits).
pub(crate) type Loc = u64;

impl Arena {
    /// Stores `s` (at most [`MAX_STRING`] bytes) and returns its location.
    pub fn push(&mut self, s: &[u8]) -> Loc {
        debug_assert!(s.len() <= MAX_STRING);
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= s.len());
        if !fits {
            let next = self
                .chunks
                .last()
                .map_or(FIRST_CHUNK, |c| (c.capacity() * 2).min(MAX_CHUNK))
                .max(s.len());
            self.chunks.push(Vec::with_capacity(next));
        }
        let ci = self.chunks.len() - 1;
        let c = &mut self.chunks[ci];
        let off = c.len();
        c.extend_from_slice(s);
        ((ci as u64) << 36) | ((off as u64) << 16) | s.len() as u64
    }

    pub fn get(&self, loc: Loc) -> &[u8] {
        let ci = (loc >> 36) as usize;
        let off = ((loc >> 16) & 0xF_FFFF) as usize;
        let len = (loc & 0xFFFF) as usize;
        self.chunks
            .get(ci)
            .and_then(|c| c.get(off..off + len))
            .unwrap_or_default()
    }

    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>() + self.chunks.capacity() * 24
    }
}

/// Strings with dense ids in insertion order, found by hash. Entries can be unlinked
/// from the table (their id and bytes stay until the dictionary is rebuilt).
#[derive(Debug)]
pub(crate) struct Dict {
    arena: Arena,
    locs: Vec<Loc>,
    table: HashTable<u32>,
    /// Seeded per dictionary: clients choose these strings, so a fixed hash would let
    /// them craft collisions.
    hasher: foldhash::fast::RandomState,
}

impl Default for Dict {
    fn default() -> Self {
        Dict {
            arena: Arena::default(),
            locs: Vec::new(),
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Dict {
    fn hash(&self, s: &[u8]) -> u64 {
        self.hasher.hash_one(s)
    }

    /// Number of ids handed out (linked or not).
    pub fn len(&self) -> usize {
        self.locs.len()
    }

    pub fn find(&self, s: &str) -> Option<u32> {
        let h = self.hash(s.as_bytes());
        let (arena, locs) = (&self.arena, &self.locs);
        self.table
            .find(h, |&id| arena.get(locs[id as usize]) == s.as_bytes())
            .copied()
    }

    /// Adds `s` (the caller knows it is not linked) under the next id.
    pub fn insert(&mut self, s: &str) -> u32 {
        let id = self.locs.len() as u32;
        self.insert_at(id, s);
        id
    }

    /// Adds `s` under `id`, which must be `len()` or more (ids replayed from a log may
    /// skip numbers; skipped ids hold the empty string and are never linked).
    pub fn insert_at(&mut self, id: u32, s: &str) {
        while self.locs.len() < id as usize {
            self.locs.push(0);
        }
        let h = self.hash(s.as_bytes());
        let loc = self.arena.push(s.as_bytes());
        self.locs.push(loc);
        let Dict {
            arena,
            locs,
            table,
            hasher,
        } = self;
        table.insert_unique(h, id, |&i| hasher.hash_one(arena.get(locs[i as usize])));
    }

    /// Unlinks `id`: it is no longer found by its string.
    pub fn unlink(&mut self, id: u32) {
        let Some(&loc) = self.locs.get(id as usize) else {
            return;
        };
        let h = self.hash(self.arena.get(loc));
        if let Ok(e) = self.table.find_entry(h, |&i| i == id) {
            e.remove();
        }
    }

    /// The string of `id` (empty for an unknown id).
    pub fn get(&self, id: u32) -> &str {
        let b = self
            .locs
            .get(id as usize)
            .map_or(&[][..], |&l| self.arena.get(l));
        // Only whole `&str`s are ever pushed, so this cannot fail.
        std::str::from_utf8(b).unwrap_or_default()
    }

    pub fn heap_bytes(&self) -> usize {
        // A table bucket is the 4-byte id plus one control byte.
        self.arena.heap_bytes() + self.locs.capacity() * 8 + self.table.capacity() * 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_across_chunks() {
        let mut d = Dict::default();
        let words: Vec<String> = (0..50_000).map(|i| format!("host-{i}")).collect();
        for w in &words {
            assert_eq!(d.find(w), None);
            d.insert(w);
        }
        let big = "x".repeat(MAX_STRING);
        let id = d.insert(&big);
        for (i, w) in words.iter().enumerate() {
            assert_eq!(d.find(w), Some(i as u32));
            assert_eq!(d.get(i as u32), w);
        }
        assert_eq!(d.get(id), big);
        d.unlink(3);
        assert_eq!(d.find("host-3"), None);
        assert_eq!(d.get(3), "host-3");
        d.insert_at(60_000, "late");
        assert_eq!(d.find("late"), Some(60_000));
        assert_eq!(d.get(59_999), "");
        assert!(d.heap_bytes() > 50_000 * 10);
    }
}
