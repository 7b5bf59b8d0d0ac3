//! `sundial-otlp-sink`: an OTLP/gRPC trace receiver that counts what it gets (for
//! benchmarks and tests that need a real collector endpoint without Jaeger).
//! Prints `listening on ADDR`, then `spans N` every second and at SIGTERM/SIGINT;
//! with `--print-spans`, also `span SERVICE TRACE_ID SPAN_ID PARENT_ID NAME` for
//! every span it receives (the compose test reads these from the container's log).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

#[derive(Debug, Parser)]
#[command(
    name = "sundial-otlp-sink",
    about = "Counts the spans sent to it over OTLP/gRPC"
)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:4317")]
    listen: String,
    /// Print every span received.
    #[arg(long)]
    print_spans: bool,
}

#[derive(Debug, Default, Clone)]
struct Sink(Arc<AtomicU64>, bool);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = req.into_inner();
        let n: usize = req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        if self.1 {
            for r in &req.resource_spans {
                let service = r
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref()?.value.as_ref())
                    .map_or_else(|| "-".to_string(), |v| match v {
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => s.clone(),
                        other => format!("{other:?}"),
                    });
                for span in r.scope_spans.iter().flat_map(|s| &s.spans) {
                    let parent = if span.parent_span_id.is_empty() {
                        "-".to_string()
                    } else {
                        hex(&span.parent_span_id)
                    };
                    println!(
                        "span {service} {} {} {parent} {}",
                        hex(&span.trace_id),
                        hex(&span.span_id),
                        span.name
                    );
                }
            }
        }
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let sink = Sink(Arc::default(), args.print_spans);
    let count = sink.0.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            println!("spans {}", count.load(Ordering::Relaxed));
        }
    });
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    println!("spans {}", sink.0.load(Ordering::Relaxed));
    Ok(())
}
