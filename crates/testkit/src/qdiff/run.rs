//! Running a corpus against InfluxDB and Sundial: outcomes, reports, and the
//! drivers the differential tests share (load a server, assert every answer
//! matches).

use std::fmt::Write;

use super::*;

/// One entry's run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub entry: Entry,
    pub influx: Response,
    pub sundial: Response,
    /// Why InfluxDB's answer does not fit `@expect` (a corpus problem).
    pub corpus_problem: Option<String>,
    /// The first difference, `None` when the answers match.
    pub mismatch: Option<String>,
}

/// Runs every entry against both servers.
pub fn run(
    entries: &[Entry],
    influx_base: &str,
    sundial_base: &str,
    default_db: &str,
) -> Vec<Outcome> {
    let client = client();
    entries
        .iter()
        .map(|e| {
            let get = |base: &str| {
                fetch(&client, base, e, default_db).unwrap_or_else(|err| Response {
                    body: err,
                    ..Response::default()
                })
            };
            let influx = get(influx_base);
            let sundial = get(sundial_base);
            let corpus_problem = check_expectation(e, &influx);
            let mismatch = compare(e, &influx, &sundial).err();
            Outcome {
                entry: e.clone(),
                influx,
                sundial,
                corpus_problem,
                mismatch,
            }
        })
        .collect()
}

fn write_response(out: &mut String, who: &str, r: &Response) {
    let _ = write!(out, "--- {who}: {} {}", r.status, r.content_type);
    if !r.error_header.is_empty() {
        let _ = write!(out, " X-Influxdb-Error: {}", r.error_header);
    }
    let _ = writeln!(out, "\n{}", truncate(r.body.trim_end(), 2048));
}

/// One outcome as text: where, labels, request, query, the difference and both
/// bodies (about 2 KB each at most).
pub fn describe(o: &Outcome, default_db: &str) -> String {
    let e = &o.entry;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "=== {} [{}] {}",
        e.location(),
        e.labels.join(" "),
        e.describe(default_db)
    );
    let _ = writeln!(out, "{}", e.query);
    if let Some(p) = &o.corpus_problem {
        let _ = writeln!(out, "!!! corpus problem: {p}");
    }
    if let Some(m) = &o.mismatch {
        let _ = writeln!(out, ">>> {m}");
    }
    write_response(&mut out, "InfluxDB", &o.influx);
    write_response(&mut out, "Sundial", &o.sundial);
    out
}

/// The report of every mismatch and corpus problem, with a summary line first.
pub fn report(outcomes: &[Outcome], default_db: &str) -> String {
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.mismatch.is_some() || o.corpus_problem.is_some())
        .collect();
    let mismatches = outcomes.iter().filter(|o| o.mismatch.is_some()).count();
    let problems = outcomes
        .iter()
        .filter(|o| o.corpus_problem.is_some())
        .count();
    let mut out = format!(
        "{} entries: {} match, {mismatches} mismatch, {problems} corpus problems\n\n",
        outcomes.len(),
        outcomes.len() - mismatches
    );
    for o in bad {
        out.push_str(&describe(o, default_db));
        out.push('\n');
    }
    out
}

/// One line per mismatch or corpus problem: where, the difference, the query.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let why = match (&o.corpus_problem, &o.mismatch) {
            (Some(p), _) => format!("corpus problem: {}", truncate(p, 200)),
            (None, Some(m)) => truncate(m, 200),
            (None, None) => continue,
        };
        let q = o.entry.query.replace('\n', " ");
        let _ = writeln!(
            out,
            "{}: {why}\n    {}",
            o.entry.location(),
            truncate(&q, 160)
        );
    }
    out
}

/// Every entry with InfluxDB's answer (for reading the corpus's expectations).
pub fn dump(outcomes: &[Outcome], default_db: &str) -> String {
    let mut out = String::new();
    for o in outcomes {
        let e = &o.entry;
        let _ = writeln!(
            out,
            "=== {} [{}] {}\n{}",
            e.location(),
            e.labels.join(" "),
            e.describe(default_db),
            e.query
        );
        if let Some(p) = &o.corpus_problem {
            let _ = writeln!(out, "!!! corpus problem: {p}");
        }
        write_response(&mut out, "InfluxDB", &o.influx);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- drivers

/// The database the corpus runs in when an entry names none.
pub const DB: &str = "diff";

/// A file of `tests/query/` in the workspace.
pub fn query_file(name: &str) -> String {
    format!("{}/../../tests/query/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The entries of a corpus file of `tests/query/`, narrowed by `QDIFF_ONLY`
/// (a substring of the query) when set.
pub fn corpus(name: &str) -> Vec<Entry> {
    let path = query_file(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut entries = parse_corpus(&text, name).unwrap_or_else(|e| panic!("{e}"));
    if let Ok(only) = std::env::var("QDIFF_ONLY") {
        entries.retain(|e| e.query.contains(&only));
        eprintln!("QDIFF_ONLY={only}: {} entries", entries.len());
    }
    entries
}

/// Runs `setup` (statements) and writes `batches` to the server at `base`.
pub fn load(base: &str, setup: &str, batches: &[crate::qdata::Batch]) {
    let c = client();
    let r = c
        .post(format!("{base}/query"))
        .form(&[("q", setup)])
        .send()
        .unwrap_or_else(|e| panic!("{base}: setup: {e}"));
    let status = r.status();
    let body = r.text().unwrap_or_default();
    assert!(
        status == 200 && !body.contains("\"error\""),
        "{base}: setup failed: {status} {body}"
    );
    for b in batches {
        let r = c
            .post(format!("{base}/write?{}", b.write_query()))
            .body(b.lines.clone())
            .send()
            .unwrap_or_else(|e| panic!("{base}: write: {e}"));
        let status = r.status();
        assert_eq!(
            status,
            204,
            "{base}: write failed: {}",
            r.text().unwrap_or_default()
        );
    }
}

/// Runs `entries` against both servers and fails listing every mismatch (the
/// first five with both bodies); the whole report goes to `QDIFF_REPORT`, or
/// to `qdiff-<label>.txt` in the system's temporary directory.
pub fn assert_matches(label: &str, entries: &[Entry], influx_base: &str, sundial_base: &str) {
    let outcomes = run(entries, influx_base, sundial_base, DB);
    let text = report(&outcomes, DB);
    let path = std::env::var("QDIFF_REPORT").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join(format!("qdiff-{label}.txt"))
            .display()
            .to_string()
    });
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{path}: {e}"));
    if let Ok(p) = std::env::var("QDIFF_DUMP") {
        std::fs::write(&p, dump(&outcomes, DB)).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.mismatch.is_some() || o.corpus_problem.is_some())
        .collect();
    if !bad.is_empty() {
        let details: String = bad.iter().take(5).map(|o| describe(o, DB) + "\n").collect();
        panic!(
            "{label}: {}\n{}\nthe first {} in full:\n\n{details}full report: {path}",
            text.lines().next().unwrap_or_default(),
            summary(&outcomes),
            bad.len().min(5),
        );
    }
}

/// A real InfluxDB to compare with; `None` (the test then skips, saying why)
/// only when it is not installed and `CI` is not set.
pub fn influxd_or_skip() -> Option<crate::influxd::Influxd> {
    let started = crate::influxd::Influxd::start();
    if started.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "influxd is not installed (CI is set, so this fails): apt-get install influxdb"
        );
        eprintln!(
            "SKIPPED: influxd is not installed (apt-get install influxdb, or make test-deps)"
        );
    }
    started
}
