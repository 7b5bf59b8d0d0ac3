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
pub mod select;

pub use ast::{DurationNs, Privilege, RetentionPolicySpec, Statement};
pub use error::ParseError;
pub use parser::parse_query;

#[cfg(test)]
mod tests;
