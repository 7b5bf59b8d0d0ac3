//! Connection counters of one listener, rendered as Prometheus text under the
//! listener's prefix (`sundial_http_connections_open`, …).

use std::fmt::Write as _;
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

    /// Appends the counters in Prometheus text format, each named `{prefix}_…`.
    pub fn render(&self, prefix: &str, out: &mut String) {
        let mut c = |name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} {kind}");
            let _ = writeln!(out, "{prefix}_{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Relaxed).to_string();
        c(
            "connections_open",
            "Open client connections.",
            "gauge",
            self.open.load(Relaxed).to_string(),
        );
        c(
            "connections_accepted_total",
            "Client connections accepted.",
            "counter",
            g(&self.accepted),
        );
        c(
            "connections_closed_header_timeout_total",
            "Connections closed because a request head did not arrive within header-read-timeout.",
            "counter",
            g(&self.closed_header_timeout),
        );
        c(
            "connections_closed_idle_total",
            "Kept-alive connections closed after idle-timeout without a request.",
            "counter",
            g(&self.closed_idle),
        );
        c(
            "connections_evicted_total",
            "Idle or slow connections closed to make room for a new one at max-connections.",
            "counter",
            g(&self.evicted),
        );
        c(
            "connections_refused_total",
            "New connections closed at once because every open one was busy.",
            "counter",
            g(&self.refused),
        );
        c(
            "accept_errors_total",
            "Errors accepting connections (e.g. out of file descriptors).",
            "counter",
            g(&self.accept_errors),
        );
    }
}
