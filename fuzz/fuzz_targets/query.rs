//! The query engine on arbitrary text: every SELECT that parses is planned and
//! run over a small fixed data set (an in-memory shard reader, a real embedded
//! meta) — planning, windows, fill, transformations and rendering must never
//! panic, whatever the statement asks.
#![no_main]

use std::sync::OnceLock;

use async_trait::async_trait;
use libfuzzer_sys::fuzz_target;
use sundial_influxql::Statement;
use sundial_meta::{ClientOptions, MetaClient, ShardInfo};
use sundial_query::{
    Column, Context, FieldType, ReadRequest, Result, Schema, SeriesRead, ShardReader, Values,
};

const T0: i64 = 1_700_000_000_000_000_000;

#[derive(Debug)]
struct Fixed;

fn series() -> Vec<SeriesRead> {
    (0..3)
        .map(|h| {
            let times: Vec<i64> = (0..50).map(|i| T0 + i * 7_000_000_000 + h).collect();
            SeriesRead {
                tags: vec![("host".into(), format!("h{h}"))],
                fields: vec![
                    (
                        "f".into(),
                        Column {
                            times: times.clone(),
                            values: Values::Float(times.iter().map(|t| (t % 97) as f64 - 40.0).collect()),
                        },
                    ),
                    (
                        "i".into(),
                        Column {
                            times: times.clone(),
                            values: Values::Integer(times.iter().map(|t| t % 13 - 6).collect()),
                        },
                    ),
                    (
                        "s".into(),
                        Column {
                            times: times.clone(),
                            values: Values::String(times.iter().map(|t| format!("v{}", t % 5)).collect()),
                        },
                    ),
                    (
                        "b".into(),
                        Column {
                            times: times.clone(),
                            values: Values::Boolean(times.iter().map(|t| t % 2 == 0).collect()),
                        },
                    ),
                ],
            }
        })
        .collect()
}

#[async_trait]
impl ShardReader for Fixed {
    async fn measurements(&self, _: &str, _: &[ShardInfo]) -> Result<Vec<String>> {
        Ok(vec!["m".into(), "n".into()])
    }

    async fn schema(&self, _: &str, _: &[ShardInfo], _: &str) -> Result<Schema> {
        Ok(Schema {
            fields: vec![
                ("b".into(), FieldType::Boolean),
                ("f".into(), FieldType::Float),
                ("i".into(), FieldType::Integer),
                ("s".into(), FieldType::String),
            ],
            tags: vec!["host".into()],
        })
    }

    async fn read(&self, _: &str, _: &ShardInfo, req: &ReadRequest) -> Result<Vec<SeriesRead>> {
        Ok(series()
            .into_iter()
            .map(|mut s| {
                s.fields.retain(|(n, _)| req.fields.contains(n));
                for (_, c) in &mut s.fields {
                    let keep: Vec<usize> = (0..c.times.len())
                        .filter(|&k| c.times[k] >= req.min && c.times[k] <= req.max)
                        .collect();
                    c.times = keep.iter().map(|&k| c.times[k]).collect();
                    c.values = match &c.values {
                        Values::Float(v) => Values::Float(keep.iter().map(|&k| v[k]).collect()),
                        Values::Integer(v) => Values::Integer(keep.iter().map(|&k| v[k]).collect()),
                        Values::String(v) => Values::String(keep.iter().map(|&k| v[k].clone()).collect()),
                        Values::Boolean(v) => Values::Boolean(keep.iter().map(|&k| v[k]).collect()),
                        Values::Unsigned(v) => Values::Unsigned(keep.iter().map(|&k| v[k]).collect()),
                    };
                }
                s
            })
            .collect())
    }
}

struct Env {
    rt: tokio::runtime::Runtime,
    meta: MetaClient,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let meta = rt.block_on(async {
            let meta = MetaClient::embedded(dir.path(), ClientOptions::default()).await.unwrap();
            let node = meta.register_node(Some(1), "in-process", "in-process").await.unwrap();
            meta.heartbeat(node.id, std::time::Duration::from_secs(3600)).await.unwrap();
            meta.create_database("db").await.unwrap();
            meta.create_shard_group("db", "autogen", T0).await.unwrap();
            meta
        });
        Env { rt, meta, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let Ok(stmts) = sundial_influxql::parse_query(q) else { return };
    let env = env();
    for s in stmts {
        let Statement::Select(sel) = s else { continue };
        let cx = Context {
            meta: &env.meta,
            reader: &Fixed,
            database: "db",
            retention_policy: "",
            now: T0 + 3_600_000_000_000,
            memory_limit: 64 << 20,
        };
        let _ = env.rt.block_on(sundial_query::select(&sel, &cx));
    }
});
