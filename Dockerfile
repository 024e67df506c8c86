# The services as one container image: central-system (the entrypoint), booking-api and
# firmware-sim (pick one with --entrypoint, as docker-compose.yml does).
#   docker build -t evcs .
#   docker run -p 9000:9000 -v evcs-data:/data evcs
# The embedded default (SQLite under /data) works as is; pass --database-url postgres://... for
# PostgreSQL (see docker-compose.yml).

# --- build -----------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole workspace: Cargo needs every member's manifest, and the build embeds the SQL
# migrations (migrations/) and the OCPP JSON schemas (ocpp/schemas/) into the binary.
COPY . .
RUN cargo build --release --locked -p central-system -p booking-api -p firmware-sim

# --- run -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A non-root user owning /data, so a fresh named volume mounted there is writable
# (the JWT secret, and the SQLite file when no --database-url is given, live there).
RUN groupadd --system --gid 10001 evcs \
    && useradd --system --uid 10001 --gid evcs --home-dir /data --no-create-home evcs \
    && mkdir /data \
    && chown evcs:evcs /data
COPY --from=builder /src/target/release/central-system /src/target/release/booking-api \
     /src/target/release/firmware-sim /usr/local/bin/
USER evcs
WORKDIR /data
EXPOSE 9000 9100
ENTRYPOINT ["central-system", "--listen", "0.0.0.0:9000", "--data-dir", "/data"]
