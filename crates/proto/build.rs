//! Compiles the protos in `/proto` into `OUT_DIR` (needs `protoc` on PATH).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = [root.join("meta.proto"), root.join("store.proto")];
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Point payloads stay `Bytes`: no copy between the socket buffer and the
        // decoder.
        .bytes(".sundial.store")
        .compile_protos(&protos, &[root])?;
    Ok(())
}
