//! Latency of every gRPC call a server answers, by service, method and status
//! code: a tower layer in front of a tonic server.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{LatencyFamily, Registry};

/// Label sets are capped so that calls to made-up paths cannot grow the family
/// without bound; past the cap unknown methods are counted as `other`.
const MAX_LABEL_SETS: usize = 512;

type Labels = [(&'static str, String); 3];

/// `sundial_grpc_server_duration_seconds{service, method, code}`.
#[derive(Debug, Clone, Default)]
pub struct GrpcMetrics {
    durations: LatencyFamily<Labels>,
    /// Label sets created (about: two first calls may race).
    label_sets: Arc<AtomicUsize>,
}

impl GrpcMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "grpc_server_duration_seconds",
            "Time to answer gRPC calls, by service, method and status code \
             (count: calls answered)",
            self.durations.clone(),
        );
    }

    pub fn layer(&self) -> GrpcMetricsLayer {
        GrpcMetricsLayer(self.clone())
    }

    /// Records one call to `path` (`/package.Service/Method`).
    pub fn observe(&self, path: &str, code: tonic::Code, took: Duration) {
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .unwrap_or(("other", "other"));
        let mut labels: Labels = [
            ("service", service.to_string()),
            ("method", method.to_string()),
            ("code", code_name(code).to_string()),
        ];
        if !self.durations.contains(&labels)
            && self.label_sets.fetch_add(1, Relaxed) >= MAX_LABEL_SETS
        {
            labels[0].1 = "other".into();
            labels[1].1 = "other".into();
        }
        self.durations.observe(&labels, took);
    }
}

/// gRPC's canonical code names, as grpc-go and its Prometheus middleware print them.
fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match c {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// The tower layer: `Server::builder().layer(metrics.layer())`.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer(GrpcMetrics);

impl<S> tower_layer::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        ResponseFuture {
            path: req.uri().path().to_string(),
            start: Instant::now(),
            metrics: self.metrics.clone(),
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        path: String,
        start: Instant,
        metrics: GrpcMetrics,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        // A unary call that fails is answered "trailers-only": its status is in
        // the headers. One that succeeds carries `grpc-status: 0` in trailers
        // after the body, which this layer does not wait for.
        let code = match &out {
            Ok(resp) => resp
                .headers()
                .get("grpc-status")
                .map_or(tonic::Code::Ok, |v| tonic::Code::from_bytes(v.as_bytes())),
            Err(_) => tonic::Code::Unknown,
        };
        this.metrics.observe(this.path, code, this.start.elapsed());
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_labelled_by_method_and_code_and_bounded() {
        let m = GrpcMetrics::default();
        let mut reg = super::super::registry();
        m.register(&mut reg);
        m.observe(
            "/sundial.store.Store/WriteToShard",
            tonic::Code::Ok,
            Duration::from_millis(3),
        );
        m.observe(
            "/sundial.store.Store/WriteToShard",
            tonic::Code::Unavailable,
            Duration::from_millis(100),
        );
        for i in 0..2 * MAX_LABEL_SETS {
            m.observe(
                &format!("/x.Y/M{i}"),
                tonic::Code::Unimplemented,
                Duration::ZERO,
            );
        }
        let text = super::super::encode(&reg);
        assert!(
            text.contains(
                "sundial_grpc_server_duration_seconds_count{service=\"sundial.store.Store\",method=\"WriteToShard\",code=\"OK\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("code=\"Unavailable\"} 1\n"), "{text}");
        let sets = text
            .lines()
            .filter(|l| l.starts_with("sundial_grpc_server_duration_seconds_count"))
            .count();
        assert!(sets <= MAX_LABEL_SETS + 1, "{sets}");
        assert!(text.contains("service=\"other\",method=\"other\",code=\"Unimplemented\"}"));
    }
}
