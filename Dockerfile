# pgward: multi-stage build. The runtime image holds the binary, the example policies and
# nothing else; it runs as an unprivileged user.
#
#   docker build -t pgward .
#   docker run -v $PWD/pgward.yaml:/etc/pgward/pgward.yaml:ro pgward

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pgward \
    && install -m 0755 target/release/pgward /usr/local/bin/pgward

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin pgward
COPY --from=build /usr/local/bin/pgward /usr/local/bin/pgward
COPY policies/ /etc/pgward/policies/
USER 10001:10001
# 6432: PostgreSQL clients; 9187: admin HTTP (/metrics, /healthz, /readyz) when enabled.
EXPOSE 6432 9187
ENTRYPOINT ["/usr/local/bin/pgward"]
CMD ["serve", "-c", "/etc/pgward/pgward.yaml"]
