//! Prometheus metrics on `prometheus-client`: every service builds one
//! [`Registry`] (prefix `sundial`), registers its metrics and collectors, and
//! serves [`encode`]'s Prometheus text (format 0.0.4, what `promtool` and every
//! scraper read) at `/metrics`.
//!
//! Counters that already live as atomics in the crates that count them (the
//! engine, the connection registry, hinted handoff) are read at scrape time by
//! [`Collector`]s writing through [`Emit`]; latencies are real histograms
//! ([`Latency`]), observed where the work happens. (`Registry::register` ends
//! help texts with a period itself; [`Emit`] writes them as given.)

use std::fmt;
use std::time::Duration;

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

#[cfg(feature = "grpc-metrics")]
mod grpc;
#[cfg(feature = "grpc-metrics")]
pub use grpc::{GrpcMetrics, GrpcMetricsLayer};

/// `Content-Type` of the text [`encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A registry whose metrics are all named `sundial_…`.
pub fn registry() -> Registry {
    Registry::with_prefix("sundial")
}

/// The registry as Prometheus text.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail; a collector's own error would leave a
    // truncated page, which the scraper reports.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        out.push_str(&format!("# encoding failed: {e}\n"));
    }
    out
}

/// Bucket bounds for latencies, 100 µs to 50 s in 1-2-5 steps: wide enough for an
/// fsync on a fast disk and a compaction of a large shard, and bounds that read
/// well (`le="0.005"`, not a float's rounding of 0.0001·2⁵).
const LATENCY_BUCKETS: [f64; 18] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    10.0, 20.0, 50.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A latency histogram in seconds with [`LATENCY_BUCKETS`]. Clones share it.
#[derive(Debug, Clone)]
pub struct Latency(pub Histogram);

impl Default for Latency {
    fn default() -> Self {
        Latency(latency_histogram())
    }
}

impl Latency {
    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// A latency histogram per label set, registered like any metric. Clones share it.
#[derive(Debug)]
pub struct LatencyFamily<S>(Family<S, Histogram, fn() -> Histogram>);

impl<S> Clone for LatencyFamily<S> {
    fn clone(&self) -> Self {
        LatencyFamily(self.0.clone())
    }
}

impl<S: Clone + std::hash::Hash + Eq> Default for LatencyFamily<S> {
    fn default() -> Self {
        LatencyFamily(Family::new_with_constructor(latency_histogram))
    }
}

impl<S: Clone + std::hash::Hash + Eq> LatencyFamily<S> {
    pub fn observe(&self, labels: &S, d: Duration) {
        self.0.get_or_create(labels).observe(d.as_secs_f64());
    }

    /// Whether `labels` has a histogram yet.
    pub fn contains(&self, labels: &S) -> bool {
        self.0.get(labels).is_some()
    }
}

impl<S: Clone + std::hash::Hash + Eq + EncodeLabelSet> EncodeMetric for LatencyFamily<S> {
    fn encode(&self, encoder: MetricEncoder<'_>) -> fmt::Result {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes metrics read at scrape time, for a [`Collector`]. Names have no prefix
/// and no `_total` (the registry adds `sundial_`, counters get `_total`).
pub struct Emit<'a>(pub DescriptorEncoder<'a>);

impl fmt::Debug for Emit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Emit")
    }
}

impl Emit<'_> {
    pub fn counter(&mut self, name: &str, help: &str, v: u64) -> fmt::Result {
        self.metric(name, help, &ConstCounter::new(v))
    }

    pub fn counter_f64(&mut self, name: &str, help: &str, v: f64) -> fmt::Result {
        self.metric(name, help, &ConstCounter::new(v))
    }

    pub fn gauge(&mut self, name: &str, help: &str, v: i64) -> fmt::Result {
        self.metric(name, help, &ConstGauge::new(v))
    }

    pub fn gauge_f64(&mut self, name: &str, help: &str, v: f64) -> fmt::Result {
        self.metric(name, help, &ConstGauge::new(v))
    }

    /// One gauge per value of `label`.
    pub fn gauges<'r>(
        &mut self,
        name: &str,
        help: &str,
        label: &'static str,
        rows: impl IntoIterator<Item = (&'r str, f64)>,
    ) -> fmt::Result {
        let mut m = self.0.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (value, v) in rows {
            let labels = [(label, value)];
            ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// A metric owned elsewhere (a [`Histogram`] …).
    pub fn metric(&mut self, name: &str, help: &str, m: &impl EncodeMetric) -> fmt::Result {
        let enc = self
            .0
            .encode_descriptor(name, help, None, m.metric_type())?;
        m.encode(enc)
    }
}

/// A [`Collector`] from a closure: `Collect(|e| { e.counter(…)?; Ok(()) })`.
pub struct Collect<F>(pub F);

impl<F> fmt::Debug for Collect<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Collect")
    }
}

impl<F> Collector for Collect<F>
where
    F: Fn(&mut Emit<'_>) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        (self.0)(&mut Emit(encoder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectors_and_histograms_encode_as_prometheus_text() {
        let mut reg = registry();
        let lat = Latency::default();
        lat.observe(Duration::from_millis(3));
        lat.observe(Duration::from_secs(100));
        reg.register("wal_fsync_duration_seconds", "Fsyncs", lat.0.clone());
        reg.register_collector(Box::new(Collect(|e: &mut Emit<'_>| {
            e.counter("points_written", "Points.", 7)?;
            e.gauge("shards", "Shards.", 2)?;
            e.gauges("series", "Series.", "database", [("a\"b", 3.0), ("c", 4.0)])
        })));
        let text = encode(&reg);
        assert!(
            text.contains("# TYPE sundial_points_written_total counter\n"),
            "{text}"
        );
        assert!(text.contains("sundial_points_written_total 7\n"), "{text}");
        assert!(text.contains("sundial_shards 2\n"), "{text}");
        assert!(
            text.contains("sundial_series{database=\"a\\\"b\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("sundial_wal_fsync_duration_seconds_count 2\n"),
            "{text}"
        );
        // 3 ms falls in the 5 ms bucket; 100 s only in +Inf.
        assert!(
            text.contains("sundial_wal_fsync_duration_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sundial_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "Prometheus text, not OpenMetrics");
    }
}
