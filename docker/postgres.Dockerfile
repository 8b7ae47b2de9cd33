# syntax=docker/dockerfile:1
# PostgreSQL 15 with the ferry extension, configured for it. Build from the repository root:
#   docker build -f docker/postgres.Dockerfile -t ferry-postgres .
# Needs PostgreSQL >= 15.19 (the `output_plugin_libraries` setting; older minors refuse it).

ARG PG_IMAGE=postgres:15-bookworm

FROM ${PG_IMAGE} AS builder
# Headers and libclang for pgrx (bindgen), and a C toolchain.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       build-essential clang libclang-dev pkg-config ca-certificates \
       postgresql-server-dev-15 \
    && rm -rf /var/lib/apt/lists/*
# Rust 1.95 from the official image (same Debian release, so the same glibc).
COPY --from=rust:1.95-bookworm /usr/local/rustup /usr/local/rustup
COPY --from=rust:1.95-bookworm /usr/local/cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
# cargo-pgrx must match the pgrx version of pg-ext exactly.
RUN cargo install cargo-pgrx --version 0.18.1 --locked \
    && cargo pgrx init --pg15 /usr/lib/postgresql/15/bin/pg_config
WORKDIR /src
COPY . .
# Produces target/release/ferry-pg15/usr/{lib,share}/postgresql/15/... (ferry.so, control, SQL).
RUN cd pg-ext && cargo pgrx package --pg-config /usr/lib/postgresql/15/bin/pg_config

FROM ${PG_IMAGE}
# Refuse to build on a minor release that lacks output_plugin_libraries (CVE-2026-6471 fix).
RUN set -eu; v="$(postgres --version | sed -E 's/.* ([0-9]+)\.([0-9]+).*/\1 \2/')"; \
    set -- $v; \
    if [ "$1" -ne 15 ] || [ "$2" -lt 19 ]; then \
      echo "need PostgreSQL 15.19 or newer, got $(postgres --version)" >&2; exit 1; \
    fi
COPY --from=builder /src/target/release/ferry-pg15/usr/ /usr/
# Runs once, when the data directory is created: settings, the gateway's role, the extension.
COPY docker/postgres/init-ferry.sh /docker-entrypoint-initdb.d/10-ferry.sh
