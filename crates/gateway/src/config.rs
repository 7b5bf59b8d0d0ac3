//! The `[http]` section, shared by `sundial-gateway` and the all-in-one `sundial`:
//! the one place the HTTP API's defaults are written (the listener's come from
//! [`ServeOptions::default`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sundial_common::config::{duration, ConfigError};
use sundial_serve::ServeOptions;

/// The `[http]` settings (InfluxDB's names where it has them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HttpConfig {
    /// Address to serve on (port 0: any free port).
    pub bind_address: String,
    /// Require credentials.
    pub auth_enabled: bool,
    /// Largest body accepted, before and after gzip decoding (bytes).
    pub max_body_size: usize,
    /// Writes processed at once; more wait in a queue.
    pub max_concurrent_write_limit: usize,
    /// Writes allowed to wait; beyond this a write gets 503 at once.
    pub max_enqueued_write_limit: usize,
    /// How long a queued write may wait before 503.
    #[serde(with = "duration")]
    pub enqueued_write_timeout: Duration,
    /// Time to write the points of one request before `{"error":"timeout"}`.
    #[serde(with = "duration")]
    pub write_timeout: Duration,
    /// How long a client may take to send a write or query body (then 408).
    #[serde(with = "duration")]
    pub body_read_timeout: Duration,
    /// How long a client may take to send a request head: from connecting for its
    /// first request, from the head's first byte for later ones (then closed).
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Open connections at most; a new one closes the idle connection closest to
    /// its timeout. 0: a quarter of the open-file limit, at most 4096.
    pub max_connections: usize,
    /// Largest request head, request line and headers (bytes; then 431).
    pub max_header_size: usize,
    /// Longest request URL, path and query string (bytes; then 414).
    pub max_url_size: usize,
    /// Longest `q` of /query, in the URL or the form (bytes; then 413).
    pub max_query_size: usize,
    /// HS256 secret for `Authorization: Bearer` JWTs; empty disables them.
    pub shared_secret: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let listen = ServeOptions::default();
        HttpConfig {
            bind_address: "127.0.0.1:8086".into(),
            auth_enabled: false,
            max_body_size: 25_000_000,
            max_concurrent_write_limit: 16,
            max_enqueued_write_limit: 64,
            enqueued_write_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            header_read_timeout: listen.header_read_timeout,
            idle_timeout: listen.idle_timeout,
            max_connections: 0,
            max_header_size: listen.max_header_size,
            max_url_size: 32 << 10,
            max_query_size: 1 << 20,
            shared_secret: String::new(),
        }
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        for (name, v) in [
            ("http.header-read-timeout", self.header_read_timeout),
            ("http.idle-timeout", self.idle_timeout),
        ] {
            if v.is_zero() {
                return bad(format!("{name} must be longer than 0"));
            }
        }
        // Below 1 KiB an ordinary client's headers would not fit.
        for (name, v, min) in [
            ("http.max-header-size", self.max_header_size, 1024),
            ("http.max-url-size", self.max_url_size, 1),
            ("http.max-query-size", self.max_query_size, 1),
        ] {
            if v < min {
                return bad(format!("{name} must be at least {min} bytes"));
            }
        }
        Ok(())
    }

    /// Connections the listener admits (0 in the file: from the open-file limit,
    /// read now — after the binary raised it).
    pub fn max_connections(&self) -> usize {
        match self.max_connections {
            0 => sundial_serve::auto_max_connections(),
            n => n,
        }
    }

    /// The listener's settings.
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections(),
            max_header_size: self.max_header_size,
        }
    }
}
