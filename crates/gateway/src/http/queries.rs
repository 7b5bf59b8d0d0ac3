//! `/query`: statements parsed, authorized, run (SELECT through the query
//! crate), rendered as InfluxDB writes them.

use futures::StreamExt;

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
    /// Where a SELECT runs: its database and retention policy, now, and how
    /// shards are read.
    pub(crate) fn select_context<'a>(
        &'a self,
        db: &'a str,
        rp: &'a str,
    ) -> Result<sundial_query::Context<'a>> {
        let Some(q) = &self.querying else {
            return Err(Error::BadRequest(
                "SELECT is not supported by this gateway yet".into(),
            ));
        };
        Ok(sundial_query::Context {
            meta: &self.meta,
            reader: q.reader.as_ref(),
            database: db,
            retention_policy: rp,
            now: sundial_meta::now_ns(),
            memory_limit: self.query_memory_limit(),
            max_buckets: q.max_buckets,
            max_points: q.max_points,
            max_series: q.max_series,
            points_read: Default::default(),
        })
    }

    /// `log-queries-after` (None: no slow-query log).
    fn slow_query_log(&self) -> Option<std::time::Duration> {
        self.querying
            .as_ref()
            .map(|q| q.log_after)
            .filter(|t| !t.is_zero())
    }

    /// How long one `/query` request may run (`query-timeout`; None: no limit).
    pub(crate) fn query_timeout(&self) -> Option<std::time::Duration> {
        self.querying
            .as_ref()
            .map(|q| q.timeout)
            .filter(|t| !t.is_zero())
    }

    /// Bytes one statement may hold (`query-memory-limit`; 0 is none).
    fn query_memory_limit(&self) -> usize {
        match &self.querying {
            Some(q) if q.memory_limit > 0 => q.memory_limit,
            _ => usize::MAX,
        }
    }
}

/// A task stopped when its handle goes (the slow-query warning of a query
/// that ended first).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The `tz()` zone a SELECT's times are written in.
fn zone_of(stmt: &SelectStatement) -> Option<jiff::tz::TimeZone> {
    stmt.location
        .as_deref()
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
}

/// Where a request's answers go: held whole (JSON or CSV), or written a chunk
/// at a time down the response as they are made (`chunked=true`).
enum Answers {
    Whole(Vec<StmtOut>),
    Streamed(Box<Streamed>),
}

/// A chunked answer on its way: lines written as pieces come, sent down the
/// response once a few tens of kB are ready.
struct Streamed {
    chunker: render::Chunker,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    /// Bytes of rows the chunker may hold for a line (`query-memory-limit`).
    limit: usize,
}

/// Text sent down a chunked response at once (less is held back for more).
const SEND_BYTES: usize = 64 << 10;

impl Streamed {
    /// Sends what is written: all of it, or only once it is worth a send.
    async fn send(&mut self, all: bool) -> std::result::Result<(), sundial_query::Error> {
        if !all && self.chunker.written() < SEND_BYTES {
            return Ok(());
        }
        let text = self.chunker.take();
        if text.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Bytes::from(text))
            .await
            .map_err(|_| sundial_query::Error::Interrupted)
    }
}

#[async_trait::async_trait]
impl sundial_query::SeriesSink for Streamed {
    async fn put(&mut self, piece: sundial_query::Series) -> sundial_query::Result<()> {
        // A line's rows at a time, each sent once written: the text held
        // stays about a line, whatever the piece.
        let sundial_query::Series {
            name,
            tags,
            columns,
            rows,
        } = piece;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            self.chunker.push(sundial_query::Series {
                name: name.clone(),
                tags: tags.clone(),
                columns: columns.clone(),
                rows: rows.by_ref().take(self.chunker.chunk_size()).collect(),
            });
            // A huge chunk_size must not hold a whole series.
            if self.chunker.held_bytes() > self.limit {
                return Err(sundial_query::Error::MemoryLimit { limit: self.limit });
            }
            self.send(false).await?;
        }
        Ok(())
    }

    fn gone(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Answers {
    /// Runs the statements in order; the first that fails ends the request
    /// (InfluxDB stops there).
    async fn run(
        &mut self,
        gw: &Gateway,
        stmts: &[Statement],
        user: Option<&UserInfo>,
        db: &str,
        rp: &str,
        read_only: bool,
    ) {
        let text: Vec<String> = stmts.iter().map(|s| s.to_string()).collect();
        let me = gw.running.register(text.join(";\n"), db);
        // InfluxDB's `log-queries-after`: logged once it has run that long.
        let _slow = gw.slow_query_log().map(|after| {
            let (qid, db, text) = (me.id(), db.to_string(), text.join(";\n"));
            AbortOnDrop(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                tracing::warn!(query = %text, qid, database = %db, threshold = ?after, "Detected slow query");
            }))
        });
        let timeout = gw.query_timeout();
        let deadline = tokio::time::sleep(timeout.unwrap_or(std::time::Duration::MAX));
        tokio::pin!(deadline);
        for (i, stmt) in stmts.iter().enumerate() {
            let warning = read_only
                .then(|| read_only_warning(stmt, || shown(gw, stmt, db, rp)))
                .flatten();
            if let (Answers::Streamed(st), Some(w)) = (&mut *self, &warning) {
                st.chunker.warn(w.clone());
            }
            let run = self.statement(gw, i, stmt, user, db, rp);
            // Killed or out of time: the statement's future is dropped, which
            // ends its reads (remote ones are cancelled).
            let done = tokio::select! {
                r = run => r,
                _ = me.killed() => Err(Error::Query(sundial_query::Error::Interrupted)),
                _ = &mut deadline, if timeout.is_some() => {
                    Err(Error::BadRequest("query-timeout limit exceeded".into()))
                }
            };
            if let Err(e) = done {
                self.fail(i, stmts.len(), &e.to_string());
                break;
            }
            if let (Answers::Whole(outs), Some(w)) = (&mut *self, warning) {
                if let Some(out) = outs.last_mut() {
                    out.warnings.push(w);
                }
            }
            if let Answers::Streamed(st) = self {
                // A client that stopped reading holds the send: a kill or the
                // deadline still ends the query.
                let sent = tokio::select! {
                    r = st.send(true) => r.is_ok(),
                    _ = me.killed() => false,
                    _ = &mut deadline, if timeout.is_some() => false,
                };
                if !sent {
                    return;
                }
            }
        }
        // Done: no longer listed while the rest of the answer goes out.
        drop(me);
        if let Answers::Streamed(st) = self {
            let _ = st.send(true).await;
        }
    }

    /// Runs one statement.
    async fn statement(
        &mut self,
        gw: &Gateway,
        i: usize,
        stmt: &Statement,
        user: Option<&UserInfo>,
        db: &str,
        rp: &str,
    ) -> Result<()> {
        match stmt {
            Statement::Select(sel) if sel.target.is_some() => {
                self.select_into(gw, i, sel, db, rp).await
            }
            Statement::Select(sel) => self.select(gw, i, sel, db, rp).await,
            Statement::ShowMeasurements(_)
            | Statement::ShowTagKeys(_)
            | Statement::ShowTagValues(_)
            | Statement::ShowFieldKeys(_)
            | Statement::ShowSeries(_)
            | Statement::ShowCardinality(_) => self.show(gw, i, stmt, db, rp).await,
            Statement::ShowQueries => {
                let values = gw
                    .running
                    .list()
                    .into_iter()
                    .map(|q| {
                        serde_json::json!([
                            q.id,
                            q.text,
                            q.database,
                            crate::running::go_duration(q.running_for),
                            "running"
                        ])
                    })
                    .collect::<Vec<_>>();
                let v = serde_json::json!([{
                    "columns": ["qid", "query", "database", "duration", "status"],
                    "values": values,
                }]);
                self.whole(i, render::json_tables(&v));
                Ok(())
            }
            Statement::CreateContinuousQuery(_)
            | Statement::ShowContinuousQueries
            | Statement::DropContinuousQuery { .. } => {
                let v = crate::cq::statement(&gw.meta, stmt, db, rp)
                    .await?
                    .unwrap_or_default();
                self.whole(i, render::json_tables(&v));
                Ok(())
            }
            Statement::DropMeasurement { .. } | Statement::DropSeries(_) | Statement::Delete(_) => {
                // A fresh view: shards another gateway made a moment ago
                // hold data the delete must reach.
                if let Err(e) = gw.meta.refresh().await {
                    tracing::warn!(error = %e, "meta not re-read before a delete");
                }
                let now = sundial_meta::now_ns();
                let plan = sundial_query::plan_delete(stmt, db, &gw.meta.snapshot(), now)?
                    .ok_or_else(|| Error::Internal("not a delete".into()))?;
                let deferred = gw.writer.delete(&plan).await?;
                if deferred > 0 {
                    tracing::info!(deferred, "delete deferred for owners out of reach");
                }
                self.whole(i, Vec::new());
                Ok(())
            }
            Statement::KillQuery { id, .. } => {
                gw.running.kill(*id).map_err(Error::BadRequest)?;
                self.whole(i, Vec::new());
                Ok(())
            }
            other => {
                let v = query::execute(&gw.meta, other, user, db).await?;
                self.whole(i, render::json_tables(&v));
                Ok(())
            }
        }
    }

    /// `SELECT … INTO` (see `crate::into`): the rows written, the count
    /// answered.
    async fn select_into(
        &mut self,
        gw: &Gateway,
        id: usize,
        stmt: &SelectStatement,
        db: &str,
        rp: &str,
    ) -> Result<()> {
        if stmt.target.is_none() {
            return self.select(gw, id, stmt, db, rp).await;
        }
        let written = crate::into::run(gw, stmt, db, rp).await?;
        let out = crate::into::result(written);
        match self {
            Answers::Whole(outs) => outs.push(StmtOut {
                tables: vec![out],
                timed: true,
                ..StmtOut::default()
            }),
            Answers::Streamed(st) => {
                st.chunker.start(id, true, None);
                st.chunker.push(out);
                st.chunker.finish();
            }
        }
        Ok(())
    }

    async fn select(
        &mut self,
        gw: &Gateway,
        id: usize,
        stmt: &SelectStatement,
        db: &str,
        rp: &str,
    ) -> Result<()> {
        let cx = gw.select_context(db, rp)?;
        match self {
            Answers::Whole(outs) => {
                let series = sundial_query::select(stmt, &cx).await?;
                outs.push(StmtOut {
                    tables: series,
                    timed: true,
                    tz: zone_of(stmt),
                    ..StmtOut::default()
                });
            }
            Answers::Streamed(st) => {
                st.chunker.start(id, true, zone_of(stmt));
                sundial_query::select_into(stmt, &cx, st.as_mut()).await?;
                st.chunker.finish();
            }
        }
        Ok(())
    }

    /// SHOW MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, SERIES and the
    /// cardinalities: read from the shards by the query engine.
    async fn show(
        &mut self,
        gw: &Gateway,
        id: usize,
        stmt: &Statement,
        db: &str,
        rp: &str,
    ) -> Result<()> {
        let cx = gw.select_context(db, rp)?;
        let tables = sundial_query::show(stmt, &cx).await?.unwrap_or_default();
        self.whole(id, tables);
        Ok(())
    }

    /// A statement answered whole (SHOW …): untimed series.
    fn whole(&mut self, id: usize, tables: Vec<sundial_query::Series>) {
        match self {
            Answers::Whole(outs) => outs.push(StmtOut {
                tables,
                ..StmtOut::default()
            }),
            Answers::Streamed(st) => {
                st.chunker.start(id, false, None);
                for t in tables {
                    st.chunker.push_whole(t);
                }
                st.chunker.finish();
            }
        }
    }

    fn fail(&mut self, id: usize, total: usize, error: &str) {
        match self {
            Answers::Whole(outs) => outs.push(StmtOut {
                error: Some(error.to_string()),
                ..StmtOut::default()
            }),
            Answers::Streamed(st) => {
                st.chunker.fail(id, error);
                // InfluxDB's chunked form names the failed statement's id
                // for each statement left.
                for _ in id + 1..total {
                    st.chunker.not_executed(id);
                }
            }
        }
    }
}

/// The text 1.6 shows of a statement in its warnings: a SELECT INTO or a
/// CREATE CONTINUOUS QUERY with its measurements qualified.
fn shown(gw: &Gateway, stmt: &Statement, db: &str, rp: &str) -> String {
    let meta = gw.meta.snapshot();
    match stmt {
        Statement::Select(s) if s.target.is_some() => {
            crate::cq::qualified_select(s, db, rp, &meta).to_string()
        }
        Statement::CreateContinuousQuery(cq) => crate::cq::normalized(cq, db, rp, &meta)
            .map_or_else(|_| stmt.to_string(), |n| n.to_string()),
        _ => stmt.to_string(),
    }
}

/// InfluxDB 1.6's warning for a statement that writes sent in a GET
/// request (its list: the statement executor's `ctx.ReadOnly` checks; not
/// DELETE); `text` is the statement as 1.6 shows it.
fn read_only_warning(stmt: &Statement, text: impl FnOnce() -> String) -> Option<String> {
    let writes = matches!(
        stmt,
        Statement::AlterRetentionPolicy { .. }
            | Statement::CreateContinuousQuery(_)
            | Statement::CreateDatabase { .. }
            | Statement::CreateRetentionPolicy { .. }
            | Statement::CreateUser { .. }
            | Statement::DropContinuousQuery { .. }
            | Statement::DropDatabase { .. }
            | Statement::DropMeasurement { .. }
            | Statement::DropSeries(_)
            | Statement::DropRetentionPolicy { .. }
            | Statement::DropUser { .. }
            | Statement::Grant { .. }
            | Statement::Revoke { .. }
            | Statement::SetPassword { .. }
    ) || matches!(stmt, Statement::Select(s) if s.target.is_some());
    writes.then(|| {
        format!(
            "deprecated use of '{}' in a read only context, please use a POST request instead",
            text()
        )
    })
}

/// A query that does not parse: 400 with InfluxDB's body in the asked format.
fn parse_error(text: &str, csv: bool, pretty: bool) -> Response {
    let (ctype, body) = if csv {
        ("text/csv", render::csv_error(text))
    } else {
        ("application/json", render::error_body(text, pretty))
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
    let read_only = method == Method::GET;
    let tf = TimeFormat::from_param(params.epoch.as_deref());
    let chunked = !csv && matches!(params.chunked.as_deref(), Some("true"));
    if chunked {
        let size = params
            .chunk_size
            .as_deref()
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&c| c > 0)
            .unwrap_or(render::DEFAULT_CHUNK_SIZE);
        // Few sends ahead of the client: a slow reader slows the query, not
        // the node's memory.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let mut answers = Answers::Streamed(Box::new(Streamed {
            chunker: render::Chunker::new(tf, pretty, size),
            tx,
            limit: gw.query_memory_limit(),
        }));
        let task = async move {
            answers
                .run(&gw, &stmts, user.as_ref(), &db, &rp, read_only)
                .await;
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            gw.stats.query_request_duration_ns.fetch_add(ns, Relaxed);
        };
        tokio::spawn(task.instrument(tracing::Span::current()));
        let body = Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>),
        );
        return Ok(([("Content-Type", "application/json")], body).into_response());
    }
    let mut answers = Answers::Whole(Vec::new());
    answers
        .run(&gw, &stmts, user.as_ref(), &db, &rp, read_only)
        .await;
    let Answers::Whole(outs) = answers else {
        return Err(Error::Internal("a whole answer became a stream".into()));
    };
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    gw.stats.query_request_duration_ns.fetch_add(ns, Relaxed);
    let text = if csv {
        render::csv_body(&outs, &tf)
    } else {
        render::json_body(&outs, stmts.len(), &tf, pretty)
    };
    let ctype = if csv { "text/csv" } else { "application/json" };
    Ok(([("Content-Type", ctype)], text).into_response())
}
