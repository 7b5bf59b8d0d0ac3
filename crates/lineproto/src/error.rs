//! Per-line parse errors with InfluxDB 1.x's reason texts.

use std::fmt;

/// Longest excerpt of a bad line kept in an error; a 25 MB line must not be echoed back.
pub const MAX_ERROR_LINE_LEN: usize = 256;

/// Why a line was rejected. `Display` gives InfluxDB 1.x's reason text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("missing measurement")]
    MissingMeasurement,
    #[error("missing tag key")]
    MissingTagKey,
    #[error("missing tag value")]
    MissingTagValue,
    #[error("invalid tag format")]
    InvalidTagFormat,
    #[error("duplicate tags")]
    DuplicateTags,
    #[error("missing fields")]
    MissingFields,
    #[error("missing field key")]
    MissingFieldKey,
    #[error("missing field value")]
    MissingFieldValue,
    #[error("invalid field format")]
    InvalidFieldFormat,
    #[error("invalid number")]
    InvalidNumber,
    /// Syntactically a float but out of f64's range (InfluxDB's text).
    #[error("invalid float")]
    InvalidFloat,
    #[error("unable to parse integer {0}: value out of range")]
    IntegerOutOfRange(String),
    #[error("unable to parse unsigned {0}: invalid syntax or value out of range")]
    InvalidUnsigned(String),
    #[error("invalid boolean")]
    InvalidBoolean,
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("bad timestamp")]
    BadTimestamp,
    #[error(
        "time outside range {} - {}",
        crate::MIN_NANO_TIME,
        crate::MAX_NANO_TIME
    )]
    TimeOutsideRange,
    #[error("max key length exceeded: {0} > {max}", max = crate::MAX_KEY_LENGTH)]
    MaxKeyLength(usize),
    #[error("max string field length exceeded: {0} > {max}", max = crate::MAX_STRING_FIELD_LENGTH)]
    StringFieldTooLong(usize),
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

/// A rejected line: 1-based line number in the body, the line (cut), and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub text: String,
    pub kind: ParseErrorKind,
}

impl LineError {
    pub(crate) fn new(line: usize, raw: &[u8], kind: ParseErrorKind) -> Self {
        let cut = &raw[..raw.len().min(MAX_ERROR_LINE_LEN)];
        let mut text = String::from_utf8_lossy(cut).into_owned();
        if raw.len() > MAX_ERROR_LINE_LEN {
            text.push_str("...");
        }
        LineError { line, text, kind }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unable to parse '{}': {}", self.text, self.kind)
    }
}

impl std::error::Error for LineError {}

/// Unknown precision string (InfluxDB's text for `/write`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid precision {0:?} (use n, u, ms, s, m or h)")]
pub struct InvalidPrecision(pub String);
