//! InfluxQL tokens: kinds, keywords, the names InfluxDB prints for them, and
//! operator precedence.

/// A position: 0-based line and character (runes, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub char: usize,
}

/// Token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Illegal,
    Eof,
    Ws,
    Comment,
    Ident,
    BoundParam,
    Number,
    Integer,
    DurationVal,
    Str,
    BadString,
    BadEscape,
    True,
    False,
    Regex,
    BadRegex,
    // Operators.
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
    Eq,
    Neq,
    EqRegex,
    NeqRegex,
    Lt,
    Lte,
    Gt,
    Gte,
    // Punctuation.
    LParen,
    RParen,
    Comma,
    Colon,
    DoubleColon,
    Semicolon,
    Dot,
    /// A keyword (its upper-case spelling).
    Kw(&'static str),
}

/// Keywords, upper case (matched case-insensitively).
pub const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "ANALYZE",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BY",
    "CARDINALITY",
    "CREATE",
    "CONTINUOUS",
    "DATABASE",
    "DATABASES",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DESTINATIONS",
    "DIAGNOSTICS",
    "DISTINCT",
    "DROP",
    "DURATION",
    "END",
    "EVERY",
    "EXACT",
    "EXPLAIN",
    "FIELD",
    "FOR",
    "FROM",
    "GRANT",
    "GRANTS",
    "GROUP",
    "GROUPS",
    "IN",
    "INF",
    "INSERT",
    "INTO",
    "KEY",
    "KEYS",
    "KILL",
    "LIMIT",
    "MEASUREMENT",
    "MEASUREMENTS",
    "NAME",
    "OFFSET",
    "ON",
    "ORDER",
    "PASSWORD",
    "POLICY",
    "POLICIES",
    "PRIVILEGES",
    "QUERIES",
    "QUERY",
    "READ",
    "REPLICATION",
    "RESAMPLE",
    "RETENTION",
    "REVOKE",
    "SELECT",
    "SERIES",
    "SET",
    "SHOW",
    "SHARD",
    "SHARDS",
    "SLIMIT",
    "SOFFSET",
    "STATS",
    "SUBSCRIPTION",
    "SUBSCRIPTIONS",
    "TAG",
    "TO",
    "USER",
    "USERS",
    "VALUES",
    "WHERE",
    "WITH",
    "WRITE",
];

/// The token an identifier's text stands for: a keyword, `AND`/`OR`/`TRUE`/`FALSE`,
/// or `None` for a plain identifier.
pub fn lookup(lit: &str) -> Option<T> {
    let up = lit.to_ascii_uppercase();
    match up.as_str() {
        "AND" => return Some(T::And),
        "OR" => return Some(T::Or),
        "TRUE" => return Some(T::True),
        "FALSE" => return Some(T::False),
        _ => {}
    }
    KEYWORDS.iter().find(|k| **k == up).map(|k| T::Kw(k))
}

impl T {
    /// The name InfluxDB prints for a token with an empty literal.
    pub fn name(self) -> &'static str {
        match self {
            T::Illegal => "ILLEGAL",
            T::Eof => "EOF",
            T::Ws => "WS",
            T::Comment | T::BoundParam | T::BadRegex => "",
            T::Ident => "IDENT",
            T::Number => "NUMBER",
            T::Integer => "INTEGER",
            T::DurationVal => "DURATIONVAL",
            T::Str => "STRING",
            T::BadString => "BADSTRING",
            T::BadEscape => "BADESCAPE",
            T::True => "TRUE",
            T::False => "FALSE",
            T::Regex => "REGEX",
            T::Add => "+",
            T::Sub => "-",
            T::Mul => "*",
            T::Div => "/",
            T::Mod => "%",
            T::BitAnd => "&",
            T::BitOr => "|",
            T::BitXor => "^",
            T::And => "AND",
            T::Or => "OR",
            T::Eq => "=",
            T::Neq => "!=",
            T::EqRegex => "=~",
            T::NeqRegex => "!~",
            T::Lt => "<",
            T::Lte => "<=",
            T::Gt => ">",
            T::Gte => ">=",
            T::LParen => "(",
            T::RParen => ")",
            T::Comma => ",",
            T::Colon => ":",
            T::DoubleColon => "::",
            T::Semicolon => ";",
            T::Dot => ".",
            T::Kw(k) => k,
        }
    }

    /// Binding strength of a binary operator (0: not one).
    pub fn precedence(self) -> u8 {
        match self {
            T::Or => 1,
            T::And => 2,
            T::Eq | T::Neq | T::EqRegex | T::NeqRegex | T::Lt | T::Lte | T::Gt | T::Gte => 3,
            T::Add | T::Sub | T::BitOr | T::BitXor => 4,
            T::Mul | T::Div | T::Mod | T::BitAnd => 5,
            _ => 0,
        }
    }

    pub fn is_operator(self) -> bool {
        self.precedence() > 0
    }
}

/// How a token is shown in "found X": its literal, or its name when that is empty.
pub fn tokstr(tok: T, lit: &str) -> String {
    if lit.is_empty() {
        tok.name().to_string()
    } else {
        lit.to_string()
    }
}
