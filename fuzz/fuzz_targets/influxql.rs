//! The InfluxQL parser on arbitrary text: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        if let Err(e) = sundial_influxql::parse_query(q) {
            assert!(e.line >= 1 && e.char >= 1);
        }
    }
});
