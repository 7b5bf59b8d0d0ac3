//! Parsed InfluxQL statements.

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
    Select(Box<crate::select::SelectStatement>),
    /// A statement we recognise but do not execute yet (SELECT, other SHOWs,
    /// DELETE, DROP MEASUREMENT, …): its leading keywords and full text.
    Unsupported {
        kind: String,
        text: String,
    },
}
