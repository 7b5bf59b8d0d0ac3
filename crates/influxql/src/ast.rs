//! Parsed InfluxQL statements, and their text as InfluxDB 1.6 writes it back
//! (`String()`, which SHOW QUERIES shows).

use std::fmt::{self, Display, Formatter};

use crate::select::{
    format_duration, quote_ident, CreateContinuousQuery, DeleteSeries, DropSeries, SelectStatement,
    ShowCardinality, ShowFieldKeys, ShowMeasurements, ShowSeries, ShowTagKeys, ShowTagValues,
};

/// Nanoseconds; `0` means infinite (InfluxQL's `INF`).
pub type DurationNs = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Read,
    Write,
    All,
}

/// `WITH DURATION … REPLICATION … SHARD DURATION … NAME …` of `CREATE DATABASE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicySpec {
    pub name: Option<String>,
    pub duration: Option<DurationNs>,
    pub replication: Option<u32>,
    pub shard_duration: Option<DurationNs>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        rp: Option<RetentionPolicySpec>,
    },
    DropDatabase {
        name: String,
    },
    ShowDatabases,
    CreateRetentionPolicy {
        name: String,
        database: String,
        duration: DurationNs,
        replication: u32,
        shard_duration: Option<DurationNs>,
        default: bool,
    },
    AlterRetentionPolicy {
        name: String,
        database: String,
        duration: Option<DurationNs>,
        replication: Option<u32>,
        shard_duration: Option<DurationNs>,
        default: bool,
    },
    DropRetentionPolicy {
        name: String,
        database: String,
    },
    /// `None`: the request's `db` parameter applies.
    ShowRetentionPolicies {
        database: Option<String>,
    },
    CreateUser {
        name: String,
        password: String,
        admin: bool,
    },
    DropUser {
        name: String,
    },
    SetPassword {
        name: String,
        password: String,
    },
    /// `database: None` is `GRANT ALL PRIVILEGES TO u` (admin).
    Grant {
        privilege: Privilege,
        database: Option<String>,
        user: String,
    },
    Revoke {
        privilege: Privilege,
        database: Option<String>,
        user: String,
    },
    ShowUsers,
    ShowGrants {
        user: String,
    },
    /// A SELECT, as `select` parses it.
    Select(Box<SelectStatement>),
    ShowMeasurements(ShowMeasurements),
    ShowSeries(ShowSeries),
    ShowTagKeys(ShowTagKeys),
    ShowTagValues(ShowTagValues),
    ShowFieldKeys(ShowFieldKeys),
    /// The `SHOW … [EXACT] CARDINALITY` statements.
    ShowCardinality(ShowCardinality),
    ShowShards,
    ShowShardGroups,
    /// `DROP MEASUREMENT name` (the request's `db` applies).
    DropMeasurement {
        name: String,
    },
    DropSeries(DropSeries),
    /// `DELETE [FROM …] [WHERE …]` (the request's `db` applies).
    Delete(DeleteSeries),
    CreateContinuousQuery(Box<CreateContinuousQuery>),
    ShowContinuousQueries,
    DropContinuousQuery {
        name: String,
        database: String,
    },
    ShowQueries,
    /// `KILL QUERY id [ON host]` (1.6 ignores the host; `ON ""` is none). An
    /// unknown id fails when run: `no such query id: <id>`.
    KillQuery {
        id: u64,
        host: Option<String>,
    },
    /// A statement we recognise but do not parse yet (SHOW STATS, SHOW
    /// DIAGNOSTICS, SHOW SUBSCRIPTIONS, CREATE/DROP SUBSCRIPTION, DROP SHARD,
    /// EXPLAIN): its leading keywords and full text.
    Unsupported {
        kind: String,
        text: String,
    },
}

impl Privilege {
    /// As InfluxDB names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Read => "READ",
            Privilege::Write => "WRITE",
            Privilege::All => "ALL PRIVILEGES",
        }
    }
}

/// Go's `time.Duration.String()` (`168h0m0s`, `1.5s`, `300ms`), which 1.6 uses
/// for CREATE DATABASE's durations (the other statements use
/// [`format_duration`]).
pub fn go_duration(d: DurationNs) -> String {
    /// `.ddd` of `v`'s last `prec` digits, trailing zeros dropped; empty for none.
    fn frac(v: u64, prec: u32) -> String {
        let f = v % 10u64.pow(prec);
        if f == 0 {
            return String::new();
        }
        let digits = format!("{f:0width$}", width = prec as usize);
        format!(".{}", digits.trim_end_matches('0'))
    }
    if d == 0 {
        return "0s".into();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        return format!("{sign}{}{}{unit}", u / 10u64.pow(prec), frac(u, prec));
    }
    let secs = u / 1_000_000_000;
    let s = format!("{}{}s", secs % 60, frac(u, 9));
    let mins = secs / 60;
    if mins == 0 {
        return format!("{sign}{s}");
    }
    let hours = mins / 60;
    if hours == 0 {
        return format!("{sign}{}m{s}", mins % 60);
    }
    format!("{sign}{hours}h{}m{s}", mins % 60)
}

fn qi(s: &str) -> String {
    quote_ident(&[s])
}

impl Display for Statement {
    /// InfluxDB 1.6's `String()` of the statement (passwords redacted, as
    /// there); an unsupported statement shows its text.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::CreateDatabase { name, rp } => {
                write!(f, "CREATE DATABASE {}", qi(name))?;
                if let Some(rp) = rp {
                    f.write_str(" WITH")?;
                    if let Some(d) = rp.duration {
                        write!(f, " DURATION {}", go_duration(d))?;
                    }
                    if let Some(n) = rp.replication {
                        write!(f, " REPLICATION {n}")?;
                    }
                    if let Some(d) = rp.shard_duration.filter(|d| *d > 0) {
                        write!(f, " SHARD DURATION {}", go_duration(d))?;
                    }
                    if let Some(n) = rp.name.as_deref().filter(|n| !n.is_empty()) {
                        write!(f, " NAME {}", qi(n))?;
                    }
                }
                Ok(())
            }
            Statement::DropDatabase { name } => write!(f, "DROP DATABASE {}", qi(name)),
            Statement::ShowDatabases => f.write_str("SHOW DATABASES"),
            Statement::CreateRetentionPolicy {
                name,
                database,
                duration,
                replication,
                shard_duration,
                default,
            } => {
                write!(
                    f,
                    "CREATE RETENTION POLICY {} ON {} DURATION {} REPLICATION {replication}",
                    qi(name),
                    qi(database),
                    format_duration(*duration)
                )?;
                if let Some(d) = shard_duration.filter(|d| *d > 0) {
                    write!(f, " SHARD DURATION {}", format_duration(d))?;
                }
                if *default {
                    f.write_str(" DEFAULT")?;
                }
                Ok(())
            }
            Statement::AlterRetentionPolicy {
                name,
                database,
                duration,
                replication,
                shard_duration,
                default,
            } => {
                write!(f, "ALTER RETENTION POLICY {} ON {}", qi(name), qi(database))?;
                if let Some(d) = duration {
                    write!(f, " DURATION {}", format_duration(*d))?;
                }
                if let Some(n) = replication {
                    write!(f, " REPLICATION {n}")?;
                }
                if let Some(d) = shard_duration {
                    write!(f, " SHARD DURATION {}", format_duration(*d))?;
                }
                if *default {
                    f.write_str(" DEFAULT")?;
                }
                Ok(())
            }
            Statement::DropRetentionPolicy { name, database } => {
                write!(f, "DROP RETENTION POLICY {} ON {}", qi(name), qi(database))
            }
            Statement::ShowRetentionPolicies { database } => {
                f.write_str("SHOW RETENTION POLICIES")?;
                match database.as_deref().filter(|d| !d.is_empty()) {
                    Some(d) => write!(f, " ON {}", qi(d)),
                    None => Ok(()),
                }
            }
            Statement::CreateUser { name, admin, .. } => {
                write!(f, "CREATE USER {} WITH PASSWORD [REDACTED]", qi(name))?;
                if *admin {
                    f.write_str(" WITH ALL PRIVILEGES")?;
                }
                Ok(())
            }
            Statement::DropUser { name } => write!(f, "DROP USER {}", qi(name)),
            Statement::SetPassword { name, .. } => {
                write!(f, "SET PASSWORD FOR {} = [REDACTED]", qi(name))
            }
            Statement::Grant {
                privilege,
                database,
                user,
            } => match database {
                Some(db) => write!(
                    f,
                    "GRANT {} ON {} TO {}",
                    privilege.as_str(),
                    qi(db),
                    qi(user)
                ),
                None => write!(f, "GRANT ALL PRIVILEGES TO {}", qi(user)),
            },
            Statement::Revoke {
                privilege,
                database,
                user,
            } => match database {
                Some(db) => write!(
                    f,
                    "REVOKE {} ON {} FROM {}",
                    privilege.as_str(),
                    qi(db),
                    qi(user)
                ),
                None => write!(f, "REVOKE ALL PRIVILEGES FROM {}", qi(user)),
            },
            Statement::ShowUsers => f.write_str("SHOW USERS"),
            Statement::ShowGrants { user } => write!(f, "SHOW GRANTS FOR {}", qi(user)),
            Statement::Select(s) => write!(f, "{s}"),
            Statement::ShowMeasurements(s) => write!(f, "{s}"),
            Statement::ShowSeries(s) => write!(f, "{s}"),
            Statement::ShowTagKeys(s) => write!(f, "{s}"),
            Statement::ShowTagValues(s) => write!(f, "{s}"),
            Statement::ShowFieldKeys(s) => write!(f, "{s}"),
            Statement::ShowCardinality(s) => write!(f, "{s}"),
            Statement::ShowShards => f.write_str("SHOW SHARDS"),
            Statement::ShowShardGroups => f.write_str("SHOW SHARD GROUPS"),
            Statement::DropMeasurement { name } => write!(f, "DROP MEASUREMENT {}", qi(name)),
            Statement::DropSeries(s) => write!(f, "{s}"),
            Statement::Delete(s) => write!(f, "{s}"),
            Statement::CreateContinuousQuery(s) => write!(f, "{s}"),
            Statement::ShowContinuousQueries => f.write_str("SHOW CONTINUOUS QUERIES"),
            Statement::DropContinuousQuery { name, database } => {
                write!(f, "DROP CONTINUOUS QUERY {} ON {}", qi(name), qi(database))
            }
            Statement::ShowQueries => f.write_str("SHOW QUERIES"),
            Statement::KillQuery { id, host } => {
                write!(f, "KILL QUERY {id}")?;
                match host {
                    Some(h) => write!(f, " ON {}", qi(h)),
                    None => Ok(()),
                }
            }
            Statement::Unsupported { text, .. } => f.write_str(text),
        }
    }
}
