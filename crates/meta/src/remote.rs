//! The remote [`MetaTransport`]: gRPC to a `sundial-meta` server.
//!
//! The channel connects lazily and reconnects by itself; the
//! [`MetaClient`](crate::MetaClient) bounds every call with its request timeout. Errors come back as
//! the exact [`Error`] the server produced (JSON in the status details).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sundial_common::secret::SecretInterceptor;
use sundial_proto::meta as pb;
use sundial_proto::meta::meta_service_client::MetaServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::client::{MetaTransport, RawEvent, RawWatchStream};
use crate::error::{Error, Result};

type Client = MetaServiceClient<InterceptedService<Channel, SecretInterceptor>>;

/// gRPC transport to `sundial-meta`.
#[derive(Debug, Clone)]
pub struct RemoteTransport {
    client: Client,
    endpoint: String,
}

fn status(s: tonic::Status) -> Error {
    Error::from_status(&s)
}

impl RemoteTransport {
    /// A transport to `endpoints`: one `http://host:port` (or `host:port`), or several
    /// separated by commas — then requests are balanced over the servers that are up,
    /// so one `sundial-meta` going away does not interrupt the client. Does not connect
    /// yet: the first call does, and later calls reconnect as needed.
    pub fn connect(endpoints: &str) -> Result<Self> {
        Self::connect_with(endpoints, None, None)
    }

    /// Like [`RemoteTransport::connect`], sending the cluster's shared secret with
    /// every call, and over TLS verified against `tls_ca` (PEM) when given.
    pub fn connect_with(
        endpoints: &str,
        secret: Option<&str>,
        tls_ca: Option<&[u8]>,
    ) -> Result<Self> {
        let interceptor = SecretInterceptor::new(secret).map_err(Error::InvalidArgument)?;
        let scheme = if tls_ca.is_some() { "https" } else { "http" };
        let mut eps = Vec::new();
        for e in endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let url = if e.contains("://") {
                e.to_string()
            } else {
                format!("{scheme}://{e}")
            };
            let mut ep = Endpoint::from_shared(url)
                .map_err(|err| Error::InvalidArgument(format!("bad meta endpoint {e:?}: {err}")))?;
            if let Some(ca) = tls_ca {
                let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
                ep = ep
                    .tls_config(tls)
                    .map_err(|err| Error::InvalidArgument(format!("TLS for {e:?}: {err}")))?;
            }
            let ep = ep
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(3))
                .keep_alive_while_idle(true);
            eps.push(ep);
        }
        let channel = match eps.len() {
            0 => return Err(Error::InvalidArgument("no meta endpoint given".into())),
            1 => eps.remove(0).connect_lazy(),
            _ => Channel::balance_list(eps.into_iter()),
        };
        Ok(RemoteTransport {
            client: MetaServiceClient::with_interceptor(channel, interceptor),
            endpoint: endpoints.to_string(),
        })
    }

    /// The server address(es), as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn c(&self) -> Client {
        self.client.clone()
    }
}

#[async_trait]
impl MetaTransport for RemoteTransport {
    fn name(&self) -> &'static str {
        "remote"
    }

    async fn snapshot(&self) -> Result<(i64, Vec<(String, Vec<u8>)>)> {
        let r = self
            .c()
            .get_snapshot(pb::GetSnapshotRequest {})
            .await
            .map_err(status)?
            .into_inner();
        Ok((
            r.revision,
            r.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        ))
    }

    async fn watch(&self, start_revision: i64) -> Result<RawWatchStream> {
        let s = self
            .c()
            .watch(pb::WatchRequest { start_revision })
            .await
            .map_err(status)?
            .into_inner();
        Ok(s.map(|item| match item {
            Ok(r) => Ok((
                r.revision,
                r.events
                    .into_iter()
                    .map(|e| RawEvent {
                        key: e.key,
                        value: (!e.deleted).then_some(e.value),
                        revision: e.revision,
                    })
                    .collect(),
            )),
            Err(s) => Err(status(s)),
        })
        .boxed())
    }

    async fn apply(&self, cmd: pb::Command) -> Result<pb::Applied> {
        let r = self.c().apply(cmd).await.map_err(status)?;
        Ok(r.into_inner())
    }
}
