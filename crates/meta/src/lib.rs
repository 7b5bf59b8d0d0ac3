//! Sundial cluster metadata: databases, retention policies, shard groups, nodes and
//! users — stored in etcd (cluster) or in an embedded durable store (all-in-one
//! `sundial`), behind one etcd-shaped seam.
//!
//! # Layers
//!
//! ```text
//!  gateway / store ──▶ MetaClient (snapshot cache + watch, bounded calls)
//!                        │ MetaTransport
//!                        ├─ local:  MetaStore ──▶ KvBackend (EmbeddedBackend | EtcdBackend)
//!                        └─ remote: RemoteTransport ──gRPC──▶ sundial-meta (MetaServer)
//!                                                              └─ MetaStore ──▶ EtcdBackend
//! ```
//!
//! * [`KvBackend`] — get / put / delete / range by prefix / transaction with compares
//!   on value, version, create or mod revision / watch by prefix / leases. Two
//!   implementations, [`EtcdBackend`] and [`EmbeddedBackend`], pass one conformance
//!   suite (`testing::conformance`, behind the `test-util` feature).
//! * [`MetaStore`] — every operation as compare-and-swap transactions; stateless, so
//!   any number of processes may run it against one etcd. Mutations travel as one
//!   command type ([`command`]: the protobuf `oneof` `Command`, applied by
//!   [`MetaStore::apply`]); the local and remote transports and the gRPC service
//!   pass commands through without knowing them.
//! * [`MetaClient`] — what the gateway and the stores use (see below).
//! * [`server::MetaServer`] — the gRPC `MetaService` (`proto/meta.proto`) over etcd,
//!   served by the `sundial-meta` binary (crate `sundial-meta-server`); keeps no
//!   state of its own.
//! * [`election`] and [`services`] — retention enforcement and shard precreation,
//!   run by the one `sundial-meta` instance that holds `leader/services` (an etcd
//!   lease), or by the all-in-one `sundial` itself.
//!
//! # Key layout
//!
//! Keys are relative to the meta prefix: etcd keys are stored under the backend's
//! namespace (`--prefix`, default `/sundial/`, so e.g. `/sundial/db/telegraf`); the
//! embedded backend stores them as they are. Values are JSON.
//!
//! | key                        | value |
//! |----------------------------|-------|
//! | `db/<name>`                | [`DatabaseInfo`]: name, default policy, retention policies by name (duration, shard group duration, replication factor) |
//! | `sg/<db>/<rp>/<start-ns>`  | [`ShardGroupInfo`]: id, db, rp, `[start, end)` in ns, shards with their owner node ids |
//! | `node/<id>`                | [`NodeInfo`]: id, gRPC address, HTTP address |
//! | `alive/<id>`               | `{}` attached to the node's liveness lease; the key vanishes when the node stops heartbeating |
//! | `user/<name>`              | [`UserInfo`]: name, argon2id PHC hash, admin flag, privileges by database |
//! | `ids/shard`                | next shard-group/shard id (decimal; a group takes `id`, its shards `id+1..`) |
//! | `ids/node`                 | next node id (decimal) |
//! | `leader/services`          | id of the `sundial-meta` instance running retention and precreation, attached to its lease |
//!
//! Names are validated like InfluxDB's `ValidName` (no `/`), so keys parse
//! unambiguously. Retention policies live inside their database record: every policy
//! change is a compare-and-swap on `db/<name>`'s mod revision.
//!
//! Shard group creation is one transaction: compare `sg/<db>/<rp>/<start>` absent,
//! `ids/shard` and `db/<db>` unchanged since read → put the group and the advanced
//! counter; otherwise read the group that won. Concurrent creators on any number of
//! gateways get exactly one group. Groups: `start = truncate(t, shard group duration)`,
//! shards = live nodes / replication factor (≥ 1), each with `min(rf, live)` owners,
//! assigned round-robin from `group id % live` (InfluxDB's layout).
//!
//! # Embedded backend file format
//!
//! Directory with `wal`, `snapshot` and `LOCK` (exclusive `flock` while open: one
//! process, one handle). `wal` = magic `SDLWAL01`, then frames
//! `[len u32 LE][crc32c u32 LE][JSON record]`, one per mutation, each `fsync`ed before
//! the change is acknowledged or visible; a record holds a sequence number, the
//! revision after it, and primitive ops (put key/value/lease, delete key, grant lease,
//! revoke lease). Every 10 000 records the state is written to `snapshot` (magic
//! `SDLSNAP1` + one frame) via tmp file + fsync + rename + dir fsync, then the log is
//! replaced by an empty one the same way. Recovery = snapshot + log records with a
//! higher sequence number; a torn/corrupt tail is truncated with a warning (it was
//! never acknowledged). Revisions stay monotonic across restarts; leases restart their
//! TTL on open (like etcd). See [`kv::embedded`].
//!
//! # Client caching and recovery
//!
//! [`MetaClient`] loads the full snapshot ([`MetaSnapshot`]: all databases, policies,
//! shard groups, nodes, liveness, users) at connect and keeps it fresh with a watch
//! from `snapshot revision + 1` (etcd watch, embedded broadcast, or the `Watch`
//! server-stream of `sundial-meta`, which pushes each change — key, JSON value or
//! delete, revision). All reads — `shard_group_for` on the write path,
//! `authenticate`, policies, nodes — are served from memory; `shard_group_for` goes to
//! the network only when the group is not cached (first point of a new window, or a
//! database/policy the cache does not know, so the answer is authoritative).
//!
//! Every network call is bounded by `request_timeout` (3 s): with meta or etcd down,
//! cached reads keep answering and mutations fail fast with
//! `meta service unavailable: ...` (HTTP 503 / gRPC UNAVAILABLE). A background task
//! re-establishes the watch from the last seen revision with capped exponential
//! backoff (100 ms → 2 s), reloading the whole snapshot when that revision was
//! compacted; no restart is needed. Events at or below the cache's revision are
//! skipped, and a reloaded snapshot never replaces a newer cache. After a successful
//! mutation the client waits (bounded) until its cache holds the mutation's revision,
//! reloading the snapshot if the watch is down (read-your-writes). Every mutation is a
//! single transaction, so a failed or timed-out call leaves either nothing or the whole
//! change behind. The remote client accepts several comma-separated `sundial-meta`
//! endpoints and balances over those that are up (the service is stateless).
//!
//! Liveness: a store calls [`MetaClient::start_heartbeat`]; each heartbeat keeps the
//! node's etcd lease alive or, when it expired, grants a new one and re-puts
//! `alive/<id>`. A store that stops heartbeating drops out of
//! [`MetaClient::live_nodes`] when its lease expires, without anyone deleting it.
//!
//! # Test helpers
//!
//! With the `test-util` feature, `sundial_meta::testing` offers `EtcdProcess` (real
//! etcd on free loopback ports, fresh temp data dir, ready-wait, `kill`/`restart` on
//! the same ports and data, killed on drop), `MetaProcess` (the `sundial-meta` binary
//! on port 0), `unique_prefix()` and the KV conformance suite. Other crates:
//! `[dev-dependencies] sundial-meta = { workspace = true, features = ["test-util"] }`.
//!
//! # Errors
//!
//! One enum, [`Error`], with InfluxDB 1.x texts; [`Error::class`] is the one place
//! mapping to HTTP status ([`Error::http_status`]) and gRPC code
//! ([`Error::grpc_code`]).

pub mod auth;
pub mod client;
pub mod command;
pub mod election;
pub mod error;
pub mod keys;
pub mod kv;
pub mod model;
pub mod remote;
pub mod server;
pub mod services;
pub mod snapshot;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;

pub use client::{
    now_ns, ClientOptions, HeartbeatHandle, MetaClient, MetaTransport, RawEvent, RawWatchStream,
};
pub use election::{Election, ElectionOptions, Leadership};
pub use error::{Error, ErrorClass, Result};
pub use kv::embedded::{EmbeddedBackend, EmbeddedOptions};
pub use kv::etcd::EtcdBackend;
pub use kv::KvBackend;
pub use model::*;
pub use remote::RemoteTransport;
pub use server::MetaServer;
pub use services::{Housekeeping, PrecreationConfig, RetentionConfig, ServiceOptions};
pub use snapshot::MetaSnapshot;
pub use store::MetaStore;
