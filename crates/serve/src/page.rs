//! A small listener for `GET /metrics` and `GET /health`: stores and meta have
//! no HTTP API of their own, so their Prometheus metrics and container health
//! checks get this (with the same connection limits as every listener). It
//! starts once the process is ready (a store has registered with meta), so
//! `/health` answering means ready.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::{serve, ConnStats, ServeOptions};

use sundial_common::metrics::{self, Registry};

#[derive(Clone)]
struct Page {
    registry: Arc<Registry>,
}

impl tower_service::Service<Request<Incoming>> for Page {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let mut resp = Response::new(String::new());
        let path = req.uri().path();
        if path != "/metrics" && path != "/health" {
            *resp.status_mut() = StatusCode::NOT_FOUND;
        } else if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        } else if path == "/health" {
            *resp.body_mut() = "{\"status\":\"pass\"}".into();
        } else {
            *resp.body_mut() = metrics::encode(&self.registry);
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
        }
        ready(Ok(resp))
    }
}

/// Binds `addr` and serves `GET /metrics` (the registry as Prometheus text) and
/// `GET /health` for as long as the runtime runs (a store's close stays
/// observable); returns the bound address, `None` when `addr` is empty (no
/// listener configured).
pub async fn serve_metrics(addr: &str, registry: Registry) -> std::io::Result<Option<SocketAddr>> {
    if addr.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("binding the metrics listener {addr}: {e}"),
        )
    })?;
    let bound = listener.local_addr()?;
    let opts = ServeOptions {
        max_connections: 64,
        ..ServeOptions::default()
    };
    let page = Page {
        registry: Arc::new(registry),
    };
    tokio::spawn(async move {
        let stats = Arc::new(ConnStats::default());
        let forever = std::future::pending();
        if let Err(e) = serve(listener, page, opts, stats, forever).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Ok(Some(bound))
}
