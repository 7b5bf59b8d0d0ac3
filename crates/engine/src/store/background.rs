//! Background work of a store: flush and compaction threads, the memtable governor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Inner;
use crate::budget::MemoryBudget;
use crate::error::Error;
use crate::options::EngineOptions;
use crate::shard::{Scheduler, Shard};

enum Job {
    Flush(Weak<Shard>),
    Compact(Weak<Shard>),
    /// Everything into one file; holds the shard open until it is done.
    CompactFull(Arc<Shard>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Flush(_) => "Flush",
            Job::Compact(_) => "Compact",
            Job::CompactFull(_) => "CompactFull",
        })
    }
}

/// Background work queues. Flushes and compactions have separate threads so a long
/// compaction never delays the flush that unblocks writers; the number of compaction
/// threads is the store-wide compaction concurrency limit.
#[derive(Debug)]
pub(super) struct Background {
    flush_tx: Mutex<Option<Sender<Job>>>,
    compact_tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    /// Wakes the janitor early (memory or descriptor pressure).
    pub janitor: Arc<(Mutex<bool>, Condvar)>,
}

impl Scheduler for Background {
    fn flush(&self, shard: Weak<Shard>) {
        if let Some(s) = shard.upgrade() {
            if s.flush_queued.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        if let Some(tx) = &*self.flush_tx.lock() {
            let _ = tx.send(Job::Flush(shard));
        }
    }

    fn compact(&self, shard: Weak<Shard>) {
        if let Some(s) = shard.upgrade() {
            if s.compact_queued.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        if let Some(tx) = &*self.compact_tx.lock() {
            let _ = tx.send(Job::Compact(shard));
        }
    }

    fn index_pressure(&self) {
        self.wake_janitor();
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>, stop: Arc<AtomicBool>) {
    loop {
        let job = {
            let rx = rx.lock();
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match job {
            Job::Flush(w) => {
                let Some(s) = w.upgrade() else { continue };
                s.flush_queued.store(false, Ordering::Release);
                if let Err(e) = s.flush_frozen() {
                    if !matches!(e, Error::Closed) {
                        tracing::error!(shard_id = s.id, error = %e, "background flush failed; will retry");
                    }
                }
            }
            Job::CompactFull(s) => {
                if stop.load(Ordering::Acquire) || s.compaction_halted.load(Ordering::Acquire) {
                    continue;
                }
                // What the memtables hold goes into the same one file.
                match s.flush().and_then(|()| s.compact_once(true)) {
                    Ok(_) | Err(Error::Closed) => {}
                    Err(e) => {
                        tracing::error!(shard_id = s.id, error = %e, "full compaction of a cold shard failed");
                    }
                }
            }
            Job::Compact(w) => {
                let Some(s) = w.upgrade() else { continue };
                s.compact_queued.store(false, Ordering::Release);
                if stop.load(Ordering::Acquire) || s.compaction_halted.load(Ordering::Acquire) {
                    continue;
                }
                // One step per job; loop while the policy finds more to do.
                loop {
                    match s.compact_once(false) {
                        Ok(true) if !stop.load(Ordering::Acquire) => {}
                        Ok(_) | Err(Error::Closed) => break,
                        Err(e) => {
                            tracing::error!(shard_id = s.id, error = %e, "background compaction failed");
                            break;
                        }
                    }
                }
            }
        }
    }
}

impl Background {
    /// Queue a full compaction (a write-cold shard's; see `janitor`).
    pub fn compact_full(&self, shard: Arc<Shard>) {
        if let Some(tx) = &*self.compact_tx.lock() {
            let _ = tx.send(Job::CompactFull(shard));
        }
    }

    pub fn start(opts: &EngineOptions) -> Arc<Background> {
        let (ftx, frx) = mpsc::channel();
        let (ctx, crx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let frx = Arc::new(Mutex::new(frx));
        let crx = Arc::new(Mutex::new(crx));
        let mut threads = Vec::new();
        for i in 0..opts.flush_threads {
            let (rx, st) = (frx.clone(), stop.clone());
            if let Ok(h) = std::thread::Builder::new()
                .name(format!("sundial-flush-{i}"))
                .spawn(move || worker(rx, st))
            {
                threads.push(h);
            }
        }
        for i in 0..opts.max_concurrent_compactions {
            let (rx, st) = (crx.clone(), stop.clone());
            if let Ok(h) = std::thread::Builder::new()
                .name(format!("sundial-compact-{i}"))
                .spawn(move || worker(rx, st))
            {
                threads.push(h);
            }
        }
        Arc::new(Background {
            flush_tx: Mutex::new(Some(ftx)),
            compact_tx: Mutex::new(Some(ctx)),
            threads: Mutex::new(threads),
            stop,
            janitor: Arc::new((Mutex::new(false), Condvar::new())),
        })
    }

    pub fn wake_janitor(&self) {
        let (m, cv) = &*self.janitor;
        *m.lock() = true;
        cv.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.flush_tx.lock().take();
        self.compact_tx.lock().take();
        self.wake_janitor();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }

    /// The janitor's sleep: until `d` passes or pressure is signalled.
    pub fn janitor_wait(&self, d: Duration) {
        let (m, cv) = &*self.janitor;
        let mut pressed = m.lock();
        if !*pressed && !self.stopping() {
            cv.wait_for(&mut pressed, d);
        }
        *pressed = false;
    }
}

/// Frees memtable memory when the store is over its budget: freezes the largest
/// active memtables (flushes are queued) until what stays active is well below it.
pub(super) fn governor(inner: &Weak<Inner>, budget: &MemoryBudget) {
    loop {
        let over = budget.wait_for_pressure(std::time::Instant::now() + Duration::from_secs(1));
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let shards = inner.open_shards();
        drop(inner);
        if !over {
            continue;
        }
        // Measure afresh: the budget must never act on (or keep) a stale count.
        for s in &shards {
            s.report_mem();
        }
        if budget.used() <= budget.limit() {
            continue;
        }
        let mut shards: Vec<(usize, Arc<Shard>)> =
            shards.into_iter().map(|s| (s.active_bytes(), s)).collect();
        shards.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        // Frozen memtables are already on their way out; what stays active should
        // come down to half the budget.
        let target = budget.limit() / 2;
        let mut pending: usize = shards.iter().map(|(b, _)| b).sum();
        for (bytes, s) in shards {
            if pending <= target || bytes == 0 {
                break;
            }
            match s.freeze_for_budget() {
                Ok(frozen) => pending = pending.saturating_sub(frozen),
                Err(Error::Closed) => {}
                Err(e) => tracing::warn!(shard_id = s.id, error = %e, "freezing a memtable failed"),
            }
        }
    }
}
