//! The gRPC `MetaService` (served by the `sundial-meta` binary).
//!
//! The service keeps no state of its own: reads come from the backend, and every
//! mutation is a command applied by [`MetaStore::apply`] over the backend (etcd), so
//! any number of `sundial-meta` processes can serve one etcd.

use std::net::SocketAddr;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use sundial_common::metrics::GrpcMetrics;
use sundial_common::secret::SecretCheck;
use sundial_proto::meta as pb;
use sundial_proto::meta::meta_service_server::{MetaService, MetaServiceServer};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::client::MetaTransport;
use crate::command::command_name;
use crate::error::{Error, Result};
use crate::store::MetaStore;
use sundial_common::telemetry;
use tracing::Instrument;

// ------------------------------------------------------------------ the service

/// The `MetaService` implementation over a [`MetaStore`].
#[derive(Debug, Clone)]
pub struct MetaServer {
    store: MetaStore,
    secret: Option<String>,
    /// PEM certificate and key to serve TLS with.
    tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Latency of the calls it answers (registered by the binary).
    grpc_metrics: GrpcMetrics,
}

type GrpcResult<T> = std::result::Result<Response<T>, Status>;

impl MetaServer {
    /// A service over `store`.
    pub fn new(store: MetaStore) -> Self {
        MetaServer {
            store,
            secret: None,
            tls: None,
            grpc_metrics: GrpcMetrics::default(),
        }
    }

    /// Serves over TLS with this PEM certificate (chain) and key.
    pub fn with_tls(mut self, cert: Vec<u8>, key: Vec<u8>) -> Self {
        self.tls = Some((cert, key));
        self
    }

    /// Records the latency of every call in `metrics`.
    pub fn with_metrics(mut self, metrics: GrpcMetrics) -> Self {
        self.grpc_metrics = metrics;
        self
    }

    /// Refuses calls that do not carry the cluster's shared secret.
    pub fn with_secret(mut self, secret: Option<String>) -> Self {
        self.secret = secret.filter(|s| !s.is_empty());
        self
    }

    /// The tonic service to add to a router.
    pub fn into_service(self) -> MetaServiceServer<Self> {
        MetaServiceServer::new(self)
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<()> {
        // TCP_NODELAY: a small answer must not wait ~40 ms for the client's
        // delayed ACK.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let check = SecretCheck::new(self.secret.as_deref());
        let mut builder = tonic::transport::Server::builder();
        if let Some((cert, key)) = &self.tls {
            let identity = tonic::transport::Identity::from_pem(cert, key);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(|e| Error::InvalidArgument(format!("TLS configuration: {e}")))?;
        }
        let layer = self.grpc_metrics.layer();
        builder
            .layer(layer)
            .add_service(InterceptedService::new(self.into_service(), check))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|e| Error::Internal(format!("grpc server: {e}")))
    }

    /// Binds `addr` and returns the listener with its actual address (port 0 allowed).
    pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::InvalidArgument(format!("cannot listen on {addr}: {e}")))?;
        let local = l
            .local_addr()
            .map_err(|e| Error::Internal(format!("local addr: {e}")))?;
        Ok((l, local))
    }
}

#[tonic::async_trait]
impl MetaService for MetaServer {
    async fn get_snapshot(
        &self,
        _req: Request<pb::GetSnapshotRequest>,
    ) -> GrpcResult<pb::Snapshot> {
        let (revision, kvs) = self.store.load_all().await?;
        Ok(Response::new(pb::Snapshot {
            revision,
            kvs: kvs
                .into_iter()
                .map(|(key, value)| pb::KeyValue { key, value })
                .collect(),
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = std::result::Result<pb::WatchResponse, Status>> + Send>>;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> GrpcResult<Self::WatchStream> {
        let start = req.into_inner().start_revision;
        let s = MetaTransport::watch(&self.store, start).await?;
        let s = s.map(|item| match item {
            Ok((revision, evs)) => Ok(pb::WatchResponse {
                revision,
                events: evs
                    .into_iter()
                    .map(|e| pb::WatchEvent {
                        revision: e.revision,
                        key: e.key,
                        deleted: e.value.is_none(),
                        value: e.value.unwrap_or_default(),
                    })
                    .collect(),
            }),
            Err(e) => Err(Status::from(e)),
        });
        Ok(Response::new(Box::pin(s)))
    }

    async fn apply(&self, req: Request<pb::Command>) -> GrpcResult<pb::Applied> {
        // Calls outside any trace (heartbeats) get no exported span of their own.
        let parent = telemetry::extract_metadata(req.metadata());
        let span = if parent.is_some() {
            tracing::info_span!(
                "meta.Apply",
                otel.kind = "server",
                op = tracing::field::Empty
            )
        } else {
            tracing::debug_span!(
                "meta.Apply",
                otel.kind = "server",
                op = tracing::field::Empty
            )
        };
        // Callers that proved the cluster's secret decided sampling already.
        telemetry::set_parent(&span, parent, self.secret.is_some());
        let cmd = req.into_inner();
        if let Some(op) = &cmd.op {
            span.record("op", command_name(op));
        }
        let applied = self.store.apply(cmd).instrument(span).await?;
        Ok(Response::new(applied))
    }
}
