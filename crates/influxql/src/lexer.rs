//! InfluxQL tokens. Keywords are matched case-insensitively by the parser.

use crate::error::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Unquoted identifier or keyword.
    Ident(String),
    /// `"double quoted"` identifier.
    QuotedIdent(String),
    /// `'single quoted'` string.
    Str(String),
    /// Integer literal.
    Int(i64),
    /// Duration literal such as `1h`, `30m`, `7d`, in nanoseconds.
    Duration(i64),
    Semicolon,
    Eq,
    Comma,
    /// Any other punctuation (`*`, `(`, `<`, …).
    Op(char),
    Eof,
}

impl Tok {
    /// How InfluxDB names a token in "found X, expected Y".
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::QuotedIdent(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Int(i) => i.to_string(),
            Tok::Duration(_) => "duration".into(),
            Tok::Semicolon => ";".into(),
            Tok::Eq => "=".into(),
            Tok::Comma => ",".into(),
            Tok::Op(c) => c.to_string(),
            Tok::Eof => "EOF".into(),
        }
    }
}

/// A token with its 1-based line and 0-based character position, as InfluxDB reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
    /// Character offset in the whole query (to cut out a statement's text).
    pub pos: usize,
}

/// Nanoseconds per duration unit (InfluxQL's units).
fn unit_ns(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => 1,
        "u" | "µ" | "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return None,
    })
}

pub fn lex(input: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    while i < chars.len() {
        let c = chars[i];
        let col = i - line_start;
        let pos = i;
        let at = |tok| Spanned {
            tok,
            line,
            col,
            pos,
        };
        match c {
            '\n' => {
                i += 1;
                line += 1;
                line_start = i;
            }
            c if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                // Comment to end of line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ';' => {
                out.push(at(Tok::Semicolon));
                i += 1;
            }
            '=' => {
                out.push(at(Tok::Eq));
                i += 1;
            }
            ',' => {
                out.push(at(Tok::Comma));
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None | Some('\n') => {
                            return Err(ParseError::at(
                                if quote == '"' {
                                    "unterminated quoted identifier"
                                } else {
                                    "unterminated string"
                                },
                                line,
                                col,
                            ))
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(&e) if e == quote || e == '\\' => s.push(e),
                                Some('n') => s.push('\n'),
                                Some(&e) => {
                                    s.push('\\');
                                    s.push(e);
                                }
                                None => return Err(ParseError::at("bad escape", line, col)),
                            }
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(at(if quote == '"' {
                    Tok::QuotedIdent(s)
                } else {
                    Tok::Str(s)
                }));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                let ustart = i;
                while i < chars.len() && (chars[i].is_alphabetic()) {
                    i += 1;
                }
                let unit: String = chars[ustart..i].iter().collect();
                let n: i64 = digits.parse().map_err(|_| {
                    ParseError::at(format!("unable to parse number {digits}"), line, col)
                })?;
                if unit.is_empty() {
                    out.push(at(Tok::Int(n)));
                } else {
                    let ns = unit_ns(&unit)
                        .and_then(|u| n.checked_mul(u))
                        .ok_or_else(|| {
                            ParseError::at(format!("invalid duration {digits}{unit}"), line, col)
                        })?;
                    out.push(at(Tok::Duration(ns)));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(at(Tok::Ident(chars[start..i].iter().collect())));
            }
            other => {
                // Operators and punctuation of statements we only skip (SELECT, …).
                out.push(at(Tok::Op(other)));
                i += 1;
            }
        }
    }
    out.push(Spanned {
        tok: Tok::Eof,
        line,
        col: chars.len() - line_start,
        pos: chars.len(),
    });
    Ok(out)
}
