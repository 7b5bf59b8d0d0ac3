use crate::*;

const H: i64 = 3_600_000_000_000;
const D: i64 = 24 * H;

fn one(q: &str) -> Statement {
    let mut v = parse_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(v.len(), 1, "{q}");
    v.remove(0)
}

#[test]
fn databases() {
    assert_eq!(
        one("CREATE DATABASE mydb"),
        Statement::CreateDatabase {
            name: "mydb".into(),
            rp: None
        }
    );
    assert_eq!(
        one("create database \"my db\""),
        Statement::CreateDatabase {
            name: "my db".into(),
            rp: None
        }
    );
    assert_eq!(
        one("CREATE DATABASE d WITH DURATION 3d REPLICATION 1 SHARD DURATION 1h NAME short"),
        Statement::CreateDatabase {
            name: "d".into(),
            rp: Some(RetentionPolicySpec {
                name: Some("short".into()),
                duration: Some(3 * D),
                replication: Some(1),
                shard_duration: Some(H),
            })
        }
    );
    assert_eq!(
        one("DROP DATABASE d"),
        Statement::DropDatabase { name: "d".into() }
    );
    assert_eq!(one("SHOW DATABASES"), Statement::ShowDatabases);
}

#[test]
fn retention_policies() {
    assert_eq!(
        one("CREATE RETENTION POLICY one_week ON d DURATION 1w REPLICATION 1 SHARD DURATION 1d DEFAULT"),
        Statement::CreateRetentionPolicy {
            name: "one_week".into(),
            database: "d".into(),
            duration: 7 * D,
            replication: 1,
            shard_duration: Some(D),
            default: true,
        }
    );
    assert_eq!(
        one("CREATE RETENTION POLICY forever ON d DURATION INF REPLICATION 2"),
        Statement::CreateRetentionPolicy {
            name: "forever".into(),
            database: "d".into(),
            duration: 0,
            replication: 2,
            shard_duration: None,
            default: false,
        }
    );
    assert_eq!(
        one("ALTER RETENTION POLICY r ON d DURATION 2h DEFAULT"),
        Statement::AlterRetentionPolicy {
            name: "r".into(),
            database: "d".into(),
            duration: Some(2 * H),
            replication: None,
            shard_duration: None,
            default: true,
        }
    );
    assert_eq!(
        one("DROP RETENTION POLICY r ON d"),
        Statement::DropRetentionPolicy {
            name: "r".into(),
            database: "d".into()
        }
    );
    assert_eq!(
        one("SHOW RETENTION POLICIES ON d"),
        Statement::ShowRetentionPolicies {
            database: Some("d".into())
        }
    );
    assert_eq!(
        one("SHOW RETENTION POLICIES"),
        Statement::ShowRetentionPolicies { database: None }
    );
}

#[test]
fn users_and_grants() {
    assert_eq!(
        one("CREATE USER admin WITH PASSWORD 'secret' WITH ALL PRIVILEGES"),
        Statement::CreateUser {
            name: "admin".into(),
            password: "secret".into(),
            admin: true
        }
    );
    assert_eq!(
        one(r"CREATE USER bob WITH PASSWORD 'p\'w'"),
        Statement::CreateUser {
            name: "bob".into(),
            password: "p'w".into(),
            admin: false
        }
    );
    assert_eq!(
        one("DROP USER bob"),
        Statement::DropUser { name: "bob".into() }
    );
    assert_eq!(
        one("SET PASSWORD FOR bob = 'new'"),
        Statement::SetPassword {
            name: "bob".into(),
            password: "new".into()
        }
    );
    assert_eq!(
        one("GRANT READ ON d TO bob"),
        Statement::Grant {
            privilege: Privilege::Read,
            database: Some("d".into()),
            user: "bob".into()
        }
    );
    assert_eq!(
        one("GRANT ALL PRIVILEGES ON d TO bob"),
        Statement::Grant {
            privilege: Privilege::All,
            database: Some("d".into()),
            user: "bob".into()
        }
    );
    assert_eq!(
        one("GRANT ALL PRIVILEGES TO bob"),
        Statement::Grant {
            privilege: Privilege::All,
            database: None,
            user: "bob".into()
        }
    );
    assert_eq!(
        one("REVOKE WRITE ON d FROM bob"),
        Statement::Revoke {
            privilege: Privilege::Write,
            database: Some("d".into()),
            user: "bob".into()
        }
    );
    assert_eq!(one("SHOW USERS"), Statement::ShowUsers);
    assert_eq!(
        one("SHOW GRANTS FOR bob"),
        Statement::ShowGrants { user: "bob".into() }
    );
}

#[test]
fn several_statements_and_unsupported_ones() {
    let v = parse_query("CREATE DATABASE a; SELECT * FROM cpu WHERE host = 'x;y' ;; SHOW STATS FOR 'a;b';SHOW MEASUREMENTS;DROP DATABASE a; explain select * from m").unwrap();
    assert_eq!(v.len(), 6);
    match &v[1] {
        Statement::Select(s) => assert_eq!(s.to_string(), "SELECT * FROM cpu WHERE host = 'x;y'"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        v[2],
        Statement::Unsupported {
            kind: "SHOW STATS".into(),
            text: "SHOW STATS FOR 'a;b'".into()
        }
    );
    assert_eq!(
        v[3],
        Statement::ShowMeasurements(ShowMeasurements::default())
    );
    assert_eq!(v[4], Statement::DropDatabase { name: "a".into() });
    assert_eq!(
        v[5],
        Statement::Unsupported {
            kind: "EXPLAIN SELECT".into(),
            text: "explain select * from m".into()
        }
    );
}

#[test]
fn errors_read_like_influxdb() {
    let e = parse_query("CREATE DATABSE x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "error parsing query: found DATABSE, expected CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION at line 1, char 8"
    );
    let e = parse_query("CREATE RETENTION POLICY r ON d DURATION 1h").unwrap_err();
    assert_eq!(
        e.to_string(),
        "error parsing query: found EOF, expected REPLICATION at line 1, char 43"
    );
    let e = parse_query("CREATE DATABASE select").unwrap_err();
    assert!(
        e.to_string().contains("found select, expected identifier"),
        "{e}"
    );
    let e = parse_query("").unwrap_err();
    assert!(
        e.to_string()
            .contains("found EOF, expected SELECT, DELETE, SHOW"),
        "{e}"
    );
    let e = parse_query("SHOW DATABASES x").unwrap_err();
    assert!(e.to_string().contains("found x, expected ;"), "{e}");
    let e = parse_query("CREATE USER u WITH PASSWORD 'open").unwrap_err();
    assert!(e.to_string().contains("unterminated string"), "{e}");
    let e = parse_query("CREATE RETENTION POLICY r ON d DURATION 1x REPLICATION 1").unwrap_err();
    assert!(e.to_string().contains("invalid duration 1x"), "{e}");
    let e = parse_query("CREATE RETENTION POLICY r ON d DURATION 1h REPLICATION 0").unwrap_err();
    assert!(e.to_string().contains("invalid value 0"), "{e}");
    // Positions count from the start of the whole query.
    let e = parse_query("SHOW DATABASES;\n CREATE DATABSE x").unwrap_err();
    assert!(e.to_string().ends_with("at line 2, char 9"), "{e}");
    let e = parse_query("SHOW DATABASES; CREATE DATABSE x").unwrap_err();
    assert!(e.to_string().ends_with("at line 1, char 24"), "{e}");
    let e = parse_query("SHOW DATABASES; SELECT FROM x").unwrap_err();
    assert!(e.to_string().ends_with("at line 1, char 24"), "{e}");
    assert!(parse_query("CREATE DATABASE a\nDROP x")
        .unwrap_err()
        .to_string()
        .contains("line 2"));
}
