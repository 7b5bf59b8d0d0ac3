//! The store-wide memtable memory budget.
//!
//! Each shard's memtables are bounded (`memtable_size`, `max_frozen_memtables`), but a
//! node with many active shards (many databases, a backfill over many shard groups)
//! would hold all of them at once. Shards report their memtable bytes here. Past the
//! budget the store's governor freezes the largest active memtables for flushing
//! (like RocksDB's write-buffer manager); past 1.5 x the budget, writers wait for
//! flushes (bounded by the stall timeout, then `Overloaded`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    lock: Mutex<()>,
    /// Signalled when bytes are released (writers wait on it).
    freed: Condvar,
    /// Signalled when the governor should look for memtables to freeze.
    pressure: Condvar,
    pressed: AtomicBool,
    /// The store is closing: nobody waits any more.
    closed: AtomicBool,
}

impl MemoryBudget {
    /// `limit` 0 means no budget (like InfluxDB's `cache-max-memory-size = 0`).
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit: if limit == 0 { usize::MAX } else { limit },
            used: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            pressure: Condvar::new(),
            pressed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn hard_limit(&self) -> usize {
        self.limit.saturating_add(self.limit / 2)
    }

    /// A shard's memtables went from `old` to `new` bytes.
    pub fn adjust(&self, old: usize, new: usize) {
        if new >= old {
            let used = self.used.fetch_add(new - old, Ordering::AcqRel) + (new - old);
            if used > self.limit {
                self.press();
            }
        } else {
            self.used.fetch_sub(old - new, Ordering::AcqRel);
            let _g = self.lock.lock();
            self.freed.notify_all();
        }
    }

    /// Wakes the governor.
    pub fn press(&self) {
        if !self.pressed.swap(true, Ordering::AcqRel) {
            let _g = self.lock.lock();
            self.pressure.notify_all();
        }
    }

    /// The governor: waits until pressed or `until`; true when over the budget.
    pub fn wait_for_pressure(&self, until: Instant) -> bool {
        let mut g = self.lock.lock();
        if !self.pressed.load(Ordering::Acquire) {
            self.pressure.wait_until(&mut g, until);
        }
        self.pressed.store(false, Ordering::Release);
        self.used() > self.limit
    }

    /// Before a write: waits while memtables hold more than the hard limit. False
    /// when `timeout` passed first. The common case is one atomic load.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        if self.used() <= self.hard_limit() {
            return true;
        }
        let deadline = Instant::now() + timeout;
        self.press();
        let mut g = self.lock.lock();
        while self.used() > self.hard_limit() && !self.closed.load(Ordering::Acquire) {
            if self.freed.wait_until(&mut g, deadline).timed_out() {
                return self.used() <= self.hard_limit();
            }
        }
        true
    }

    /// Wakes everyone for good (shutdown).
    pub fn wake_all(&self) {
        self.closed.store(true, Ordering::Release);
        self.pressed.store(true, Ordering::Release);
        let _g = self.lock.lock();
        self.pressure.notify_all();
        self.freed.notify_all();
    }
}

/// Memory of the per-series structures that outlive memtables: series catalogs,
/// shards' series lists and data files' per-series summaries. Past the limit no new
/// series is created (writes to known series go on); the store first closes idle
/// shards to make room.
#[derive(Debug)]
pub(crate) struct IndexMemory {
    limit: usize,
    used: AtomicUsize,
}

impl IndexMemory {
    /// `limit` 0: no limit.
    pub fn new(limit: usize) -> Self {
        IndexMemory {
            limit: if limit == 0 { usize::MAX } else { limit },
            used: AtomicUsize::new(0),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether the structures use more than `percent` of the limit.
    pub fn above(&self, percent: usize) -> bool {
        self.above_with(percent, 0)
    }

    /// [`Self::above`] with `extra` bytes not reported yet.
    pub fn above_with(&self, percent: usize, extra: usize) -> bool {
        self.limit != usize::MAX && self.used().saturating_add(extra) > self.limit / 100 * percent
    }

    pub fn adjust(&self, old: usize, new: usize) {
        if new >= old {
            self.used.fetch_add(new - old, Ordering::AcqRel);
        } else {
            self.used.fetch_sub(old - new, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn accounting_pressure_and_room() {
        let b = Arc::new(MemoryBudget::new(100));
        b.adjust(0, 60);
        assert!(!b.wait_for_pressure(Instant::now()));
        b.adjust(60, 120);
        assert_eq!(b.used(), 120);
        assert!(b.wait_for_pressure(Instant::now() + Duration::from_secs(5)));
        // Below the hard limit (150) a writer goes on at once.
        assert!(b.wait_for_room(Duration::ZERO));
        b.adjust(0, 40);
        assert!(!b.wait_for_room(Duration::from_millis(20)));
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            b2.adjust(120, 10);
        });
        assert!(b.wait_for_room(Duration::from_secs(10)));
        t.join().unwrap();
        assert_eq!(b.used(), 50);
        // Closing releases a waiting writer at once.
        b.adjust(0, 200);
        let b3 = b.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            b3.wake_all();
        });
        let started = Instant::now();
        b.wait_for_room(Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(10));
        t.join().unwrap();
        // 0 is no budget at all.
        let none = MemoryBudget::new(0);
        none.adjust(0, usize::MAX / 2);
        assert!(none.wait_for_room(Duration::ZERO));
    }
}
