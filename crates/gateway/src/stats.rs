//! HTTP write/query statistics, named after InfluxDB's `httpd` stats (seed 004:
//! WriteRequests, ActiveWriteRequests, WriteRequestDuration, bytes received,
//! points written OK/failed/dropped, values written), exported as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use sundial_serve::ConnStats;

#[derive(Debug, Default)]
pub struct HttpStats {
    pub write_requests: AtomicU64,
    pub active_write_requests: AtomicI64,
    pub write_request_duration_ns: AtomicU64,
    pub write_request_bytes_received: AtomicU64,
    pub points_written_ok: AtomicU64,
    pub points_written_fail: AtomicU64,
    pub points_written_dropped: AtomicU64,
    pub values_written_ok: AtomicU64,
    pub write_rejected_overload: AtomicU64,
    pub query_requests: AtomicU64,
    pub query_request_duration_ns: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    pub auth_failures: AtomicU64,
    /// The HTTP listener's connections: open, closed by timeouts, evicted.
    pub connections: Arc<ConnStats>,
}

/// Counts a write request as active until dropped, then adds its duration.
#[derive(Debug)]
pub struct ActiveWrite<'a> {
    stats: &'a HttpStats,
    start: Instant,
}

impl HttpStats {
    pub fn begin_write(&self) -> ActiveWrite<'_> {
        self.write_requests.fetch_add(1, Relaxed);
        self.active_write_requests.fetch_add(1, Relaxed);
        ActiveWrite {
            stats: self,
            start: Instant::now(),
        }
    }

    /// Appends the counters in Prometheus text exposition format.
    pub fn render(&self, out: &mut String) {
        let c = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP sundial_http_{name} {help}");
            let _ = writeln!(out, "# TYPE sundial_http_{name} {kind}");
            let _ = writeln!(out, "sundial_http_{name} {v}");
        };
        let g = |a: &AtomicU64| a.load(Relaxed).to_string();
        c(
            out,
            "write_requests_total",
            "Write requests received.",
            "counter",
            g(&self.write_requests),
        );
        c(
            out,
            "active_write_requests",
            "Write requests in progress.",
            "gauge",
            self.active_write_requests.load(Relaxed).to_string(),
        );
        let secs = |a: &AtomicU64| format!("{:.6}", a.load(Relaxed) as f64 / 1e9);
        c(
            out,
            "write_request_duration_seconds_total",
            "Time spent serving write requests.",
            "counter",
            secs(&self.write_request_duration_ns),
        );
        c(
            out,
            "write_request_bytes_received_total",
            "Body bytes received by write requests (after decompression).",
            "counter",
            g(&self.write_request_bytes_received),
        );
        c(
            out,
            "points_written_ok_total",
            "Points written.",
            "counter",
            g(&self.points_written_ok),
        );
        c(
            out,
            "points_written_fail_total",
            "Points that failed to be written (bad lines, errors).",
            "counter",
            g(&self.points_written_fail),
        );
        c(
            out,
            "points_written_dropped_total",
            "Points dropped (outside retention, type conflicts).",
            "counter",
            g(&self.points_written_dropped),
        );
        c(
            out,
            "values_written_ok_total",
            "Field values written.",
            "counter",
            g(&self.values_written_ok),
        );
        c(
            out,
            "write_rejected_overload_total",
            "Writes refused with 503 because too many were in flight.",
            "counter",
            g(&self.write_rejected_overload),
        );
        c(
            out,
            "query_requests_total",
            "Query requests received.",
            "counter",
            g(&self.query_requests),
        );
        c(
            out,
            "query_request_duration_seconds_total",
            "Time spent serving query requests.",
            "counter",
            secs(&self.query_request_duration_ns),
        );
        c(
            out,
            "client_errors_total",
            "Responses with a 4xx status.",
            "counter",
            g(&self.client_errors),
        );
        c(
            out,
            "server_errors_total",
            "Responses with a 5xx status.",
            "counter",
            g(&self.server_errors),
        );
        c(
            out,
            "auth_failures_total",
            "Failed authentications.",
            "counter",
            g(&self.auth_failures),
        );
        self.connections.render("sundial_http", out);
    }
}

impl Drop for ActiveWrite<'_> {
    fn drop(&mut self) {
        self.stats.active_write_requests.fetch_sub(1, Relaxed);
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.write_request_duration_ns.fetch_add(ns, Relaxed);
    }
}

/// Hinted handoff's queues and counters in Prometheus text: depth and oldest age
/// per node, hints enqueued, delivered, dropped (expired, refused by the node) and
/// writes refused because a queue was full.
pub fn render_handoff(hh: &sundial_cluster::handoff::HintedHandoff, out: &mut String) {
    let c = &hh.counters;
    for (name, help, v) in [
        (
            "enqueued_total",
            "Hints queued for unreachable owners.",
            &c.enqueued,
        ),
        (
            "delivered_total",
            "Hints delivered to their node.",
            &c.delivered,
        ),
        (
            "dropped_expired_total",
            "Hints dropped because they were older than max-age.",
            &c.dropped_expired,
        ),
        (
            "dropped_rejected_total",
            "Hints dropped because their node refused them for good, or damaged on disk.",
            &c.dropped_rejected,
        ),
        (
            "refused_full_total",
            "Writes refused because a node's queue was at max-size.",
            &c.refused_full,
        ),
    ] {
        let _ = writeln!(out, "# HELP sundial_hh_{name} {help}");
        let _ = writeln!(out, "# TYPE sundial_hh_{name} counter");
        let _ = writeln!(out, "sundial_hh_{name} {}", v.load(Relaxed));
    }
    let stats = hh.stats();
    for (name, help, get) in [
        (
            "queue_records",
            "Hints waiting for a node.",
            (|s: &sundial_cluster::handoff::QueueStats| s.records as f64) as fn(&_) -> f64,
        ),
        ("queue_bytes", "Bytes of hints waiting for a node.", |s| {
            s.bytes as f64
        }),
        (
            "queue_oldest_age_seconds",
            "Age of a node's oldest waiting hint.",
            |s| s.oldest_age_ms as f64 / 1000.0,
        ),
    ] {
        let _ = writeln!(out, "# HELP sundial_hh_{name} {help}");
        let _ = writeln!(out, "# TYPE sundial_hh_{name} gauge");
        for s in &stats {
            let _ = writeln!(out, "sundial_hh_{name}{{node=\"{}\"}} {}", s.node, get(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_writes_are_tracked_and_rendered() {
        let s = HttpStats::default();
        {
            let _w = s.begin_write();
            assert_eq!(s.active_write_requests.load(Relaxed), 1);
        }
        assert_eq!(s.active_write_requests.load(Relaxed), 0);
        s.points_written_ok.fetch_add(5, Relaxed);
        let mut out = String::new();
        s.render(&mut out);
        assert!(
            out.contains("sundial_http_write_requests_total 1\n"),
            "{out}"
        );
        assert!(out.contains("sundial_http_points_written_ok_total 5\n"));
        assert!(out.contains("# TYPE sundial_http_active_write_requests gauge\n"));
        assert!(
            out.contains("sundial_http_connections_evicted_total 0\n"),
            "{out}"
        );
        // Every sample line is `name value` with a numeric value.
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.split_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
