//! HTTP write/query statistics, named after InfluxDB's `httpd` stats (seed 004:
//! WriteRequests, ActiveWriteRequests, WriteRequestDuration, bytes received,
//! points written OK/failed/dropped, values written), plus request latency by
//! route and status, registered in the gateway's Prometheus registry.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sundial_common::metrics::{Collect, Emit, LatencyFamily, Registry};
use sundial_serve::ConnStats;

type RouteLabels = [(&'static str, &'static str); 3];

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
    /// `sundial_http_request_duration_seconds{route, status}`.
    requests: LatencyFamily<RouteLabels>,
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

    /// Records one answered request: its route (a fixed set, see
    /// `http::route_name`), method, status and time.
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &axum::http::Method,
        status: u16,
        took: Duration,
    ) {
        use axum::http::Method;
        // A fixed set: made-up methods must not grow the label values.
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        let labels = [
            ("route", route),
            ("method", method),
            ("status", status_label(status)),
        ];
        self.requests.observe(&labels, took);
    }

    /// Registers the HTTP metrics (`sundial_http_…`) in `registry`.
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        let reg = registry.sub_registry_with_prefix("http");
        reg.register(
            "request_duration_seconds",
            "Time to answer HTTP requests, by route, method and status (count: requests answered)",
            self.requests.clone(),
        );
        let me = self.clone();
        reg.register_collector(Box::new(Collect(move |e: &mut Emit<'_>| me.emit(e))));
    }

    fn emit(&self, e: &mut Emit<'_>) -> std::fmt::Result {
        let g = |a: &AtomicU64| a.load(Relaxed);
        let secs = |a: &AtomicU64| a.load(Relaxed) as f64 / 1e9;
        e.counter(
            "write_requests",
            "Write requests received.",
            g(&self.write_requests),
        )?;
        e.gauge(
            "active_write_requests",
            "Write requests in progress.",
            self.active_write_requests.load(Relaxed),
        )?;
        e.counter_f64(
            "write_request_duration_seconds",
            "Time spent serving write requests.",
            secs(&self.write_request_duration_ns),
        )?;
        for (name, help, v) in [
            (
                "write_request_bytes_received",
                "Body bytes received by write requests (after decompression).",
                &self.write_request_bytes_received,
            ),
            (
                "points_written_ok",
                "Points written.",
                &self.points_written_ok,
            ),
            (
                "points_written_fail",
                "Points that failed to be written (bad lines, errors).",
                &self.points_written_fail,
            ),
            (
                "points_written_dropped",
                "Points dropped (outside retention, type conflicts).",
                &self.points_written_dropped,
            ),
            (
                "values_written_ok",
                "Field values written.",
                &self.values_written_ok,
            ),
            (
                "write_rejected_overload",
                "Writes refused with 503 because too many were in flight.",
                &self.write_rejected_overload,
            ),
            (
                "query_requests",
                "Query requests received.",
                &self.query_requests,
            ),
        ] {
            e.counter(name, help, g(v))?;
        }
        e.counter_f64(
            "query_request_duration_seconds",
            "Time spent serving query requests.",
            secs(&self.query_request_duration_ns),
        )?;
        for (name, help, v) in [
            (
                "client_errors",
                "Responses with a 4xx status.",
                &self.client_errors,
            ),
            (
                "server_errors",
                "Responses with a 5xx status.",
                &self.server_errors,
            ),
            (
                "auth_failures",
                "Failed authentications.",
                &self.auth_failures,
            ),
        ] {
            e.counter(name, help, g(v))?;
        }
        self.connections.emit(e)
    }
}

/// Status codes as label values, without an allocation per request.
fn status_label(status: u16) -> &'static str {
    macro_rules! codes {
        ($($c:literal),*) => {
            match status {
                $($c => stringify!($c),)*
                100..=199 => "1xx",
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                _ => "5xx",
            }
        };
    }
    codes!(
        200, 204, 301, 400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 422, 429, 431, 500, 501,
        503, 504
    )
}

impl Drop for ActiveWrite<'_> {
    fn drop(&mut self) {
        self.stats.active_write_requests.fetch_sub(1, Relaxed);
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.write_request_duration_ns.fetch_add(ns, Relaxed);
    }
}

/// Registers hinted handoff's queues and counters (`sundial_hh_…`): depth, bytes
/// and oldest age per node; hints enqueued, delivered, dropped (expired, refused by
/// the node) and writes refused because a queue was full.
pub fn register_handoff(registry: &mut Registry, hh: Arc<sundial_cluster::handoff::HintedHandoff>) {
    let reg = registry.sub_registry_with_prefix("hh");
    reg.register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
        let c = &hh.counters;
        for (name, help, v) in [
            (
                "enqueued",
                "Hints queued for unreachable owners.",
                &c.enqueued,
            ),
            ("delivered", "Hints delivered to their node.", &c.delivered),
            (
                "dropped_expired",
                "Hints dropped because they were older than max-age.",
                &c.dropped_expired,
            ),
            (
                "dropped_rejected",
                "Hints dropped because their node refused them for good, or damaged on disk.",
                &c.dropped_rejected,
            ),
            (
                "refused_full",
                "Writes refused because a node's queue was at max-size.",
                &c.refused_full,
            ),
        ] {
            e.counter(name, help, v.load(Relaxed))?;
        }
        let stats = hh.stats();
        let nodes: Vec<String> = stats.iter().map(|s| s.node.to_string()).collect();
        let rows = |f: fn(&sundial_cluster::handoff::QueueStats) -> f64| {
            nodes
                .iter()
                .zip(&stats)
                .map(move |(n, s)| (n.as_str(), f(s)))
        };
        e.gauges(
            "queue_records",
            "Hints waiting for a node.",
            "node",
            rows(|s| s.records as f64),
        )?;
        e.gauges(
            "queue_bytes",
            "Bytes of hints waiting for a node.",
            "node",
            rows(|s| s.bytes as f64),
        )?;
        e.gauges(
            "queue_oldest_age_seconds",
            "Age of a node's oldest waiting hint.",
            "node",
            rows(|s| s.oldest_age_ms as f64 / 1000.0),
        )
    })));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_writes_and_requests_are_tracked_and_encoded() {
        let s = Arc::new(HttpStats::default());
        let mut reg = sundial_common::metrics::registry();
        s.register(&mut reg);
        {
            let _w = s.begin_write();
            assert_eq!(s.active_write_requests.load(Relaxed), 1);
        }
        assert_eq!(s.active_write_requests.load(Relaxed), 0);
        s.points_written_ok.fetch_add(5, Relaxed);
        let post = axum::http::Method::POST;
        s.observe_request("/write", &post, 204, Duration::from_millis(2));
        s.observe_request("/write", &post, 299, Duration::from_millis(2));
        let out = sundial_common::metrics::encode(&reg);
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
        assert!(
            out.contains(
                "sundial_http_request_duration_seconds_count{route=\"/write\",method=\"POST\",status=\"204\"} 1\n"
            ),
            "{out}"
        );
        assert!(out.contains("status=\"2xx\"} 1\n"), "{out}");
    }
}
