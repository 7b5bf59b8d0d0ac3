//! Sending an entry's request to a server and reading its answer.

use std::time::Duration;

use super::Entry;

/// What a server answered.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    /// The `X-Influxdb-Error` header (empty when absent).
    pub error_header: String,
    pub body: String,
}

/// An HTTP client for the corpus.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("build the HTTP client")
}

/// Sends an entry's request to `base` (`http://host:port`).
pub fn fetch(
    client: &reqwest::blocking::Client,
    base: &str,
    e: &Entry,
    default_db: &str,
) -> Result<Response, String> {
    let url = format!("{base}/query");
    let params = e.request_params(default_db);
    let mut req = if e.post {
        client
            .post(&url)
            .query(&params)
            .form(&[("q", e.query.as_str())])
    } else {
        let mut all = params;
        all.insert(0, ("q".to_string(), e.query.clone()));
        client.get(&url).query(&all)
    };
    if let Some(a) = &e.accept {
        req = req.header("Accept", a);
    }
    let resp = req.send().map_err(|err| format!("request failed: {err}"))?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let status = resp.status().as_u16();
    let content_type = header("content-type");
    let error_header = header("x-influxdb-error");
    let body = resp
        .text()
        .map_err(|err| format!("reading the body failed: {err}"))?;
    Ok(Response {
        status,
        content_type,
        error_header,
        body,
    })
}
