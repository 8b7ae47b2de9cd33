# syntax=docker/dockerfile:1
# The ferry gateway. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t ferry-gateway .
# Configure with a mounted YAML file (FERRY_CONFIG=/etc/ferry/gateway.yaml) and/or FERRY_*
# variables; see docker/README.md and `ferry-gateway --help`.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# Only the gateway is built (not the pgrx extension). The caches make rebuilds incremental.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ferry-gateway \
    && cp target/release/ferry-gateway /usr/local/bin/ferry-gateway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home ferry
COPY --from=builder /usr/local/bin/ferry-gateway /usr/local/bin/ferry-gateway
USER ferry
ENV FERRY_LISTEN=0.0.0.0:8080
EXPOSE 8080
# SIGTERM ends open streams (clients reconnect) and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ferry-gateway"]
CMD ["serve"]
