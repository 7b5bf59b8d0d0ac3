//! Parse errors with InfluxDB's wording: `found X, expected Y at line L, char C`.

use std::fmt;

/// A query that could not be parsed. `Display` matches InfluxDB's
/// `error parsing query: …` body; some errors carry no position, as in InfluxDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// 1-based line and character (runes), as InfluxDB prints them.
    pub pos: Option<(usize, usize)>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error parsing query: {}", self.message)?;
        if let Some((line, char)) = self.pos {
            write!(f, " at line {line}, char {char}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    pub(crate) fn at(message: impl Into<String>, line: usize, col: usize) -> Self {
        ParseError {
            message: message.into(),
            pos: Some((line, col + 1)),
        }
    }
}

impl From<crate::select::QlError> for ParseError {
    fn from(e: crate::select::QlError) -> Self {
        ParseError {
            message: e.message,
            pos: e.pos.map(|p| (p.line + 1, p.char + 1)),
        }
    }
}
