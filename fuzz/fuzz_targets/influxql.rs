//! The InfluxQL parsers on arbitrary text: never panic; a SELECT that parses is
//! rendered, checked and has its WHERE clause split, without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sundial_influxql::select;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        if let Err(e) = sundial_influxql::parse_query(q) {
            if let Some((line, char)) = e.pos {
                assert!(line >= 1 && char >= 1);
            }
        }
        match select::parse_select_query(q) {
            Ok(stmts) => {
                for s in stmts {
                    let _ = s.to_string();
                    let _ = select::compile(&s);
                    if let (Some(c), Ok(clock)) =
                        (&s.condition, select::Clock::new(0, s.location.as_deref()))
                    {
                        let _ = select::condition_expr(c, &clock);
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
