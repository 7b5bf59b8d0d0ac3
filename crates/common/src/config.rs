//! Configuration, the same way for every binary: each section's `Default` is the
//! one place its defaults are written; a TOML file overrides them, then
//! `SUNDIAL_<SECTION>_<KEY>` environment variables, then the binary's flags.
//! Durations are typed (`Duration`, written `500ms`, `10s`, `30m`, `7d`) and parsed
//! once, when the configuration is read. `<binary> config` prints the result.
//!
//! Also the sections several binaries share: `[runtime]`, `[logging]`, `[cluster]`
//! (the nodes' shared secret and the CA their TLS certificates come from).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What is wrong with a configuration, naming the file, variable or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// A loaded configuration and what to warn about once logging is set up from the
/// configuration itself (`SUNDIAL_` variables that matched no key, old names).
#[derive(Debug)]
pub struct Loaded<T> {
    pub config: T,
    pub warnings: Vec<String>,
}

/// Renames variables a binary read under another name before its configuration
/// had sections (old name → new name), with a warning each, so that a deployment
/// that sets the old name keeps its setting instead of losing it silently.
pub fn rename_env(
    env: impl IntoIterator<Item = (String, String)>,
    renamed: &[(&str, &str)],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut warnings = Vec::new();
    let env = env
        .into_iter()
        .map(|(k, v)| match renamed.iter().find(|(old, _)| *old == k) {
            Some((old, new)) => {
                warnings.push(format!("{old} is deprecated: use {new}"));
                (new.to_string(), v)
            }
            None => (k, v),
        })
        .collect();
    (env, warnings)
}

/// Variables read by the binaries themselves, not keys of a section.
const OWN_VARIABLES: [&str; 3] = ["SUNDIAL_LOG", "SUNDIAL_CONFIG", "SUNDIAL_CTL_META"];

/// Defaults, then the TOML file (if any), then `SUNDIAL_…` variables from `env`
/// (the value is read as the type the key has: bool, integer, string, or a comma
/// separated list).
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded<T>, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut table = toml::Value::try_from(T::default())
        .map_err(|e| err(format!("default configuration: {e}")))?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("reading config {}: {e}", path.display())))?;
        let over: toml::Value = toml::from_str(&text)
            .map_err(|e| err(format!("parsing config {}: {e}", path.display())))?;
        merge(&mut table, over);
    }
    let unknown = apply_env(&mut table, env)?;
    let config = T::deserialize(table).map_err(|e| err(format!("invalid configuration: {e}")))?;
    Ok(Loaded {
        config,
        warnings: unknown
            .into_iter()
            .map(|n| format!("unknown SUNDIAL_ variable {n} ignored"))
            .collect(),
    })
}

/// A flag given on the command line overrides its key.
pub fn set<T>(slot: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *slot = v;
    }
}

/// The configuration as TOML (what `<binary> config` prints; loads back unchanged
/// but for secrets: a key ending in `secret` that is set is printed as a comment).
pub fn to_toml<T: Serialize>(cfg: &T) -> String {
    let text = toml::to_string_pretty(cfg).unwrap_or_else(|e| format!("# cannot print: {e}\n"));
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.split_once(" = ") {
            Some((k, v)) if k.ends_with("secret") && v != "\"\"" => {
                out.push_str(&format!("# {k} = (set, not shown)\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
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

/// `SUNDIAL_HTTP_BIND_ADDRESS=…` sets `[http] bind-address`.
fn apply_env(
    table: &mut toml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut unknown = Vec::new();
    let toml::Value::Table(sections) = table else {
        return Ok(unknown);
    };
    let upper = |s: &str| s.to_uppercase().replace('-', "_");
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("SUNDIAL_") else {
            continue;
        };
        let mut hit = false;
        for (section, keys) in sections.iter_mut() {
            let toml::Value::Table(keys) = keys else {
                continue;
            };
            let Some(key) = rest.strip_prefix(&format!("{}_", upper(section))) else {
                continue;
            };
            for (k, slot) in keys.iter_mut() {
                if upper(k) == key {
                    *slot = env_value(slot, &name, &value)?;
                    hit = true;
                }
            }
        }
        if !hit && !OWN_VARIABLES.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    Ok(unknown)
}

fn env_value(slot: &toml::Value, name: &str, value: &str) -> Result<toml::Value, ConfigError> {
    Ok(match slot {
        toml::Value::Boolean(_) => toml::Value::Boolean(
            value
                .parse()
                .map_err(|_| err(format!("{name}: expected true or false, got {value:?}")))?,
        ),
        // A file may write a number key as an integer (`sample-ratio = 1`).
        toml::Value::Integer(_) => match value.parse() {
            Ok(i) => toml::Value::Integer(i),
            Err(_) => toml::Value::Float(
                value
                    .parse()
                    .map_err(|_| err(format!("{name}: expected a number, got {value:?}")))?,
            ),
        },
        toml::Value::Float(_) => toml::Value::Float(
            value
                .parse()
                .map_err(|_| err(format!("{name}: expected a number, got {value:?}")))?,
        ),
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_string()),
    })
}

// ------------------------------------------------------------------ durations

/// `#[serde(with = "sundial_common::config::duration")]` on a `Duration` field.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::duration::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::duration::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

// ------------------------------------------------------------------ shared sections

/// `[runtime]`: the async runtime.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RuntimeConfig {
    /// Threads for blocking work (shard writes, parsing, password checks); more work
    /// waits in a queue instead of starting threads without bound.
    pub max_blocking_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_blocking_threads: 64,
        }
    }
}

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_blocking_threads == 0 {
            return Err(err("runtime.max-blocking-threads must be at least 1"));
        }
        Ok(())
    }
}

/// `[logging]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LoggingConfig {
    /// A `tracing` filter: `info`, `sundial=debug,warn`, … (`SUNDIAL_LOG` or
    /// `RUST_LOG` win over it).
    pub level: String,
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[tracing]`: OpenTelemetry traces, exported over OTLP/gRPC (Jaeger, an
/// OpenTelemetry collector…). Off while `otlp-endpoint` is empty.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TracingConfig {
    /// OTLP/gRPC endpoint, e.g. `http://jaeger:4317` (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: String,
    /// The service name spans are reported under (`OTEL_SERVICE_NAME`); empty: the
    /// binary's name.
    pub service_name: String,
    /// Share of new traces sampled, 0 to 1 (`OTEL_TRACES_SAMPLER_ARG`); a request
    /// whose caller sampled it (`traceparent`) is sampled too, within the cap.
    pub sample_ratio: f64,
    /// Traces this process starts or accepts from clients per second at most (0: no
    /// cap), so that clients sending sampled `traceparent` headers cannot have every
    /// request traced. Calls between our own nodes follow their caller.
    pub max_traces_per_second: u32,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: String::new(),
            service_name: String::new(),
            sample_ratio: 1.0,
            max_traces_per_second: 100,
        }
    }
}

impl TracingConfig {
    /// The standard OpenTelemetry variables override the file (like `SUNDIAL_…`).
    pub fn apply_otel_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let env: std::collections::HashMap<String, String> = env.into_iter().collect();
        // The signal's own endpoint wins over the general one.
        for k in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            if let Some(v) = env.get(k) {
                self.otlp_endpoint = v.clone();
            }
        }
        for k in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ] {
            match env.get(k).map(|v| v.trim()) {
                None | Some("grpc") => {}
                Some(p) => {
                    return Err(err(format!(
                        "{k}={p}: spans are exported over OTLP/gRPC only (port 4317)"
                    )))
                }
            }
        }
        if env
            .get("OTEL_SDK_DISABLED")
            .is_some_and(|v| v.trim() == "true")
        {
            self.otlp_endpoint.clear();
        }
        for (k, v) in env {
            match k.as_str() {
                "OTEL_SERVICE_NAME" => self.service_name = v,
                "OTEL_TRACES_SAMPLER_ARG" => {
                    self.sample_ratio = v
                        .trim()
                        .parse()
                        .map_err(|_| err(format!("{k}: expected a number, got {v:?}")))?
                }
                _ => {}
            }
        }
        self.validate()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(err(format!(
                "tracing.sample-ratio must be between 0 and 1, not {}",
                self.sample_ratio
            )));
        }
        Ok(())
    }
}

/// `[cluster]`: what the nodes of one cluster share.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ClusterConfig {
    /// Sent with every call between nodes; calls without it are refused. Empty:
    /// none (only for a cluster on a private network).
    pub shared_secret: String,
    /// PEM file of the CA that signed the nodes' certificates: calls to other nodes
    /// use TLS. Empty: plaintext.
    pub tls_ca: PathBuf,
}

impl ClusterConfig {
    /// The secret, if one is set.
    pub fn secret(&self) -> Option<String> {
        (!self.shared_secret.is_empty()).then(|| self.shared_secret.clone())
    }

    /// The CA certificate's PEM, if a file is set.
    pub fn tls_ca_pem(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        read_optional(&self.tls_ca, "cluster.tls-ca")
    }
}

/// A certificate (chain) and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// The PEM of a certificate (chain) and its key to serve TLS with, or `None` when
/// both paths are empty; `section` names the keys in errors.
pub fn tls_identity(cert: &Path, key: &Path, section: &str) -> Result<Option<TlsPem>, ConfigError> {
    let cert = read_optional(cert, &format!("{section}.tls-cert"))?;
    let key = read_optional(key, &format!("{section}.tls-key"))?;
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsPem { cert, key })),
        (None, None) => Ok(None),
        _ => Err(err(format!(
            "{section}.tls-cert and {section}.tls-key go together"
        ))),
    }
}

fn read_optional(path: &Path, key: &str) -> Result<Option<Vec<u8>>, ConfigError> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| err(format!("{key}: reading {}: {e}", path.display())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
    struct Cfg {
        a: A,
        runtime: RuntimeConfig,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
    struct A {
        name: String,
        on: bool,
        n: u64,
        #[serde(with = "duration")]
        every: Duration,
        list: Vec<String>,
    }

    impl Default for A {
        fn default() -> Self {
            A {
                name: "x".into(),
                on: false,
                n: 10 << 30,
                every: Duration::from_secs(600),
                list: vec!["a".into()],
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_print_and_load_back() {
        let text = to_toml(&Cfg::default());
        assert!(text.contains("every = \"10m\""), "{text}");
        let f = tempfile_path(&text);
        let l: Loaded<Cfg> = load(Some(&f), vec![]).unwrap();
        assert_eq!(l.config, Cfg::default());
        let _ = std::fs::remove_file(f);
    }

    #[test]
    fn file_then_env() {
        let f = tempfile_path("[a]\nname = \"file\"\nevery = \"1500ms\"\n");
        let l: Loaded<Cfg> = load(
            Some(&f),
            env(&[
                ("SUNDIAL_A_ON", "true"),
                ("SUNDIAL_A_LIST", "p, q"),
                ("SUNDIAL_RUNTIME_MAX_BLOCKING_THREADS", "8"),
                ("SUNDIAL_NOPE", "1"),
                ("SUNDIAL_LOG", "debug"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        let _ = std::fs::remove_file(f);
        assert_eq!(l.config.a.name, "file");
        assert!(l.config.a.on);
        assert_eq!(l.config.a.every, Duration::from_millis(1500));
        assert_eq!(l.config.a.list, ["p", "q"]);
        assert_eq!(l.config.runtime.max_blocking_threads, 8);
        assert_eq!(
            l.warnings,
            ["unknown SUNDIAL_ variable SUNDIAL_NOPE ignored"]
        );
    }

    #[test]
    fn bad_values_name_their_place() {
        let e = load::<Cfg>(None, env(&[("SUNDIAL_A_ON", "maybe")])).unwrap_err();
        assert!(e.0.contains("SUNDIAL_A_ON: expected true or false"), "{e}");
        let e = load::<Cfg>(None, env(&[("SUNDIAL_A_EVERY", "10 parsecs")])).unwrap_err();
        assert!(e.0.contains("invalid configuration"), "{e}");
        let f = tempfile_path("[a]\nbogus = 1\n");
        assert!(load::<Cfg>(Some(&f), vec![]).is_err());
        let _ = std::fs::remove_file(f);
    }

    #[test]
    fn durations_print_exactly() {
        for (d, s) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(1800), "30m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(7 * 86_400), "7d"),
        ] {
            assert_eq!(crate::duration::format_duration(d), s);
            assert_eq!(crate::duration::parse_duration(s).unwrap(), d);
        }
    }

    #[test]
    fn tls_files_go_together() {
        let cert = tempfile_path("cert");
        let e = tls_identity(&cert, Path::new(""), "store").unwrap_err();
        assert!(
            e.0.contains("store.tls-cert and store.tls-key go together"),
            "{e}"
        );
        assert_eq!(
            tls_identity(Path::new(""), Path::new(""), "x").unwrap(),
            None
        );
        let _ = std::fs::remove_file(&cert);
    }

    fn tempfile_path(text: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "sundial-config-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, text).unwrap();
        p
    }
}
