//! The metadata model, as InfluxDB 1.x has it: databases with retention policies,
//! shard groups with shards and owners, nodes, users with privileges.
//!
//! Times are nanoseconds since the Unix epoch (`i64`), durations nanoseconds (`i64`,
//! 0 = infinite for a retention policy duration).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A node id.
pub type NodeId = u64;
/// A shard id.
pub type ShardId = u64;
/// A shard group id.
pub type ShardGroupId = u64;

/// One nanosecond-based second.
pub const SECOND: i64 = 1_000_000_000;
/// One hour in nanoseconds.
pub const HOUR: i64 = 3600 * SECOND;
/// One day in nanoseconds.
pub const DAY: i64 = 24 * HOUR;
/// The smallest finite retention policy duration (InfluxDB: 1h).
pub const MIN_RETENTION_POLICY_DURATION: i64 = HOUR;
/// Name of the retention policy created with each database.
pub const AUTOGEN: &str = "autogen";

/// Default shard group duration for a retention policy duration (InfluxDB 1.x):
/// INF or ≥ 180 days → 7 days; ≥ 2 days → 1 day; else 1 hour.
pub fn shard_group_duration_for(duration: i64) -> i64 {
    if duration <= 0 || duration >= 180 * DAY {
        7 * DAY
    } else if duration >= 2 * DAY {
        DAY
    } else {
        HOUR
    }
}

/// InfluxDB's `normalisedShardDuration`: 0 → derived from the duration; below 1h →
/// the derived value for 1h; else as given.
pub fn normalised_shard_group_duration(sgd: i64, duration: i64) -> i64 {
    if sgd == 0 {
        shard_group_duration_for(duration)
    } else if sgd < MIN_RETENTION_POLICY_DURATION {
        shard_group_duration_for(MIN_RETENTION_POLICY_DURATION)
    } else {
        sgd
    }
}

/// Formats nanoseconds like Go's `time.Duration.String()` for whole seconds and above
/// (`1h0m0s`, `168h0m0s`, `0s`), which is what InfluxDB prints.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let ns = ns.unsigned_abs();
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if secs == 0 {
        // Sub-second: Go prints ms/µs/ns units.
        if frac.is_multiple_of(1_000_000) {
            out.push_str(&format!("{}ms", frac / 1_000_000));
        } else if frac.is_multiple_of(1000) {
            out.push_str(&format!("{}µs", frac / 1000));
        } else {
            out.push_str(&format!("{frac}ns"));
        }
        return out;
    }
    let sec_str = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:09}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    if h > 0 {
        out.push_str(&format!("{h}h{m}m{sec_str}"));
    } else if m > 0 {
        out.push_str(&format!("{m}m{sec_str}"));
    } else {
        out.push_str(&sec_str);
    }
    out
}

/// InfluxDB's `ValidName`: non-empty, not `.`/`..`, no `/` or `\`, printable only.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && name.chars().all(|c| !c.is_control())
}

/// Nanoseconds from Go's zero time (0001-01-01 UTC, a Monday) to the Unix
/// epoch: `Time.Truncate` counts multiples from there, so InfluxDB's weekly
/// shard groups start on Mondays.
const GO_ZERO_TO_EPOCH_NS: i128 = 62_135_596_800 * 1_000_000_000;

/// How far `t` lies past the last multiple of `d` counted from Go's zero time.
fn past_boundary(t: i64, d: i64) -> i64 {
    let r = (i128::from(t) + GO_ZERO_TO_EPOCH_NS).rem_euclid(i128::from(d));
    // Less than `d`, so it fits.
    i64::try_from(r).unwrap_or(0)
}

/// Floor-truncates `t` to a multiple of `d` as Go's `Time.Truncate` does
/// (multiples counted from Go's zero time, which for durations dividing a
/// day are the epoch's). Near `i64::MIN` the multiple is not representable;
/// the group then starts at `i64::MIN`, which still contains `t`.
pub fn truncate_time(t: i64, d: i64) -> i64 {
    if d <= 0 {
        return t;
    }
    t.checked_sub(past_boundary(t, d)).unwrap_or(i64::MIN)
}

/// `[start, end)` of the shard group of duration `d` holding `t`: aligned to `d`,
/// clamped to the i64 range at both ends. The end is computed from `t`, so a group
/// clamped at `i64::MIN` still ends on the aligned boundary and never overlaps the
/// next one.
pub fn group_bounds(t: i64, d: i64) -> (i64, i64) {
    if d <= 0 {
        return (t, t.saturating_add(1));
    }
    let past = past_boundary(t, d);
    (
        t.checked_sub(past).unwrap_or(i64::MIN),
        t.saturating_add(d - past),
    )
}

/// A retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicyInfo {
    /// Name.
    pub name: String,
    /// How long data is kept (ns); 0 = forever (INF).
    pub duration: i64,
    /// Time span of each shard group (ns).
    pub shard_group_duration: i64,
    /// Copies of each shard.
    pub replication_factor: u32,
}

impl RetentionPolicyInfo {
    /// The `autogen` policy: INF, 7-day shard groups, replication 1.
    pub fn autogen() -> Self {
        RetentionPolicyInfo {
            name: AUTOGEN.to_string(),
            duration: 0,
            shard_group_duration: shard_group_duration_for(0),
            replication_factor: 1,
        }
    }

    /// The oldest time this policy still keeps at `now` (`i64::MIN` for INF).
    pub fn min_time(&self, now: i64) -> i64 {
        if self.duration <= 0 {
            i64::MIN
        } else {
            now.saturating_sub(self.duration)
        }
    }
}

/// What a caller asks for when creating a retention policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicySpec {
    /// Name.
    pub name: String,
    /// Duration (ns), 0 = INF; finite ones must be ≥ 1h.
    pub duration: i64,
    /// Shard group duration (ns), 0 = derive from the duration.
    pub shard_group_duration: i64,
    /// Replication factor (≥ 1).
    pub replication_factor: u32,
}

impl RetentionPolicySpec {
    /// A spec with the given name and duration, derived shard duration, replication 1.
    pub fn new(name: impl Into<String>, duration: i64) -> Self {
        RetentionPolicySpec {
            name: name.into(),
            duration,
            shard_group_duration: 0,
            replication_factor: 1,
        }
    }

    /// Validates and normalises into a policy (InfluxDB's checks and texts).
    pub fn validate(&self) -> Result<RetentionPolicyInfo> {
        if self.name.is_empty() {
            return Err(Error::RetentionPolicyNameRequired);
        }
        if !valid_name(&self.name) {
            return Err(Error::InvalidName);
        }
        validate_policy_values(
            &self.name,
            self.duration,
            self.shard_group_duration,
            self.replication_factor,
        )
    }
}

pub(crate) fn validate_policy_values(
    name: &str,
    duration: i64,
    sgd: i64,
    rf: u32,
) -> Result<RetentionPolicyInfo> {
    if duration < 0 || (duration != 0 && duration < MIN_RETENTION_POLICY_DURATION) {
        return Err(Error::RetentionPolicyDurationTooLow);
    }
    if sgd < 0 {
        return Err(Error::InvalidArgument(
            "shard group duration must not be negative".into(),
        ));
    }
    if rf < 1 {
        return Err(Error::ReplicationFactorTooLow);
    }
    let sgd = normalised_shard_group_duration(sgd, duration);
    if duration != 0 && duration < sgd {
        return Err(Error::IncompatibleDurations);
    }
    Ok(RetentionPolicyInfo {
        name: name.to_string(),
        duration,
        shard_group_duration: sgd,
        replication_factor: rf,
    })
}

/// Changes to an existing retention policy (`ALTER RETENTION POLICY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicyUpdate {
    /// New duration (ns, 0 = INF).
    pub duration: Option<i64>,
    /// New shard group duration (ns, 0 = derive).
    pub shard_group_duration: Option<i64>,
    /// New replication factor.
    pub replication_factor: Option<u32>,
    /// Make it the database's default.
    pub make_default: bool,
}

/// A database with its retention policies. Stored at `db/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    /// Name.
    pub name: String,
    /// Name of the default retention policy ("" if it was dropped).
    pub default_retention_policy: String,
    /// Retention policies by name.
    pub retention_policies: BTreeMap<String, RetentionPolicyInfo>,
    /// Names of the policies in the order they were created (InfluxDB lists
    /// them so); databases stored before it was kept have none.
    #[serde(default)]
    pub policy_order: Vec<String>,
    /// Continuous queries in the order they were created (InfluxDB's
    /// `ContinuousQueries`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continuous_queries: Vec<ContinuousQueryInfo>,
}

/// A continuous query: its name and the statement as stored (normalised:
/// sources and target qualified with database and policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuousQueryInfo {
    pub name: String,
    pub query: String,
}

impl DatabaseInfo {
    /// The policies in the order they were created (those whose order is not
    /// known last, by name).
    pub fn policies_in_order(&self) -> Vec<&RetentionPolicyInfo> {
        let mut out: Vec<&RetentionPolicyInfo> = self
            .policy_order
            .iter()
            .filter_map(|n| self.retention_policies.get(n))
            .collect();
        for (n, rp) in &self.retention_policies {
            if !self.policy_order.contains(n) {
                out.push(rp);
            }
        }
        out
    }

    /// Looks up a policy; `""` means the default policy.
    pub fn policy(&self, name: &str) -> Option<&RetentionPolicyInfo> {
        let name = if name.is_empty() {
            self.default_retention_policy.as_str()
        } else {
            name
        };
        self.retention_policies.get(name)
    }
}

/// One shard: its id and the nodes holding a copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Shard id (unique in the cluster).
    pub id: ShardId,
    /// Node ids holding a copy (replication factor many, when enough nodes).
    pub owners: Vec<NodeId>,
}

/// A shard group: a time window of one retention policy, split into shards.
/// Stored at `sg/<db>/<rp>/<start>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardGroupInfo {
    /// Group id (unique in the cluster).
    pub id: ShardGroupId,
    /// Database.
    pub database: String,
    /// Retention policy.
    pub retention_policy: String,
    /// Start (inclusive, ns).
    pub start: i64,
    /// End (exclusive, ns).
    pub end: i64,
    /// Shards; a point goes to `shards[hash % shards.len()]`.
    pub shards: Vec<ShardInfo>,
}

impl ShardGroupInfo {
    /// Whether `t` falls in `[start, end)`.
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }

    /// InfluxDB's `ShardFor`: the shard for a series hash (FNV-64a of the series key).
    pub fn shard_for(&self, hash: u64) -> Option<&ShardInfo> {
        if self.shards.is_empty() {
            return None;
        }
        let idx = (hash % self.shards.len() as u64) as usize;
        self.shards.get(idx)
    }

    /// All shard ids of the group.
    pub fn shard_ids(&self) -> Vec<ShardId> {
        self.shards.iter().map(|s| s.id).collect()
    }
}

/// A store node. Stored at `node/<id>`; liveness at `alive/<id>` (leased).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node id.
    pub id: NodeId,
    /// gRPC address (`host:port`) of the store service.
    pub grpc_addr: String,
    /// HTTP address (`host:port`).
    pub http_addr: String,
}

/// A user's privilege on one database (InfluxDB bit values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
pub enum Privilege {
    /// No privilege.
    None,
    /// READ.
    Read,
    /// WRITE.
    Write,
    /// ALL (read + write).
    All,
}

impl Privilege {
    /// Bits: READ = 1, WRITE = 2, ALL = 3.
    pub fn bits(self) -> u8 {
        match self {
            Privilege::None => 0,
            Privilege::Read => 1,
            Privilege::Write => 2,
            Privilege::All => 3,
        }
    }

    /// From bits (masked to 0..=3).
    pub fn from_bits(b: u8) -> Self {
        match b & 3 {
            1 => Privilege::Read,
            2 => Privilege::Write,
            3 => Privilege::All,
            _ => Privilege::None,
        }
    }

    /// Whether this privilege allows reading.
    pub fn can_read(self) -> bool {
        self.bits() & 1 != 0
    }

    /// Whether this privilege allows writing.
    pub fn can_write(self) -> bool {
        self.bits() & 2 != 0
    }

    /// InfluxQL name (`READ`, `WRITE`, `ALL PRIVILEGES`, `NO PRIVILEGES`).
    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::None => "NO PRIVILEGES",
            Privilege::Read => "READ",
            Privilege::Write => "WRITE",
            Privilege::All => "ALL PRIVILEGES",
        }
    }
}

/// A user. Stored at `user/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Argon2id PHC string.
    pub hash: String,
    /// Cluster admin.
    pub admin: bool,
    /// Per-database privileges.
    pub privileges: BTreeMap<String, Privilege>,
}

impl UserInfo {
    /// The user's privilege on `db` (admins have ALL everywhere).
    pub fn privilege(&self, db: &str) -> Privilege {
        if self.admin {
            return Privilege::All;
        }
        self.privileges.get(db).copied().unwrap_or(Privilege::None)
    }

    /// Checks a password against the stored hash.
    pub fn verify_password(&self, password: &str) -> bool {
        crate::auth::verify_password(&self.hash, password)
    }
}

/// A shard group that was deleted by retention, so stores can drop its shards.
pub type DeletedShardGroup = ShardGroupInfo;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(HOUR), "1h0m0s");
        assert_eq!(format_duration(7 * DAY), "168h0m0s");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90 * SECOND), "1m30s");
        assert_eq!(shard_group_duration_for(0), 7 * DAY);
        assert_eq!(shard_group_duration_for(HOUR), HOUR);
        assert_eq!(shard_group_duration_for(2 * DAY), DAY);
        assert_eq!(shard_group_duration_for(179 * DAY), DAY);
        assert_eq!(shard_group_duration_for(180 * DAY), 7 * DAY);
        assert_eq!(truncate_time(-1, HOUR), -HOUR);
        assert_eq!(truncate_time(HOUR + 5, HOUR), HOUR);
        // The earliest line-protocol time (i64::MIN + 2) with 7-day groups.
        assert_eq!(truncate_time(i64::MIN + 2, 7 * DAY), i64::MIN);
        // Weekly groups start on Mondays, as InfluxDB's (Go's zero time).
        assert_eq!(
            past_boundary(truncate_time(i64::MAX - 1, 7 * DAY), 7 * DAY),
            0
        );
        let sunday_2026_11_01 = 1_793_491_200 * 1_000_000_000;
        let monday_2026_10_26 = sunday_2026_11_01 - 6 * DAY;
        assert_eq!(
            group_bounds(sunday_2026_11_01, 7 * DAY),
            (monday_2026_10_26, monday_2026_10_26 + 7 * DAY)
        );
        assert_eq!(truncate_time(sunday_2026_11_01 + 5, DAY), sunday_2026_11_01);
        assert_eq!(group_bounds(HOUR + 5, HOUR), (HOUR, 2 * HOUR));
        assert_eq!(group_bounds(-1, HOUR), (-HOUR, 0));
        let (s0, e0) = group_bounds(i64::MIN + 2, 7 * DAY);
        assert_eq!(s0, i64::MIN);
        // The clamped group ends where the next aligned group starts.
        assert_eq!(group_bounds(e0, 7 * DAY).0, e0);
        assert_eq!(past_boundary(e0, 7 * DAY), 0);
        assert_eq!(group_bounds(i64::MAX - 1, 7 * DAY).1, i64::MAX);
    }

    #[test]
    fn names() {
        assert!(valid_name("telegraf"));
        assert!(valid_name("my db"));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a\nb"));
    }

    #[test]
    fn policy_validation() {
        let mut s = RetentionPolicySpec::new("rp", 30 * 60 * SECOND);
        assert_eq!(s.validate(), Err(Error::RetentionPolicyDurationTooLow));
        s.duration = 0;
        assert_eq!(s.validate().map(|p| p.shard_group_duration), Ok(7 * DAY));
        s.duration = 3 * HOUR;
        s.shard_group_duration = DAY;
        assert_eq!(s.validate(), Err(Error::IncompatibleDurations));
        s.shard_group_duration = 60 * SECOND;
        assert_eq!(s.validate().map(|p| p.shard_group_duration), Ok(HOUR));
        s.replication_factor = 0;
        assert_eq!(s.validate(), Err(Error::ReplicationFactorTooLow));
    }
}

/// A delete an owner of a shard has yet to apply (see `proto/meta.proto`'s
/// `PendingDelete`). Stored at `pdel/<node>/<shard>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDelete {
    pub id: u64,
    pub node: NodeId,
    pub shard: ShardId,
    pub database: String,
    /// When it was issued (ms since the epoch, the issuing gateway's clock).
    pub issued_ms: i64,
    /// The store's encoded `DeleteSeriesRequest`, base64 (meta does not read it).
    pub request: String,
}
