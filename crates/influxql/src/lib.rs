//! InfluxQL for Sundial: lexer and parser.
//!
//! Today it parses the statements the HTTP API executes: databases, retention
//! policies, users and grants. Other statements (SELECT, SHOW MEASUREMENTS,
//! DELETE, …) are recognised and returned as [`Statement::Unsupported`] with
//! their text, so the server can answer each with a clear error while the rest
//! of a multi-statement query still runs. Errors read like InfluxDB's:
//! `error parsing query: found X, expected Y at line 1, char 8`.

mod ast;
mod error;
mod lexer;
mod parser;

pub use ast::{DurationNs, Privilege, RetentionPolicySpec, Statement};
pub use error::ParseError;
pub use parser::parse_query;

/// Formats nanoseconds like InfluxDB's `SHOW RETENTION POLICIES` (`168h0m0s`, `0s`).
pub fn format_duration(ns: DurationNs) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return format!("{h}h{m}m{s}s");
    }
    let digits = format!("{frac:09}");
    format!("{h}h{m}m{s}.{}s", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
