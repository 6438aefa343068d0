//! Generates the Zeebe gateway client and server from `proto/gateway.proto` with protox, a
//! pure-Rust protobuf compiler, so a fresh machine needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/gateway.proto");
    let descriptors = protox::compile(["proto/gateway.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
