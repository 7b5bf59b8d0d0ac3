//! The all-in-one `sundial`'s configuration: defaults < TOML file < environment
//! (`SUNDIAL_<SECTION>_<KEY>`) < command-line flags. Each section's defaults are
//! written once, by the crate that owns it ([`DataConfig`] in the store,
//! [`HttpConfig`] in the gateway, …); `sundial config` prints the result as TOML.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;
use sundial_cluster::CoordinatorConfig;
use sundial_common::config::{LoggingConfig, RuntimeConfig, TracingConfig};
use sundial_gateway::config::HttpConfig;
use sundial_meta::services::{PrecreationConfig, RetentionConfig};
use sundial_store::config::DataConfig;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Holds `meta/` (embedded metadata) and `store/` (shards: WAL and files).
    pub data: DataConfig,
    pub http: HttpConfig,
    pub coordinator: CoordinatorConfig,
    pub retention: RetentionConfig,
    pub shard_precreation: PrecreationConfig,
    pub continuous_queries: sundial_gateway::cq::ContinuousQueriesConfig,
    pub runtime: RuntimeConfig,
    pub logging: LoggingConfig,
    pub tracing: TracingConfig,
}

impl Config {
    /// Defaults, then the TOML file (if any), then `SUNDIAL_…` variables from `env`.
    /// Returns the variables that matched no key, to be logged.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<String>)> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut loaded = sundial_common::config::load::<Config>(file, env.clone())?;
        loaded.config.tracing.apply_otel_env(env)?;
        loaded.config.validate()?;
        Ok((loaded.config, loaded.warnings))
    }

    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.http.validate()?;
        self.runtime.validate()?;
        self.retention.validate()?;
        self.shard_precreation.validate()?;
        self.continuous_queries.validate()?;
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        sundial_common::config::to_toml(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = Config::default().to_toml();
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), &text).unwrap();
        assert_eq!(
            Config::load(Some(path.path()), vec![]).unwrap().0,
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
        let (c, unknown) = Config::load(Some(f.path()), env).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(c.http.bind_address, "127.0.0.1:7777");
        assert!(c.http.auth_enabled);
        assert_eq!(c.http.max_body_size, 1000);
        assert_eq!(c.data.dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_are_reported() {
        let env = vec![("SUNDIAL_HTTP_AUTH_ENABLED".to_string(), "maybe".to_string())];
        let e = Config::load(None, env).unwrap_err().to_string();
        assert!(e.contains("expected true or false"), "{e}");
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
    fn durations_are_typed_when_read() {
        let env = vec![(
            "SUNDIAL_HTTP_WRITE_TIMEOUT".to_string(),
            "1500ms".to_string(),
        )];
        let (c, _) = Config::load(None, env).unwrap();
        assert_eq!(c.http.write_timeout, Duration::from_millis(1500));
        assert!(c.to_toml().contains("write-timeout = \"1500ms\""));
    }
}
