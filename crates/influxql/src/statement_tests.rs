//! The statements parsed by `select/statement.rs` and `select/cq.rs`, against
//! InfluxDB 1.6.7's parser (influxql@1cbfca8). "pt:N" cites the case at line N
//! of that commit's `parser_test.go`, "at:N" `ast_test.go`; "doc §x" a case of
//! `INFLUXQL-1.6.md` checked by running Go; "go:fn" a case worked out by hand
//! from that function of `parser.go` / `ast.go` (positions: see the doc's
//! §1.1 for the EOF rule).

use crate::select::{has_time_expr, parse_expr, split_condition, Clock, Measurement, TimeRange};
use crate::*;

fn parse_one(q: &str) -> Statement {
    let mut v = parse_query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(v.len(), 1, "{q}");
    v.remove(0)
}

/// Query → its `String()` in InfluxDB; the rendering parses back to the same tree.
const ROUND_TRIPS: &[(&str, &str)] = &[
    // pt:1523–1565
    ("SHOW SERIES", "SHOW SERIES"),
    ("SHOW SERIES FROM cpu", "SHOW SERIES FROM cpu"),
    ("SHOW SERIES ON db0", "SHOW SERIES ON db0"),
    ("SHOW SERIES FROM /[cg]pu/", "SHOW SERIES FROM /[cg]pu/"),
    ("SHOW SERIES OFFSET 0", "SHOW SERIES"),
    ("SHOW SERIES LIMIT 2 OFFSET 0", "SHOW SERIES LIMIT 2"),
    // pt:1588–1650
    ("SHOW SERIES CARDINALITY", "SHOW SERIES CARDINALITY"),
    ("SHOW SERIES CARDINALITY ON dbz", "SHOW SERIES CARDINALITY ON dbz"),
    ("SHOW SERIES EXACT CARDINALITY", "SHOW SERIES EXACT CARDINALITY"),
    ("SHOW SERIES EXACT CARDINALITY FROM cpu", "SHOW SERIES EXACT CARDINALITY FROM cpu"),
    ("SHOW SERIES EXACT CARDINALITY ON db0", "SHOW SERIES EXACT CARDINALITY ON db0"),
    ("SHOW SERIES EXACT CARDINALITY FROM /[cg]pu/", "SHOW SERIES EXACT CARDINALITY FROM /[cg]pu/"),
    ("SHOW SERIES EXACT CARDINALITY OFFSET 0", "SHOW SERIES EXACT CARDINALITY"),
    ("SHOW SERIES EXACT CARDINALITY LIMIT 2 OFFSET 0", "SHOW SERIES EXACT CARDINALITY LIMIT 2"),
    (
        "SHOW SERIES EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
        "SHOW SERIES EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
    ),
    // doc §7: EXACT without CARDINALITY is dropped (go:parseShowSeriesStatement)
    ("SHOW SERIES EXACT FROM cpu", "SHOW SERIES FROM cpu"),
    // pt:1682–1700, at:975–978
    ("SHOW MEASUREMENTS ON db0", "SHOW MEASUREMENTS ON db0"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT = cpu", "SHOW MEASUREMENTS WITH MEASUREMENT = cpu"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT =~ /[cg]pu/", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /[cg]pu/"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT =~ /foo/", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /foo/"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT = \"and/or\"", "SHOW MEASUREMENTS WITH MEASUREMENT = \"and/or\""),
    // go:ShowMeasurementsStatement.String: the operator follows what was parsed
    ("SHOW MEASUREMENTS WITH MEASUREMENT = /cpu/", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /cpu/"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT =~ db.rp.cpu", "SHOW MEASUREMENTS WITH MEASUREMENT = db.rp.cpu"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT =~ /a\\/b/", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /a\\/b/"),
    (
        "show measurements on db with measurement =~ /c/ where host = 'a' order by desc limit 3 offset 1",
        "SHOW MEASUREMENTS ON db WITH MEASUREMENT =~ /c/ WHERE host = 'a' ORDER BY DESC LIMIT 3 OFFSET 1",
    ),
    // pt:1708–1780
    ("SHOW MEASUREMENT CARDINALITY", "SHOW MEASUREMENT CARDINALITY"),
    ("SHOW MEASUREMENT CARDINALITY ON db0", "SHOW MEASUREMENT CARDINALITY ON db0"),
    ("SHOW MEASUREMENT EXACT CARDINALITY FROM /[cg]pu/", "SHOW MEASUREMENT EXACT CARDINALITY FROM /[cg]pu/"),
    ("SHOW MEASUREMENT EXACT CARDINALITY LIMIT 2 OFFSET 0", "SHOW MEASUREMENT EXACT CARDINALITY LIMIT 2"),
    (
        "SHOW MEASUREMENT EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
        "SHOW MEASUREMENT EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
    ),
    // pt:1790–1806
    ("SHOW QUERIES", "SHOW QUERIES"),
    ("KILL QUERY 4", "KILL QUERY 4"),
    ("KILL QUERY 4 ON localhost", "KILL QUERY 4 ON localhost"),
    ("KILL QUERY 18446744073709551615 ON \"my host\"", "KILL QUERY 18446744073709551615 ON \"my host\""),
    // pt:1826–1940
    ("SHOW TAG KEY CARDINALITY", "SHOW TAG KEY CARDINALITY"),
    ("SHOW TAG KEY CARDINALITY FROM cpu", "SHOW TAG KEY CARDINALITY FROM cpu"),
    ("SHOW TAG KEY CARDINALITY ON db0", "SHOW TAG KEY CARDINALITY ON db0"),
    ("SHOW TAG KEY CARDINALITY OFFSET 0", "SHOW TAG KEY CARDINALITY"),
    ("SHOW TAG KEY EXACT CARDINALITY LIMIT 2 OFFSET 0", "SHOW TAG KEY EXACT CARDINALITY LIMIT 2"),
    (
        "SHOW TAG KEY EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
        "SHOW TAG KEY EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
    ),
    // pt:1950–2040
    ("SHOW TAG KEYS FROM src", "SHOW TAG KEYS FROM src"),
    ("SHOW TAG KEYS ON db0", "SHOW TAG KEYS ON db0"),
    ("SHOW TAG KEYS FROM src LIMIT 2", "SHOW TAG KEYS FROM src LIMIT 2"),
    ("SHOW TAG KEYS FROM src OFFSET 1", "SHOW TAG KEYS FROM src OFFSET 1"),
    ("SHOW TAG KEYS FROM src SLIMIT 2 SOFFSET 1", "SHOW TAG KEYS FROM src SLIMIT 2 SOFFSET 1"),
    (
        "SHOW TAG KEYS FROM src LIMIT 4 OFFSET 3 SLIMIT 2 SOFFSET 1",
        "SHOW TAG KEYS FROM src LIMIT 4 OFFSET 3 SLIMIT 2 SOFFSET 1",
    ),
    ("SHOW TAG KEYS FROM /[cg]pu/", "SHOW TAG KEYS FROM /[cg]pu/"),
    (
        "SHOW TAG KEYS ON \"my db\" FROM \"db\".\"rp\".\"h2o level\", rp./x/ WHERE time > now() - 1h ORDER BY time DESC",
        "SHOW TAG KEYS ON \"my db\" FROM db.rp.\"h2o level\", rp./x/ WHERE time > now() - 1h ORDER BY time DESC",
    ),
    // pt:2088–2172, at:958
    (
        "SHOW TAG VALUES FROM cpu WITH KEY IN (region, host) WHERE region = 'uswest'",
        "SHOW TAG VALUES FROM cpu WITH KEY IN (region, host) WHERE region = 'uswest'",
    ),
    (
        "SHOW TAG VALUES FROM cpu WITH KEY IN (region,service,host)WHERE region = 'uswest'",
        "SHOW TAG VALUES FROM cpu WITH KEY IN (region, service, host) WHERE region = 'uswest'",
    ),
    ("SHOW TAG VALUES WITH KEY = host WHERE region = 'uswest'", "SHOW TAG VALUES WITH KEY = host WHERE region = 'uswest'"),
    ("SHOW TAG VALUES FROM /[cg]pu/ WITH KEY = host", "SHOW TAG VALUES FROM /[cg]pu/ WITH KEY = host"),
    ("SHOW TAG VALUES WITH KEY = \"host\" WHERE region = 'uswest'", "SHOW TAG VALUES WITH KEY = host WHERE region = 'uswest'"),
    ("SHOW TAG VALUES WITH KEY =~ /(host|region)/", "SHOW TAG VALUES WITH KEY =~ /(host|region)/"),
    ("SHOW TAG VALUES ON db0 WITH KEY = \"host\"", "SHOW TAG VALUES ON db0 WITH KEY = host"),
    ("SHOW TAG VALUES WITH KEY IN (\"a long name\", short)", "SHOW TAG VALUES WITH KEY IN (\"a long name\", short)"),
    // go:parseTagKeyExpr (NEQ, NEQREGEX)
    ("SHOW TAG VALUES WITH KEY != \"key\" LIMIT 5", "SHOW TAG VALUES WITH KEY != \"key\" LIMIT 5"),
    ("SHOW TAG VALUES WITH KEY !~ /^_/ ORDER BY ASC", "SHOW TAG VALUES WITH KEY !~ /^_/ ORDER BY ASC"),
    // pt:2179–2335
    ("SHOW TAG VALUES CARDINALITY WITH KEY = host", "SHOW TAG VALUES CARDINALITY WITH KEY = host"),
    ("SHOW TAG VALUES CARDINALITY FROM cpu WITH KEY =  host", "SHOW TAG VALUES CARDINALITY FROM cpu WITH KEY = host"),
    ("SHOW TAG VALUES CARDINALITY ON db0 WITH KEY = host", "SHOW TAG VALUES CARDINALITY ON db0 WITH KEY = host"),
    ("SHOW TAG VALUES CARDINALITY WITH KEY = host OFFSET 0", "SHOW TAG VALUES CARDINALITY WITH KEY = host"),
    ("SHOW TAG VALUES EXACT CARDINALITY WITH KEY = host LIMIT 2 OFFSET 0", "SHOW TAG VALUES EXACT CARDINALITY WITH KEY = host LIMIT 2"),
    (
        "SHOW TAG VALUES EXACT CARDINALITY FROM /[cg]pu/ WITH KEY = host",
        "SHOW TAG VALUES EXACT CARDINALITY FROM /[cg]pu/ WITH KEY = host",
    ),
    (
        "SHOW TAG VALUES EXACT CARDINALITY ON db FROM cpu, mem WITH KEY IN (a, b) WHERE a = 'b' GROUP BY host, time(1h) LIMIT 2 OFFSET 3",
        "SHOW TAG VALUES EXACT CARDINALITY ON db FROM cpu, mem WITH KEY IN (a, b) WHERE a = 'b' GROUP BY host, time(1h) LIMIT 2 OFFSET 3",
    ),
    // pt:2363–2510
    ("SHOW FIELD KEYS FROM /[cg]pu/", "SHOW FIELD KEYS FROM /[cg]pu/"),
    ("SHOW FIELD KEYS ON db0", "SHOW FIELD KEYS ON db0"),
    ("SHOW FIELD KEYS ON db0 FROM m ORDER BY time LIMIT 1 OFFSET 2", "SHOW FIELD KEYS ON db0 FROM m ORDER BY time ASC LIMIT 1 OFFSET 2"),
    ("SHOW FIELD KEY CARDINALITY", "SHOW FIELD KEY CARDINALITY"),
    ("SHOW FIELD KEY CARDINALITY FROM /[cg]pu/", "SHOW FIELD KEY CARDINALITY FROM /[cg]pu/"),
    ("SHOW FIELD KEY EXACT CARDINALITY ON db0", "SHOW FIELD KEY EXACT CARDINALITY ON db0"),
    (
        "SHOW FIELD KEY EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
        "SHOW FIELD KEY EXACT CARDINALITY WHERE region = 'order by desc' LIMIT 10",
    ),
    // pt:2516–2565
    ("DELETE FROM src", "DELETE FROM src"),
    ("DELETE WHERE host = 'hosta.influxdb.org'", "DELETE WHERE host = 'hosta.influxdb.org'"),
    ("DELETE FROM src WHERE host = 'hosta.influxdb.org'", "DELETE FROM src WHERE host = 'hosta.influxdb.org'"),
    ("DROP SERIES FROM src", "DROP SERIES FROM src"),
    ("DROP SERIES WHERE host = 'hosta.influxdb.org'", "DROP SERIES WHERE host = 'hosta.influxdb.org'"),
    ("DROP SERIES FROM src, /x/ WHERE host = 'h'", "DROP SERIES FROM src, /x/ WHERE host = 'h'"),
    ("delete from \"my m\" where time < '2020-01-01'", "DELETE FROM \"my m\" WHERE time < '2020-01-01'"),
    // pt:2570–2730
    ("SHOW CONTINUOUS QUERIES", "SHOW CONTINUOUS QUERIES"),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb RESAMPLE EVERY 1m FOR 1h BEGIN SELECT count(field1) INTO measure1 FROM myseries GROUP BY time(5m) END",
        "CREATE CONTINUOUS QUERY myquery ON testdb RESAMPLE EVERY 1m FOR 1h BEGIN SELECT count(field1) INTO measure1 FROM myseries GROUP BY time(5m) END",
    ),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb RESAMPLE FOR 1h BEGIN SELECT count(field1) INTO measure1 FROM myseries GROUP BY time(5m) END",
        "CREATE CONTINUOUS QUERY myquery ON testdb RESAMPLE FOR 1h BEGIN SELECT count(field1) INTO measure1 FROM myseries GROUP BY time(5m) END",
    ),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb RESAMPLE EVERY 1m BEGIN SELECT count(field1) INTO measure1 FROM myseries GROUP BY time(5m) END",
        "CREATE CONTINUOUS QUERY myquery ON testdb RESAMPLE EVERY 1m BEGIN SELECT count(field1) INTO measure1 FROM myseries GROUP BY time(5m) END",
    ),
    (
        "create continuous query \"this.is-a.test\" on segments begin select * into measure1 from cpu_load_short end",
        "CREATE CONTINUOUS QUERY \"this.is-a.test\" ON segments BEGIN SELECT * INTO measure1 FROM cpu_load_short END",
    ),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT count(field1) INTO \"1h.policy1\".\"cpu.load\" FROM myseries GROUP BY time(5m) END",
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT count(field1) INTO \"1h.policy1\".\"cpu.load\" FROM myseries GROUP BY time(5m) END",
    ),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT value INTO \"policy1\".\"value\" FROM myseries END",
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT value INTO policy1.value FROM myseries END",
    ),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT transmit_rx, transmit_tx INTO \"policy1\".\"network\" FROM myseries END",
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT transmit_rx, transmit_tx INTO policy1.network FROM myseries END",
    ),
    (
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT mean(value) INTO \"policy1\".:measurement FROM /^[a-z]+.*/ GROUP BY time(1m) END",
        "CREATE CONTINUOUS QUERY myquery ON testdb BEGIN SELECT mean(value) INTO policy1.:MEASUREMENT FROM /^[a-z]+.*/ GROUP BY time(1m) END",
    ),
    // doc §6 (run against Go)
    (
        "CREATE CONTINUOUS QUERY \"my cq\" ON \"my db\" RESAMPLE EVERY 2h FOR 1d BEGIN SELECT mean(value) AS m, max(v) INTO db.rp.:MEASUREMENT FROM /.*/ WHERE host = 'a' GROUP BY time(1h, 30m), * fill(0) END",
        "CREATE CONTINUOUS QUERY \"my cq\" ON \"my db\" RESAMPLE EVERY 2h FOR 1d BEGIN SELECT mean(value) AS m, max(v) INTO db.rp.:MEASUREMENT FROM /.*/ WHERE host = 'a' GROUP BY time(1h, 30m), * fill(0) END",
    ),
    (
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 2h FOR 4h BEGIN SELECT mean(value) INTO db.autogen.m FROM db.autogen.cpu GROUP BY time(1h) END",
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 2h FOR 4h BEGIN SELECT mean(value) INTO db.autogen.m FROM db.autogen.cpu GROUP BY time(1h) END",
    ),
    // go:CreateContinuousQueryStatement.String (EVERY 0s is no EVERY)
    (
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 0s FOR 2h BEGIN SELECT max(v) INTO m2 FROM m GROUP BY time(120m) END",
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE FOR 2h BEGIN SELECT max(v) INTO m2 FROM m GROUP BY time(2h) END",
    ),
    // pt:2841–2855, at:961
    ("DROP CONTINUOUS QUERY myquery ON foo", "DROP CONTINUOUS QUERY myquery ON foo"),
    ("DROP CONTINUOUS QUERY \"my query\" ON \"my database\"", "DROP CONTINUOUS QUERY \"my query\" ON \"my database\""),
    ("DROP MEASUREMENT cpu", "DROP MEASUREMENT cpu"),
    ("drop measurement \"cpu load\"", "DROP MEASUREMENT \"cpu load\""),
    // pt:3123–3129
    ("SHOW SHARD GROUPS", "SHOW SHARD GROUPS"),
    ("SHOW SHARDS", "SHOW SHARDS"),
];

#[test]
fn statements_render_as_influxdb_and_parse_back() {
    for (q, want) in ROUND_TRIPS {
        let stmt = parse_one(q);
        assert!(
            !matches!(stmt, Statement::Unsupported { .. } | Statement::Select(_)),
            "{q}: {stmt:?}"
        );
        assert_eq!(stmt.to_string(), *want, "{q}");
        assert_eq!(parse_one(want), stmt, "{want} parses back differently");
    }
}

/// Query → InfluxDB's error (the body after `error parsing query: `).
const ERRORS: &[(&str, &str)] = &[
    // pt:3206–3217
    ("DELETE", "found EOF, expected FROM, WHERE at line 1, char 8"),
    ("DELETE FROM", "found EOF, expected identifier at line 1, char 13"),
    ("DELETE FROM myseries WHERE", "found EOF, expected identifier, string, number, bool at line 1, char 28"),
    ("DELETE FROM \"foo\".myseries", "retention policy not supported at line 1, char 1"),
    ("DELETE FROM foo..myseries", "database not supported at line 1, char 1"),
    ("DROP MEASUREMENT", "found EOF, expected identifier at line 1, char 18"),
    ("DROP SERIES", "found EOF, expected FROM, WHERE at line 1, char 13"),
    ("DROP SERIES FROM", "found EOF, expected identifier at line 1, char 18"),
    ("DROP SERIES FROM src WHERE", "found EOF, expected identifier, string, number, bool at line 1, char 28"),
    ("DROP SERIES FROM \"foo\".myseries", "retention policy not supported at line 1, char 1"),
    ("DROP SERIES FROM foo..myseries", "database not supported at line 1, char 1"),
    ("SHOW CONTINUOUS", "found EOF, expected QUERIES at line 1, char 17"),
    // pt:3218–3226 (the dispatch before the statement is handed on)
    ("SHOW RETENTION", "found EOF, expected POLICIES at line 1, char 16"),
    ("SHOW RETENTION ON", "found ON, expected POLICIES at line 1, char 16"),
    ("SHOW SHARD", "found EOF, expected GROUPS at line 1, char 12"),
    (
        "SHOW FOO",
        "found FOO, expected CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENT, MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, SUBSCRIPTIONS, TAG, USERS at line 1, char 6",
    ),
    ("SHOW GRANTS", "found EOF, expected FOR at line 1, char 13"),
    // pt:3227–3244
    ("DROP CONTINUOUS", "found EOF, expected QUERY at line 1, char 17"),
    ("DROP CONTINUOUS QUERY", "found EOF, expected identifier at line 1, char 23"),
    ("DROP CONTINUOUS QUERY myquery", "found EOF, expected ON at line 1, char 31"),
    ("DROP CONTINUOUS QUERY myquery ON", "found EOF, expected identifier at line 1, char 34"),
    ("CREATE CONTINUOUS", "found EOF, expected QUERY at line 1, char 19"),
    ("CREATE CONTINUOUS QUERY", "found EOF, expected identifier at line 1, char 25"),
    (
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE FOR 5s BEGIN SELECT mean(value) INTO cpu_mean FROM cpu GROUP BY time(10s) END",
        "FOR duration must be >= GROUP BY time duration: must be a minimum of 10s, got 5s",
    ),
    (
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 10s FOR 5s BEGIN SELECT mean(value) INTO cpu_mean FROM cpu GROUP BY time(5s) END",
        "FOR duration must be >= GROUP BY time duration: must be a minimum of 10s, got 5s",
    ),
    (
        "DROP FOO",
        "found FOO, expected CONTINUOUS, DATABASE, MEASUREMENT, RETENTION, SERIES, SHARD, SUBSCRIPTION, USER at line 1, char 6",
    ),
    ("CREATE FOO", "found FOO, expected CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION at line 1, char 8"),
    ("DROP RETENTION", "found EOF, expected POLICY at line 1, char 16"),
    // pt:3299–3301
    ("KILL", "found EOF, expected QUERY at line 1, char 6"),
    ("KILL QUERY 10s", "found 10s, expected integer at line 1, char 12"),
    ("KILL QUERY 4 ON 'host'", "found host, expected identifier at line 1, char 16"),
    // pt:3176, 3334–3362
    ("CREATE RETENTION", "found EOF, expected POLICY at line 1, char 18"),
    ("ALTER", "found EOF, expected RETENTION at line 1, char 7"),
    ("ALTER RETENTION", "found EOF, expected POLICY at line 1, char 17"),
    ("SET", "found EOF, expected PASSWORD at line 1, char 5"),
    ("SET PASSWORD", "found EOF, expected FOR at line 1, char 14"),
    ("SET PASSWORD something", "found something, expected FOR at line 1, char 14"),
    ("blah blah", "found blah, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"),
    ("$SHOW$DATABASES", "found $SHOW, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"),
    // doc §3.4 (run against Go)
    (
        "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(value) INTO m2 FROM m END",
        "found m, expected GROUP BY time(...) at line 1, char 72",
    ),
    (
        "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(value) INTO m2 FROM m GROUP BY time(x) END",
        "found ), expected GROUP BY time(...), time dimension must have duration argument at line 1, char 89",
    ),
    // go:Language (parse_tree.go) keyword lists
    ("SHOW TAG", "found EOF, expected KEY, KEYS, VALUES at line 1, char 10"),
    ("SHOW FIELD", "found EOF, expected KEY, KEYS at line 1, char 12"),
    ("SHOW MEASUREMENT", "found EOF, expected EXACT, CARDINALITY at line 1, char 18"),
    ("SHOW MEASUREMENT EXACT", "found EOF, expected CARDINALITY at line 1, char 24"),
    // go:parseShowTagKeyCardinalityStatement, parseShowFieldKeyCardinalityStatement
    ("SHOW TAG KEY", "found EOF, expected EXACT, CARDINALITY at line 1, char 14"),
    ("SHOW TAG KEY EXACT", "found EOF, expected CARDINALITY at line 1, char 20"),
    ("SHOW FIELD KEY x", "found x, expected EXACT, CARDINALITY at line 1, char 16"),
    // go:parseShowTagValuesStatement, parseTagKeyExpr
    ("SHOW TAG VALUES EXACT", "found EOF, expected CARDINALITY at line 1, char 23"),
    ("SHOW TAG VALUES", "found EOF, expected WITH at line 1, char 17"),
    ("SHOW TAG VALUES CARDINALITY FROM cpu", "found EOF, expected WITH at line 1, char 38"),
    ("SHOW TAG VALUES WITH KEY", "found EOF, expected IN, =, =~ at line 1, char 26"),
    ("SHOW TAG VALUES WITH host", "found host, expected KEY at line 1, char 22"),
    ("SHOW TAG VALUES WITH KEY > host", "found >, expected IN, =, =~ at line 1, char 26"),
    ("SHOW TAG VALUES WITH KEY =", "found EOF, expected identifier at line 1, char 27"),
    ("SHOW TAG VALUES WITH KEY =~ host", "found host, expected regex at line 1, char 29"),
    ("SHOW TAG VALUES WITH KEY IN host", "found host, expected ( at line 1, char 29"),
    ("SHOW TAG VALUES WITH KEY IN (a, b", "found EOF, expected ) at line 1, char 35"),
    ("SHOW TAG VALUES WITH KEY =~ /a[/", "error parsing regexp: missing closing ]: `[` at line 1, char 28"),
    // go:parseShowMeasurementsStatement
    ("SHOW MEASUREMENTS WITH", "found EOF, expected MEASUREMENT at line 1, char 24"),
    ("SHOW MEASUREMENTS WITH MEASUREMENT cpu", "found cpu, expected =, =~ at line 1, char 36"),
    // clauses out of order or not taken (ParseQuery's `;` check)
    ("SHOW MEASUREMENTS LIMIT 1 ORDER BY time", "found ORDER, expected ; at line 1, char 27"),
    ("SHOW FIELD KEYS WHERE a = 1", "found WHERE, expected ; at line 1, char 17"),
    ("SHOW SERIES GROUP BY a", "found GROUP, expected ; at line 1, char 13"),
    ("SHOW TAG KEYS SLIMIT 1 LIMIT 1", "found LIMIT, expected ; at line 1, char 24"),
    ("SHOW SERIES CARDINALITY ORDER BY time", "found ORDER, expected ; at line 1, char 25"),
    ("SHOW SHARDS x", "found x, expected ; at line 1, char 13"),
    ("SHOW SERIES ORDER BY host", "only ORDER BY time supported at this time"),
    // go:parseSources(false): no subqueries
    ("SHOW SERIES FROM (SELECT a FROM b)", "found (, expected identifier at line 1, char 18"),
    // go:parseDropSeriesStatement: the last source naming either wins
    ("DELETE FROM \"x\".m, a..c", "database not supported at line 1, char 1"),
    ("DROP SERIES FROM a.b.c", "retention policy not supported at line 1, char 1"),
    ("DELETE LIMIT 1", "found LIMIT, expected FROM, WHERE at line 1, char 8"),
    // go:ParseUInt64
    ("KILL QUERY", "found EOF, expected integer at line 1, char 12"),
    (
        "KILL QUERY 99999999999999999999",
        "strconv.ParseUint: parsing \"99999999999999999999\": value out of range at line 1, char 12",
    ),
    // go:parseCreateContinuousQueryStatement, parseResample, validate
    (
        "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(value) FROM cpu GROUP BY time(1h) END",
        "found FROM, expected INTO at line 1, char 59",
    ),
    ("CREATE CONTINUOUS QUERY cq ON db SELECT", "found SELECT, expected BEGIN at line 1, char 34"),
    ("CREATE CONTINUOUS QUERY cq db", "found db, expected ON at line 1, char 28"),
    (
        "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(value) INTO m2 FROM m GROUP BY time(1h)",
        "found EOF, expected END at line 1, char 91",
    ),
    ("CREATE CONTINUOUS QUERY cq ON db RESAMPLE BEGIN", "found BEGIN, expected EVERY, FOR at line 1, char 43"),
    ("CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 0s BEGIN", "found BEGIN, expected EVERY, FOR at line 1, char 52"),
    ("CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 1x BEGIN", "invalid duration at line 1, char 49"),
    ("CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY FOR 1h", "found FOR, expected duration at line 1, char 49"),
    (
        "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT value INTO m2 FROM m GROUP BY time(x) END",
        "time dimension must have duration argument",
    ),
    (
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE EVERY 2h FOR 1h BEGIN SELECT value INTO m2 FROM m END",
        "FOR duration must be >= GROUP BY time duration: must be a minimum of 2h, got 1h",
    ),
];

#[test]
fn bad_statements_fail_as_in_influxdb() {
    for (q, want) in ERRORS {
        match parse_query(q) {
            Ok(v) => panic!("{q}: parsed as {v:?}"),
            Err(e) => assert_eq!(e.to_string(), format!("error parsing query: {want}"), "{q}"),
        }
    }
}

#[test]
fn a_cq_without_a_time_interval_is_reported_where_influxdb_rewinds_to() {
    // time(0s) is no interval: the same message, without a reason.
    let q = "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT mean(value) INTO m2 FROM m GROUP BY time(0s) END";
    let e = parse_query(q).unwrap_err().to_string();
    assert!(
        e.contains(", expected GROUP BY time(...) at line 1, char "),
        "{e}"
    );
    // A raw SELECT needs none.
    let q = "CREATE CONTINUOUS QUERY cq ON db BEGIN SELECT value INTO m2 FROM m END";
    assert!(matches!(parse_one(q), Statement::CreateContinuousQuery(_)));
}

#[test]
fn trees_carry_typed_clauses() {
    let Statement::ShowTagValues(s) = parse_one(
        "SHOW TAG VALUES ON db FROM cpu, /m/ WITH KEY IN (a, \"b c\") WHERE host = 'x' LIMIT 2 OFFSET 1",
    ) else {
        panic!()
    };
    assert_eq!(s.database.as_deref(), Some("db"));
    assert_eq!(s.sources.len(), 2);
    assert_eq!(s.sources[0].name, "cpu");
    assert_eq!(s.sources[1].regex.as_deref(), Some("m"));
    assert_eq!(s.key, TagKeyFilter::In(vec!["a".into(), "b c".into()]));
    assert_eq!(
        s.condition,
        Some(parse_expr("host = 'x'").expect("an expression"))
    );
    assert_eq!((s.limit, s.offset), (2, 1));

    let Statement::ShowCardinality(c) =
        parse_one("SHOW TAG VALUES EXACT CARDINALITY WITH KEY !~ /x/")
    else {
        panic!()
    };
    assert_eq!(
        c.of,
        Cardinality::TagValues(TagKeyFilter::NotRegex("x".into()))
    );
    assert!(c.exact);

    let Statement::ShowMeasurements(m) =
        parse_one("SHOW MEASUREMENTS ON \"\" WITH MEASUREMENT = db..cpu")
    else {
        panic!()
    };
    assert_eq!(m.database, None, "ON \"\" is no database, as in 1.6");
    // doc §6: this one database is written unquoted (so it does not parse back).
    assert_eq!(
        parse_one("SHOW MEASUREMENTS ON \"my db\"").to_string(),
        "SHOW MEASUREMENTS ON my db"
    );
    assert_eq!(
        m.measurement,
        Some(Measurement {
            database: "db".into(),
            name: "cpu".into(),
            ..Measurement::default()
        })
    );

    assert_eq!(
        parse_one("KILL QUERY 42 ON \"\""),
        Statement::KillQuery { id: 42, host: None }
    );

    let Statement::CreateContinuousQuery(cq) = parse_one(
        "CREATE CONTINUOUS QUERY cq ON db RESAMPLE FOR 2h BEGIN SELECT mean(v) INTO rp.:MEASUREMENT FROM /.*/ GROUP BY time(1h) END",
    ) else {
        panic!()
    };
    assert_eq!((cq.name.as_str(), cq.database.as_str()), ("cq", "db"));
    assert_eq!(cq.resample_every, None);
    assert_eq!(cq.resample_for, Some(2 * 3_600_000_000_000));
    let target = cq.select.target.clone().expect("INTO");
    assert_eq!(
        (
            target.database.as_str(),
            target.retention_policy.as_str(),
            target.name.as_str()
        ),
        ("", "rp", ""),
        "rp.:MEASUREMENT names the retention policy (pt:2725)"
    );
    assert_eq!(
        crate::select::group_by_interval(&cq.select),
        Ok(3_600_000_000_000)
    );

    let Statement::Delete(d) = parse_one("DELETE FROM a, /b/ WHERE time < now()") else {
        panic!()
    };
    assert_eq!(d.sources.len(), 2);
    assert!(d.condition.as_ref().is_some_and(has_time_expr));
}

#[test]
fn the_show_corpus_parses() {
    // tests/query/corpus-show.influxql, what Grafana sends.
    let corpus = include_str!("../../../tests/query/corpus-show.influxql");
    let mut n = 0;
    for q in corpus
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '@']))
    {
        let stmt = parse_one(q);
        assert!(!matches!(stmt, Statement::Unsupported { .. }), "{q}");
        assert_eq!(parse_one(&stmt.to_string()), stmt, "{q}");
        n += 1;
    }
    assert!(n > 20, "{n}");
}

#[test]
fn statements_mix_with_others_and_comments() {
    // pt:48 (TestParser_ParseQuery_SkipComments)
    let q = "SELECT * FROM cpu; -- read from cpu database

/* create continuous query */
CREATE CONTINUOUS QUERY cq0 ON db0 BEGIN
\tSELECT mean(*) INTO db1..:MEASUREMENT FROM cpu GROUP BY time(5m)
END;

/* just a multline comment
what is this doing here?
**/

-- should ignore the trailing multiline comment /*
SELECT mean(value) FROM gpu;
-- trailing comment at the end";
    let v = parse_query(q).expect("parses");
    assert_eq!(v.len(), 3);
    assert_eq!(
        v[1].to_string(),
        "CREATE CONTINUOUS QUERY cq0 ON db0 BEGIN SELECT mean(*) INTO db1..:MEASUREMENT FROM cpu GROUP BY time(5m) END"
    );
    let v = parse_query(
        "SHOW DATABASES; SHOW SHARDS; DROP MEASUREMENT m; CREATE DATABASE d; SHOW STATS",
    )
    .expect("parses");
    assert_eq!(v.len(), 5);
    assert_eq!(v[2], Statement::DropMeasurement { name: "m".into() });
    assert!(matches!(v[4], Statement::Unsupported { .. }));
    // Positions count from the start of the whole query.
    let e = parse_query("SHOW DATABASES;\nSHOW TAG VALUES WITH KEY > x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "error parsing query: found >, expected IN, =, =~ at line 2, char 26"
    );
}

#[test]
fn conditions_split_where_the_executor_does() {
    let clock = Clock::new(1_000_000_000_000, None).expect("UTC");
    let Statement::ShowTagKeys(s) =
        parse_one("SHOW TAG KEYS WHERE time > now() - 1s AND host = 'a'")
    else {
        panic!()
    };
    let (rest, range) = split_condition(s.condition.as_ref(), &clock).expect("splits");
    assert_eq!(rest.map(|r| r.to_string()).as_deref(), Some("host = 'a'"));
    assert_eq!(range.min, Some(999_000_000_001));
    assert_eq!(
        split_condition(None, &clock),
        Ok((None, TimeRange::default()))
    );
    // HasTimeExpr looks at the left side only.
    for (cond, want) in [
        ("time > 0", true),
        ("host = 'a' OR (TIME < now())", true),
        ("now() > time", false),
        ("host = 'a'", false),
    ] {
        assert_eq!(
            has_time_expr(&parse_expr(cond).expect("parses")),
            want,
            "{cond}"
        );
    }
}

#[test]
fn other_statements_render_as_influxdb() {
    for (q, want) in [
        // go:CreateDatabaseStatement.String uses time.Duration's text.
        (
            "CREATE DATABASE d WITH DURATION 7d REPLICATION 1 SHARD DURATION 90m NAME \"my rp\"",
            "CREATE DATABASE d WITH DURATION 168h0m0s REPLICATION 1 SHARD DURATION 1h30m0s NAME \"my rp\"",
        ),
        ("CREATE DATABASE d WITH DURATION INF", "CREATE DATABASE d WITH DURATION 0s"),
        (
            "CREATE RETENTION POLICY \"my rp\" ON \"a database\" DURATION 1d REPLICATION 1",
            "CREATE RETENTION POLICY \"my rp\" ON \"a database\" DURATION 1d REPLICATION 1",
        ),
        (
            "ALTER RETENTION POLICY rp ON d SHARD DURATION 2h DEFAULT",
            "ALTER RETENTION POLICY rp ON d SHARD DURATION 2h DEFAULT",
        ),
        ("CREATE USER u WITH PASSWORD 'p' WITH ALL PRIVILEGES", "CREATE USER u WITH PASSWORD [REDACTED] WITH ALL PRIVILEGES"),
        ("SET PASSWORD FOR u = 'p'", "SET PASSWORD FOR u = [REDACTED]"),
        ("GRANT ALL ON \"db with spaces\" TO u", "GRANT ALL PRIVILEGES ON \"db with spaces\" TO u"),
        ("GRANT ALL PRIVILEGES TO u", "GRANT ALL PRIVILEGES TO u"),
        ("REVOKE READ ON d FROM u", "REVOKE READ ON d FROM u"),
        ("SHOW RETENTION POLICIES ON \"a database\"", "SHOW RETENTION POLICIES ON \"a database\""),
        ("SHOW GRANTS FOR \"user with spaces\"", "SHOW GRANTS FOR \"user with spaces\""),
        ("select a from b", "SELECT a FROM b"),
    ] {
        assert_eq!(parse_one(q).to_string(), want, "{q}");
    }
    for (d, want) in [
        (0, "0s"),
        (1_500, "1.5µs"),
        (300_000_000, "300ms"),
        (1_500_000_000, "1.5s"),
        (90 * 60_000_000_000, "1h30m0s"),
        (-61_000_000_000, "-1m1s"),
    ] {
        assert_eq!(go_duration(d), want);
    }
}

#[test]
fn no_prefix_or_variant_of_a_statement_panics() {
    let extra = [
        "SHOW MEASUREMENTS WITH MEASUREMENT =~ /\\",
        "KILL QUERY 4 ON",
        "DELETE FROM /",
    ];
    let queries = ROUND_TRIPS
        .iter()
        .map(|(q, _)| *q)
        .chain(ERRORS.iter().map(|(q, _)| *q))
        .chain(extra);
    for q in queries {
        let chars: Vec<char> = q.chars().collect();
        for end in 0..=chars.len() {
            let prefix: String = chars[..end].iter().collect();
            for variant in [
                prefix.clone(),
                format!("{prefix};"),
                format!("{prefix} )"),
                format!("{prefix}\n/"),
            ] {
                if let Ok(stmts) = parse_query(&variant) {
                    for s in stmts {
                        let _ = s.to_string();
                    }
                }
            }
        }
    }
}
