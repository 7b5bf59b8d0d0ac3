//! Regex literals are compiled when parsed, as InfluxDB does; a bad one fails
//! the parse with Go's `regexp` wording (`error parsing regexp: missing
//! closing ]: `[``), the part it names cut as Go cuts it.

use regex_syntax::ast::{parse::Parser, ErrorKind};

/// Ok, or the parse error text for `pattern`.
pub(super) fn check(pattern: &str) -> Result<(), String> {
    // Go's regexp (as InfluxDB 1.6 was built) has no `(?<name>…)` groups and
    // no look-arounds.
    for perl in ["(?<", "(?=", "(?!"] {
        if pattern.contains(perl) {
            return Err(format!(
                "error parsing regexp: invalid or unsupported Perl syntax: `{perl}`"
            ));
        }
    }
    let err = match Parser::new().parse(pattern) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let span = err.span();
    let at = |a: usize, b: usize| pattern.get(a..b).unwrap_or(pattern);
    let (code, expr) = match err.kind() {
        ErrorKind::ClassUnclosed => ("missing closing ]", at(span.start.offset, pattern.len())),
        ErrorKind::GroupUnclosed => ("missing closing )", pattern),
        ErrorKind::GroupUnopened => ("unexpected )", pattern),
        ErrorKind::RepetitionMissing => {
            // The operator itself.
            let op = pattern[span.start.offset..]
                .chars()
                .next()
                .map_or(0, char::len_utf8);
            (
                "missing argument to repetition operator",
                at(span.start.offset, span.start.offset + op),
            )
        }
        ErrorKind::EscapeUnexpectedEof => ("trailing backslash at end of expression", ""),
        ErrorKind::EscapeUnrecognized
        | ErrorKind::EscapeHexInvalid
        | ErrorKind::EscapeHexInvalidDigit
        | ErrorKind::EscapeHexEmpty => (
            "invalid escape sequence",
            at(span.start.offset, span.end.offset),
        ),
        ErrorKind::ClassRangeInvalid | ErrorKind::ClassRangeLiteral => (
            "invalid character class range",
            at(span.start.offset, span.end.offset),
        ),
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountUnclosed
        | ErrorKind::RepetitionCountDecimalEmpty
        | ErrorKind::DecimalInvalid => (
            "invalid repeat count",
            at(span.start.offset, span.end.offset),
        ),
        ErrorKind::GroupNameInvalid
        | ErrorKind::GroupNameDuplicate { .. }
        | ErrorKind::GroupNameEmpty
        | ErrorKind::GroupNameUnexpectedEof => (
            "invalid named capture",
            at(span.start.offset, span.end.offset),
        ),
        _ => (
            "invalid or unsupported Perl syntax",
            at(span.start.offset, span.end.offset),
        ),
    };
    Err(format!("error parsing regexp: {code}: `{expr}`"))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn errors_read_like_go() {
        assert_eq!(
            check("a[b").unwrap_err(),
            "error parsing regexp: missing closing ]: `[b`"
        );
        assert_eq!(
            check("(a").unwrap_err(),
            "error parsing regexp: missing closing ): `(a`"
        );
        assert_eq!(
            check("a)").unwrap_err(),
            "error parsing regexp: unexpected ): `a)`"
        );
        assert_eq!(
            check("*a").unwrap_err(),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert!(check("^server0[1-3]$").is_ok());
    }
}
