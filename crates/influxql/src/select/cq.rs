//! CREATE CONTINUOUS QUERY as InfluxDB 1.6 parses and checks it
//! (`parseCreateContinuousQueryStatement`, `parseResample`, `validate`): the
//! inner SELECT must have INTO; when it calls a function it needs a GROUP BY
//! time(…) interval, which is reported at the token the parser rewinds to; a
//! RESAMPLE FOR must cover the interval (or EVERY, when larger).

use super::ast::{format_duration, Expr, SelectStatement};
use super::expr::parse_duration;
use super::parser::{at, found, plain, Parser, Result};
use super::statement_ast::CreateContinuousQuery;
use super::token::T;
use crate::ast::DurationNs;

/// 1.6's `SelectStatement.GroupByInterval`: the duration of the first `time(…)`
/// dimension (0: none), or why it has none.
pub fn group_by_interval(s: &SelectStatement) -> std::result::Result<DurationNs, String> {
    for d in &s.dimensions {
        let Expr::Call { name, args } = d else {
            continue;
        };
        if name != "time" {
            continue;
        }
        if args.is_empty() || args.len() > 2 {
            return Err("time dimension expected 1 or 2 arguments".into());
        }
        return match args.first() {
            Some(Expr::Duration(d)) => Ok(*d),
            _ => Err("time dimension must have duration argument".into()),
        };
    }
    Ok(0)
}

/// 1.6's `IsRawQuery`: no function call anywhere in the fields.
pub fn is_raw_query(s: &SelectStatement) -> bool {
    let mut calls = false;
    for f in &s.fields {
        f.expr
            .walk(&mut |e| calls |= matches!(e, Expr::Call { .. }));
    }
    !calls
}

impl Parser {
    /// After CREATE CONTINUOUS QUERY.
    pub(super) fn create_continuous_query(&mut self) -> Result<CreateContinuousQuery> {
        let name = self.ident()?;
        self.expect(T::Kw("ON"))?;
        let database = self.ident()?;
        let (every, for_) = if self.accept(T::Kw("RESAMPLE")) {
            self.resample()?
        } else {
            (0, 0)
        };
        self.expect(T::Kw("BEGIN"))?;
        self.expect(T::Kw("SELECT"))?;
        let select = self.select_statement(true)?;
        if !is_raw_query(&select) {
            let interval = group_by_interval(&select);
            if !matches!(interval, Ok(d) if d != 0) {
                // 1.6 steps back two tokens (a pushed-back one is pending)
                // and reports what it reads there.
                self.s.unscan();
                self.s.unscan();
                let t = self.s.scan_ignore_ws();
                let mut expected = vec!["GROUP BY time(...)".to_string()];
                expected.extend(interval.err());
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                return Err(found(&t, &expected));
            }
        }
        self.expect(T::Kw("END"))?;
        let cq = CreateContinuousQuery {
            name,
            database,
            resample_every: (every != 0).then_some(every),
            resample_for: (for_ != 0).then_some(for_),
            select,
        };
        validate(&cq)?;
        Ok(cq)
    }

    /// After RESAMPLE: `[EVERY d] [FOR d]`, at least one (non-zero).
    fn resample(&mut self) -> Result<(DurationNs, DurationNs)> {
        let every = self.resample_duration("EVERY")?;
        let for_ = self.resample_duration("FOR")?;
        if every == 0 && for_ == 0 {
            let t = self.s.scan_ignore_ws();
            return Err(found(&t, &["EVERY", "FOR"]));
        }
        Ok((every, for_))
    }

    /// `KEYWORD duration` when the keyword comes next; 0 otherwise.
    fn resample_duration(&mut self, kw: &'static str) -> Result<DurationNs> {
        if !self.accept(T::Kw(kw)) {
            return Ok(0);
        }
        let t = self.s.scan_ignore_ws();
        if t.t != T::DurationVal {
            return Err(found(&t, &["duration"]));
        }
        parse_duration(&t.lit).map_err(|e| at(e.message, t.pos))
    }
}

/// The checks 1.6 makes once the statement is read (plain errors, no position).
fn validate(cq: &CreateContinuousQuery) -> Result<()> {
    let mut interval = group_by_interval(&cq.select).map_err(plain)?;
    let Some(for_) = cq.resample_for else {
        return Ok(());
    };
    if let Some(every) = cq.resample_every {
        interval = interval.max(every);
    }
    if interval > for_ {
        return Err(plain(format!(
            "FOR duration must be >= GROUP BY time duration: must be a minimum of {}, got {}",
            format_duration(interval),
            format_duration(for_)
        )));
    }
    Ok(())
}
