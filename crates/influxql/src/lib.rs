//! InfluxQL for Sundial: lexer and parser.
//!
//! It parses databases, retention policies, users and grants (`parser`), and,
//! through the port of InfluxDB 1.6's own parser in [`select`], SELECT, the
//! SHOW statements on series, measurements, tags and fields (and their
//! cardinality), DELETE, DROP SERIES / MEASUREMENT, continuous queries, SHOW
//! SHARDS / SHARD GROUPS / QUERIES and KILL QUERY. The few statements left
//! (SHOW STATS / DIAGNOSTICS / SUBSCRIPTIONS, subscriptions, DROP SHARD,
//! EXPLAIN) are recognised and returned as [`Statement::Unsupported`] with
//! their text, so the server can answer each with a clear error while the rest
//! of a multi-statement query still runs. Errors read like InfluxDB's:
//! `error parsing query: found X, expected Y at line 1, char 8`; `Display` of a
//! statement is InfluxDB's `String()`.

mod ast;
mod error;
mod lexer;
mod parser;
pub mod select;

pub use ast::{go_duration, DurationNs, Privilege, RetentionPolicySpec, Statement};
pub use error::ParseError;
pub use parser::parse_query;
pub use select::{
    Cardinality, CreateContinuousQuery, DeleteSeries, DropSeries, ShowCardinality, ShowFieldKeys,
    ShowMeasurements, ShowSeries, ShowTagKeys, ShowTagValues, TagKeyFilter,
};

#[cfg(test)]
mod statement_tests;
#[cfg(test)]
mod tests;
