//! Connection counters of one listener, rendered as Prometheus text under the
//! listener's prefix (`sundial_http_connections_open`, …).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Why the listener closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// A request head (or a new connection's first request) did not arrive in
    /// `header-read-timeout`.
    HeaderTimeout,
    /// Kept alive with nothing sent for `idle-timeout`.
    Idle,
    /// Closed to make room for a new connection at `max-connections`.
    Evicted,
    /// The server is stopping.
    Shutdown,
}

#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections whose socket is open (a gauge).
    pub open: AtomicI64,
    pub accepted: AtomicU64,
    pub closed_header_timeout: AtomicU64,
    pub closed_idle: AtomicU64,
    pub evicted: AtomicU64,
    /// New connections closed at once because every open one was busy.
    pub refused: AtomicU64,
    pub accept_errors: AtomicU64,
}

impl ConnStats {
    pub(crate) fn count_close(&self, reason: CloseReason) {
        let counter = match reason {
            CloseReason::HeaderTimeout => &self.closed_header_timeout,
            CloseReason::Idle => &self.closed_idle,
            CloseReason::Evicted => &self.evicted,
            CloseReason::Shutdown => return,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// The counters as `connections_…` metrics (the caller's registry prefixes them).
    pub fn emit(&self, e: &mut sundial_common::metrics::Emit<'_>) -> std::fmt::Result {
        let g = |a: &AtomicU64| a.load(Relaxed);
        e.gauge(
            "connections_open",
            "Open client connections.",
            self.open.load(Relaxed),
        )?;
        for (name, help, v) in [
            (
                "connections_accepted",
                "Client connections accepted.",
                g(&self.accepted),
            ),
            (
                "connections_closed_header_timeout",
                "Connections closed because a request head did not arrive within header-read-timeout.",
                g(&self.closed_header_timeout),
            ),
            (
                "connections_closed_idle",
                "Kept-alive connections closed after idle-timeout without a request.",
                g(&self.closed_idle),
            ),
            (
                "connections_evicted",
                "Idle or slow connections closed to make room for a new one at max-connections.",
                g(&self.evicted),
            ),
            (
                "connections_refused",
                "New connections closed at once because every open one was busy.",
                g(&self.refused),
            ),
            (
                "accept_errors",
                "Errors accepting connections (e.g. out of file descriptors).",
                g(&self.accept_errors),
            ),
        ] {
            e.counter(name, help, v)?;
        }
        Ok(())
    }
}
