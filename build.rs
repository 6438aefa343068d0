//! Generates the Zeebe gateway code from `proto/gateway.proto` with protox, a pure-Rust
//! protobuf compiler, so a fresh machine needs no `protoc`.
//!
//! The library gets the client only. The server side exists for the test gateway (tests and
//! benchmarks include it from `OUT_DIR/test_gateway/`), so it never enters the shipped binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/gateway.proto");
    let descriptors = protox::compile(["proto/gateway.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(descriptors.clone())?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("test_gateway");
    std::fs::create_dir_all(&out_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(out_dir)
        .compile_fds(descriptors)?;
    Ok(())
}
