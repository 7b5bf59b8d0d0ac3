//! Recursive-descent parser for the database, retention policy, user and grant
//! statements of [`crate::ast`] (the port in `select` dispatches them here).

use crate::ast::{DurationNs, Privilege, RetentionPolicySpec, Statement};
use crate::error::ParseError;
use crate::lexer::{lex, Spanned, Tok};
use crate::select::token::lookup;
use crate::select::{parse_statements, Parsed};

/// Parses a query: one or more statements separated by `;`. SELECT and the
/// statements with sources, conditions or a SELECT are read by the port of
/// InfluxDB's parser (`select`), which hands the others to this one.
pub fn parse_query(query: &str) -> Result<Vec<Statement>, ParseError> {
    let mut out = Vec::new();
    for s in parse_statements(query)? {
        match s {
            Parsed::Select(s) => out.push(Statement::Select(s)),
            Parsed::Statement(s) => out.push(*s),
            Parsed::Other { text, start } => {
                let mut stmts = parse_other(&text).map_err(|mut e| {
                    // Positions in the whole query, not the statement's text.
                    if let Some((line, char)) = &mut e.pos {
                        if *line == 1 {
                            *char += start.char;
                        }
                        *line += start.line;
                    }
                    e
                })?;
                out.append(&mut stmts);
            }
        }
    }
    Ok(out)
}

/// Parses statements other than SELECT.
fn parse_other(query: &str) -> Result<Vec<Statement>, ParseError> {
    let toks = lex(query)?;
    let mut p = Parser {
        toks,
        i: 0,
        text: query.chars().collect(),
    };
    let mut out = Vec::new();
    loop {
        while p.peek() == &Tok::Semicolon {
            p.i += 1;
        }
        if p.peek() == &Tok::Eof {
            break;
        }
        out.push(p.statement()?);
        match p.peek() {
            Tok::Semicolon | Tok::Eof => {}
            _ => return Err(p.expected(";")),
        }
    }
    if out.is_empty() {
        let eof = p.cur();
        return Err(ParseError::at(
            "found EOF, expected statement",
            eof.line,
            eof.col,
        ));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Spanned>,
    i: usize,
    text: Vec<char>,
}

impl Parser {
    fn cur(&self) -> &Spanned {
        // The lexer always ends with Eof and we never advance past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.cur().tok
    }

    fn advance(&mut self) -> Tok {
        let t = self.cur().tok.clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn expected(&self, what: &str) -> ParseError {
        let c = self.cur();
        ParseError::at(
            format!("found {}, expected {what}", c.tok.describe()),
            c.line,
            c.col,
        )
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.expected(kw))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::QuotedIdent(s) => {
                self.i += 1;
                Ok(s)
            }
            // Keywords (and AND, OR, TRUE, FALSE) need quotes, as in InfluxDB.
            Tok::Ident(s) if lookup(&s).is_none() => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.expected("identifier")),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.expected("string")),
        }
    }

    fn duration(&mut self) -> Result<DurationNs, ParseError> {
        if self.eat_kw("INF") {
            return Ok(0);
        }
        match self.peek().clone() {
            Tok::Duration(d) => {
                self.i += 1;
                Ok(d)
            }
            _ => Err(self.expected("duration")),
        }
    }

    fn replication(&mut self) -> Result<u32, ParseError> {
        match self.peek().clone() {
            Tok::Int(n) if n >= 1 && n <= i64::from(u32::MAX) => {
                self.i += 1;
                Ok(n as u32)
            }
            Tok::Int(_) => {
                let c = self.cur();
                Err(ParseError::at(
                    format!(
                        "invalid value {}: must be 1 <= n <= 2147483647",
                        c.tok.describe()
                    ),
                    c.line,
                    c.col,
                ))
            }
            _ => Err(self.expected("integer")),
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let start = self.cur().pos;
        if self.eat_kw("CREATE") {
            if self.eat_kw("DATABASE") {
                return self.create_database();
            }
            if self.eat_kw("RETENTION") {
                self.kw("POLICY")?;
                return self.create_rp();
            }
            if self.eat_kw("USER") {
                return self.create_user();
            }
            if self.is_kw("SUBSCRIPTION") {
                return Ok(self.unsupported(start, "CREATE"));
            }
            return Err(self.expected("CONTINUOUS, DATABASE, USER, RETENTION, SUBSCRIPTION"));
        }
        if self.eat_kw("DROP") {
            if self.eat_kw("DATABASE") {
                return Ok(Statement::DropDatabase {
                    name: self.ident()?,
                });
            }
            if self.eat_kw("RETENTION") {
                self.kw("POLICY")?;
                let name = self.ident()?;
                self.kw("ON")?;
                return Ok(Statement::DropRetentionPolicy {
                    name,
                    database: self.ident()?,
                });
            }
            if self.eat_kw("USER") {
                return Ok(Statement::DropUser {
                    name: self.ident()?,
                });
            }
            if self.is_kw("SHARD") || self.is_kw("SUBSCRIPTION") {
                return Ok(self.unsupported(start, "DROP"));
            }
            return Err(self.expected(
                "CONTINUOUS, DATABASE, MEASUREMENT, RETENTION, SERIES, SHARD, SUBSCRIPTION, USER",
            ));
        }
        if self.eat_kw("ALTER") {
            self.kw("RETENTION")?;
            self.kw("POLICY")?;
            return self.alter_rp();
        }
        if self.eat_kw("SHOW") {
            if self.eat_kw("DATABASES") {
                return Ok(Statement::ShowDatabases);
            }
            if self.eat_kw("RETENTION") {
                self.kw("POLICIES")?;
                let database = if self.eat_kw("ON") {
                    Some(self.ident()?)
                } else {
                    None
                };
                return Ok(Statement::ShowRetentionPolicies { database });
            }
            if self.eat_kw("USERS") {
                return Ok(Statement::ShowUsers);
            }
            if self.eat_kw("GRANTS") {
                self.kw("FOR")?;
                return Ok(Statement::ShowGrants {
                    user: self.ident()?,
                });
            }
            return Ok(self.unsupported(start, "SHOW"));
        }
        if self.eat_kw("SET") {
            self.kw("PASSWORD")?;
            self.kw("FOR")?;
            let name = self.ident()?;
            if self.advance() != Tok::Eq {
                self.i -= 1;
                return Err(self.expected("="));
            }
            return Ok(Statement::SetPassword {
                name,
                password: self.string()?,
            });
        }
        if self.eat_kw("GRANT") {
            let (privilege, database) = self.privilege_target()?;
            self.kw("TO")?;
            return Ok(Statement::Grant {
                privilege,
                database,
                user: self.ident()?,
            });
        }
        if self.eat_kw("REVOKE") {
            let (privilege, database) = self.privilege_target()?;
            self.kw("FROM")?;
            return Ok(Statement::Revoke {
                privilege,
                database,
                user: self.ident()?,
            });
        }
        if self.eat_kw("EXPLAIN") {
            return Ok(self.unsupported(start, "EXPLAIN"));
        }
        Err(self.expected(
            "SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL",
        ))
    }

    /// Skips to the end of the statement and returns it as unsupported.
    fn unsupported(&mut self, start: usize, first: &str) -> Statement {
        let mut kind = first.to_ascii_uppercase();
        if let Tok::Ident(s) = self.peek() {
            kind = format!("{kind} {}", s.to_ascii_uppercase());
        }
        while !matches!(self.peek(), Tok::Semicolon | Tok::Eof) {
            self.i += 1;
        }
        let end = self.cur().pos;
        let text: String = self.text[start..end].iter().collect();
        Statement::Unsupported {
            kind,
            text: text.trim().to_string(),
        }
    }

    fn privilege_target(&mut self) -> Result<(Privilege, Option<String>), ParseError> {
        let privilege = if self.eat_kw("READ") {
            Privilege::Read
        } else if self.eat_kw("WRITE") {
            Privilege::Write
        } else if self.eat_kw("ALL") {
            Privilege::All
        } else {
            return Err(self.expected("READ, WRITE, ALL [PRIVILEGES]"));
        };
        self.eat_kw("PRIVILEGES");
        if self.eat_kw("ON") {
            return Ok((privilege, Some(self.ident()?)));
        }
        if privilege != Privilege::All {
            return Err(self.expected("ON"));
        }
        Ok((privilege, None))
    }

    fn create_database(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        if !self.eat_kw("WITH") {
            return Ok(Statement::CreateDatabase { name, rp: None });
        }
        let mut spec = RetentionPolicySpec::default();
        let mut any = false;
        loop {
            if self.eat_kw("DURATION") {
                spec.duration = Some(self.duration()?);
            } else if self.eat_kw("REPLICATION") {
                spec.replication = Some(self.replication()?);
            } else if self.eat_kw("SHARD") {
                self.kw("DURATION")?;
                spec.shard_duration = Some(self.duration()?);
            } else if self.eat_kw("NAME") {
                spec.name = Some(self.ident()?);
            } else {
                break;
            }
            any = true;
        }
        if !any {
            return Err(self.expected("DURATION, NAME, REPLICATION, SHARD"));
        }
        Ok(Statement::CreateDatabase {
            name,
            rp: Some(spec),
        })
    }

    fn create_rp(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.kw("ON")?;
        let database = self.ident()?;
        self.kw("DURATION")?;
        let duration = self.duration()?;
        self.kw("REPLICATION")?;
        let replication = self.replication()?;
        let mut shard_duration = None;
        let mut default = false;
        loop {
            if self.eat_kw("SHARD") {
                self.kw("DURATION")?;
                shard_duration = Some(self.duration()?);
            } else if self.eat_kw("DEFAULT") {
                default = true;
            } else {
                break;
            }
        }
        Ok(Statement::CreateRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        })
    }

    fn alter_rp(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.kw("ON")?;
        let database = self.ident()?;
        let (mut duration, mut replication, mut shard_duration, mut default) =
            (None, None, None, false);
        let mut any = false;
        loop {
            if self.eat_kw("DURATION") {
                duration = Some(self.duration()?);
            } else if self.eat_kw("REPLICATION") {
                replication = Some(self.replication()?);
            } else if self.eat_kw("SHARD") {
                self.kw("DURATION")?;
                shard_duration = Some(self.duration()?);
            } else if self.eat_kw("DEFAULT") {
                default = true;
            } else {
                break;
            }
            any = true;
        }
        if !any {
            return Err(self.expected("DURATION, REPLICATION, SHARD, DEFAULT"));
        }
        Ok(Statement::AlterRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        })
    }

    fn create_user(&mut self) -> Result<Statement, ParseError> {
        let name = self.ident()?;
        self.kw("WITH")?;
        self.kw("PASSWORD")?;
        let password = self.string()?;
        let mut admin = false;
        if self.eat_kw("WITH") {
            self.kw("ALL")?;
            self.kw("PRIVILEGES")?;
            admin = true;
        }
        Ok(Statement::CreateUser {
            name,
            password,
            admin,
        })
    }
}
