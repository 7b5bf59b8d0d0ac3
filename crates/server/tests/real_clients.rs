//! Real clients users have: the Python `influxdb` (1.x) and `influxdb-client`
//! (2.x) libraries, and the `influx` CLI from Debian's `influxdb-client`.
//! `make test` installs them (scripts/test-deps.sh).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{client, export, Server};
use std::process::Command;

fn script() -> String {
    format!(
        "{}/../../tests/clients/real_clients.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn python_influxdb_v1_client() {
    let mut s = Server::start(&[]);
    let (host, port) = s.addr.rsplit_once(':').unwrap();
    let out = Command::new(python())
        .arg(script())
        .args(["v1", host, port])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "pyv1");
    let line = dump
        .lines()
        .find(|l| l.starts_with("cpu,host=server03,region=us-west "))
        .unwrap_or_else(|| panic!("no server03 point in {dump}"));
    for field in ["count=3i", r#"note="say \"hi\"""#, "ok=true", "usage=3.5"] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(line.ends_with(" 1600000003000000000"), "{line}");
    // Ten hosts written twice (the second time in batches of 3): ten series.
    assert_eq!(
        dump.lines().filter(|l| l.starts_with("cpu,")).count(),
        10,
        "{dump}"
    );
    assert!(dump.contains("mem free=1i 1600000000000000000"), "{dump}");
}

#[test]
fn python_influxdb_client_v2_with_token() {
    let s = Server::start(&["--auth-enabled", "true"]);
    let setup = "CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES";
    assert_eq!(
        client()
            .post(s.url("/query"))
            .form(&[("q", setup)])
            .send()
            .unwrap()
            .status(),
        200
    );
    let ddl =
        "CREATE DATABASE pyv2; CREATE RETENTION POLICY rp1 ON pyv2 DURATION INF REPLICATION 1";
    let r = client()
        .post(s.url("/query?u=admin&p=pw"))
        .form(&[("q", ddl)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = s.url("");
    let out = Command::new(python())
        .arg(script())
        .args(["v2", &url, "admin", "pw"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = s;
    assert!(s.terminate().success());
    let dump = export(s.data_dir(), "pyv2");
    assert!(dump.contains("# CONTEXT-RETENTION-POLICY: rp1"), "{dump}");
    assert!(
        dump.contains("temp,room=a celsius=21.5 1600000000000000000"),
        "{dump}"
    );
    assert!(
        dump.contains("temp,room=b celsius=19.25 1600000001000000000"),
        "{dump}"
    );
}

#[test]
fn influx_cli_creates_and_lists_databases() {
    let s = Server::start(&[]);
    let (host, port) = s.addr.rsplit_once(':').unwrap();
    // The CLI with `args` before `-execute q`; it must succeed.
    let run = |args: &[&str], q: &str| {
        let out = Command::new("influx")
            .args(["-host", host, "-port", port])
            .args(args)
            .args(["-execute", q])
            .output()
            .expect("influx CLI (Debian package influxdb-client) must be installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let influx = |q: &str| run(&[], q);
    influx("CREATE DATABASE from_cli");
    let listed = influx("SHOW DATABASES");
    assert!(listed.contains("from_cli"), "{listed}");

    // What it writes, it reads back (the CLI's own INSERT and SELECT).
    run(
        &["-database", "from_cli"],
        "INSERT cpu,host=a value=1.5 1000000000",
    );
    let read = |q: &str| {
        run(
            &["-database", "from_cli", "-format", "csv", "-precision", "s"],
            q,
        )
    };
    let rows = read("SELECT value, host FROM cpu");
    assert_eq!(rows, "name,time,value,host\ncpu,1,1.5,a\n", "{rows}");
    let rows = read("SELECT sum(value) FROM cpu GROUP BY host");
    assert_eq!(rows, "name,tags,time,sum\ncpu,host=a,0,1.5\n", "{rows}");
}
