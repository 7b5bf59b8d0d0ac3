//! The series catalogs of a store's databases: loaded on demand while any of their
//! shards is open, and cleaned up when shards are dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use roaring::RoaringBitmap;

use super::slots::{Slot, SlotState};
use super::Inner;
use crate::catalog::{dir_name, Catalog};
use crate::error::Result;
use crate::options::FsyncPolicy;
use crate::shard::snapshot_series;

/// A database's catalog, loaded while any of its shards is open.
#[derive(Debug, Default)]
pub(super) struct CatalogSlot {
    pub(super) loaded: Mutex<Weak<Catalog>>,
}

impl Inner {
    fn catalog_dir(&self, database: &str) -> PathBuf {
        self.dir.join("_series").join(dir_name(database))
    }

    fn catalog_slot(&self, database: &Arc<str>) -> Arc<CatalogSlot> {
        self.catalogs
            .lock()
            .entry(database.clone())
            .or_default()
            .clone()
    }

    /// The database's catalog, loaded if no open shard holds it.
    pub(super) fn catalog(&self, database: &Arc<str>) -> Result<Arc<Catalog>> {
        let cs = self.catalog_slot(database);
        let mut loaded = cs.loaded.lock();
        if let Some(c) = loaded.upgrade() {
            return Ok(c);
        }
        let c = Catalog::open(
            &self.catalog_dir(database),
            database,
            self.opts.fsync == FsyncPolicy::Always,
            self.index_mem.clone(),
        )?;
        *loaded = Arc::downgrade(&c);
        Ok(c)
    }

    /// Drops what a removed shard alone held from its database's catalog, or the
    /// whole catalog when no shard of the database is left. Failures only delay the
    /// cleanup (the series stay counted); they are logged, not returned.
    pub(super) fn collect_series(&self, database: &Arc<str>, dropped: Option<RoaringBitmap>) {
        let others = |slots: &HashMap<u64, Arc<Slot>>| -> Vec<Arc<Slot>> {
            slots
                .values()
                .filter(|s| s.database().as_deref() == Some(&**database))
                .cloned()
                .collect()
        };
        let rest = others(&self.slots.read());
        if rest.is_empty() {
            let cs = self.catalog_slot(database);
            let mut loaded = cs.loaded.lock();
            // A shard created meanwhile waits on this lock for its catalog.
            if !others(&self.slots.read()).is_empty() || loaded.upgrade().is_some() {
                return;
            }
            *loaded = Weak::new();
            let dir = self.catalog_dir(database);
            if let Err(e) = crate::vfs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(database = %database, error = %e, "could not remove the series catalog of a database without shards");
                }
            }
            return;
        }
        let Some(dropped) = dropped else { return };
        let catalog = match self.catalog(database) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(database = %database, error = %e, "series catalog unavailable; dropped series stay counted");
                return;
            }
        };
        // No writer may resolve a series and record it in a shard while this runs.
        let _gc = catalog.gc_guard();
        let mut alive = RoaringBitmap::new();
        for s in rest {
            match s.open_shard() {
                Some(sh) => alive |= sh.series_ids(),
                None => {
                    // Read under the slot's lock, so a closed shard stays closed (its
                    // snapshot and log unchanged) while they are read. Being opened or
                    // closed, or unreadable: keep everything.
                    let st = s.state.lock();
                    let ids = matches!(*st, SlotState::Closed)
                        .then(|| snapshot_series(&s.dir, catalog.generation()))
                        .flatten();
                    drop(st);
                    match ids {
                        Some(b) => alive |= b,
                        None => return,
                    }
                }
            }
        }
        let doomed = dropped - alive;
        match catalog.drop_series(&doomed) {
            Ok(n) if n > 0 => {
                tracing::info!(database = %database, series = n, "series dropped from the catalog with their last shard")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(database = %database, error = %e, "could not drop series from the catalog")
            }
        }
    }
}
