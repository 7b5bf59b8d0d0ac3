//! Traces across services: W3C trace context in and out of HTTP headers and gRPC
//! metadata, span links, trace ids for logs. Cheap without an exporter: with no
//! OpenTelemetry layer installed every call here is a no-op.
//!
//! The exporter side (subscriber, OTLP, sampling) is [`export`], behind the
//! `telemetry-export` feature, for the binaries.

#[cfg(feature = "grpc")]
use opentelemetry::propagation::Injector;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
/// A span's OpenTelemetry identity (trace id, span id, flags).
pub use opentelemetry::trace::SpanContext;
use opentelemetry::trace::{TraceContextExt, TraceFlags};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[cfg(feature = "telemetry-export")]
pub mod export;

/// Whether an OpenTelemetry layer is installed (set by [`export::init`]): without
/// one, nothing here touches spans' extensions.
static ENABLED: AtomicBool = AtomicBool::new(false);

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn propagator() -> &'static TraceContextPropagator {
    static P: OnceLock<TraceContextPropagator> = OnceLock::new();
    P.get_or_init(TraceContextPropagator::new)
}

// ------------------------------------------------------------------ carriers

struct HeaderCarrier<'a>(&'a http::HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(feature = "grpc")]
struct MetadataCarrier<'a>(&'a tonic::metadata::MetadataMap);

#[cfg(feature = "grpc")]
impl Extractor for MetadataCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(feature = "grpc")]
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

#[cfg(feature = "grpc")]
impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(k, v);
        }
    }
}

// ------------------------------------------------------------------ incoming

/// The caller's trace context from request headers (`traceparent`, `tracestate`:
/// HTTP, and gRPC metadata as its headers), or `None`.
pub fn extract(headers: &http::HeaderMap) -> Option<Context> {
    if !enabled() || !headers.contains_key("traceparent") {
        return None;
    }
    let cx = propagator().extract(&HeaderCarrier(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// The calling node's trace context from gRPC metadata, or `None`.
#[cfg(feature = "grpc")]
pub fn extract_metadata(md: &tonic::metadata::MetadataMap) -> Option<Context> {
    if !enabled() || md.get("traceparent").is_none() {
        return None;
    }
    let cx = propagator().extract(&MetadataCarrier(md));
    cx.span().span_context().is_valid().then_some(cx)
}

/// Makes `span` a child of the caller's span. `trusted` callers are our own nodes
/// (their call carried the cluster secret): they decided sampling already. A client
/// that asks for sampling gets it only while the trace budget lasts, so headers
/// cannot have every request traced.
pub fn set_parent(span: &Span, cx: Option<Context>, trusted: bool) {
    let Some(cx) = cx else { return };
    let cx = if trusted { cx } else { admit(cx) };
    // Fails only for a span already closed or without the layer: nothing to join.
    let _ = span.set_parent(cx);
}

/// Keeps a client's "sampled" flag while the budget lasts; clears it otherwise
/// (the trace id stays, for the logs).
fn admit(cx: Context) -> Context {
    let sc = cx.span().span_context().clone();
    if !sc.is_sampled() {
        return cx;
    }
    #[cfg(feature = "telemetry-export")]
    if export::take_trace_budget() {
        return cx;
    }
    let flags = sc.trace_flags() & !TraceFlags::SAMPLED;
    let unsampled = SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        flags,
        sc.is_remote(),
        sc.trace_state().clone(),
    );
    Context::new().with_remote_span_context(unsampled)
}

// ------------------------------------------------------------------ outgoing

/// Writes the current span's context into an outgoing call's metadata (the
/// cluster's client interceptor does, on every call).
#[cfg(feature = "grpc")]
pub fn inject_metadata(md: &mut tonic::metadata::MetadataMap) {
    if !enabled() {
        return;
    }
    let cx = Span::current().context();
    if cx.span().span_context().is_valid() {
        propagator().inject_context(&cx, &mut MetadataInjector(md));
    }
}

// ------------------------------------------------------------------ spans

/// The OpenTelemetry identity of a span (to link other spans to it).
pub fn span_context(span: &Span) -> Option<SpanContext> {
    if !enabled() {
        return None;
    }
    let sc = span.context().span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// Links `span` to another span (e.g. a write waiting on a group commit's fsync).
pub fn add_link(span: &Span, to: SpanContext) {
    if enabled() {
        span.add_link(to);
    }
}

/// The trace id of `span`, 32 hex digits, when it is part of a trace.
pub fn trace_id(span: &Span) -> Option<String> {
    span_context(span).map(|sc| sc.trace_id().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn without_a_layer_nothing_is_extracted() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        assert!(extract(&h).is_none());
    }

    #[test]
    fn a_clients_sampled_flag_is_cleared_when_over_budget() {
        let sc = SpanContext::new(
            opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            Default::default(),
        );
        // No exporter: no budget at all.
        let cx = admit(Context::new().with_remote_span_context(sc.clone()));
        let got = cx.span().span_context().clone();
        #[cfg(not(feature = "telemetry-export"))]
        assert!(!got.is_sampled());
        assert_eq!(got.trace_id(), sc.trace_id());
    }
}
