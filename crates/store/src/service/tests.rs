//! `ListSeries` end to end: a real engine behind the real service on a
//! loopback port, read by the gateway's `RemoteShardReader` (nodes from
//! an embedded meta) and by a raw client, against `list_series` in
//! process.

use super::*;
use sundial_cluster::{NodePool, RemoteOptions, RemoteShardReader};
use sundial_lineproto::{parse_lines, ParseOptions};
use sundial_meta::{ClientOptions, ShardInfo};
use sundial_proto::store::store_service_client::StoreServiceClient;
use sundial_query::{Error, SeriesKey, SeriesRequest, ShardReader, TagFilter};
use tokio_stream::StreamExt;

const SHARD: u64 = 7;
/// Series of the measurement `many`: more than one message's worth.
const MANY: usize = read_wire::LIST_CHUNK_KEYS + 2_345;

struct Node {
    store: Arc<Store>,
    reader: RemoteShardReader,
    shard: ShardInfo,
    addr: String,
    _dir: tempfile::TempDir,
}

/// A store holding shard [`SHARD`], served on loopback and registered
/// in an embedded meta as the shard's only owner.
async fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("shards"), Default::default()).unwrap());
    store.create_shard(SHARD, "db").unwrap();
    let mut lp = String::from(
        "cpu,host=a0,region=us v=1 1\n\
         cpu,host=a1,region=eu v=1 1\n\
         cpu,host=a2 v=1 1\n\
         cpu,host=b0,region=us v=1 1\n\
         cpu,host=a1\\ x,region=us v=1 1\n\
         mem,host=a0,region=us v=1 1\n\
         mem,host=b1,region=eu v=1 1\n\
         mem,region=us v=1 1\n\
         disk,host=a0,region=us v=1 1\n",
    );
    for i in 0..MANY {
        lp.push_str(&format!("many,host=h{i:05},rack=r{} v=1 1\n", i % 7));
    }
    let batch = parse_lines(lp.as_bytes(), &ParseOptions::default());
    let pts: Vec<_> = batch.iter().collect();
    store.write_to_shard(SHARD, &pts).unwrap();

    let meta = MetaClient::embedded(dir.path().join("meta"), ClientOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let me = meta.register_node(None, &addr, "").await.unwrap();
    meta.refresh().await.unwrap();
    let svc = StoreService::new(store.clone(), meta.clone(), me.id);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(sundial_proto::store::store_service_server::StoreServiceServer::new(svc))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let pool = Arc::new(NodePool::new(RemoteOptions::default()).unwrap());
    Node {
        store,
        reader: RemoteShardReader::new(meta, pool),
        shard: ShardInfo {
            id: SHARD,
            owners: vec![me.id],
        },
        addr,
        _dir: dir,
    }
}

fn listing(ms: &[&str], tags: TagFilter, max_bytes: usize) -> SeriesRequest {
    SeriesRequest {
        measurements: ms.iter().map(|m| m.to_string()).collect(),
        tags,
        max_bytes,
    }
}

fn key(m: &str, tags: &[(&str, &str)]) -> SeriesKey {
    SeriesKey {
        measurement: m.into(),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn re(k: &str, r: &str) -> TagFilter {
    TagFilter::Regex(k.into(), r.into())
}

/// The gateway's reader lists what the store lists in process: the tag
/// filter (regexes, AND/OR, a tag a series lacks) applied whole, two
/// measurements (asked in any order, one twice), a listing of several
/// messages; past `max_bytes` the statement's memory error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_series_over_grpc_matches_in_process() {
    let n = node().await;
    let host_a = re("host", "^a");
    let cases = [
        listing(&["mem", "cpu", "mem"], host_a.clone(), 0),
        listing(
            &["cpu", "mem"],
            TagFilter::And(
                Box::new(host_a.clone()),
                Box::new(TagFilter::NotEq("region".into(), "eu".into())),
            ),
            0,
        ),
        listing(
            &["cpu", "mem"],
            TagFilter::Or(
                Box::new(TagFilter::Eq("region".into(), String::new())),
                Box::new(TagFilter::NotRegex("host".into(), "[0-9]$".into())),
            ),
            0,
        ),
        listing(&["cpu", "mem", "disk"], TagFilter::All, 0),
        listing(&["many"], re("rack", "^r[13]$"), 0),
        listing(&["many", "cpu"], TagFilter::All, 1 << 30),
        listing(&["nothing"], TagFilter::All, 0),
        listing(&[], TagFilter::All, 0),
    ];
    for req in &cases {
        let want = crate::query::list_series(&n.store, SHARD, req).unwrap();
        let got = n.reader.series("db", &n.shard, req).await.unwrap();
        assert_eq!(got, want, "{req:?}");
    }

    // What the regex listing holds, spelled out.
    let got = n.reader.series("db", &n.shard, &cases[0]).await.unwrap();
    let want = vec![
        key("cpu", &[("host", "a0"), ("region", "us")]),
        key("cpu", &[("host", "a1"), ("region", "eu")]),
        key("cpu", &[("host", "a1 x"), ("region", "us")]),
        key("cpu", &[("host", "a2")]),
        key("mem", &[("host", "a0"), ("region", "us")]),
    ];
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, want);
    assert_eq!(
        n.reader
            .series("db", &n.shard, &listing(&["many"], TagFilter::All, 0))
            .await
            .unwrap()
            .len(),
        MANY
    );

    // Too small a bound: the statement's memory error, with its limit.
    let small = listing(&["cpu", "mem"], host_a, 100);
    assert_eq!(
        crate::query::list_series(&n.store, SHARD, &small),
        Err(Error::MemoryLimit { limit: 100 })
    );
    assert_eq!(
        n.reader.series("db", &n.shard, &small).await,
        Err(Error::MemoryLimit { limit: 100 })
    );
    // A bad regex is the caller's error, not a failed shard read.
    let bad = listing(&["cpu"], re("host", "("), 0);
    match n.reader.series("db", &n.shard, &bad).await {
        Err(Error::Shard { shard, message }) => {
            assert_eq!(shard, SHARD);
            assert!(message.contains("invalid regex"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// On the wire: batches of at most `LIST_CHUNK_KEYS` keys in order, no
/// message for an empty listing, NOT_FOUND for a shard the node lacks,
/// INVALID_ARGUMENT for a bad filter, RESOURCE_EXHAUSTED past max_bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_series_messages_and_errors() {
    let n = node().await;
    let c = StoreServiceClient::connect(format!("http://{}", n.addr))
        .await
        .unwrap();
    let call = |r: pb::ListSeriesRequest| {
        let mut c = c.clone();
        async move {
            let s = c.list_series(r).await?.into_inner();
            s.collect::<Result<Vec<_>, Status>>().await
        }
    };
    let all = listing(&["many"], TagFilter::All, 0);
    let msgs = call(read_wire::series_request_to_pb(SHARD, &all))
        .await
        .unwrap();
    let sizes: Vec<usize> = msgs.iter().map(|m| m.keys.len()).collect();
    assert_eq!(sizes, vec![read_wire::LIST_CHUNK_KEYS, 2_345]);
    let mut keys = Vec::new();
    for m in msgs {
        read_wire::append_series_keys(&mut keys, m).unwrap();
    }
    assert_eq!(
        keys,
        crate::query::list_series(&n.store, SHARD, &all).unwrap()
    );

    let none = listing(&["nothing"], TagFilter::All, 0);
    let msgs = call(read_wire::series_request_to_pb(SHARD, &none))
        .await
        .unwrap();
    assert!(msgs.is_empty(), "{msgs:?}");

    let e = call(read_wire::series_request_to_pb(999, &all))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

    let mut bad = read_wire::series_request_to_pb(SHARD, &all);
    bad.tags = Some(pb::TagFilter {
        op: 99,
        ..Default::default()
    });
    let e = call(bad).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let mut bad = read_wire::series_request_to_pb(SHARD, &all);
    bad.tags = Some(pb::TagFilter {
        op: pb::tag_filter::Op::And as i32,
        ..Default::default()
    });
    let e = call(bad).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    let small = listing(&["many"], TagFilter::All, 1_000);
    let e = call(read_wire::series_request_to_pb(SHARD, &small))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
}
