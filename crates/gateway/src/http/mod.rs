//! The routes of InfluxDB 1.x's HTTP API (seed 004): `/write`, `/api/v2/write`,
//! `/query`, `/ping`, `/health`, `/metrics`, CORS `OPTIONS`.

use crate::auth::{parse_credentials, verify_jwt, AuthError, Credentials};
use crate::body::{gunzip_bounded, BodyError};
pub use crate::config::HttpConfig;
use crate::error::{Error, Result};
use crate::query;
use crate::render::{self, StmtOut, TimeFormat};
use crate::stats::HttpStats;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use sundial_cluster::{Batch, Consistency, PointsWriter, WriteSummary};
use sundial_common::metrics::{self, Collect, Emit, Registry};
use sundial_common::telemetry;
use sundial_influxql::select::SelectStatement;
use sundial_influxql::Statement;
use sundial_lineproto::{Cursor, ParseOptions, ParsedBatch, Precision, MAX_LINE_ERRORS};
use sundial_meta::{MetaClient, UserInfo};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

mod queries;
mod write;

use queries::query_handler;
use write::{body_encoding, body_error, write_v1, write_v2, Encoding};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Query-string parameters the way InfluxDB reads them (Go's `Query().Get`): the
/// first value of a repeated key wins, and a malformed string is a JSON 400 like
/// every other error, not axum's plain-text rejection.
struct Query<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self> {
        let raw = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))?;
        let mut seen = std::collections::HashSet::new();
        let first: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();
        let again = serde_urlencoded::to_string(&first)
            .map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))?;
        serde_urlencoded::from_str(&again)
            .map(Query)
            .map_err(|e| Error::BadRequest(format!("invalid query string: {e}")))
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Gateway {
    pub meta: MetaClient,
    pub writer: PointsWriter,
    pub stats: Arc<HttpStats>,
    pub opts: HttpConfig,
    /// How SELECTs read shards; `None` where this gateway cannot read yet.
    querying: Option<Querying>,
    /// Writes past the door: reading, parsing, queued or writing. Bounds the bodies
    /// held in memory to `max-concurrent-write-limit + max-enqueued-write-limit`.
    admitted: Arc<Semaphore>,
    /// Writes in the engine. A permit lives as long as the write's work, which may
    /// outlast a request that timed out.
    write_slots: Arc<Semaphore>,
    /// What `/metrics` shows: the HTTP metrics and what the binary added.
    registry: Registry,
    health: Option<HealthCheck>,
    /// When meta was last re-read because a request named a database this
    /// gateway's cache did not know (ms since the Unix epoch).
    last_miss_refresh: std::sync::atomic::AtomicU64,
    /// The `/query` requests running (SHOW QUERIES, KILL QUERY).
    pub running: Arc<crate::running::RunningQueries>,
    /// The continuous-query service's statistics.
    pub cq: Arc<crate::cq::CqStats>,
}

pub use sundial_common::Check;

/// What SELECT needs: the shard reader and the memory one statement may hold.
#[derive(Debug, Clone)]
pub struct Querying {
    pub reader: Arc<dyn sundial_query::ShardReader>,
    /// Bytes (0: no limit).
    pub memory_limit: usize,
    /// How long one `/query` request may run (zero: no limit).
    pub timeout: std::time::Duration,
    /// GROUP BY time() windows one SELECT may make (0: no limit).
    pub max_buckets: usize,
    /// Points one SELECT may read (0: no limit).
    pub max_points: usize,
    /// Series one SELECT may read from one shard (0: no limit).
    pub max_series: usize,
    /// Queries running longer are logged when they end (zero: none).
    pub log_after: std::time::Duration,
}

impl Querying {
    /// The `[coordinator]` settings of a query: its limits and slow-query log.
    pub fn new(
        reader: Arc<dyn sundial_query::ShardReader>,
        c: &sundial_cluster::CoordinatorConfig,
    ) -> Querying {
        Querying {
            reader,
            memory_limit: c.query_memory_limit,
            timeout: c.query_timeout,
            max_buckets: c.max_select_buckets,
            max_points: c.max_select_point,
            max_series: c.max_select_series,
            log_after: c.log_queries_after,
        }
    }
}

/// Checks added to `/health` (the storage's disk space and degraded shards). Any
/// `fail` makes the answer 503; `warn` keeps 200.
#[derive(Clone)]
pub struct HealthCheck(pub Arc<dyn Fn() -> Vec<Check> + Send + Sync>);

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthCheck")
    }
}

impl Gateway {
    pub fn new(
        meta: MetaClient,
        writer: PointsWriter,
        opts: HttpConfig,
        mut registry: Registry,
        health: Option<HealthCheck>,
        querying: Option<Querying>,
    ) -> Arc<Self> {
        let stats = Arc::new(HttpStats::default());
        stats.register(&mut registry);
        let cq = Arc::new(crate::cq::CqStats::default());
        cq.register(&mut registry);
        // Admission places in use: what max-concurrent + max-enqueued bound, and
        // what a 503 "too many writes in flight" means.
        let places = opts.max_concurrent_write_limit.max(1) + opts.max_enqueued_write_limit;
        let admitted = Arc::new(Semaphore::new(places));
        let in_use = admitted.clone();
        registry
            .sub_registry_with_prefix("http")
            .register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
                let used = places.saturating_sub(in_use.available_permits());
                e.gauge(
                    "write_requests_admitted",
                    "Write requests holding an admission place (reading, parsing or writing).",
                    i64::try_from(used).unwrap_or(i64::MAX),
                )
            })));
        Arc::new(Gateway {
            meta,
            writer,
            stats,
            querying,
            admitted,
            write_slots: Arc::new(Semaphore::new(opts.max_concurrent_write_limit.max(1))),
            opts,
            registry,
            health,
            last_miss_refresh: std::sync::atomic::AtomicU64::new(0),
            running: Arc::default(),
            cq,
        })
    }

    /// Whether `db` exists. A database another gateway created a moment ago may not
    /// have reached this cache yet: meta is re-read once before answering 404, at
    /// most once a second, so requests for databases that do not exist cannot
    /// flood meta.
    pub async fn database_exists(&self, db: &str) -> bool {
        if self.meta.snapshot().databases.contains_key(db) {
            return true;
        }
        let now = sundial_meta::now_ns() as u64 / 1_000_000;
        let last = self.last_miss_refresh.load(Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_miss_refresh
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
            && self.meta.refresh().await.is_ok()
        {
            return self.meta.snapshot().databases.contains_key(db);
        }
        false
    }
}

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/write", post(write_v1).options(options))
        .route("/api/v2/write", post(write_v2).options(options))
        .route(
            "/query",
            get(query_handler).post(query_handler).options(options),
        )
        .route("/ping", get(ping).head(ping))
        .route("/health", get(health_handler))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            common_headers,
        ))
        .with_state(gw)
}

/// Version, build and request-id headers on every response; status counters;
/// the URL length limit, before any handler reads the query string. Each request
/// runs in a span (`http.write`, `http.query`, …) that joins the caller's trace
/// when it sends `traceparent`; log lines inside it carry its `request_id` (the
/// `Request-Id` header) and, when traced, its `trace_id`.
async fn common_headers(
    State(gw): State<Arc<Gateway>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Probes and scrapes are not traces of their own (they would use up the
    // budget of sampled traces); writes and queries are.
    let started = Instant::now();
    let (name, route) = route_name(req.uri().path());
    let method = req.method().clone();
    let span = if matches!(name, "http.write" | "http.query") {
        tracing::info_span!(
            "http.request",
            otel.name = name,
            otel.kind = "server",
            http.method = %req.method(),
            http.status_code = tracing::field::Empty,
            request_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        )
    } else {
        tracing::debug_span!(
            "http.request",
            otel.name = name,
            http.method = %req.method(),
            http.status_code = tracing::field::Empty,
            request_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        )
    };
    telemetry::set_parent(&span, telemetry::extract(req.headers()), false);
    // InfluxDB's request id, unique per request; the trace id is logged beside it.
    let request_id = uuid::Uuid::new_v4().to_string();
    span.record("request_id", request_id.as_str());
    if let Some(t) = telemetry::trace_id(&span) {
        span.record("trace_id", t.as_str());
    }
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let limit = gw.opts.max_url_size;
    let mut resp = if len > limit {
        Error::UriTooLong { len, limit }.into_response()
    } else {
        next.run(req).instrument(span.clone()).await
    };
    let status = resp.status().as_u16();
    span.record("http.status_code", status);
    gw.stats
        .observe_request(route, &method, status, started.elapsed());
    if (400..500).contains(&status) {
        gw.stats.client_errors.fetch_add(1, Relaxed);
    } else if status >= 500 {
        gw.stats.server_errors.fetch_add(1, Relaxed);
    }
    let h = resp.headers_mut();
    h.insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
    h.insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("Request-Id", v.clone());
        h.insert("X-Request-Id", v);
    }
    h.insert("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
    resp
}

/// The span name of a route, as Jaeger lists it, and its `route` label in
/// metrics (a fixed set: made-up paths must not grow the label values).
fn route_name(path: &str) -> (&'static str, &'static str) {
    match path {
        "/write" => ("http.write", "/write"),
        "/api/v2/write" => ("http.write", "/api/v2/write"),
        "/query" => ("http.query", "/query"),
        "/ping" => ("http.ping", "/ping"),
        "/health" => ("http.health", "/health"),
        "/metrics" => ("http.metrics", "/metrics"),
        _ => ("http.other", "other"),
    }
}

/// InfluxDB's error body `{"error":"…"}` with the same text in `X-Influxdb-Error`.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let text = self.to_string();
        // Go's JSON (`<` written `\u003c`, …), ending in a newline as InfluxDB's.
        let body = render::error_body(&text, false);
        let mut resp = (status, [("Content-Type", "application/json")], body).into_response();
        let h = resp.headers_mut();
        // Header values cannot hold newlines (multi-line parse errors): keep the first line.
        let first = text.lines().next().unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(first) {
            h.insert("X-Influxdb-Error", v);
        }
        if let Some(s) = self.retry_after() {
            h.insert("Retry-After", HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                "WWW-Authenticate",
                HeaderValue::from_static("Basic realm=\"InfluxDB\""),
            );
        }
        resp
    }
}

async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        "Access-Control-Allow-Methods",
        HeaderValue::from_static("DELETE, GET, OPTIONS, POST, PUT"),
    );
    h.insert(
        "Access-Control-Allow-Headers",
        HeaderValue::from_static(
            "Accept, Accept-Encoding, Authorization, Content-Length, Content-Type, User-Agent",
        ),
    );
    r
}

#[derive(Debug, Deserialize, Default)]
struct PingParams {
    verbose: Option<String>,
}

async fn ping(Query(p): Query<PingParams>, method: Method) -> Response {
    let verbose =
        matches!(p.verbose.as_deref(), Some(v) if !v.is_empty() && v != "0" && v != "false");
    if verbose && method == Method::GET {
        return (StatusCode::OK, axum::Json(json!({ "version": VERSION }))).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn health_handler(State(gw): State<Arc<Gateway>>) -> Response {
    let checks = gw.health.as_ref().map_or_else(Vec::new, |h| (h.0)());
    let worst = |s: &str| checks.iter().any(|c| c.status == s);
    let (status, code, message) = if worst("fail") {
        let why: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == "fail")
            .map(|c| c.message.as_str())
            .collect();
        (
            "fail",
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready for writes: {}", why.join("; ")),
        )
    } else if worst("warn") {
        (
            "warn",
            StatusCode::OK,
            "ready for queries and writes, with warnings".to_string(),
        )
    } else {
        (
            "pass",
            StatusCode::OK,
            "ready for queries and writes".to_string(),
        )
    };
    (
        code,
        axum::Json(json!({
            "name": "sundial",
            "message": message,
            "status": status,
            "checks": checks,
            "version": VERSION,
        })),
    )
        .into_response()
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [("Content-Type", metrics::CONTENT_TYPE)],
        metrics::encode(&gw.registry),
    )
        .into_response()
}

// ------------------------------------------------------------------ auth

impl Gateway {
    /// Who is calling; `None` when authentication is off.
    async fn authenticate(
        &self,
        u: Option<&str>,
        p: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<UserInfo>> {
        if !self.opts.auth_enabled {
            return Ok(None);
        }
        if !self.admin_exists() {
            // Bootstrap: callers then allow only the statement creating the admin.
            return Ok(None);
        }
        let header = headers.get("Authorization").and_then(|v| v.to_str().ok());
        let fail = |e: AuthError| {
            self.stats.auth_failures.fetch_add(1, Relaxed);
            Error::Auth(e)
        };
        let user = match parse_credentials(u, p, header).map_err(fail)? {
            Credentials::UserPassword { user, password } => self
                .meta
                .authenticate(&user, &password)
                .await
                .map_err(|_| fail(AuthError::Failed))?,
            Credentials::Bearer(token) => {
                let now = sundial_meta::now_ns() / 1_000_000_000;
                let name = verify_jwt(&token, &self.opts.shared_secret, now).map_err(fail)?;
                self.meta
                    .user(&name)
                    .ok_or_else(|| fail(AuthError::Failed))?
            }
        };
        Ok(Some(user))
    }

    fn admin_exists(&self) -> bool {
        // Reads the shared snapshot: no copy of the users per request.
        self.meta.snapshot().users.values().any(|u| u.admin)
    }

    /// InfluxDB's bootstrap rule: with auth on and no admin yet, nothing but
    /// creating that admin is allowed.
    fn require_admin_exists(&self) -> Result<()> {
        if self.opts.auth_enabled && !self.admin_exists() {
            return Err(Error::Forbidden(
                "error authorizing query: create admin user first or disable authentication".into(),
            ));
        }
        Ok(())
    }
}
