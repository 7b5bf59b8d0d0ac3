//! Small helpers: the engine's hash map type and durable-file utilities.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Maps keyed by series keys and field names, which clients choose: a fixed hash
/// would let a client craft colliding keys and slow every later write to the
/// shard (the series index lives for good). foldhash with a random seed per
/// process and map is as fast as FxHash on these keys and has no fixed collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The set twin of [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// fsync a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// `create_dir_all` whose new entries survive a crash: each directory it creates is
/// fsynced in its parent. Without this a new shard's directory (and the WAL in it,
/// with acknowledged writes) could vanish after a power loss.
pub fn create_dir_durable(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() {
        missing.push(p);
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Another thread made it meanwhile; its parent still needs the fsync.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(d, e)),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Replace `path` atomically: write a temp file, fsync it, rename, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(data).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(dir)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_durable_makes_every_level() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let deep = tmp.path().join("a").join("b").join("c");
        create_dir_durable(&deep).expect("create");
        assert!(deep.is_dir());
        create_dir_durable(&deep).expect("again");
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        assert!(create_dir_durable(&file.join("sub")).is_err());
    }
}
