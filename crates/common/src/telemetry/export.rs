//! The binaries' telemetry set-up: the `tracing` subscriber (text or JSON logs,
//! level from `SUNDIAL_LOG`/`RUST_LOG`/config) and, when an OTLP endpoint is
//! configured, an OpenTelemetry layer exporting spans over OTLP/gRPC with a batch
//! processor. Sampling is parent-based with a ratio for new traces and a cap on
//! the traces per second this process starts or accepts from clients.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::{ConfigError, LogFormat, LoggingConfig, TracingConfig};

/// Traces per second this process may start or accept from clients.
#[derive(Debug)]
struct Budget {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl Budget {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        Budget {
            per_second,
            state: Mutex::new((per_second, Instant::now())),
        }
    }

    /// Takes one token (a token bucket of one second's worth).
    fn take(&self) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.per_second;
        s.0 = (s.0 + refill).min(self.per_second);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

static BUDGET: OnceLock<Budget> = OnceLock::new();

/// Whether one more trace from a client may be sampled (no exporter: no).
pub(super) fn take_trace_budget() -> bool {
    BUDGET.get().is_some_and(Budget::take)
}

/// Parent-based sampling (children follow their parent, local or from our own
/// nodes), a ratio for new traces, and the budget for every new trace.
#[derive(Debug, Clone)]
struct CappedSampler {
    inner: Sampler,
}

impl ShouldSample for CappedSampler {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let r = self
            .inner
            .should_sample(parent, trace_id, name, kind, attributes, links);
        let root = parent.is_none_or(|cx| !cx.span().span_context().is_valid());
        if root && r.decision == SamplingDecision::RecordAndSample && !take_trace_budget() {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: r.trace_state,
            };
        }
        r
    }
}

/// What [`init`] set up; [`Telemetry::shutdown`] flushes the spans still queued.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued (bounded by the exporter's timeout). Call it
    /// while the runtime that built the exporter is still alive.
    pub fn shutdown(mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "flushing spans at shutdown failed");
            }
        }
    }
}

/// Sets up logging and, with an OTLP endpoint, span export. Must run inside a
/// Tokio runtime (the gRPC exporter's channel belongs to it). `service` is the
/// binary's name, used unless the configuration names the service.
pub fn init(
    service: &str,
    logging: &LoggingConfig,
    tracing_cfg: &TracingConfig,
) -> Result<Telemetry, ConfigError> {
    let filter = || crate::process::log_filter(&logging.level);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match logging.format {
        LogFormat::Text => fmt.with_filter(filter()).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(filter())
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs);
    if tracing_cfg.otlp_endpoint.is_empty() {
        let _ = registry.try_init();
        return Ok(Telemetry { provider: None });
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(tracing_cfg.otlp_endpoint.clone())
        .build()
        .map_err(|e| ConfigError(format!("tracing.otlp-endpoint: {e}")))?;
    let name = match tracing_cfg.service_name.as_str() {
        "" => service.to_string(),
        n => n.to_string(),
    };
    let _ = BUDGET.set(Budget::new(tracing_cfg.max_traces_per_second));
    let sampler = CappedSampler {
        inner: Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            tracing_cfg.sample_ratio,
        ))),
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(Resource::builder().with_service_name(name).build())
        .build();
    let tracer = provider.tracer("sundial");
    // Spans at info and above are exported, whatever the log level.
    // No per-span timing of idle/busy time, thread or source location: work on
    // every span, sampled or not, that Jaeger does not need.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = registry.with(otel).try_init();
    super::ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// [`init`] inside `rt`, then the configuration's warnings are logged (logging is
/// only set up now, from the configuration).
pub fn start(
    service: &str,
    rt: &tokio::runtime::Runtime,
    logging: &LoggingConfig,
    tracing_cfg: &TracingConfig,
    warnings: &[String],
) -> Result<Telemetry, ConfigError> {
    let t = rt.block_on(async { init(service, logging, tracing_cfg) })?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_at_its_rate() {
        let b = Budget::new(3);
        assert!(b.take() && b.take() && b.take());
        assert!(!b.take(), "a second's worth at most");
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(b.take(), "refilled");
        assert!(Budget::new(0).take(), "0: no cap");
    }
}
