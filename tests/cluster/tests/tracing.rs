//! One trace from the HTTP write to the engine: the processes export their spans
//! over OTLP to a receiver run by the test (the `opentelemetry-proto` collector
//! service), and the test follows the parent links of one write that came with a
//! known `traceparent`.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use sundial_cluster_tests::{wait_until, Cluster};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// A received span: its service, name, ids and attributes.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
    links: Vec<String>,
    attrs: HashMap<String, String>,
}

#[derive(Debug, Default, Clone)]
struct Receiver(Arc<Mutex<Vec<Got>>>);

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                got.push(Got {
                    service: service.clone(),
                    name: s.name,
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    links: s.links.iter().map(|l| hex(&l.span_id)).collect(),
                    attrs: s
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Receiver {
    /// Serves on a free loopback port (in its own runtime thread); the endpoint.
    fn start(&self) -> String {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let me = self.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(std_listener).unwrap();
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(me))
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l))
                    .await
                    .unwrap();
            });
        });
        format!("http://{addr}")
    }

    fn spans(&self) -> Vec<Got> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until a span named `name` of trace `TRACE` has arrived.
    fn wait_for(&self, service: &str, name: &str) -> Got {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self
                .spans()
                .into_iter()
                .find(|s| s.service == service && s.name == name && s.trace == TRACE)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no {service} span {name} in {:#?}",
                self.spans()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `span` has `ancestor` among its ancestors (following parent ids).
fn descends(spans: &[Got], span: &Got, ancestor: &Got) -> bool {
    let by_id: HashMap<&str, &Got> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut cur = span;
    for _ in 0..32 {
        if cur.parent == ancestor.id {
            return true;
        }
        match by_id.get(cur.parent.as_str()) {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}

/// The processes read the standard OpenTelemetry variables.
fn otel_env(endpoint: &str) {
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
}

fn traced_write(url: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{url}/write?db=db"))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .body("cpu,host=a v=1i 1700000000000000000\ncpu,host=b v=2i 1700000000000000000")
        .send()
        .unwrap()
}

#[test]
fn one_write_is_one_trace_from_the_gateway_to_the_wal() {
    let rx = Receiver::default();
    otel_env(&rx.start());
    let mut c = Cluster::start(1, 1);
    c.query("CREATE DATABASE db");
    let r = traced_write(&c.url(0, ""));
    assert_eq!(r.status(), 204);

    let http = rx.wait_for("sundial-gateway", "http.write");
    assert_eq!(http.parent, CALLER, "the caller's span is the parent");
    let pw = rx.wait_for("sundial-gateway", "points_writer.write");
    let client = rx.wait_for("sundial-gateway", "store_client.WriteToShard");
    let server = rx.wait_for("sundial-store", "store.WriteToShard");
    let shard = rx.wait_for("sundial-store", "shard.write");
    let commit = rx.wait_for("sundial-store", "wal.commit");
    let spans = rx.spans();
    assert_eq!(pw.parent, http.id);
    assert!(descends(&spans, &client, &pw), "{client:?}");
    assert_eq!(server.parent, client.id, "across gRPC");
    assert!(descends(&spans, &shard, &server));
    assert!(descends(&spans, &commit, &shard));
    // The fsync that made the write durable: a child of the write, or a span the
    // write's commit links to (group commit).
    let synced = spans.iter().any(|s| {
        s.name == "wal.sync" && (descends(&spans, s, &shard) || commit.links.contains(&s.id))
    });
    assert!(synced, "no wal.sync for the write in {spans:#?}");
    assert_eq!(pw.attrs["db"], "db");
    assert_eq!(server.attrs["shard_id"], client.attrs["shard_id"]);
    assert_eq!(shard.attrs["points"], "2");

    // Open at start, close at a graceful stop.
    rx.0.lock().unwrap().clear();
    c.stores[0].proc.terminate();
    wait_until(30, "a store.close span", || {
        rx.spans().iter().any(|s| s.name == "store.close")
    });
    c.stores[0].proc.spawn();
    wait_until(30, "a store.open span", || {
        rx.spans()
            .iter()
            .any(|s| s.name == "store.open" && s.service == "sundial-store")
    });
}

/// The all-in-one server: the same spans, in one service.
#[test]
fn the_all_in_one_server_traces_a_write_to_the_wal() {
    let rx = Receiver::default();
    otel_env(&rx.start());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let server = sundial_cluster_tests::Proc::start(
        "sundial",
        vec![
            "run".into(),
            "--data-dir".into(),
            data,
            "--bind".into(),
            "127.0.0.1:0".into(),
        ],
    );
    let url = format!("http://{}", server.addr);
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/query"))
        .form(&[("q", "CREATE DATABASE db")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(traced_write(&url).status(), 204);
    let http = rx.wait_for("sundial", "http.write");
    let pw = rx.wait_for("sundial", "points_writer.write");
    let shard = rx.wait_for("sundial", "shard.write");
    let commit = rx.wait_for("sundial", "wal.commit");
    let spans = rx.spans();
    assert_eq!(http.parent, CALLER);
    assert_eq!(pw.parent, http.id);
    assert!(descends(&spans, &shard, &pw));
    assert!(descends(&spans, &commit, &shard));
    assert!(spans
        .iter()
        .any(|s| s.service == "sundial" && s.name == "store.open"));
}

/// Clients cannot have every request traced by sending sampled `traceparent`s:
/// past `max-traces-per-second` their flag is ignored (and with a ratio of 0 no
/// request is traced on its own).
#[test]
fn sampled_headers_are_capped_per_second() {
    let rx = Receiver::default();
    otel_env(&rx.start());
    std::env::set_var("OTEL_TRACES_SAMPLER_ARG", "0");
    std::env::set_var("SUNDIAL_TRACING_MAX_TRACES_PER_SECOND", "2");
    let c = Cluster::start(1, 1);
    c.query("CREATE DATABASE db");
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    for i in 0..40u32 {
        let r = client
            .post(c.url(0, "/write?db=db"))
            .header("traceparent", format!("00-{i:032x}-{CALLER}-01"))
            .body(format!("cpu v={i}i 1700000000000000000"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let traced: std::collections::BTreeSet<String> = rx
        .spans()
        .into_iter()
        .filter(|s| s.name == "http.write")
        .map(|s| s.trace)
        .collect();
    // A second's worth at start, then 2 per second.
    let most = 2 + (secs * 2.0).ceil() as usize;
    assert!(
        !traced.is_empty() && traced.len() <= most,
        "{} of 40 writes traced in {secs:.2} s (at most {most})",
        traced.len()
    );
    // Writes without a traceparent start no trace at ratio 0.
    let before = rx.spans().len();
    assert_eq!(c.write(0, "db=db", "cpu v=1i".into()).0, 204);
    std::thread::sleep(Duration::from_secs(1));
    let after: Vec<Got> = rx.spans().into_iter().skip(before).collect();
    assert!(!after.iter().any(|s| s.name == "http.write"), "{after:#?}");
}

/// `[logging] format = "json"`: one JSON object per line, and a line written inside
/// a request carries the request's id — its trace id when traced.
#[test]
fn json_log_lines_inside_a_request_carry_its_trace_id() {
    use std::io::{BufRead, BufReader};
    let rx = Receiver::default();
    let endpoint = rx.start();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(sundial_cluster_tests::bin("sundial"))
        .args(["run", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("SUNDIAL_LOGGING_FORMAT", "json")
        .env("SUNDIAL_LOG", "sundial_gateway=debug,info")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let addr = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(str::to_string))
        .unwrap();
    let url = format!("http://{addr}");
    reqwest::blocking::Client::new()
        .post(format!("{url}/query"))
        .form(&[("q", "CREATE DATABASE db")])
        .send()
        .unwrap();
    let r = traced_write(&url);
    assert_eq!(r.status(), 204);
    let request_id = r.headers()["Request-Id"].to_str().unwrap().to_string();
    let _ = child.kill();
    let _ = child.wait();
    let err = BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let inside = lines
        .iter()
        .find(|l| l["fields"]["message"] == "write body read")
        .unwrap_or_else(|| panic!("no line from inside the write in {lines:#?}"));
    assert_eq!(
        inside["span"]["request_id"],
        request_id.as_str(),
        "{inside}"
    );
    assert_eq!(inside["span"]["trace_id"], TRACE, "{inside}");
}
