//! Creating, naming and dropping a store's shards.

use std::path::PathBuf;
use std::sync::Arc;

use super::slots::{self, Slot, SlotState};
use super::{Store, CREATING_SUFFIX, DROPPING_SUFFIX};
use crate::error::{Error, Result};
use crate::shard::snapshot_series;

impl Store {
    /// Create an empty shard of `database`; creating an existing one is an error.
    pub fn create_shard(&self, id: u64, database: &str) -> Result<()> {
        self.inner.check_open()?;
        let slot = {
            let mut slots = self.inner.slots.write();
            if slots.contains_key(&id) {
                return Err(Error::ShardExists(id));
            }
            if self.inner.dropping.lock().contains(&id) {
                return Err(Error::ShardDegraded {
                    shard: id,
                    reason: "it is being dropped; try again".into(),
                });
            }
            let dir = self.inner.dir.join(id.to_string());
            let new = self.inner.dir.join(format!("{id}{CREATING_SUFFIX}"));
            let _ = crate::vfs::remove_dir_all(&new);
            crate::vfs::create_dir(&new).map_err(|e| Error::io(&new, e))?;
            slots::write_database(&new, database)?;
            crate::vfs::rename(&new, &dir).map_err(|e| Error::io(&dir, e))?;
            crate::vfs::sync_dir(&self.inner.dir)?;
            let slot = Slot::new(id, dir, Some(database.into()));
            slots.insert(id, slot.clone());
            slot
        };
        self.inner.shard_of(&slot).map(|_| ())
    }

    /// Create the shard unless it exists. A shard of an older version, which did not
    /// record its database, is told it here.
    pub fn ensure_shard(&self, id: u64, database: &str) -> Result<()> {
        let known = self.inner.slots.read().get(&id).cloned();
        let Some(slot) = known else {
            return match self.create_shard(id, database) {
                Err(Error::ShardExists(_)) => self.ensure_shard(id, database),
                r => r,
            };
        };
        match slot.database() {
            Some(d) if *d == *database => Ok(()),
            Some(d) => Err(Error::InvalidArgument(format!(
                "shard {id} belongs to database {d:?}, not {database:?}"
            ))),
            None => {
                slots::write_database(&slot.dir, database)?;
                *slot.database.write() = Some(database.into());
                Ok(())
            }
        }
    }

    /// Close a shard and delete all its data.
    pub fn drop_shard(&self, id: u64) -> Result<()> {
        self.inner.check_open()?;
        let slot = {
            let mut slots = self.inner.slots.write();
            let slot = slots.remove(&id).ok_or(Error::ShardNotFound(id))?;
            // Under the slots lock: `create_shard` sees the slot or this mark.
            self.inner.dropping.lock().insert(id);
            slot
        };
        let dropped = self.drop_slot(&slot);
        self.inner.dropping.lock().remove(&id);
        dropped
    }

    fn drop_slot(&self, slot: &Arc<Slot>) -> Result<()> {
        let shard = {
            let mut st = slot.state.lock();
            loop {
                match std::mem::replace(&mut *st, SlotState::Dropped) {
                    SlotState::Busy => {
                        *st = SlotState::Busy;
                        slot.changed.wait(&mut st);
                    }
                    SlotState::Open(s) => break Some(s),
                    _ => break None,
                }
            }
        };
        slot.changed.notify_all();
        let database = slot.database();
        let series = match (&shard, &database) {
            (Some(s), _) => Some(s.series_ids()),
            (None, Some(db)) => self
                .inner
                .catalog(db)
                .ok()
                .and_then(|c| snapshot_series(&slot.dir, c.generation())),
            (None, None) => None,
        };
        let close = shard.as_ref().map_or(Ok(()), |s| s.close());
        drop(shard);
        // Renamed away first: a crash mid-removal leaves no half shard under its
        // id for the next open (which removes `*.dropping` directories).
        let mut away = slot.dir.clone().into_os_string();
        away.push(DROPPING_SUFFIX);
        let away = PathBuf::from(away);
        crate::vfs::rename(&slot.dir, &away).map_err(|e| Error::io(&slot.dir, e))?;
        crate::vfs::sync_dir(&self.inner.dir)?;
        crate::vfs::remove_dir_all(&away).map_err(|e| Error::io(&away, e))?;
        if let Some(db) = database {
            self.inner.collect_series(&db, series);
        }
        close
    }
}
