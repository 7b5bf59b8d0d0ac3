//! Parse errors with InfluxDB's wording: `found X, expected Y at line L, char C`.

/// A query that could not be parsed. `Display` matches InfluxDB's
/// `error parsing query: …` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing query: {message} at line {line}, char {char}")]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    /// 1-based character in the line, as InfluxDB prints it.
    pub char: usize,
}

impl ParseError {
    pub(crate) fn at(message: impl Into<String>, line: usize, col: usize) -> Self {
        ParseError {
            message: message.into(),
            line,
            char: col + 1,
        }
    }
}
