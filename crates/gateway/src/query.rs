//! Executes InfluxQL statements against the meta client and renders InfluxDB's
//! JSON results: `{"results":[{"statement_id":0,"series":[…]}]}`.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use sundial_influxql::{Privilege as QlPrivilege, Statement};
use sundial_meta::{
    format_duration, DatabaseInfo, MetaClient, Privilege, RetentionPolicyInfo, RetentionPolicySpec,
    RetentionPolicyUpdate, ShardGroupInfo, UserInfo,
};

/// The user a statement runs as; `None` when authentication is off.
pub type Caller<'a> = Option<&'a UserInfo>;

fn privilege(p: QlPrivilege) -> Privilege {
    match p {
        QlPrivilege::Read => Privilege::Read,
        QlPrivilege::Write => Privilege::Write,
        QlPrivilege::All => Privilege::All,
    }
}

fn privilege_text(p: Privilege) -> &'static str {
    match p {
        Privilege::Read => "READ",
        Privilege::Write => "WRITE",
        Privilege::All => "ALL PRIVILEGES",
        _ => "NO PRIVILEGES",
    }
}

fn series(name: &str, columns: &[&str], values: Vec<Value>) -> Value {
    json!([series_object(name, columns, values)])
}

/// One series as InfluxDB writes it: no `values` key when it has none.
pub(crate) fn series_object(name: &str, columns: &[&str], values: Vec<Value>) -> Value {
    let mut s = json!({ "name": name, "columns": columns });
    if !values.is_empty() {
        s["values"] = Value::Array(values);
    }
    s
}

/// A database's shard groups with their policies.
type Groups = Vec<(RetentionPolicyInfo, ShardGroupInfo)>;

/// Every database's shard groups, as SHOW SHARDS lists them: by retention
/// policy (in the order they were created), then by start time.
fn shard_groups(meta: &MetaClient) -> Vec<(DatabaseInfo, Groups)> {
    meta.databases()
        .into_iter()
        .map(|d| {
            let mut groups = Vec::new();
            for rp in d.policies_in_order() {
                let mut gs = meta.shard_groups(&d.name, &rp.name);
                gs.sort_by_key(|g| (g.start, g.id));
                groups.extend(gs.into_iter().map(|g| (rp.clone(), g)));
            }
            (d, groups)
        })
        .collect()
}

/// When a group's data expires: its end plus the policy's duration (for an
/// infinite policy the end, as InfluxDB shows it).
fn expiry(end: i64, duration: i64) -> i64 {
    end.saturating_add(duration.max(0))
}

/// A privilege a statement needs on a database.
#[derive(Clone, Copy)]
enum Need<'a> {
    Read(&'a str),
    Write(&'a str),
}

/// Checks that `caller` may run `stmt` (InfluxDB's rules: DDL and user
/// management need admin; SHOW RETENTION POLICIES needs read on the database).
pub fn authorize(stmt: &Statement, caller: Caller<'_>, db: &str) -> Result<()> {
    let Some(user) = caller else { return Ok(()) };
    if user.admin {
        return Ok(());
    }
    let Some(needs) = needs(stmt, user, db) else {
        return Err(Error::Forbidden(format!(
            "error authorizing query: {} not authorized to execute statement, requires admin privilege",
            user.name
        )));
    };
    let missing = needs.into_iter().find(|n| match *n {
        Need::Read(d) => !user.privilege(d).can_read(),
        Need::Write(d) => !user.privilege(d).can_write(),
    });
    let Some(need) = missing else { return Ok(()) };
    let (what, d) = match need {
        Need::Read(d) => ("READ", d),
        Need::Write(d) => ("WRITE", d),
    };
    // 1.6 names SHOW RETENTION POLICIES with the database it read.
    let text = match stmt {
        Statement::ShowRetentionPolicies { .. } => format!("SHOW RETENTION POLICIES ON {d}"),
        _ => stmt.to_string(),
    };
    Err(Error::Forbidden(format!(
        "error authorizing query: {} not authorized to execute statement '{text}', requires {what} on {d}",
        user.name
    )))
}

/// What a non-admin `user` needs to run `stmt` with the request's `db`, in
/// the order 1.6 checks it (its `RequiredPrivileges`); `None`: admin only.
fn needs<'a>(stmt: &'a Statement, user: &UserInfo, db: &'a str) -> Option<Vec<Need<'a>>> {
    use sundial_influxql::select::{self as ql, Source};
    Some(match stmt {
        Statement::ShowDatabases | Statement::Unsupported { .. } => vec![],
        // 1.6 asks READ on the request's database, else admin.
        Statement::ShowQueries if user.privilege(db).can_read() => vec![],
        Statement::SetPassword { name, .. } if name == &user.name => vec![],
        Statement::ShowRetentionPolicies { database } => {
            vec![Need::Read(database.as_deref().unwrap_or(db))]
        }
        // 1.6 asks READ on the statement's database for these; FIELD KEYS
        // and the cardinalities read the databases their FROM names too.
        Statement::ShowMeasurements(ql::ShowMeasurements { database, .. })
        | Statement::ShowTagKeys(ql::ShowTagKeys { database, .. })
        | Statement::ShowTagValues(ql::ShowTagValues { database, .. })
        | Statement::ShowFieldKeys(ql::ShowFieldKeys { database, .. })
        | Statement::ShowSeries(ql::ShowSeries { database, .. })
        | Statement::ShowCardinality(ql::ShowCardinality { database, .. }) => {
            let sources: &[ql::Measurement] = match stmt {
                Statement::ShowFieldKeys(s) => &s.sources,
                Statement::ShowCardinality(s) => &s.sources,
                _ => &[],
            };
            let mut needs = vec![Need::Read(database.as_deref().unwrap_or(db))];
            needs.extend(
                sources
                    .iter()
                    .filter(|m| !m.database.is_empty())
                    .map(|m| Need::Read(m.database.as_str())),
            );
            needs
        }
        // 1.6: READ on the CQ's database, and WRITE on a target database
        // named in it; DROP: WRITE; SHOW: READ on the request's database.
        Statement::CreateContinuousQuery(cq) => {
            let mut needs = vec![Need::Read(cq.database.as_str())];
            if let Some(t) = cq.select.target.as_ref().filter(|t| !t.database.is_empty()) {
                needs.push(Need::Write(t.database.as_str()));
            }
            needs
        }
        Statement::DropContinuousQuery { database, .. } => vec![Need::Write(database)],
        Statement::ShowContinuousQueries => vec![Need::Read(db)],
        // 1.6 asks WRITE on the request's database (DROP MEASUREMENT: admin).
        Statement::DropSeries(_) | Statement::Delete(_) => vec![Need::Write(db)],
        // READ on every source's database; INTO writes: WRITE on its
        // database (1.6's RequiredPrivileges).
        Statement::Select(sel) => {
            let mut needs: Vec<Need<'a>> = sel
                .sources
                .iter()
                .filter_map(|s| match s {
                    Source::Measurement(m) if !m.database.is_empty() => {
                        Some(Need::Read(m.database.as_str()))
                    }
                    _ => None,
                })
                .collect();
            if needs.len() < sel.sources.len() {
                needs.push(Need::Read(db));
            }
            if let Some(t) = &sel.target {
                needs.push(Need::Write(if t.database.is_empty() {
                    db
                } else {
                    &t.database
                }));
            }
            needs
        }
        _ => return None,
    })
}

/// Runs one statement. `db` is the request's `db` parameter.
pub async fn execute(
    meta: &MetaClient,
    stmt: &Statement,
    caller: Caller<'_>,
    db: &str,
) -> Result<Value> {
    Ok(match stmt {
        Statement::CreateDatabase { name, rp } => {
            match rp {
                None => meta.create_database(name).await?,
                Some(spec) => {
                    let duration = spec.duration.unwrap_or(0);
                    let mut s = RetentionPolicySpec::new(
                        spec.name.clone().unwrap_or_else(|| "autogen".into()),
                        duration,
                    );
                    if let Some(r) = spec.replication {
                        s.replication_factor = r;
                    }
                    if let Some(sd) = spec.shard_duration {
                        s.shard_group_duration = sd;
                    }
                    meta.create_database_with_policy(name, s).await?
                }
            }
            Value::Null
        }
        Statement::DropDatabase { name } => {
            meta.drop_database(name).await?;
            Value::Null
        }
        Statement::ShowDatabases => {
            let values = meta
                .databases()
                .into_iter()
                .filter(|d| caller.is_none_or(|u| u.admin || u.privilege(&d.name).can_read()))
                .map(|d| json!([d.name]))
                .collect();
            series("databases", &["name"], values)
        }
        Statement::CreateRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        } => {
            let mut s = RetentionPolicySpec::new(name.clone(), *duration);
            s.replication_factor = *replication;
            if let Some(sd) = shard_duration {
                s.shard_group_duration = *sd;
            }
            meta.create_retention_policy(database, s, *default).await?;
            Value::Null
        }
        Statement::AlterRetentionPolicy {
            name,
            database,
            duration,
            replication,
            shard_duration,
            default,
        } => {
            let update = RetentionPolicyUpdate {
                duration: *duration,
                shard_group_duration: *shard_duration,
                replication_factor: *replication,
                make_default: *default,
            };
            meta.alter_retention_policy(database, name, update).await?;
            Value::Null
        }
        Statement::DropRetentionPolicy { name, database } => {
            meta.drop_retention_policy(database, name).await?;
            Value::Null
        }
        Statement::ShowRetentionPolicies { database } => {
            let name = database.as_deref().unwrap_or(db);
            if name.is_empty() {
                return Err(Error::BadRequest("database name required".into()));
            }
            let d = meta
                .database(name)
                .ok_or_else(|| Error::BadRequest(format!("database not found: {name}")))?;
            let values = d
                .policies_in_order()
                .into_iter()
                .map(|rp| {
                    json!([
                        rp.name,
                        format_duration(rp.duration),
                        format_duration(rp.shard_group_duration),
                        rp.replication_factor,
                        rp.name == d.default_retention_policy
                    ])
                })
                .collect();
            series(
                "",
                &[
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                ],
                values,
            )
        }
        Statement::CreateUser {
            name,
            password,
            admin,
        } => {
            meta.create_user(name, password, *admin).await?;
            Value::Null
        }
        Statement::DropUser { name } => {
            meta.drop_user(name).await?;
            Value::Null
        }
        Statement::SetPassword { name, password } => {
            meta.set_password(name, password).await?;
            Value::Null
        }
        Statement::Grant {
            privilege: p,
            database,
            user,
        } => {
            match database {
                Some(d) => meta.grant_privilege(user, d, privilege(*p)).await?,
                None => meta.set_admin(user, true).await?,
            }
            Value::Null
        }
        Statement::Revoke {
            privilege: p,
            database,
            user,
        } => {
            match database {
                Some(d) => meta.revoke_privilege(user, d, privilege(*p)).await?,
                None => meta.set_admin(user, false).await?,
            }
            Value::Null
        }
        Statement::ShowUsers => {
            let values = meta
                .users()
                .into_iter()
                .map(|u| json!([u.name, u.admin]))
                .collect();
            series("", &["user", "admin"], values)
        }
        Statement::ShowGrants { user } => {
            let u = meta
                .user(user)
                .ok_or_else(|| Error::BadRequest("user not found".into()))?;
            let values = u
                .privileges
                .iter()
                .map(|(d, p)| json!([d, privilege_text(*p)]))
                .collect();
            series("", &["database", "privilege"], values)
        }
        Statement::ShowShards => {
            let mut out = Vec::new();
            for (d, groups) in shard_groups(meta) {
                let mut values = Vec::new();
                for (rp, g) in &groups {
                    for sh in &g.shards {
                        let owners: Vec<String> = sh.owners.iter().map(|o| o.to_string()).collect();
                        values.push(json!([
                            sh.id,
                            d.name,
                            g.retention_policy,
                            g.id,
                            crate::render::rfc3339_seconds(g.start),
                            crate::render::rfc3339_seconds(g.end),
                            crate::render::rfc3339_seconds(expiry(g.end, rp.duration)),
                            owners.join(",")
                        ]));
                    }
                }
                let columns = [
                    "id",
                    "database",
                    "retention_policy",
                    "shard_group",
                    "start_time",
                    "end_time",
                    "expiry_time",
                    "owners",
                ];
                if let Value::Array(s) = series(&d.name, &columns, values) {
                    out.extend(s);
                }
            }
            Value::Array(out)
        }
        Statement::ShowShardGroups => {
            let mut values = Vec::new();
            for (d, groups) in shard_groups(meta) {
                for (rp, g) in &groups {
                    values.push(json!([
                        g.id,
                        d.name,
                        g.retention_policy,
                        crate::render::rfc3339_seconds(g.start),
                        crate::render::rfc3339_seconds(g.end),
                        crate::render::rfc3339_seconds(expiry(g.end, rp.duration))
                    ]));
                }
            }
            let columns = [
                "id",
                "database",
                "retention_policy",
                "start_time",
                "end_time",
                "expiry_time",
            ];
            series("shard groups", &columns, values)
        }
        Statement::Select(_) => {
            return Err(Error::Internal(
                "SELECT runs through the query engine".into(),
            ))
        }
        Statement::Unsupported { kind, .. } => {
            return Err(Error::BadRequest(format!("{kind} is not supported yet")))
        }
        // Parsed, not executed yet (issue 16: SHOW/DROP/DELETE, continuous
        // queries, query management).
        other => {
            let text = other.to_string();
            let kind: Vec<&str> = text.split_whitespace().take(2).collect();
            return Err(Error::BadRequest(format!(
                "{} is not supported yet",
                kind.join(" ")
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement's denial as 1.6 words it: the first missing privilege,
    /// in 1.6's order, or admin.
    #[test]
    fn denials_name_the_first_missing_privilege() {
        let user = UserInfo {
            name: "u".into(),
            hash: String::new(),
            admin: false,
            privileges: [
                ("r".to_string(), Privilege::Read),
                ("w".to_string(), Privilege::Write),
            ]
            .into(),
        };
        let check = |q: &str, db: &str| {
            let stmt = sundial_influxql::parse_query(q).unwrap().remove(0);
            match authorize(&stmt, Some(&user), db) {
                Ok(()) => "ok".to_string(),
                Err(e) => e.to_string(),
            }
        };
        let denied = |text: &str, what: &str, db: &str| {
            format!("error authorizing query: u not authorized to execute statement '{text}', requires {what} on {db}")
        };
        assert_eq!(check("SHOW RETENTION POLICIES", "r"), "ok");
        assert_eq!(
            check("SHOW RETENTION POLICIES", "w"),
            denied("SHOW RETENTION POLICIES ON w", "READ", "w")
        );
        assert_eq!(check("SHOW FIELD KEYS ON r FROM r..m", "x"), "ok");
        assert_eq!(
            check("SHOW FIELD KEYS ON r FROM w..m", "x"),
            denied("SHOW FIELD KEYS ON r FROM w..m", "READ", "w")
        );
        assert_eq!(check("SELECT v INTO w..m2 FROM r..m", "x"), "ok");
        assert_eq!(
            check("SELECT v INTO r..m2 FROM r..m", "x"),
            denied("SELECT v INTO r..m2 FROM r..m", "WRITE", "r")
        );
        assert_eq!(
            check("SELECT v INTO r..m2 FROM m", "w"),
            denied("SELECT v INTO r..m2 FROM m", "READ", "w")
        );
        let cq = "CREATE CONTINUOUS QUERY c ON r BEGIN SELECT mean(v) INTO w..m2 FROM m GROUP BY time(1m) END";
        assert_eq!(check(cq, ""), "ok");
        let cq = "CREATE CONTINUOUS QUERY c ON r BEGIN SELECT mean(v) INTO r..m2 FROM m GROUP BY time(1m) END";
        assert_eq!(check(cq, ""), denied(cq, "WRITE", "r"));
        assert_eq!(check("DROP CONTINUOUS QUERY c ON w", ""), "ok");
        assert_eq!(
            check("DROP CONTINUOUS QUERY c ON r", ""),
            denied("DROP CONTINUOUS QUERY c ON r", "WRITE", "r")
        );
        assert_eq!(check("SHOW CONTINUOUS QUERIES", "r"), "ok");
        assert_eq!(check("DELETE FROM m", "w"), "ok");
        assert_eq!(
            check("DELETE FROM m", "r"),
            denied("DELETE FROM m", "WRITE", "r")
        );
        assert_eq!(check("SHOW QUERIES", "r"), "ok");
        let admin = "error authorizing query: u not authorized to execute statement, requires admin privilege";
        assert_eq!(check("SHOW QUERIES", "w"), admin);
        assert_eq!(check("DROP MEASUREMENT m", "w"), admin);
        assert_eq!(check("CREATE DATABASE d", "w"), admin);
    }
}
