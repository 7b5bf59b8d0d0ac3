//! The key layout in the KV store (keys relative to the meta prefix / namespace).
//!
//! | key                         | value                                   |
//! |-----------------------------|-----------------------------------------|
//! | `db/<name>`                 | [`DatabaseInfo`](crate::DatabaseInfo) JSON (with its retention policies) |
//! | `sg/<db>/<rp>/<start-ns>`   | [`ShardGroupInfo`](crate::ShardGroupInfo) JSON |
//! | `node/<id>`                 | [`NodeInfo`](crate::NodeInfo) JSON        |
//! | `alive/<id>`                | `{}`, attached to the node's liveness lease |
//! | `user/<name>`               | [`UserInfo`](crate::UserInfo) JSON        |
//! | `lease/<name>`              | holder of a named leadership (`HoldLease`), attached to its lease |
//! | `pdel/<node>/<shard>/<id>`  | [`PendingDelete`](crate::PendingDelete) JSON: a delete that owner has yet to apply |
//! | `ids/shard`                 | next shard-group/shard id (decimal)     |
//! | `ids/node`                  | next node id (decimal)                  |
//! | `leader/services`           | id of the `sundial-meta` instance running retention and precreation, attached to its lease |

/// A parsed meta key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `db/<name>`
    Database(String),
    /// `sg/<db>/<rp>/<start>`
    ShardGroup {
        /// Database.
        db: String,
        /// Retention policy.
        rp: String,
        /// Start (ns).
        start: i64,
    },
    /// `node/<id>`
    Node(u64),
    /// `alive/<id>`
    Alive(u64),
    /// `user/<name>`
    User(String),
    /// `ids/<name>`
    Counter(String),
    /// `pdel/<node>/<shard>/<id>`
    PendingDelete { node: u64, shard: u64, id: u64 },
}

/// `db/<name>`
pub fn database(name: &str) -> String {
    format!("db/{name}")
}

/// Prefix of all databases.
pub const DATABASES: &str = "db/";
/// Prefix of all shard groups.
pub const SHARD_GROUPS: &str = "sg/";
/// Prefix of all nodes.
pub const NODES: &str = "node/";
/// Prefix of all liveness keys.
pub const ALIVE: &str = "alive/";
/// Prefix of all users.
pub const USERS: &str = "user/";
/// Shard (and shard group) id counter.
pub const SHARD_ID_COUNTER: &str = "ids/shard";
/// Node id counter.
pub const NODE_ID_COUNTER: &str = "ids/node";
/// The cluster services' leader (see [`crate::election`]); the snapshot ignores it.
pub const LEADER_SERVICES: &str = "leader/services";

/// Prefix of all pending deletes.
pub const PENDING_DELETES: &str = "pdel/";

/// `pdel/<node>/` — the deletes a node has yet to apply.
pub fn pending_deletes_of(node: u64) -> String {
    format!("pdel/{node}/")
}

/// `pdel/<node>/<shard>/<id>`
pub fn pending_delete(node: u64, shard: u64, id: u64) -> String {
    format!("pdel/{node}/{shard}/{id}")
}

/// `sg/<db>/` — every shard group of a database.
pub fn shard_groups_of_db(db: &str) -> String {
    format!("sg/{db}/")
}

/// `sg/<db>/<rp>/` — every shard group of a policy.
pub fn shard_groups_of_rp(db: &str, rp: &str) -> String {
    format!("sg/{db}/{rp}/")
}

/// `sg/<db>/<rp>/<start>`
pub fn shard_group(db: &str, rp: &str, start: i64) -> String {
    format!("sg/{db}/{rp}/{start}")
}

/// `node/<id>`
pub fn node(id: u64) -> String {
    format!("node/{id}")
}

/// `alive/<id>`
pub fn alive(id: u64) -> String {
    format!("alive/{id}")
}

/// `user/<name>`
pub fn user(name: &str) -> String {
    format!("user/{name}")
}

/// Parses a key (names never contain `/`: they are validated).
pub fn parse(key: &str) -> Option<Key> {
    let (kind, rest) = key.split_once('/')?;
    match kind {
        "db" => Some(Key::Database(rest.to_string())),
        "sg" => {
            let mut it = rest.splitn(3, '/');
            let db = it.next()?.to_string();
            let rp = it.next()?.to_string();
            let start = it.next()?.parse().ok()?;
            Some(Key::ShardGroup { db, rp, start })
        }
        "node" => rest.parse().ok().map(Key::Node),
        "alive" => rest.parse().ok().map(Key::Alive),
        "user" => Some(Key::User(rest.to_string())),
        "ids" => Some(Key::Counter(rest.to_string())),
        "pdel" => {
            let mut it = rest.splitn(3, '/');
            let node = it.next()?.parse().ok()?;
            let shard = it.next()?.parse().ok()?;
            let id = it.next()?.parse().ok()?;
            Some(Key::PendingDelete { node, shard, id })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(
            parse(&shard_group("db", "rp", -5)),
            Some(Key::ShardGroup {
                db: "db".into(),
                rp: "rp".into(),
                start: -5
            })
        );
        assert_eq!(parse(&node(3)), Some(Key::Node(3)));
        assert_eq!(parse(&user("bob")), Some(Key::User("bob".into())));
        assert_eq!(
            parse(&pending_delete(2, 9, 77)),
            Some(Key::PendingDelete {
                node: 2,
                shard: 9,
                id: 77
            })
        );
        assert_eq!(parse("zzz"), None);
    }
}
