//! The scanner of InfluxDB 1.6's InfluxQL, mechanism for mechanism: error texts and
//! their positions come from how it reads, unreads and looks ahead (a rune reader
//! with three slots of unread, a token ring with three slots of pushback, and a
//! raw look at the next rune that bypasses pushed-back tokens). See
//! `INFLUXQL-1.6.md` §1 for the behaviour this follows.

use super::token::{lookup, Pos, T};

/// End of input (and a NUL in it, as InfluxDB's reader treats one).
const EOF: char = '\0';

/// Reads runes with three slots of unread; a rune's position is where it starts.
struct Reader {
    input: Vec<char>,
    at: usize,
    buf: [(char, Pos); 3],
    i: usize,
    n: usize,
    pos: Pos,
    eof: bool,
}

impl Reader {
    fn new(s: &str) -> Reader {
        Reader {
            input: s.chars().collect(),
            at: 0,
            buf: [(EOF, Pos::default()); 3],
            i: 0,
            n: 0,
            pos: Pos::default(),
            eof: false,
        }
    }

    fn read(&mut self) -> (char, Pos) {
        if self.n > 0 {
            self.n -= 1;
            return self.curr();
        }
        let mut ch = self.input.get(self.at).copied().unwrap_or(EOF);
        if self.at < self.input.len() {
            self.at += 1;
        }
        if ch == '\r' {
            if self.input.get(self.at) == Some(&'\n') {
                self.at += 1;
            }
            ch = '\n';
        }
        self.i = (self.i + 1) % 3;
        self.buf[self.i] = (ch, self.pos);
        if ch == '\n' {
            self.pos.line += 1;
            self.pos.char = 0;
        } else if !self.eof {
            self.pos.char += 1;
        }
        if ch == EOF {
            self.eof = true;
        }
        self.curr()
    }

    fn unread(&mut self) {
        self.n += 1;
    }

    fn curr(&self) -> (char, Pos) {
        self.buf[(self.i + 3 - self.n) % 3]
    }
}

/// InfluxQL's whitespace (a carriage return reads as a newline).
pub(super) fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\n'
}

fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_ident_first(c: char) -> bool {
    is_letter(c) || c == '_'
}

/// A scanned token.
#[derive(Debug, Clone, PartialEq)]
pub struct Tok {
    pub t: T,
    pub pos: Pos,
    pub lit: String,
}

impl Tok {
    fn new(t: T, pos: Pos, lit: impl Into<String>) -> Tok {
        Tok {
            t,
            pos,
            lit: lit.into(),
        }
    }
}

/// The scanner with InfluxDB's three-slot token ring on top.
pub struct Scanner {
    r: Reader,
    ring: [Tok; 3],
    i: usize,
    n: usize,
}

impl Scanner {
    pub fn new(s: &str) -> Scanner {
        let empty = Tok::new(T::Illegal, Pos::default(), "");
        Scanner {
            r: Reader::new(s),
            ring: [empty.clone(), empty.clone(), empty],
            i: 0,
            n: 0,
        }
    }

    /// The next token, whitespace and comments included.
    pub fn scan(&mut self) -> Tok {
        self.ring_scan(|s| s.scan_raw())
    }

    /// A regex literal (`/…/`), when the parser expects one.
    pub fn scan_regex(&mut self) -> Tok {
        self.ring_scan(|s| s.scan_regex_raw())
    }

    /// The next token that is not whitespace or a comment.
    pub fn scan_ignore_ws(&mut self) -> Tok {
        loop {
            let t = self.scan();
            if t.t != T::Ws && t.t != T::Comment {
                return t;
            }
        }
    }

    /// Pushes the last token back (at most three are held, as in InfluxDB; a
    /// fourth would read past the ring, which InfluxDB never asks for).
    pub fn unscan(&mut self) {
        self.n = (self.n + 1).min(self.ring.len());
    }

    /// The next rune, read directly (past any pushed-back token); it is put back
    /// unless it is the end of input.
    pub fn peek_rune(&mut self) -> char {
        let (c, _) = self.r.read();
        if c != EOF {
            self.r.unread();
        }
        c
    }

    fn ring_scan(&mut self, f: impl FnOnce(&mut Self) -> Tok) -> Tok {
        if self.n > 0 {
            self.n -= 1;
            return self.ring_curr();
        }
        self.i = (self.i + 1) % 3;
        let t = f(self);
        self.ring[self.i] = t;
        self.ring_curr()
    }

    fn ring_curr(&self) -> Tok {
        self.ring[(self.i + 3 - self.n) % 3].clone()
    }

    fn scan_raw(&mut self) -> Tok {
        let (ch0, pos) = self.r.read();
        if is_ws(ch0) {
            let mut lit = String::from(ch0);
            loop {
                let (c, _) = self.r.read();
                if c == EOF {
                    break;
                }
                if !is_ws(c) {
                    self.r.unread();
                    break;
                }
                lit.push(c);
            }
            return Tok::new(T::Ws, pos, lit);
        }
        if is_ident_first(ch0) || ch0 == '"' {
            self.r.unread();
            return self.scan_ident(true);
        }
        if ch0.is_ascii_digit() {
            return self.scan_number(ch0, pos);
        }
        let one = |t| Tok::new(t, pos, "");
        match ch0 {
            EOF => one(T::Eof),
            '\'' => self.scan_string(),
            '.' => {
                let (c, _) = self.r.read();
                self.r.unread();
                if c.is_ascii_digit() {
                    self.scan_number(ch0, pos)
                } else {
                    one(T::Dot)
                }
            }
            '$' => {
                let t = self.scan_ident(false);
                let lit = format!("${}", t.lit);
                if t.t == T::Ident {
                    Tok::new(T::BoundParam, pos, lit)
                } else {
                    Tok::new(t.t, pos, lit)
                }
            }
            '+' => one(T::Add),
            '-' => {
                let (c, _) = self.r.read();
                if c == '-' {
                    loop {
                        let (c, _) = self.r.read();
                        if c == '\n' || c == EOF {
                            break;
                        }
                    }
                    one(T::Comment)
                } else {
                    self.r.unread();
                    one(T::Sub)
                }
            }
            '*' => one(T::Mul),
            '/' => {
                let (c, _) = self.r.read();
                if c == '*' {
                    let mut last = ' ';
                    loop {
                        let (c, _) = self.r.read();
                        if c == EOF {
                            return Tok::new(T::Illegal, pos, "");
                        }
                        if last == '*' && c == '/' {
                            return one(T::Comment);
                        }
                        last = c;
                    }
                }
                self.r.unread();
                one(T::Div)
            }
            '%' => one(T::Mod),
            '&' => one(T::BitAnd),
            '|' => one(T::BitOr),
            '^' => one(T::BitXor),
            '=' => self.pair(pos, '~', T::EqRegex, T::Eq),
            '!' => {
                let (c, _) = self.r.read();
                match c {
                    '=' => one(T::Neq),
                    '~' => one(T::NeqRegex),
                    _ => {
                        self.r.unread();
                        Tok::new(T::Illegal, pos, "!")
                    }
                }
            }
            '>' => self.pair(pos, '=', T::Gte, T::Gt),
            '<' => {
                let (c, _) = self.r.read();
                match c {
                    '=' => one(T::Lte),
                    '>' => one(T::Neq),
                    _ => {
                        self.r.unread();
                        one(T::Lt)
                    }
                }
            }
            '(' => one(T::LParen),
            ')' => one(T::RParen),
            ',' => one(T::Comma),
            ';' => one(T::Semicolon),
            ':' => self.pair(pos, ':', T::DoubleColon, T::Colon),
            c => Tok::new(T::Illegal, pos, c.to_string()),
        }
    }

    /// `two` when the next rune is `second` (taken), else `one`.
    fn pair(&mut self, pos: Pos, second: char, two: T, one: T) -> Tok {
        let (c, _) = self.r.read();
        if c == second {
            return Tok::new(two, pos, "");
        }
        self.r.unread();
        Tok::new(one, pos, "")
    }

    /// Identifier characters up to the first other rune (which is put back; the end
    /// of input is not).
    fn scan_bare_ident(&mut self, out: &mut String) {
        loop {
            let (c, _) = self.r.read();
            if c == EOF {
                break;
            }
            if !is_ident_char(c) {
                self.r.unread();
                break;
            }
            out.push(c);
        }
    }

    fn scan_ident(&mut self, lookup_kw: bool) -> Tok {
        let (_, pos) = self.r.read();
        self.r.unread();
        let mut lit = String::new();
        loop {
            let (c, _) = self.r.read();
            if c == EOF {
                break;
            }
            if c == '"' {
                return match self.quoted() {
                    Ok(s) => Tok::new(T::Ident, pos, s),
                    Err(t) => t,
                };
            }
            if is_ident_char(c) {
                self.r.unread();
                self.scan_bare_ident(&mut lit);
            } else {
                self.r.unread();
                break;
            }
        }
        if lookup_kw {
            if let Some(t) = lookup(&lit) {
                return Tok::new(t, pos, "");
            }
        }
        Tok::new(T::Ident, pos, lit)
    }

    /// A string whose opening quote was just read.
    fn scan_string(&mut self) -> Tok {
        let (_, pos) = self.before_quote();
        match self.quoted() {
            Ok(s) => Tok::new(T::Str, pos, s),
            Err(t) => t,
        }
    }

    /// The position of the rune before the quote just read (InfluxDB reports a
    /// string there).
    fn before_quote(&mut self) -> (char, Pos) {
        self.r.unread();
        let before = self.r.curr();
        self.r.read();
        before
    }

    /// The body of a string whose opening quote was just read, with InfluxQL's
    /// escapes. A string cut short is reported at the rune before its quote, a bad
    /// escape at the rune after the backslash.
    fn quoted(&mut self) -> Result<String, Tok> {
        let (quote, _) = self.r.curr();
        let (_, start) = self.before_quote();
        let mut out = String::new();
        loop {
            let (c, _) = self.r.read();
            if c == quote {
                return Ok(out);
            }
            if c == EOF || c == '\n' {
                return Err(Tok::new(T::BadString, start, out));
            }
            if c == '\\' {
                let (e, epos) = self.r.read();
                match e {
                    'n' => out.push('\n'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    _ => {
                        let mut lit = String::from('\\');
                        lit.push(e);
                        return Err(Tok::new(T::BadEscape, epos, lit));
                    }
                }
                continue;
            }
            out.push(c);
        }
    }

    fn scan_number(&mut self, first: char, pos: Pos) -> Tok {
        let mut lit = String::new();
        let mut decimal = false;
        if first == '.' {
            // `.5`: the `.` was read, the digit follows.
            decimal = true;
            lit.push('.');
            self.scan_digits(&mut lit);
        } else {
            lit.push(first);
            self.scan_digits(&mut lit);
            let (c, _) = self.r.read();
            if c == '.' {
                decimal = true;
                let (d, _) = self.r.read();
                self.r.unread();
                if d.is_ascii_digit() {
                    lit.push('.');
                    self.scan_digits(&mut lit);
                }
            } else {
                self.r.unread();
            }
        }
        if !decimal {
            let (c, _) = self.r.read();
            if is_letter(c) || c == 'µ' {
                lit.push(c);
                loop {
                    let (c, _) = self.r.read();
                    if is_letter(c) || c == 'µ' || c.is_ascii_digit() {
                        lit.push(c);
                    } else {
                        self.r.unread();
                        break;
                    }
                }
                return Tok::new(T::DurationVal, pos, lit);
            }
            self.r.unread();
            return Tok::new(T::Integer, pos, lit);
        }
        Tok::new(T::Number, pos, lit)
    }

    fn scan_digits(&mut self, out: &mut String) {
        loop {
            let (c, _) = self.r.read();
            if !c.is_ascii_digit() {
                self.r.unread();
                break;
            }
            out.push(c);
        }
    }

    fn scan_regex_raw(&mut self) -> Tok {
        let (_, pos) = self.r.curr();
        let (c, _) = self.r.read();
        if c != '/' {
            return Tok::new(T::BadRegex, pos, "");
        }
        let mut out = String::new();
        loop {
            let (c, _) = self.r.read();
            match c {
                '/' => return Tok::new(T::Regex, pos, out),
                EOF | '\n' => return Tok::new(T::BadRegex, pos, ""),
                '\\' => {
                    let (d, _) = self.r.read();
                    match d {
                        EOF => return Tok::new(T::BadRegex, pos, ""),
                        '/' => out.push('/'),
                        _ => {
                            out.push('\\');
                            self.r.unread();
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }
}
