//! The open connections of one listener and what each is doing: idle (waiting
//! for a request, maybe part-way through its head) or busy (a request in the
//! service). The reaper and the connection cap decide from this alone, with
//! plain atomics the connection's own task updates: no per-connection timers.

use crate::stats::{CloseReason, ConnStats};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// `head_since` when no byte of a request head is waiting.
const NONE: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    /// The registry's clock origin; times below are milliseconds since it.
    base: Instant,
    /// Requests in the service (HTTP/1.1: 0 or 1).
    busy: AtomicU32,
    /// When the connection was accepted or its last response was handed over.
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived, or `NONE`.
    head_since: AtomicU64,
    /// Whether a whole request head has arrived on this connection yet.
    served: AtomicBool,
    /// Set once, by whoever closes the connection (0 = open).
    closed: AtomicU8,
    /// Wakes the connection's task to drop (and so close) the socket.
    close: Notify,
}

impl Conn {
    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Bytes arrived. While idle they are the start of a request head: from now
    /// on the head must be complete within `header-read-timeout`.
    pub(crate) fn on_read(&self) {
        if self.busy.load(Ordering::Acquire) == 0 && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A whole request head arrived and goes to the service; the connection is
    /// busy until the guard (carried by the response body) is dropped.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Resolves once something closed this connection.
    pub(crate) async fn closed(&self) {
        self.close.notified().await
    }

    /// Marks the connection closed for `reason` (once) and wakes its task.
    fn shut(&self, reason: CloseReason, stats: &ConnStats) {
        if self
            .closed
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            stats.count_close(reason);
            // `notify_one` keeps a permit if the task is not waiting right now.
            self.close.notify_one();
        }
    }

    fn snapshot(&self) -> State {
        let busy = self.busy.load(Ordering::Acquire) > 0;
        State {
            busy,
            served: self.served.load(Ordering::Relaxed),
            idle_since: self.idle_since.load(Ordering::Relaxed),
            head_since: self.head_since.load(Ordering::Relaxed),
        }
    }
}

/// The request on a connection is over when this is dropped.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        // The time first, so the reaper never sees an idle connection with the
        // idle time of the request before.
        self.0.idle_since.store(self.0.now(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the reaper and the cap look at, read at one moment.
#[derive(Debug, Clone, Copy)]
struct State {
    busy: bool,
    served: bool,
    idle_since: u64,
    head_since: u64,
}

impl State {
    /// When the timeouts close this connection and why; `None` while busy: a
    /// request in the service is the service's business (its body-read and
    /// write timeouts), never the reaper's.
    fn deadline(&self, header_ms: u64, idle_ms: u64) -> Option<(u64, CloseReason)> {
        if self.busy {
            None
        } else if !self.served {
            // Like Go's ReadHeaderTimeout and nginx's client_header_timeout: a
            // new connection sends its first request at once or goes.
            Some((
                self.idle_since.saturating_add(header_ms),
                CloseReason::HeaderTimeout,
            ))
        } else if self.head_since != NONE {
            Some((
                self.head_since.saturating_add(header_ms),
                CloseReason::HeaderTimeout,
            ))
        } else {
            Some((self.idle_since.saturating_add(idle_ms), CloseReason::Idle))
        }
    }
}

/// Whether a new connection got a place.
#[derive(Debug)]
pub(crate) enum Admit {
    Yes(Arc<Conn>),
    /// At the cap with every connection busy.
    Full,
}

#[derive(Debug)]
pub(crate) struct Registry {
    base: Instant,
    header_ms: u64,
    idle_ms: u64,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    pub(crate) stats: Arc<ConnStats>,
}

impl Registry {
    pub(crate) fn new(stats: Arc<ConnStats>, header: Duration, idle: Duration) -> Registry {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Registry {
            base: Instant::now(),
            header_ms: ms(header),
            idle_ms: ms(idle),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        // The map stays consistent whatever panicked while holding it.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Registers a new connection, first closing the idle connection that has
    /// waited longest when `max` are open already.
    pub(crate) fn admit(&self, max: usize) -> Admit {
        let mut conns = self.lock();
        if conns.len() >= max.max(1) && !self.evict_locked(&mut conns) {
            return Admit::Full;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            base: self.base,
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.now()),
            head_since: AtomicU64::new(NONE),
            served: AtomicBool::new(false),
            closed: AtomicU8::new(0),
            close: Notify::new(),
        });
        conns.insert(id, conn.clone());
        Admit::Yes(conn)
    }

    /// Forgets a connection whose task has ended.
    pub(crate) fn remove(&self, conn: &Conn) {
        self.lock().remove(&conn.id);
    }

    /// Closes the connections past their timeouts; with `draining`, every
    /// connection not serving a request. Returns how many it closed.
    pub(crate) fn reap(&self, draining: bool) -> usize {
        let now = self.now();
        let mut doomed = Vec::new();
        let mut conns = self.lock();
        conns.retain(|_, c| {
            let reason = match c.snapshot().deadline(self.header_ms, self.idle_ms) {
                Some(_) if draining => CloseReason::Shutdown,
                Some((at, why)) if at <= now => why,
                _ => return true,
            };
            doomed.push((c.clone(), reason));
            false
        });
        drop(conns);
        for (c, r) in &doomed {
            c.shut(*r, &self.stats);
        }
        doomed.len()
    }

    /// Closes the idle connection the timeouts would close first (to free a
    /// file descriptor when accept runs out of them). Whether there was one.
    pub(crate) fn evict_one(&self) -> bool {
        self.evict_locked(&mut self.lock())
    }

    /// The victim is the idle connection with the earliest deadline: it has used
    /// up most of its timeout. A silent or dripping connection (10 s to send a
    /// head) goes long before a kept-alive one (120 s to be reused), unless that
    /// one is near its end anyway; among a flood of silent ones, the oldest.
    /// O(open connections), run only at the cap: cheaper than keeping an order
    /// up to date on every request.
    fn evict_locked(&self, conns: &mut HashMap<u64, Arc<Conn>>) -> bool {
        let victim = conns
            .values()
            .filter_map(|c| {
                let (at, _) = c.snapshot().deadline(self.header_ms, self.idle_ms)?;
                Some((at, c.id))
            })
            .min()
            .map(|(_, id)| id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.shut(CloseReason::Evicted, &self.stats);
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(busy: bool, served: bool, idle_since: u64, head_since: u64) -> State {
        State {
            busy,
            served,
            idle_since,
            head_since,
        }
    }

    #[test]
    fn deadlines_by_state() {
        let (h, i) = (1_000, 5_000);
        let hd = CloseReason::HeaderTimeout;
        // New, silent or dripping its head: the header timeout counts from accept.
        assert_eq!(
            state(false, false, 0, NONE).deadline(h, i),
            Some((1_000, hd))
        );
        assert_eq!(
            state(false, false, 0, 500).deadline(h, i),
            Some((1_000, hd))
        );
        // Kept alive: idle for idle-timeout, then a head has header-timeout.
        assert_eq!(
            state(false, true, 0, NONE).deadline(h, i),
            Some((5_000, CloseReason::Idle))
        );
        assert_eq!(
            state(false, true, 0, 4_500).deadline(h, i),
            Some((5_500, hd))
        );
        // Busy: never.
        assert_eq!(state(true, true, 0, NONE).deadline(h, i), None);
    }

    #[test]
    fn eviction_takes_the_earliest_deadline_and_never_a_busy_one() {
        let r = Registry::new(
            Arc::new(ConnStats::default()),
            Duration::from_secs(10),
            Duration::from_secs(120),
        );
        let mut conns = HashMap::new();
        let mut add = |id: u64, s: State| {
            let Admit::Yes(c) = r.admit(100) else {
                panic!("room")
            };
            c.busy.store(u32::from(s.busy), Ordering::Relaxed);
            c.served.store(s.served, Ordering::Relaxed);
            c.idle_since.store(s.idle_since, Ordering::Relaxed);
            c.head_since.store(s.head_since, Ordering::Relaxed);
            conns.insert(id, c);
        };
        add(0, state(true, true, 0, NONE)); // busy, oldest
        add(1, state(false, true, 100, NONE)); // kept alive: 120_100
        add(2, state(false, false, 50_000, NONE)); // silent: 60_000
        add(3, state(false, true, 10, 40_000)); // dripping: 50_000
        add(4, state(false, false, 55_000, NONE)); // silent, newer: 65_000
        let order: Vec<_> = (0..4)
            .map(|_| {
                assert!(r.evict_one());
                let gone = conns
                    .iter()
                    .find(|(_, c)| c.closed.load(Ordering::Relaxed) == 1);
                let (id, _) = gone.expect("one closed");
                let id = *id;
                conns.remove(&id);
                id
            })
            .collect();
        assert_eq!(order, [3, 2, 4, 1]);
        assert!(!r.evict_one(), "the busy one stays");
    }

    #[test]
    fn the_cap_evicts_idle_and_refuses_when_all_are_busy() {
        let stats = Arc::new(ConnStats::default());
        let r = Registry::new(
            stats.clone(),
            Duration::from_secs(9),
            Duration::from_secs(9),
        );
        let Admit::Yes(a) = r.admit(2) else {
            panic!("room")
        };
        let Admit::Yes(b) = r.admit(2) else {
            panic!("room")
        };
        let _busy = b.begin_request();
        // At the cap: `a` (idle) makes room, `b` (busy) stays.
        let Admit::Yes(c) = r.admit(2) else {
            panic!("evicted")
        };
        assert_eq!(a.closed.load(Ordering::Relaxed), 1);
        assert_eq!(b.closed.load(Ordering::Relaxed), 0);
        let _busy_c = c.begin_request();
        assert!(matches!(r.admit(2), Admit::Full));
        assert_eq!(r.len(), 2);
        assert_eq!(stats.evicted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn reap_closes_expired_and_drain_closes_idle() {
        let r = Registry::new(
            Arc::new(ConnStats::default()),
            Duration::ZERO,
            Duration::ZERO,
        );
        let Admit::Yes(a) = r.admit(10) else {
            panic!("room")
        };
        let Admit::Yes(b) = r.admit(10) else {
            panic!("room")
        };
        let guard = b.begin_request();
        assert_eq!(r.reap(false), 1);
        assert_eq!(a.closed.load(Ordering::Relaxed), 1);
        assert_eq!(r.reap(true), 0);
        drop(guard);
        assert_eq!(r.reap(true), 1);
        assert_eq!(r.len(), 0);
        assert_eq!(r.stats.closed_header_timeout.load(Ordering::Relaxed), 1);
    }
}
