//! The node's identity, kept in its data directory so that a store restarted on
//! another address (a new container IP) keeps its id and with it its shards.

use std::path::Path;

const NODE_ID_FILE: &str = "node.id";

/// The id recorded in `dir`, if any.
pub fn read_node_id(dir: &Path) -> std::io::Result<Option<u64>> {
    let p = dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&p) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} does not hold a node id: {s:?}", p.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Records `id` in `dir` durably (temporary file, fsync, rename, fsync of the
/// directory).
pub fn write_node_id(dir: &Path, id: u64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join("node.id.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{id}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(NODE_ID_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_id_survives_and_garbage_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_node_id(d.path()).unwrap(), None);
        write_node_id(d.path(), 7).unwrap();
        assert_eq!(read_node_id(d.path()).unwrap(), Some(7));
        std::fs::write(d.path().join(NODE_ID_FILE), "x").unwrap();
        assert!(read_node_id(d.path()).is_err());
    }
}
