//! `/query`: statements parsed, authorized, run (SELECT through the query
//! crate), rendered as InfluxDB writes them.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct QueryParams {
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

pub(super) async fn query_handler(
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
