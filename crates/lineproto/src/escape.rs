//! Escaping rules of line protocol, as InfluxDB 1.x applies them.
//!
//! - measurement: `\,` and `\ ` (an `=` needs no escape there);
//! - tag keys, tag values, field keys: `\,`, `\=` and `\ `;
//! - string field values: `\"` and `\\`.
//!
//! A backslash before any other character is kept literally, both ways.

use std::borrow::Cow;

/// Which characters a token's escapes cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    Measurement,
    Key,
    StringField,
}

#[inline]
fn is_escapable(ctx: Ctx, c: u8) -> bool {
    match ctx {
        Ctx::Measurement => c == b',' || c == b' ',
        Ctx::Key => c == b',' || c == b' ' || c == b'=',
        Ctx::StringField => c == b'"' || c == b'\\',
    }
}

/// Removes the escapes of `raw`; borrows when `raw` has none (the common case).
#[inline(always)]
pub(crate) fn unescape(raw: &str, ctx: Ctx, has_backslash: bool) -> Cow<'_, str> {
    if !has_backslash {
        return Cow::Borrowed(raw);
    }
    unescape_slow(raw, ctx)
}

#[cold]
fn unescape_slow(raw: &str, ctx: Ctx) -> Cow<'_, str> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() && is_escapable(ctx, b[i + 1]) {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    // Only ASCII bytes were removed, so the result stays valid UTF-8.
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(raw),
    }
}

/// Appends `s` to `out` with the escapes `ctx` requires.
#[inline]
pub(crate) fn escape_into(out: &mut String, s: &str, ctx: Ctx) {
    if !s.bytes().any(|c| is_escapable(ctx, c)) {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        if ch.is_ascii() && is_escapable(ctx, ch as u8) {
            out.push('\\');
        }
        out.push(ch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_each_context() {
        assert_eq!(unescape(r"a\,b\ c\=d", Ctx::Key, true), "a,b c=d");
        assert_eq!(unescape(r"a\,b\ c\=d", Ctx::Measurement, true), r"a,b c\=d");
        assert_eq!(
            unescape(r#"say \"hi\" \\ \n"#, Ctx::StringField, true),
            r#"say "hi" \ \n"#
        );
        assert_eq!(unescape(r"trailing\", Ctx::Key, true), r"trailing\");
        assert!(matches!(
            unescape("plain", Ctx::Key, false),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escape_is_inverse_of_unescape() {
        for (s, ctx) in [
            ("a,b c=d", Ctx::Key),
            ("a,b c=d", Ctx::Measurement),
            (r#"q"\x"#, Ctx::StringField),
            ("héllo wörld", Ctx::Key),
        ] {
            let mut out = String::new();
            escape_into(&mut out, s, ctx);
            assert_eq!(unescape(&out, ctx, true), s, "{out}");
        }
    }
}
