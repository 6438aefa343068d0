# The worker as a small container image: a static (musl) binary on a distroless base that
# holds nothing but CA certificates and a non-root user.
#
#   docker build -t email-connector:0.1.0 .
#
# The Helm chart's default image is `email-connector:<appVersion>`; push the image to your
# registry and set image.repository accordingly.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY crates crates
COPY src src
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && strip target/x86_64-unknown-linux-musl/release/email-connector

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/email-connector /usr/local/bin/email-connector
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/email-connector"]
CMD ["run"]
