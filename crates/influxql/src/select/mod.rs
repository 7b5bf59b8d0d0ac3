//! SELECT statements as InfluxDB 1.6 parses them: a port of its scanner and
//! parser mechanics (so error texts and positions match), the statement's syntax
//! tree and its rendering; the other statements that take sources, conditions
//! or a SELECT (SHOW MEASUREMENTS/SERIES/TAG KEYS/TAG VALUES/FIELD KEYS, the
//! cardinality statements, DELETE, DROP SERIES, continuous queries, …:
//! `statement.rs`, `cq.rs`, `statement_ast.rs`) and the statement dispatch; the checks InfluxDB's compiler makes (`compile`), and
//! the WHERE clause split into a time range and the rest (`condition`). The behaviour followed is written down in
//! `INFLUXQL-1.6.md`; `tests/select_fixtures.rs` checks it against outputs of
//! InfluxDB's own parser.

mod ast;
mod compile;
mod condition;
mod cq;
mod expr;
mod parser;
mod regex;
mod scanner;
mod statement;
mod statement_ast;
pub(crate) mod token;

pub use ast::{
    format_duration, quote_ident, BinOp, DataType, Expr, Field, Fill, Measurement, SelectStatement,
    SortField, Source,
};
pub use compile::{
    compile, compile_subquery, is_literal, math, reduce, reduce_with, Compiled, Offset, MATH,
};
pub use condition::{condition_expr, is_time_literal, parse_time_literal, Clock, TimeRange};
pub use cq::{group_by_interval, is_raw_query};
pub use expr::parse_duration;
pub use parser::{parse_expr, parse_select_query, parse_statements, Parsed, QlError};
pub use statement_ast::{
    has_time_expr, split_condition, Cardinality, CreateContinuousQuery, DeleteSeries, DropSeries,
    ShowCardinality, ShowFieldKeys, ShowMeasurements, ShowSeries, ShowTagKeys, ShowTagValues,
    TagKeyFilter,
};
pub use token::Pos;
