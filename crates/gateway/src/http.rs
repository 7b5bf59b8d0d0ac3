//! The routes of InfluxDB 1.x's HTTP API (seed 004): `/write`, `/api/v2/write`,
//! `/query`, `/ping`, `/health`, `/metrics`, CORS `OPTIONS`.

use crate::auth::{parse_credentials, verify_jwt, AuthError, Credentials};
use crate::body::{gunzip_bounded, BodyError};
pub use crate::config::HttpConfig;
use crate::error::{Error, Result};
use crate::query;
use crate::render::{self, Json, StmtOut, TimeFormat};
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
}

pub use sundial_common::Check;

/// What SELECT needs: the shard reader and the memory one statement may hold.
#[derive(Debug, Clone)]
pub struct Querying {
    pub reader: Arc<dyn sundial_query::ShardReader>,
    /// Bytes (0: no limit).
    pub memory_limit: usize,
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
        let mut body = Json::Obj(vec![("error".into(), Json::Str(text.clone()))]).render(false);
        body.push('\n');
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

// ------------------------------------------------------------------ writes

#[derive(Debug, Deserialize, Default)]
struct WriteV1Params {
    db: Option<String>,
    rp: Option<String>,
    precision: Option<String>,
    consistency: Option<String>,
    u: Option<String>,
    p: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct WriteV2Params {
    bucket: Option<String>,
    precision: Option<String>,
    u: Option<String>,
    p: Option<String>,
}

async fn write_v1(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<WriteV1Params>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let precision: Precision = q.precision.as_deref().unwrap_or("").parse()?;
    let consistency = Consistency::parse(q.consistency.as_deref().unwrap_or(""))
        .ok_or(Error::InvalidConsistency)?;
    let user = gw
        .authenticate(q.u.as_deref(), q.p.as_deref(), &headers)
        .await?;
    let db = q.db.unwrap_or_default();
    let rp = q.rp.unwrap_or_default();
    serve_write(
        &gw,
        &db,
        &rp,
        precision,
        consistency,
        user.as_ref(),
        &headers,
        body,
    )
    .await
}

async fn write_v2(
    State(gw): State<Arc<Gateway>>,
    Query(q): Query<WriteV2Params>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let precision = match q.precision.as_deref().unwrap_or("ns") {
        "ns" => Precision::Nanosecond,
        "us" => Precision::Microsecond,
        "ms" => Precision::Millisecond,
        "s" => Precision::Second,
        other => {
            return Err(Error::BadRequest(format!(
                "invalid precision {other:?} (use ns, us, ms or s)"
            )))
        }
    };
    let user = gw
        .authenticate(q.u.as_deref(), q.p.as_deref(), &headers)
        .await?;
    let bucket = q.bucket.unwrap_or_default();
    let (db, rp) = bucket.split_once('/').unwrap_or((&bucket, ""));
    serve_write(
        &gw,
        db,
        rp,
        precision,
        Consistency::One,
        user.as_ref(),
        &headers,
        body,
    )
    .await
}

impl Gateway {
    /// Lets a write in, or refuses it at once when the queue is full. The permit
    /// is taken before the body is read, so slow senders count against the queue
    /// instead of piling up bodies in memory.
    fn admit(&self) -> Result<OwnedSemaphorePermit> {
        self.admitted.clone().try_acquire_owned().map_err(|_| {
            self.stats.write_rejected_overload.fetch_add(1, Relaxed);
            Error::Overloaded
        })
    }

    /// Waits (bounded) for one of the engine's write slots.
    async fn write_slot(&self) -> Result<OwnedSemaphorePermit> {
        let wait = self.write_slots.clone().acquire_owned();
        match tokio::time::timeout(self.opts.enqueued_write_timeout, wait).await {
            Ok(Ok(p)) => Ok(p),
            _ => {
                self.stats.write_rejected_overload.fetch_add(1, Relaxed);
                Err(Error::Overloaded)
            }
        }
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

/// Reads `Content-Encoding` before the body: absent, `identity` or `gzip` (any
/// case). Anything else gets 415 instead of being parsed as plain text.
fn body_encoding(headers: &HeaderMap) -> Result<Encoding> {
    let values: Vec<_> = headers.get_all("Content-Encoding").iter().collect();
    if let [one] = values[..] {
        if let Ok(v) = one.to_str() {
            let v = v.trim();
            if v.is_empty() || v.eq_ignore_ascii_case("identity") {
                return Ok(Encoding::Identity);
            }
            if v.eq_ignore_ascii_case("gzip") {
                return Ok(Encoding::Gzip);
            }
        }
    } else if values.is_empty() {
        return Ok(Encoding::Identity);
    }
    // Named in the error, cut short: the header is the client's to make long.
    let named: Vec<_> = values
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    let named: String = named.join(", ").chars().take(64).collect();
    Err(Error::UnsupportedEncoding(named))
}

/// Reads the body as sent (at most `max_body_size` bytes).
async fn read_body(gw: &Gateway, headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let limit = gw.opts.max_body_size;
    let declared = headers
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::Body(BodyError::TooLarge));
    }
    axum::body::to_bytes(body, limit).await.map_err(body_error)
}

fn body_error(e: axum::Error) -> Error {
    // The only error past the limit is "length limit exceeded".
    let text = e.to_string();
    if text.contains("length limit") {
        Error::Body(BodyError::TooLarge)
    } else {
        Error::BadRequest(text)
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_write(
    gw: &Gateway,
    db: &str,
    rp: &str,
    precision: Precision,
    consistency: Consistency,
    user: Option<&UserInfo>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let _active = gw.stats.begin_write();
    if db.is_empty() {
        return Err(Error::DatabaseRequired);
    }
    gw.require_admin_exists()?;
    if !gw.database_exists(db).await {
        return Err(Error::DatabaseNotFound(db.to_string()));
    }
    if let Some(u) = user {
        if !u.admin && !u.privilege(db).can_write() {
            return Err(Error::Forbidden(format!(
                "{:?} user is not authorized to write to database {db:?}",
                u.name
            )));
        }
    }
    let gzip = body_encoding(headers)? == Encoding::Gzip;
    let admitted = gw.admit()?;
    let raw = tokio::time::timeout(gw.opts.body_read_timeout, read_body(gw, headers, body))
        .await
        .map_err(|_| Error::Body(BodyError::ReadTimeout))??;
    gw.stats
        .write_request_bytes_received
        .fetch_add(raw.len() as u64, Relaxed);

    // Inflating and parsing a large body take tens of milliseconds: keep them off
    // the async workers. The admission permit travels with the work, so a client
    // that hangs up does not free its place while its body is still in use.
    let limit = gw.opts.max_body_size;
    let (body, admitted) = tokio::task::spawn_blocking(move || {
        let body = if gzip {
            Bytes::from(gunzip_bounded(&raw, limit)?)
        } else {
            raw
        };
        Ok::<_, Error>((body, admitted))
    })
    .await
    .map_err(|e| Error::Internal(format!("inflate task failed: {e}")))??;
    let opts = ParseOptions::new(precision, sundial_meta::now_ns());
    tracing::debug!(db, rp, bytes = body.len(), "write body read");
    let first = parse_chunk(body.clone(), Cursor::START, opts).await?;
    let mut bad = BadLines::default();
    bad.add(first.parsed());
    if first.parsed().is_empty() {
        // A chunk ends only after CHUNK_POINTS good points: this was the whole body.
        gw.stats
            .points_written_fail
            .fetch_add(bad.count as u64, Relaxed);
        if bad.count > 0 {
            return Err(Error::Unparseable(bad.text()));
        }
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let slot = gw.write_slot().await?;
    let started = Instant::now();
    // The write runs in its own task holding both permits: when the request times
    // out the work goes on, and it keeps counting against the limits until it ends.
    let in_first = first.parsed().len() + bad.count;
    let task = {
        let (writer, db, rp) = (gw.writer.clone(), db.to_owned(), rp.to_owned());
        // The request's span goes along: the shard writes stay in its trace.
        tokio::spawn(
            async move {
                let _permits = (admitted, slot);
                let mut summary = WriteSummary::default();
                let mut chunk = first;
                loop {
                    summary.merge(writer.write_points(&db, &rp, &chunk, consistency).await?);
                    let Some(next) = chunk.parsed().next() else {
                        break;
                    };
                    chunk = parse_chunk(body.clone(), next, opts).await?;
                    bad.add(chunk.parsed());
                    if chunk.parsed().is_empty() {
                        break;
                    }
                }
                Ok::<_, Error>((summary, bad))
            }
            .instrument(tracing::Span::current()),
        )
    };
    let (summary, bad) = match tokio::time::timeout(gw.opts.write_timeout, task).await {
        Ok(joined) => joined.map_err(|e| Error::Internal(format!("write task failed: {e}")))??,
        Err(_) => {
            // Like InfluxDB: the shard writes may still complete in the background.
            gw.stats
                .points_written_fail
                .fetch_add(in_first as u64, Relaxed);
            tracing::warn!(db, elapsed = ?started.elapsed(), "write timed out");
            return Err(Error::Timeout);
        }
    };
    gw.stats
        .points_written_fail
        .fetch_add(bad.count as u64, Relaxed);
    gw.stats
        .points_written_ok
        .fetch_add(summary.points_written as u64, Relaxed);
    gw.stats
        .values_written_ok
        .fetch_add(summary.values_written as u64, Relaxed);
    gw.stats
        .points_written_dropped
        .fetch_add(summary.points_dropped as u64, Relaxed);
    if bad.count > 0 || summary.points_dropped > 0 {
        let mut reasons = Vec::new();
        if bad.count > 0 {
            reasons.push(bad.text());
        }
        reasons.extend(summary.drop_reasons);
        return Err(Error::PartialWrite {
            reason: reasons.join("\n"),
            dropped: bad.count + summary.points_dropped,
        });
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Good points parsed (and then written) per chunk of a body. A TSBS batch of
/// 5,000 lines is one chunk; a 25 MB body of tiny lines is about 80, so its
/// parsed form (some 140 bytes a point) is never in memory whole.
const CHUNK_POINTS: usize = 50_000;

async fn parse_chunk(body: Bytes, from: Cursor, opts: ParseOptions) -> Result<Arc<Batch>> {
    tokio::task::spawn_blocking(move || Batch::parse_chunk(body, from, CHUNK_POINTS, &opts))
        .await
        .map_err(|e| Error::Internal(format!("parse task failed: {e}")))
}

/// The rejected lines of a body, over all its chunks: every one counted, the
/// text of the first `MAX_LINE_ERRORS` kept.
#[derive(Debug, Default)]
struct BadLines {
    count: usize,
    texts: Vec<String>,
}

impl BadLines {
    fn add(&mut self, batch: &ParsedBatch<'_>) {
        self.count += batch.error_count();
        let room = MAX_LINE_ERRORS.saturating_sub(self.texts.len());
        self.texts
            .extend(batch.errors().iter().take(room).map(|e| e.to_string()));
    }

    fn text(&self) -> String {
        let mut text = self.texts.join("\n");
        let untold = self.count - self.texts.len();
        if untold > 0 {
            text.push_str(&format!("\n({untold} more lines could not be parsed)"));
        }
        text
    }
}

// ------------------------------------------------------------------ queries

#[derive(Debug, Deserialize, Default)]
struct QueryParams {
    q: Option<String>,
    db: Option<String>,
    u: Option<String>,
    p: Option<String>,
    pretty: Option<String>,
    rp: Option<String>,
    epoch: Option<String>,
    chunked: Option<String>,
    chunk_size: Option<String>,
}

impl Gateway {
    /// Runs one SELECT and renders its series.
    async fn select(&self, stmt: &SelectStatement, db: &str, rp: &str) -> Result<StmtOut> {
        let Some(q) = &self.querying else {
            return Err(Error::BadRequest(
                "SELECT is not supported by this gateway yet".into(),
            ));
        };
        let cx = sundial_query::Context {
            meta: &self.meta,
            reader: q.reader.as_ref(),
            database: db,
            retention_policy: rp,
            now: sundial_meta::now_ns(),
            memory_limit: if q.memory_limit == 0 {
                usize::MAX
            } else {
                q.memory_limit
            },
        };
        let series = sundial_query::select(stmt, &cx).await?;
        Ok(StmtOut {
            tables: render::select_tables(series),
            error: None,
            tz: stmt
                .location
                .as_deref()
                .and_then(|z| jiff::tz::TimeZone::get(z).ok()),
        })
    }
}

/// A query that does not parse: 400 with InfluxDB's body in the asked format.
fn parse_error(text: &str, csv: bool, pretty: bool) -> Response {
    let (ctype, body) = if csv {
        ("text/csv", render::csv_error(text))
    } else {
        let mut b = Json::Obj(vec![("error".into(), Json::Str(text.to_string()))]).render(pretty);
        b.push('\n');
        ("application/json", b)
    };
    let mut resp = (StatusCode::BAD_REQUEST, [("Content-Type", ctype)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(text.lines().next().unwrap_or_default()) {
        resp.headers_mut().insert("X-Influxdb-Error", v);
    }
    resp
}

async fn query_handler(
    State(gw): State<Arc<Gateway>>,
    method: Method,
    Query(mut params): Query<QueryParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    gw.stats.query_requests.fetch_add(1, Relaxed);
    let started = Instant::now();
    if method == Method::POST {
        // Form fields in the body add to (and override) the URL's.
        let encoding = body_encoding(&headers)?;
        let read = axum::body::to_bytes(body, gw.opts.max_body_size);
        let mut bytes = tokio::time::timeout(gw.opts.body_read_timeout, read)
            .await
            .map_err(|_| Error::Body(BodyError::ReadTimeout))?
            .map_err(body_error)?;
        if encoding == Encoding::Gzip {
            let limit = gw.opts.max_body_size;
            bytes = tokio::task::spawn_blocking(move || gunzip_bounded(&bytes, limit))
                .await
                .map_err(|e| Error::Internal(format!("inflate task failed: {e}")))?
                .map(Bytes::from)?;
        }
        let form: QueryParams = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        params.q = form.q.or(params.q);
        params.db = form.db.or(params.db);
        params.u = form.u.or(params.u);
        params.p = form.p.or(params.p);
        params.rp = form.rp.or(params.rp);
        params.epoch = form.epoch.or(params.epoch);
    }
    let Some(q) = params.q.filter(|q| !q.trim().is_empty()) else {
        return Err(Error::BadRequest("missing required parameter \"q\"".into()));
    };
    let limit = gw.opts.max_query_size;
    if q.len() > limit {
        return Err(Error::QueryTooLarge {
            len: q.len(),
            limit,
        });
    }
    // Authenticate first: a stranger must not make the server parse 25 MB of query.
    let user = gw
        .authenticate(params.u.as_deref(), params.p.as_deref(), &headers)
        .await?;
    let csv = headers
        .get("Accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/csv") || a.contains("text/csv"));
    let pretty = matches!(params.pretty.as_deref(), Some("true"));
    let stmts = match sundial_influxql::parse_query(&q) {
        Ok(s) => s,
        Err(e) => return Ok(parse_error(&e.to_string(), csv, pretty)),
    };
    if gw.opts.auth_enabled && !gw.admin_exists() {
        // Bootstrap: only `CREATE USER … WITH ALL PRIVILEGES` until an admin exists.
        let creates_admin = stmts.len() == 1
            && matches!(
                stmts[0],
                sundial_influxql::Statement::CreateUser { admin: true, .. }
            );
        if !creates_admin {
            gw.require_admin_exists()?;
        }
    }
    let db = params.db.unwrap_or_default();
    // Like InfluxDB, the whole request is authorized before any of it runs: a 403
    // means nothing happened, not that the statements before the refused one did.
    for stmt in &stmts {
        query::authorize(stmt, user.as_ref(), &db)?;
    }
    let rp = params.rp.unwrap_or_default();
    let tf = TimeFormat::from_param(params.epoch.as_deref());
    let mut outs: Vec<StmtOut> = Vec::new();
    for stmt in &stmts {
        let answer = match stmt {
            Statement::Select(sel) => gw.select(sel, &db, &rp).await,
            other => query::execute(&gw.meta, other, user.as_ref(), &db)
                .await
                .map(|v| StmtOut {
                    tables: render::json_tables(&v),
                    ..StmtOut::default()
                }),
        };
        match answer {
            Ok(out) => outs.push(out),
            Err(e) => {
                // InfluxDB stops at the first failing statement.
                outs.push(StmtOut {
                    error: Some(e.to_string()),
                    ..StmtOut::default()
                });
                break;
            }
        }
    }
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    gw.stats.query_request_duration_ns.fetch_add(ns, Relaxed);
    if csv {
        let text = render::csv_body(&outs, &tf);
        return Ok(([("Content-Type", "text/csv")], text).into_response());
    }
    let text = if matches!(params.chunked.as_deref(), Some("true")) {
        let size = params
            .chunk_size
            .as_deref()
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&c| c > 0)
            .unwrap_or(render::DEFAULT_CHUNK_SIZE);
        render::chunked_body(&outs, stmts.len(), &tf, pretty, size)
    } else {
        render::json_body(&outs, stmts.len(), &tf, pretty)
    };
    Ok(([("Content-Type", "application/json")], text).into_response())
}
