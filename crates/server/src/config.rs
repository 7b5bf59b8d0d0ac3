//! Configuration: defaults < TOML file < environment (`SUNDIAL_<SECTION>_<KEY>`)
//! < command-line flags. `sundial config` prints the defaults as TOML.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    pub data: DataConfig,
    pub http: HttpConfig,
    pub coordinator: CoordinatorConfig,
    pub retention: RetentionConfig,
    pub shard_precreation: PrecreationConfig,
    pub runtime: RuntimeConfig,
    pub logging: LoggingConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DataConfig {
    /// Holds `meta/` (embedded metadata) and `store/` (shards: WAL and files).
    pub dir: PathBuf,
    /// `always` (fsync before acknowledging; default), `never`, or an interval like `100ms`.
    pub wal_fsync: String,
    /// Bytes a memtable may hold before it is frozen and flushed.
    pub memtable_size: usize,
    /// Bytes all memtables of the node may hold together before the largest are
    /// flushed early.
    pub memtable_budget: usize,
    /// InfluxDB's limit on series per database (counted on this node); 0: none.
    pub max_series_per_database: usize,
    /// InfluxDB's limit on values of one tag key per measurement; 0: none.
    pub max_values_per_tag: usize,
    /// Bytes the per-series structures (series catalogs, shards' series lists, data
    /// files' summaries) may take before new series are refused with 503; 0: none.
    pub index_memory_limit: usize,
    /// Open files the shards may hold together; 0: derived from the process's
    /// open-file limit (what is left after connections and a reserve).
    pub max_open_files: usize,
    /// Shards without reads or writes for this long are flushed and closed ("0s":
    /// never); they reopen on use.
    pub shard_idle_timeout: String,
    /// Writes are refused with 503 while the data directory's file system has less
    /// free space than this (bytes; 0: no reserve).
    pub disk_free_reserve: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CoordinatorConfig {
    /// Shard groups one write may create; points that would create more are dropped
    /// with a partial-write error (0: no limit).
    pub max_shard_groups_per_write: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RuntimeConfig {
    /// Threads for blocking work (shard writes, parsing, password checks); more work
    /// waits in a queue instead of starting threads without bound.
    pub max_blocking_threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HttpConfig {
    pub bind_address: String,
    pub auth_enabled: bool,
    pub max_body_size: usize,
    pub max_concurrent_write_limit: usize,
    pub max_enqueued_write_limit: usize,
    pub enqueued_write_timeout: String,
    pub write_timeout: String,
    /// How long a client may take to send a write or query body (then 408).
    pub body_read_timeout: String,
    /// How long a client may take to send a request head: from connecting for
    /// its first request, from the head's first byte for later ones (then closed).
    pub header_read_timeout: String,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: String,
    /// Open connections at most; a new one closes the idle connection closest to
    /// its timeout. 0 = a quarter of the open-file limit, at most 4096.
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RetentionConfig {
    pub enabled: bool,
    pub check_interval: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PrecreationConfig {
    pub enabled: bool,
    pub check_interval: String,
    /// Create the next shard group this long before it is needed.
    pub advance_period: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LoggingConfig {
    /// A `tracing` filter: `info`, `sundial=debug,warn`, …
    pub level: String,
}

impl Default for DataConfig {
    fn default() -> Self {
        // The engine's defaults, so they are written in one place.
        let e = sundial_engine::EngineOptions::default();
        DataConfig {
            dir: PathBuf::from("./data"),
            wal_fsync: "always".into(),
            memtable_size: e.memtable_size,
            memtable_budget: e.memtable_budget,
            max_series_per_database: e.series_limits.max_series_per_database,
            max_values_per_tag: e.series_limits.max_values_per_tag,
            index_memory_limit: e.index_memory_limit,
            max_open_files: 0,
            shard_idle_timeout: format!("{}m", e.shard_idle_timeout.as_secs() / 60),
            disk_free_reserve: e.disk_free_reserve,
        }
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            max_shard_groups_per_write: sundial_cluster::DEFAULT_MAX_NEW_SHARD_GROUPS,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_blocking_threads: 64,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind_address: "127.0.0.1:8086".into(),
            auth_enabled: false,
            max_body_size: 25_000_000,
            max_concurrent_write_limit: 16,
            max_enqueued_write_limit: 64,
            enqueued_write_timeout: "5s".into(),
            write_timeout: "10s".into(),
            body_read_timeout: "30s".into(),
            header_read_timeout: "10s".into(),
            // Go's HTTP clients (Telegraf, Grafana) drop idle connections after
            // 90 s: outlasting them means the client closes first, never the
            // server just as the client reuses the connection.
            idle_timeout: "120s".into(),
            max_connections: 0,
            max_header_size: 64 << 10,
            max_url_size: 32 << 10,
            max_query_size: 1 << 20,
            shared_secret: String::new(),
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            enabled: true,
            check_interval: "30m".into(),
        }
    }
}

impl Default for PrecreationConfig {
    fn default() -> Self {
        PrecreationConfig {
            enabled: true,
            check_interval: "10m".into(),
            advance_period: "30m".into(),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
        }
    }
}

/// Parses `500ms`, `10s`, `30m`, `1h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    sundial_common::duration::parse_duration(s).map_err(anyhow::Error::msg)
}

impl Config {
    /// Defaults, then the TOML file (if any), then `SUNDIAL_…` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table = toml::Value::try_from(Config::default()).context("default config")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            let file_table: toml::Value = toml::from_str(&text)
                .with_context(|| format!("parsing config {}", path.display()))?;
            merge(&mut table, file_table);
        }
        apply_env(&mut table, env)?;
        let cfg: Config = table.try_into().context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            (
                "http.enqueued-write-timeout",
                &self.http.enqueued_write_timeout,
            ),
            ("http.write-timeout", &self.http.write_timeout),
            ("http.body-read-timeout", &self.http.body_read_timeout),
            ("http.header-read-timeout", &self.http.header_read_timeout),
            ("http.idle-timeout", &self.http.idle_timeout),
            ("retention.check-interval", &self.retention.check_interval),
            ("data.shard-idle-timeout", &self.data.shard_idle_timeout),
            (
                "shard-precreation.check-interval",
                &self.shard_precreation.check_interval,
            ),
            (
                "shard-precreation.advance-period",
                &self.shard_precreation.advance_period,
            ),
        ] {
            parse_duration(v).with_context(|| format!("in {name}"))?;
        }
        if self.runtime.max_blocking_threads == 0 {
            bail!("runtime.max-blocking-threads must be at least 1");
        }
        for (name, v) in [
            ("http.header-read-timeout", &self.http.header_read_timeout),
            ("http.idle-timeout", &self.http.idle_timeout),
        ] {
            if parse_duration(v)?.is_zero() {
                bail!("{name} must be longer than 0");
            }
        }
        // Below 1 KiB an ordinary client's headers would not fit.
        for (name, v, min) in [
            ("http.max-header-size", self.http.max_header_size, 1024),
            ("http.max-url-size", self.http.max_url_size, 1),
            ("http.max-query-size", self.http.max_query_size, 1),
        ] {
            if v < min {
                bail!("{name} must be at least {min} bytes");
            }
        }
        if self.data.wal_fsync != "always" && self.data.wal_fsync != "never" {
            parse_duration(&self.data.wal_fsync)
                .context("in data.wal-fsync (always, never or an interval)")?;
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `SUNDIAL_HTTP_BIND_ADDRESS=…` sets `[http] bind-address`; the value is read
/// as the type the default has (bool, integer or string).
fn apply_env(
    table: &mut toml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<()> {
    let toml::Value::Table(sections) = table else {
        return Ok(());
    };
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("SUNDIAL_") else {
            continue;
        };
        let mut hit = false;
        for (section, keys) in sections.iter_mut() {
            let toml::Value::Table(keys) = keys else {
                continue;
            };
            let prefix = format!("{}_", section.to_uppercase().replace('-', "_"));
            let Some(key) = rest.strip_prefix(&prefix) else {
                continue;
            };
            for (k, slot) in keys.iter_mut() {
                if k.to_uppercase().replace('-', "_") == key {
                    *slot = match slot {
                        toml::Value::Boolean(_) => toml::Value::Boolean(
                            value
                                .parse()
                                .with_context(|| format!("{name}: expected true or false"))?,
                        ),
                        toml::Value::Integer(_) => toml::Value::Integer(
                            value
                                .parse()
                                .with_context(|| format!("{name}: expected an integer"))?,
                        ),
                        _ => toml::Value::String(value.clone()),
                    };
                    hit = true;
                }
            }
        }
        if !hit && name != "SUNDIAL_LOG" {
            tracing::warn!(variable = %name, "unknown SUNDIAL_ variable ignored");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = Config::default().to_toml();
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), &text).unwrap();
        assert_eq!(
            Config::load(Some(path.path()), vec![]).unwrap(),
            Config::default()
        );
        assert!(text.contains("bind-address = \"127.0.0.1:8086\""), "{text}");
    }

    #[test]
    fn file_then_env_override_defaults() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            f.path(),
            "[http]\nbind-address = \"127.0.0.1:9999\"\nauth-enabled = true\n",
        )
        .unwrap();
        let env = vec![
            (
                "SUNDIAL_HTTP_BIND_ADDRESS".to_string(),
                "127.0.0.1:7777".to_string(),
            ),
            ("SUNDIAL_HTTP_MAX_BODY_SIZE".to_string(), "1000".to_string()),
            ("SUNDIAL_DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = Config::load(Some(f.path()), env).unwrap();
        assert_eq!(c.http.bind_address, "127.0.0.1:7777");
        assert!(c.http.auth_enabled);
        assert_eq!(c.http.max_body_size, 1000);
        assert_eq!(c.data.dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_are_reported() {
        let env = vec![("SUNDIAL_HTTP_AUTH_ENABLED".to_string(), "maybe".to_string())];
        assert!(Config::load(None, env)
            .unwrap_err()
            .to_string()
            .contains("expected true or false"));
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "[http]\nbogus = 1\n").unwrap();
        assert!(Config::load(Some(f.path()), vec![]).is_err());
        let env = vec![(
            "SUNDIAL_HTTP_WRITE_TIMEOUT".to_string(),
            "10 parsecs".to_string(),
        )];
        assert!(Config::load(None, env).is_err());
        for (k, v) in [
            ("SUNDIAL_HTTP_IDLE_TIMEOUT", "0s"),
            ("SUNDIAL_HTTP_HEADER_READ_TIMEOUT", "soon"),
            ("SUNDIAL_HTTP_MAX_HEADER_SIZE", "100"),
            ("SUNDIAL_HTTP_MAX_QUERY_SIZE", "0"),
        ] {
            let env = vec![(k.to_string(), v.to_string())];
            assert!(Config::load(None, env).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1y").is_err());
    }
}
