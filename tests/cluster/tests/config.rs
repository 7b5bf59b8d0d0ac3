//! Every binary's configuration: `config` prints defaults < file < `SUNDIAL_…`
//! variables < flags as TOML that loads back unchanged, and bad values name their
//! key.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use sundial_cluster_tests::bin;

/// `<name> config <args>` with `env`: (succeeded, stdout, stderr).
fn config(name: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(bin(name))
        .arg("config")
        .args(args)
        .env_remove("SUNDIAL_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A key's value in printed TOML: `key = value` under `[section]`.
fn value(toml: &str, section: &str, key: &str) -> String {
    let t: toml::Table = toml.parse().unwrap();
    t[section][key].to_string()
}

/// One binary's case: a key set by a variable, another by a flag.
struct Case {
    bin: &'static str,
    key: (&'static str, &'static str),
    var: (&'static str, &'static str),
    printed: &'static str,
    flag: [&'static str; 2],
    flag_key: (&'static str, &'static str),
    flag_printed: &'static str,
}

const CASES: &[Case] = &[
    Case {
        bin: "sundial",
        key: ("http", "write-timeout"),
        var: ("SUNDIAL_HTTP_WRITE_TIMEOUT", "1500ms"),
        printed: "\"1500ms\"",
        flag: ["--bind", "127.0.0.1:9"],
        flag_key: ("http", "bind-address"),
        flag_printed: "\"127.0.0.1:9\"",
    },
    Case {
        bin: "sundial-store",
        key: ("data", "wal-fsync"),
        var: ("SUNDIAL_DATA_WAL_FSYNC", "100ms"),
        printed: "\"100ms\"",
        flag: ["--advertise", "store-2:8088"],
        flag_key: ("store", "advertise"),
        flag_printed: "\"store-2:8088\"",
    },
    Case {
        bin: "sundial-gateway",
        key: ("hinted-handoff", "max-age"),
        var: ("SUNDIAL_HINTED_HANDOFF_MAX_AGE", "2h"),
        printed: "\"2h\"",
        flag: ["--meta", "meta-1:8091,meta-2:8091"],
        flag_key: ("gateway", "meta"),
        flag_printed: "\"meta-1:8091,meta-2:8091\"",
    },
    Case {
        bin: "sundial-meta",
        key: ("meta", "etcd-endpoints"),
        var: (
            "SUNDIAL_META_ETCD_ENDPOINTS",
            "http://e1:2379,http://e2:2379",
        ),
        printed: "[\"http://e1:2379\", \"http://e2:2379\"]",
        flag: ["--leader-lease-ttl", "30s"],
        flag_key: ("meta", "leader-lease-ttl"),
        flag_printed: "\"30s\"",
    },
];

#[test]
fn every_binary_prints_its_layered_configuration_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    for c in CASES {
        let (name, (sec, key), (var, val)) = (c.bin, c.key, c.var);
        let (printed, flag, (fsec, fkey), fprinted) =
            (c.printed, &c.flag, c.flag_key, c.flag_printed);
        let (ok, defaults, err) = config(name, &[], &[]);
        assert!(ok, "{name}: {err}");
        let (ok, layered, err) = config(name, flag, &[(var, val)]);
        assert!(ok, "{name}: {err}");
        assert_eq!(value(&layered, sec, key), printed, "{name}: {var}");
        assert_eq!(value(&layered, fsec, fkey), fprinted, "{name}: {flag:?}");
        assert_ne!(layered, defaults, "{name}");
        // What `config` prints is a configuration file that gives the same result.
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, &layered).unwrap();
        let (ok, again, err) = config(name, &["-c", file.to_str().unwrap()], &[]);
        assert!(ok, "{name}: {err}");
        assert_eq!(again, layered, "{name}");
        // A variable beats the file; a flag beats both.
        let (ok, over, _) = config(name, &["-c", file.to_str().unwrap()], &[(var, "7d")]);
        if key != "etcd-endpoints" {
            assert!(ok, "{name}");
            assert_eq!(value(&over, sec, key), "\"7d\"", "{name}");
        }
    }
}

#[test]
fn bad_values_and_unknown_keys_name_their_place() {
    let dir = tempfile::tempdir().unwrap();
    for (name, var) in [
        ("sundial", "SUNDIAL_HTTP_IDLE_TIMEOUT"),
        ("sundial-store", "SUNDIAL_STORE_RECONCILE_INTERVAL"),
        ("sundial-gateway", "SUNDIAL_GATEWAY_SHARD_WRITE_TIMEOUT"),
        ("sundial-meta", "SUNDIAL_RETENTION_CHECK_INTERVAL"),
    ] {
        let (ok, _, err) = config(name, &[], &[(var, "10 parsecs")]);
        assert!(!ok, "{name}");
        assert!(err.contains("bad duration"), "{name}: {err}");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[logging]\nlevel = \"info\"\nbogus = 1\n").unwrap();
        let (ok, _, err) = config(name, &["-c", file.to_str().unwrap()], &[]);
        assert!(!ok, "{name}");
        assert!(err.contains("unknown field `bogus`"), "{name}: {err}");
    }
}

#[test]
fn old_variable_names_still_set_their_keys_and_secrets_are_not_printed() {
    let (ok, out, err) = config(
        "sundial-gateway",
        &["--shared-secret", "s3cret"],
        &[
            ("SUNDIAL_GATEWAY_AUTH_ENABLED", "true"),
            ("SUNDIAL_GATEWAY_HH_DIR", "/var/lib/hh"),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(value(&out, "http", "auth-enabled"), "true");
    assert_eq!(value(&out, "hinted-handoff", "dir"), "\"/var/lib/hh\"");
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("# shared-secret = (set, not shown)"), "{out}");
    let (ok, out, err) = config("sundial-store", &[], &[("SUNDIAL_STORE_DATA_DIR", "/d")]);
    assert!(ok, "{err}");
    assert_eq!(value(&out, "data", "dir"), "\"/d\"");
    let (ok, out, err) = config("sundial-meta", &[], &[("SUNDIAL_META_NO_SERVICES", "true")]);
    assert!(ok, "{err}");
    assert_eq!(value(&out, "retention", "enabled"), "false");
    assert_eq!(value(&out, "shard-precreation", "enabled"), "false");
}

#[test]
fn handoff_refuses_a_queue_directory_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = Command::new(bin("sundial-gateway"))
        .args(["handoff", "--report", "--hh-dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no hinted handoff directory"), "{err}");
    assert!(!missing.exists(), "nothing is created");
}
