//! Sundial's HTTP/1.1 listener: our own accept loop over hyper, so that a
//! hostile or careless client cannot take a node down (issue 10).
//!
//! * a new connection must send its first request head within
//!   `header_read_timeout`; a kept-alive one may wait `idle_timeout` for its next
//!   request, and from the first byte of a head has `header_read_timeout` again.
//!   Slow senders and silent sockets are closed, whatever they drip;
//! * at most `max_connections` are open: a new one closes the idle connection
//!   the timeouts would close first (silent and part-way ones long before
//!   kept-alive ones); when every connection is serving a request the new one
//!   gets a 503 and is closed;
//! * request heads over `max_header_size` get hyper's 431;
//! * a request in the service is never interrupted (its body and write have
//!   their own timeouts in the service); on shutdown, idle connections are closed
//!   at once and the others after their response.
//!
//! One reaper task checks the timeouts a few times a second from plain atomics
//! each connection updates (`registry`); there is no timer per connection.
//! Generic over any `tower` service, so every listener of a node (HTTP API,
//! later metrics and gRPC) gets the same protection.

mod page;
mod probe;
mod registry;
mod stats;
mod track;

pub use page::serve_metrics;
pub use probe::{health_command, probe};
pub use stats::ConnStats;
pub use track::TrackedBody;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use registry::{Admit, Registry};
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use track::{BoxError, TrackedIo, TrackedService};

/// The listener's limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time to send a whole request head: from accept for the first request,
    /// from its first byte for later ones.
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once (at least 1); see [`auto_max_connections`].
    pub max_connections: usize,
    /// Largest request head (request line and headers), bytes.
    pub max_header_size: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            // Longer than the 90 s Go's HTTP clients (Telegraf, Grafana) keep
            // idle connections, so that they close first: a server closing a
            // connection the client is about to reuse fails that request. An
            // idle connection costs a descriptor and a few KiB, and the cap
            // evicts idle ones first when descriptors get short.
            idle_timeout: Duration::from_secs(120),
            max_connections: AUTO_CAP,
            max_header_size: 64 << 10,
        }
    }
}

/// Most connections [`auto_max_connections`] allows.
const AUTO_CAP: usize = 4096;

/// `max_connections` for a process allowed `soft_limit` open files (`None`:
/// unlimited): a quarter, between 16 and 4096. The rest belong to the shards'
/// WAL segments and data files, the meta store and the listeners.
pub fn max_connections_for(soft_limit: Option<u64>) -> usize {
    match soft_limit {
        None => AUTO_CAP,
        Some(n) => usize::try_from(n / 4)
            .unwrap_or(AUTO_CAP)
            .clamp(16, AUTO_CAP),
    }
}

/// [`max_connections_for`] this process's soft limit on open files (call it
/// after raising that limit).
pub fn auto_max_connections() -> usize {
    #[cfg(unix)]
    {
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        max_connections_for(lim.current)
    }
    #[cfg(not(unix))]
    {
        AUTO_CAP
    }
}

/// What a refused connection reads before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Retry-After: 1\r\nConnection: close\r\nContent-Length: 50\r\n\r\n\
{\"error\":\"server is overloaded: too many clients\"}";

/// hyper's default read buffer (8 KiB + 100 × 4 KiB); heads may not outgrow it.
const DEFAULT_MAX_BUF: usize = 8192 + 4096 * 100;

/// Serves `service` on `listener` until `shutdown` resolves, then stops
/// accepting, closes idle connections, lets requests in progress finish and
/// returns. Accept errors (such as running out of descriptors) are logged and
/// retried with a back-off, never returned.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    opts: ServeOptions,
    stats: Arc<ConnStats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let registry = Arc::new(Registry::new(
        stats,
        opts.header_read_timeout,
        opts.idle_timeout,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender: `recv` ends when the last is gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let reaper = tokio::spawn(reap(registry.clone(), opts.clone(), stop_rx.clone()));
    let mut h1 = http1::Builder::new();
    h1.keep_alive(true)
        // Ours, from the registry: hyper's needs a timer per connection.
        .header_read_timeout(None)
        .max_header_size(opts.max_header_size);
    if opts.max_header_size >= DEFAULT_MAX_BUF {
        h1.max_buf_size(opts.max_header_size + 8192);
    }
    let h1 = Arc::new(h1);

    tokio::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) => {
                registry.stats.accept_errors.fetch_add(1, Relaxed);
                if is_connection_error(&e) {
                    continue;
                }
                // Out of descriptors the pending connection stays queued and
                // accept fails again at once: wait, and free a descriptor.
                let evicted = is_fd_exhaustion(&e) && registry.evict_one();
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tracing::warn!(error = %e, ?backoff, evicted, "accept failed");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => continue,
                }
            }
        };
        registry.stats.accepted.fetch_add(1, Relaxed);
        let conn = match registry.admit(opts.max_connections) {
            Admit::Yes(conn) => conn,
            Admit::Full => {
                registry.stats.refused.fetch_add(1, Relaxed);
                // Best effort and never waiting: the socket closes either way.
                let _ = stream.try_write(REFUSED);
                continue;
            }
        };
        // Responses are written whole; Nagle would only delay their last bytes.
        let _ = stream.set_nodelay(true);
        registry.stats.open.fetch_add(1, Relaxed);
        let task = ConnTask {
            registry: registry.clone(),
            conn: conn.clone(),
            _alive: alive_tx.clone(),
        };
        let (h1, service, stop) = (h1.clone(), service.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let io = TokioIo::new(TrackedIo {
                inner: stream,
                conn: conn.clone(),
            });
            let svc = TrackedService {
                inner: service,
                conn: conn.clone(),
            };
            let hconn = h1.serve_connection(io, svc);
            drive(hconn, &task, stop).await;
        });
    }

    // Drain: no new connections, idle ones closed now and by every reaper tick,
    // the rest told to close after their response.
    drop(listener);
    let _ = stop_tx.send(true);
    registry.reap(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    reaper.abort();
    Ok(())
}

/// Runs one connection until it ends, is closed by the registry (dropping it
/// closes the socket at once), or is shut down gracefully.
async fn drive<S, B>(
    hconn: http1::Connection<TokioIo<TrackedIo>, TrackedService<S>>,
    task: &ConnTask,
    mut stop: watch::Receiver<bool>,
) where
    TrackedService<S>: hyper::service::Service<
        Request<Incoming>,
        Response = Response<TrackedBody<B>>,
        Error = BoxError,
    >,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    tokio::pin!(hconn);
    let graceful = tokio::select! {
        r = hconn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            false
        }
        _ = task.conn.closed() => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    if graceful {
        // hyper closes an idle connection now, a busy one after its response.
        hconn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = hconn.as_mut() => {}
            _ = task.conn.closed() => {}
        }
    }
}

/// Deregisters its connection when the connection's task ends, however it ends.
struct ConnTask {
    registry: Arc<Registry>,
    conn: Arc<registry::Conn>,
    _alive: mpsc::Sender<()>,
}

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.registry.remove(&self.conn);
        self.registry.stats.open.fetch_sub(1, Relaxed);
    }
}

async fn reap(registry: Arc<Registry>, opts: ServeOptions, stop: watch::Receiver<bool>) {
    // A few checks per shortest timeout: a timed-out connection lives at most
    // a quarter longer than its timeout.
    let shortest = opts.header_read_timeout.min(opts.idle_timeout);
    let every = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let draining = *stop.borrow();
        let n = registry.reap(draining);
        if n > 0 {
            tracing::debug!(closed = n, draining, "reaped connections");
        }
    }
}

/// Errors of one connection that went away before it was accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// EMFILE / ENFILE (and ENOBUFS / ENOMEM): no descriptor or memory for a new
/// socket.
fn is_fd_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        matches!(
            Errno::from_io_error(e),
            Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_cap_is_a_quarter_of_the_descriptors_within_bounds() {
        assert_eq!(max_connections_for(Some(1024)), 256);
        assert_eq!(max_connections_for(Some(20)), 16);
        assert_eq!(max_connections_for(Some(1 << 20)), 4096);
        assert_eq!(max_connections_for(None), 4096);
        assert!(auto_max_connections() >= 16);
    }

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(REFUSED).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{text}"
        );
    }
}
