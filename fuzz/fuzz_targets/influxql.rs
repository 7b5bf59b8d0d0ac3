//! The InfluxQL parsers on arbitrary text: never panic; a SELECT that parses
//! renders without panicking too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        if let Err(e) = sundial_influxql::parse_query(q) {
            assert!(e.line >= 1 && e.char >= 1);
        }
        match sundial_influxql::select::parse_select_query(q) {
            Ok(stmts) => {
                for s in stmts {
                    let _ = s.to_string();
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
