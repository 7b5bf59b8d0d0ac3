//! `/write` and `/api/v2/write`: bodies read (gzip too), parsed a chunk at a
//! time, written through the points writer; InfluxDB's answers.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct WriteV1Params {
    db: Option<String>,
    rp: Option<String>,
    precision: Option<String>,
    consistency: Option<String>,
    u: Option<String>,
    p: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct WriteV2Params {
    bucket: Option<String>,
    precision: Option<String>,
    u: Option<String>,
    p: Option<String>,
}

pub(super) async fn write_v1(
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

pub(super) async fn write_v2(
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
pub(super) enum Encoding {
    Identity,
    Gzip,
}

/// Reads `Content-Encoding` before the body: absent, `identity` or `gzip` (any
/// case). Anything else gets 415 instead of being parsed as plain text.
pub(super) fn body_encoding(headers: &HeaderMap) -> Result<Encoding> {
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
pub(super) async fn read_body(gw: &Gateway, headers: &HeaderMap, body: Body) -> Result<Bytes> {
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

pub(super) fn body_error(e: axum::Error) -> Error {
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
