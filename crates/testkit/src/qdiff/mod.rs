//! Differential testing of `/query`: a corpus of InfluxQL requests run against a
//! real InfluxDB 1.x and against Sundial, and their responses compared.
//!
//! # Corpus format
//!
//! Entries are separated by blank lines. Inside an entry, in any order before the
//! query text:
//!
//! * `# covers: label1 label2 …` — labels of the coverage list (several lines add up);
//! * `# …` — any other comment line;
//! * `@param name=value` — a request parameter: `epoch`, `chunked`, `chunk_size`,
//!   `pretty`, `db`, `rp`. `db` defaults to the runner's database; `@param db=`
//!   (empty) sends no `db` at all;
//! * `@accept MEDIA-TYPE` — the `Accept` header (e.g. `application/csv`);
//! * `@method POST` — send `q` in a form body (other parameters stay in the URL,
//!   as Grafana does); GET (all in the URL) otherwise;
//! * `@expect data|empty|error|any` — what InfluxDB's answer must look like, so
//!   that a typo cannot turn an entry into a comparison of two empty results:
//!   `data` (the default): 200 and every statement returns series; `empty`: 200,
//!   no error, some statement without series; `error`: a status other than 200 or
//!   some statement failed; `any`: not checked;
//! * `@unordered` — series and rows may come in any order, and a series may be
//!   split in pieces (for answers InfluxDB leaves to chance, e.g. integral()
//!   with GROUP BY tags);
//! * `@shape col,col…` — those columns are compared by JSON type only (ids
//!   InfluxDB and Sundial number differently: shard and group ids, owners).
//!
//! The remaining lines are the query text, kept with their line breaks (error
//! positions count lines); it may hold several statements separated by `;`.
//! An entry without query text (e.g. a block of comments) is ignored.
//!
//! # Comparison
//!
//! Status codes, `Content-Type` and `X-Influxdb-Error` headers must be equal.
//! JSON bodies (one document, or the sequence of documents of a chunked answer)
//! are compared structurally: object keys in any order, strings exactly, integers
//! exactly, floats to a relative 1e-9. JSON from Go writes a float without a
//! fractional part as an integer (`1`, not `1.0`), so an integer token against a
//! float token of the same value is a mismatch (a different value within the
//! tolerance — a rounding difference where one side came out whole — is not).
//! Values within 1e-12 of zero on both sides count as equal. CSV bodies are
//! compared line by line and cell by cell with the same number rules. With
//! `pretty=true` the text must also be identical once the JSON is equal
//! (indentation matters). Any other body is compared as text.

mod compare;
mod csv;
mod http;
mod parse;
mod run;

pub use compare::*;
pub use csv::*;
pub use http::*;
pub use parse::*;
pub use run::*;

/// At most `max` bytes of `s` (on a character boundary), with a mark when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resp(status: u16, ct: &str, body: &str) -> Response {
        Response {
            status,
            content_type: ct.into(),
            error_header: String::new(),
            body: body.into(),
        }
    }

    fn entry(text: &str) -> Entry {
        parse_corpus(text, "t").unwrap().remove(0)
    }

    const J: &str = "application/json";

    #[test]
    fn parses_entries() {
        let text = "# header comment only\n\n# covers: a b\n# covers: c\n@param epoch=ms\n@param db=\n@accept application/csv\n@method POST\n@expect empty\nSELECT 1\n  FROM x\n\n\nSELECT y FROM z\n";
        let es = parse_corpus(text, "f").unwrap();
        assert_eq!(es.len(), 2);
        assert_eq!(es[0].labels, ["a", "b", "c"]);
        assert_eq!(es[0].line, 3);
        assert_eq!(es[0].query, "SELECT 1\n  FROM x");
        assert!(es[0].post);
        assert_eq!(es[0].expect, Expect::Empty);
        assert_eq!(es[0].accept.as_deref(), Some("application/csv"));
        assert_eq!(
            es[0].request_params("diff"),
            [("epoch".to_string(), "ms".to_string())]
        );
        assert_eq!(es[1].line, 14);
        assert_eq!(es[1].request_params("diff")[0].1, "diff");
        assert!(parse_corpus("@param nope=1\nSELECT 1", "f").is_err());
        assert!(parse_corpus("@bogus\nSELECT 1", "f").is_err());
    }

    #[test]
    fn numbers_keep_integer_and_float_apart() {
        let e = entry("SELECT 1");
        let cmp = |a: &str, b: &str| compare(&e, &resp(200, J, a), &resp(200, J, b));
        assert!(cmp("[1, 2.5]", "[1, 2.5000000000001]").is_ok());
        assert!(cmp("[1]", "[1.0]").is_err());
        assert!(cmp("[2]", "[3]").is_err());
        assert!(cmp("[2.5]", "[2.6]").is_err());
        assert!(cmp("[3]", "[2.9999999999999996]").is_ok());
        assert!(cmp(r#"{"a":1,"b":[null,"x"]}"#, r#"{"b":[null,"x"],"a":1}"#).is_ok());
        assert!(cmp(r#"{"a":1}"#, r#"{"a":1,"b":2}"#).is_err());
        assert!(cmp("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n").is_err());
        assert!(cmp("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}").is_ok());
    }

    #[test]
    fn status_headers_and_pretty_text_count() {
        let e = entry("SELECT 1");
        assert!(compare(&e, &resp(200, J, "{}"), &resp(400, J, "{}")).is_err());
        assert!(compare(&e, &resp(200, J, "{}"), &resp(200, "text/csv", "{}")).is_err());
        let p = entry("@param pretty=true\nSELECT 1");
        let a = resp(200, J, "{\n    \"a\": 1\n}");
        assert!(compare(&p, &a, &resp(200, J, "{\n  \"a\": 1\n}")).is_err());
        assert!(compare(&p, &a, &a.clone()).is_ok());
        assert!(compare(&e, &a, &resp(200, J, "{\"a\":1}")).is_ok());
    }

    #[test]
    fn shape_compares_named_columns_by_type() {
        let e = entry("@shape id,owners\nSHOW SHARDS");
        assert_eq!(e.shape, vec!["id".to_string(), "owners".to_string()]);
        let resp = |body: &str| Response {
            status: 200,
            content_type: "application/json".into(),
            error_header: String::new(),
            body: body.into(),
        };
        let a = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[[1,"x",""]]}]}]}"#,
        );
        let b = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[[7,"x","1,2"]]}]}]}"#,
        );
        let c = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[[7,"y","1"]]}]}]}"#,
        );
        let d = resp(
            r#"{"results":[{"series":[{"columns":["id","db","owners"],"values":[["7","x","1"]]}]}]}"#,
        );
        assert_eq!(compare(&e, &a, &b), Ok(()));
        assert!(compare(&e, &a, &c).is_err());
        assert!(compare(&e, &a, &d).is_err());
    }

    #[test]
    fn unordered_ignores_series_and_row_order() {
        let x = r#"{"results":[{"series":[{"name":"m","tags":{"h":"a"},"values":[[1,2],[0,3]]},{"name":"m","tags":{"h":"b"},"values":[[5,5]]}]}]}"#;
        let y = r#"{"results":[{"series":[{"name":"m","tags":{"h":"b"},"values":[[5,5]]},{"name":"m","tags":{"h":"a"},"values":[[0,3]]},{"name":"m","tags":{"h":"a"},"values":[[1,2]]}]}]}"#;
        let e = entry("SELECT 1");
        assert!(compare(&e, &resp(200, J, x), &resp(200, J, y)).is_err());
        let u = entry("@unordered\nSELECT 1");
        assert!(u.unordered);
        assert!(compare(&u, &resp(200, J, x), &resp(200, J, y)).is_ok());
    }

    #[test]
    fn csv_cells_and_numbers() {
        assert_eq!(
            csv_cells(r#"a,"b,c","d""e",,1"#),
            ["a", "b,c", "d\"e", "", "1"]
        );
        let ct = "text/csv";
        let e = entry("@accept application/csv\nSELECT 1");
        let cmp = |a: &str, b: &str| compare(&e, &resp(200, ct, a), &resp(200, ct, b));
        assert!(cmp(
            "name,time,x\nm,1,2.5\n",
            "name,time,x\nm,1,2.50000000000001\n"
        )
        .is_ok());
        assert!(cmp("name,time,x\nm,1,2\n", "name,time,x\nm,1,2.0\n").is_err());
        assert!(cmp("name,time,x\nm,1,2\n", "name,time,x\nm,2,2\n").is_err());
        assert!(cmp("a,\"x\ny\"\n", "a,\"x\ny\"\n").is_ok());
    }

    #[test]
    fn expectations() {
        let data = resp(
            200,
            J,
            r#"{"results":[{"statement_id":0,"series":[{"name":"m"}]}]}"#,
        );
        let empty = resp(200, J, r#"{"results":[{"statement_id":0}]}"#);
        let failed = resp(200, J, r#"{"results":[{"statement_id":0,"error":"x"}]}"#);
        let bad = resp(400, J, r#"{"error":"x"}"#);
        let e = entry("SELECT 1");
        assert!(check_expectation(&e, &data).is_none());
        assert!(check_expectation(&e, &empty).is_some());
        assert!(check_expectation(&e, &failed).is_some());
        let e = entry("@expect error\nSELECT 1");
        assert!(check_expectation(&e, &failed).is_none());
        assert!(check_expectation(&e, &bad).is_none());
        assert!(check_expectation(&e, &data).is_some());
        let e = entry("@expect empty\nSELECT 1");
        assert!(check_expectation(&e, &empty).is_none());
        assert!(check_expectation(&e, &data).is_some());
    }

    #[test]
    fn coverage() {
        let list = parse_coverage("# c\nfoo  the foo thing\nbar\n\n");
        assert_eq!(list, ["foo", "bar"]);
        let es = parse_corpus("# covers: foo baz\nSELECT 1", "f").unwrap();
        let p = check_coverage(&list, &es);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
