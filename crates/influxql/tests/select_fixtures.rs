//! The SELECT parser against InfluxDB's own: `fixtures/parse.in` holds queries
//! (`<NL>` stands for a newline), `fixtures/parse.expected` what the parser
//! InfluxDB 1.6.7 vendors (influxql@1cbfca8, `ParseQuery` then `String()`) made of
//! each: `OK: <rendering>` or `ERR: <message>`.

use sundial_influxql::select::{compile, condition_expr, parse_select_query, Clock};

/// Lines whose outcome we do not match yet, with the reason; each must still
/// differ (so a fix has to remove it from here).
const KNOWN: &[(&str, &str)] = &[];

/// Go's `%q` of a string, as the fixture quotes each query.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Outcomes by query: a query line (Go-quoted), then its outcome, a line indented
/// by two spaces, and more lines when a rendering of several statements spans them.
fn outcomes(expected: &str) -> std::collections::HashMap<String, String> {
    let mut want = std::collections::HashMap::new();
    let mut cur: Option<(String, String)> = None;
    for l in expected.lines() {
        if l.starts_with('"') {
            want.extend(cur.take());
            cur = Some((l.to_string(), String::new()));
        } else if let Some((_, out)) = cur.as_mut() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(l.strip_prefix("  ").unwrap_or(l));
        }
    }
    want.extend(cur);
    want
}

#[test]
fn select_statements_parse_and_fail_as_in_influxdb() {
    let input = include_str!("fixtures/parse.in");
    let want = outcomes(include_str!("fixtures/parse.expected"));
    let (mut checked, mut wrong) = (0, Vec::new());
    for line in input.lines() {
        let q = line.replace("<NL>", "\n");
        let Some(w) = want.get(&go_quote(&q)) else {
            panic!("no expected outcome for {q:?}");
        };
        let got = match parse_select_query(&q) {
            Ok(stmts) => format!(
                "OK: {}",
                stmts
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(";\n")
            ),
            Err(e) => format!("ERR: {e}"),
        };
        checked += 1;
        let known = KNOWN.iter().find(|(k, _)| *k == line);
        match (got == *w, known) {
            (true, None) => {}
            (true, Some((_, why))) => {
                wrong.push(format!("{line}: matches now; drop it from KNOWN ({why})"))
            }
            (false, Some(_)) => {}
            (false, None) => wrong.push(format!("{line}\n   want {w}\n   got  {got}")),
        }
    }
    assert!(checked > 200, "only {checked} queries");
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The checks before a SELECT runs, against InfluxDB's `query.Compile` on
/// `fixtures/compile.in` (`OK` or `COMPILE ERR: <message>`).
#[test]
fn select_statements_are_checked_as_in_influxdb() {
    let want = outcomes(include_str!("fixtures/compile.expected"));
    let (mut checked, mut wrong) = (0, Vec::new());
    for q in include_str!("fixtures/compile.in").lines() {
        let w = &want[&go_quote(q)];
        let stmts = parse_select_query(q).expect("the fixture's queries parse");
        let got = match compile(&stmts[0]) {
            Ok(_) => "OK".to_string(),
            Err(e) => format!("COMPILE ERR: {e}"),
        };
        checked += 1;
        if got != *w {
            wrong.push(format!("{q}\n   want {w}\n   got  {got}"));
        }
    }
    assert!(checked > 80, "only {checked} queries");
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Go's zero time, which InfluxDB prints for an unbounded end of a range.
const GO_ZERO: &str = "0001-01-01T00:00:00Z";

fn instant(s: &str) -> Option<i64> {
    if s == GO_ZERO {
        return None;
    }
    let ts: jiff::Timestamp = s.parse().expect("fixture time");
    Some(i64::try_from(ts.as_nanosecond()).expect("in range"))
}

/// WHERE clauses split into the time range and the rest, against InfluxDB's
/// `ConditionExpr` with now = 2000-01-01T00:00:00Z on `fixtures/condition.in`.
#[test]
fn where_clauses_split_into_time_ranges_as_in_influxdb() {
    let want = outcomes(include_str!("fixtures/condition.expected"));
    let now = 946_684_800_000_000_000;
    let (mut checked, mut wrong) = (0, Vec::new());
    for q in include_str!("fixtures/condition.in").lines() {
        let w = &want[&go_quote(q)];
        let stmt = &parse_select_query(q).expect("the fixture's queries parse")[0];
        let clock = Clock::new(now, stmt.location.as_deref()).expect("zone");
        let cond = stmt.condition.as_ref().expect("a WHERE clause");
        let ok = match (condition_expr(cond, &clock), w.strip_prefix("COND ERR: ")) {
            (Err(e), Some(we)) => e == we,
            (Ok((rest, range)), None) => {
                let parts: Vec<&str> = w.split(" min=").collect();
                let wcond = parts[0].trim_start_matches("cond=");
                let (wmin, wmax) = parts[1].split_once(" max=").expect("min and max");
                let got = rest.map_or("<nil>".to_string(), |r| r.to_string());
                got == wcond && range.min == instant(wmin) && range.max == instant(wmax)
            }
            _ => false,
        };
        checked += 1;
        if !ok {
            wrong.push(format!(
                "{q}\n   want {w}\n   got  {:?}",
                condition_expr(cond, &clock)
            ));
        }
    }
    assert!(checked > 20, "only {checked} queries");
    assert!(
        wrong.is_empty(),
        "{} of {checked} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
