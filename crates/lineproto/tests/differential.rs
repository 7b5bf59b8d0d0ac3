//! Differential test against the published `influxdb-line-protocol` crate
//! (InfluxData's Rust parser) on generated and mutated lines: the same
//! accept/reject verdict and the same values, except for the deliberate
//! differences listed in [`deliberate_difference`], where we follow InfluxDB 1.x.

use influxdb_line_protocol as oracle;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use sundial_lineproto::{parse_lines, OwnedFieldValue, OwnedPoint, ParseOptions, Precision};

#[derive(Debug, PartialEq)]
enum Verdict {
    Accept(OwnedPoint),
    Reject,
    /// A comment line.
    Skipped,
}

fn ours(line: &str) -> Verdict {
    let b = parse_lines(
        line.as_bytes(),
        &ParseOptions::new(Precision::Nanosecond, 0),
    );
    match (b.len(), b.errors().len()) {
        (1, 0) => Verdict::Accept(b.get(0).to_owned_point()),
        (0, 1) => Verdict::Reject,
        (0, 0) => Verdict::Skipped,
        other => panic!("{line:?}: one line gave {other:?}"),
    }
}

fn theirs(line: &str) -> Verdict {
    let mut it = oracle::parse_lines(line);
    let r = it.next();
    assert!(it.next().is_none(), "oracle split {line:?}");
    match r {
        Some(Ok(l)) => {
            let mut tags: Vec<(String, String)> = l
                .series
                .tag_set
                .iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            tags.sort();
            // Last duplicate wins, like ours.
            let mut fields: Vec<(String, OwnedFieldValue)> = Vec::new();
            for (k, v) in &l.field_set {
                let v = match v {
                    oracle::FieldValue::I64(v) => OwnedFieldValue::Integer(*v),
                    oracle::FieldValue::U64(v) => OwnedFieldValue::Unsigned(*v),
                    oracle::FieldValue::F64(v) => OwnedFieldValue::Float(*v),
                    oracle::FieldValue::Boolean(v) => OwnedFieldValue::Boolean(*v),
                    oracle::FieldValue::String(s) => OwnedFieldValue::String(s.to_string()),
                };
                match fields.iter_mut().find(|(fk, _)| fk == k.as_str()) {
                    Some(slot) => slot.1 = v,
                    None => fields.push((k.to_string(), v)),
                }
            }
            Verdict::Accept(OwnedPoint {
                measurement: l.series.measurement.to_string(),
                tags,
                fields,
                timestamp: l.timestamp.unwrap_or(0),
            })
        }
        Some(Err(_)) => Verdict::Reject,
        None => Verdict::Skipped,
    }
}

/// Splits `s` at unescaped `sep` bytes outside double quotes. With
/// `quotes`, a quote only counts inside a field value, as 1.x's scanner has
/// it: once more `=` than `,` have been seen.
fn split_unescaped(s: &str, sep: u8, quotes: bool) -> Vec<&str> {
    let b = s.as_bytes();
    let (mut parts, mut start, mut i, mut quoted) = (Vec::new(), 0, 0, false);
    let (mut equals, mut commas) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'"' if quotes && equals > commas => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !quoted {
            match b[i] {
                b'=' => equals += 1,
                b',' => commas += 1,
                _ => {}
            }
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// InfluxDB 1.x's structural rules the crate does not enforce: every tag is
/// `key=value` with exactly one unescaped `=` (so no unescaped `,` in a tag key
/// and no `=` in a tag value), and every field is `key=value` with no unescaped
/// `,` in its key (`scanTagsKey`, `scanTagsValue`, and scanFields' comma count).
fn violates_1x_structure(line: &str) -> bool {
    let sections = split_unescaped(line.trim_start(), b' ', true);
    let Some(key) = sections.first() else {
        return false;
    };
    let tags = split_unescaped(key, b',', false);
    if tags[1..]
        .iter()
        .any(|t| split_unescaped(t, b'=', false).len() != 2)
    {
        return true;
    }
    let fields = sections
        .iter()
        .skip(1)
        .find(|s| !s.is_empty())
        .copied()
        .unwrap_or("");
    split_unescaped(fields, b',', true)
        .iter()
        .any(|f| split_unescaped(f, b'=', true).len() < 2)
}

/// Where we follow InfluxDB 1.x (Go, `models/points.go`) and the Rust crate does
/// not. Returns the reason when `line`'s difference is one of them.
fn deliberate_difference(line: &str, ours: &Verdict, theirs: &Verdict) -> Option<&'static str> {
    let has = |s: &str| line.contains(s);
    match (ours, theirs) {
        (Verdict::Accept(o), Verdict::Accept(t)) => {
            // The crate unescapes `\\` to `\` in names and tag values; InfluxDB 1.x
            // only unescapes `\,` `\ ` `\=` there and keeps other backslashes.
            if has("\\\\") && o.fields.len() == t.fields.len() {
                return Some("backslash-backslash outside strings is literal in 1.x");
            }
            // The crate unescapes `\=` in measurements; 1.x keeps it literally.
            if has("\\=") && o.measurement != t.measurement {
                return Some("`\\=` is literal in a 1.x measurement");
            }
            None
        }
        (Verdict::Reject, Verdict::Accept(t)) => {
            if violates_1x_structure(line) {
                return Some("1.x rejects unescaped `,` in keys and `=` in tag values");
            }
            if t.tags.windows(2).any(|w| w[0].0 == w[1].0) {
                return Some("1.x rejects duplicate tag keys");
            }
            // The crate turns an overflowing float (`1e999`) into infinity; 1.x's
            // ParseFloat fails with ErrRange and the line is rejected.
            if t.fields
                .iter()
                .any(|(_, v)| matches!(v, OwnedFieldValue::Float(f) if !f.is_finite()))
            {
                return Some("1.x rejects floats out of range");
            }
            None
        }
        (Verdict::Accept(_), Verdict::Reject) => {
            // The crate rejects unsigned `123u` unless the caller opts in; 1.x
            // (since 1.8) and we accept it.
            if o_has_unsigned(ours) {
                return Some("unsigned integers are accepted");
            }
            // In 1.x's series-key scanner a separator right after a backslash is
            // escaped even when that backslash follows another (`a\\\\ b` is one
            // token); the crate reads `\\\\` as an escaped backslash.
            if has("\\\\") {
                return Some("1.x: a separator after `\\\\` is escaped");
            }
            // Tabs and runs of spaces between sections, trailing whitespace:
            // 1.x's scanner skips whitespace there; the crate does not everywhere.
            if has("\t") || has("  ") || line.ends_with(' ') || line.starts_with(' ') {
                return Some("1.x skips whitespace between sections");
            }
            // `5.`-style mantissas, also before an exponent (`5.e3`): Go's
            // ParseFloat, used by 1.x, accepts them.
            if has(".e")
                || has(".E")
                || has(".,")
                || has(". ")
                || line.ends_with('.')
                || has("=.")
                || has("-.")
            {
                return Some("1.x accepts `.5`, `5.` and `5.e3`");
            }
            None
        }
        _ => None,
    }
}

fn o_has_unsigned(v: &Verdict) -> bool {
    matches!(v, Verdict::Accept(p) if p.fields.iter().any(|(_, f)| matches!(f, OwnedFieldValue::Unsigned(_))))
}

fn check(line: &str, stats: &mut Stats) {
    let (o, t) = (ours(line), theirs(line));
    if o == t {
        stats.same += 1;
        return;
    }
    match deliberate_difference(line, &o, &t) {
        Some(reason) => *stats.deliberate.entry(reason).or_default() += 1,
        None if std::env::var("DIFF_RANDOM").is_ok() => {
            eprintln!("DIFF {line:?}\n  ours:   {o:?}\n  theirs: {t:?}")
        }
        None => panic!("undocumented difference on {line:?}\n ours:   {o:?}\n theirs: {t:?}"),
    }
}

#[derive(Default, Debug)]
struct Stats {
    same: usize,
    deliberate: std::collections::BTreeMap<&'static str, usize>,
}

/// Lines in the shapes writers produce, with every escape and value form.
fn line() -> impl Strategy<Value = String> {
    let name = "[a-z][a-z0-9_]{0,6}(\\\\[ ,=][a-z]{1,3})?";
    let tag =
        (name, "[a-zA-Z0-9_.-]{1,6}(\\\\[ ,=][a-z]{1,2})?").prop_map(|(k, v)| format!("{k}={v}"));
    let value = prop_oneof![
        "-?[0-9]{1,6}(\\.[0-9]{1,6})?",
        "-?[0-9]\\.[0-9]{1,4}[eE][+-]?[0-9]{1,2}",
        "-?[0-9]{1,19}i",
        "[0-9]{1,20}u",
        "(t|T|true|True|TRUE|f|F|false|False|FALSE)",
        "\"([a-z ,=]|\\\\\"|\\\\\\\\){0,8}\"",
    ];
    let field = (name, value).prop_map(|(k, v)| format!("{k}={v}"));
    (
        "[a-z][a-z0-9_]{0,8}",
        proptest::collection::vec(tag, 0..4),
        proptest::collection::vec(field, 1..4),
        proptest::option::of("-?[0-9]{1,18}"),
    )
        .prop_map(|(m, tags, fields, ts)| {
            let mut s = m;
            for t in tags {
                s.push(',');
                s.push_str(&t);
            }
            s.push(' ');
            s.push_str(&fields.join(","));
            if let Some(ts) = ts {
                s.push(' ');
                s.push_str(&ts);
            }
            s
        })
}

/// A generated line with a few bytes replaced, inserted or removed.
fn mutated() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just(' '),
        Just(','),
        Just('='),
        Just('"'),
        Just('\\'),
        Just('.'),
        Just('-'),
        Just('i'),
        Just('u'),
        Just('e'),
        Just('t'),
        Just('0'),
        Just('#'),
        Just('\t'),
    ];
    (
        line(),
        proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, special), 1..4),
    )
        .prop_map(|(l, muts)| {
            let mut chars: Vec<char> = l.chars().collect();
            for (at, op, c) in muts {
                let i = at.index(chars.len() + 1);
                match op {
                    0 if i < chars.len() => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ => {}
                }
            }
            chars.into_iter().collect()
        })
}

fn run(strategy: impl Strategy<Value = String>, cases: u32) -> Stats {
    let config = Config {
        cases,
        ..Config::default()
    };
    // Deterministic in CI; `DIFF_RANDOM=1` explores new inputs locally.
    let mut runner = if std::env::var("DIFF_RANDOM").is_ok() {
        TestRunner::new(config)
    } else {
        let rng = TestRng::deterministic_rng(config.rng_algorithm);
        TestRunner::new_with_rng(config, rng)
    };
    let mut stats = Stats::default();
    for _ in 0..cases {
        let tree = strategy.new_tree(&mut runner).expect("generate");
        let l = tree.current();
        if l.contains('\n') || l.trim().is_empty() {
            continue;
        }
        check(&l, &mut stats);
    }
    stats
}

#[test]
fn generated_lines_agree() {
    let stats = run(line(), 20_000);
    eprintln!("{stats:?}");
    assert!(stats.same > 15_000, "{stats:?}");
}

#[test]
fn mutated_lines_agree_or_differ_deliberately() {
    let stats = run(mutated(), 20_000);
    eprintln!("{stats:?}");
    assert!(stats.same > 10_000, "{stats:?}");
}

/// Each deliberate difference, pinned with an example.
#[test]
fn listed_differences() {
    let cases = [
        // 1.x rejects duplicate tag keys; the crate keeps both.
        "m,a=1,a=2 v=1 1",
        // 1.x keeps `\\` literally in keys; the crate unescapes it.
        r"m,a=x\\y v=1 1",
        // Overflowing floats: infinity in the crate, an error in 1.x.
        "m v=1e999 1",
        // An unescaped comma in a tag key.
        "m,a,b=1 v=1 1",
        // A space after `\\\\` in a tag key is escaped in 1.x.
        r"m,a\\\\ b=1 v=1 1",
    ];
    for l in cases {
        let (o, t) = (ours(l), theirs(l));
        assert_ne!(o, t, "{l:?} no longer differs: drop it from the list");
        assert!(deliberate_difference(l, &o, &t).is_some(), "{l:?}");
    }
}
