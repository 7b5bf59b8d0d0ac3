//! A small listener for one page, `GET /metrics`: stores and meta have no HTTP
//! API of their own, so their Prometheus metrics get this (with the same
//! connection limits as every listener).

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::{serve, ConnStats, ServeOptions};

/// Renders the page's body (called per request).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct Page {
    render: Render,
    content_type: &'static str,
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
        if req.uri().path() != "/metrics" {
            *resp.status_mut() = StatusCode::NOT_FOUND;
        } else if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
            *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        } else {
            *resp.body_mut() = (self.render)();
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(self.content_type),
            );
        }
        ready(Ok(resp))
    }
}

/// Binds `addr` and serves `GET /metrics` with `render`'s text until `stop`
/// resolves; returns the bound address.
pub async fn serve_metrics(
    addr: &str,
    render: Render,
    content_type: &'static str,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let opts = ServeOptions {
        max_connections: 64,
        ..ServeOptions::default()
    };
    let page = Page {
        render,
        content_type,
    };
    tokio::spawn(async move {
        let stats = Arc::new(ConnStats::default());
        if let Err(e) = serve(listener, page, opts, stats, stop).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Ok(bound)
}
