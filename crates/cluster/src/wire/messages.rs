//! Messages: quoting input in error messages.

use super::QUOTE_MAX;

/// `s` in double quotes for a message: cut to about [`QUOTE_MAX`] bytes (on a
/// character boundary, marked with `…`), control characters and quotes
/// escaped. Backslashes stay as they are, so a series key reads as written in
/// line protocol.
pub(super) fn quote(s: &str) -> String {
    let mut cut = s.len().min(QUOTE_MAX);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 8);
    out.push('"');
    for c in s[..cut].chars() {
        if c.is_control() || c == '"' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut < s.len() {
        out.push('…');
    }
    out.push('"');
    out
}
