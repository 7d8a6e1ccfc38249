# gmshub in a container: `docker build -t gmshub .` then
# `docker run -p 8080:8080 -v gmshub-data:/var/lib/gmshub gmshub`.
# The configuration goes in /etc/gmshub/gmshub.ini (mount it read only) or in
# GMSHUB__<SECTION>__<OPTION> variables; the embedded store in the volume.

# The official CometD JavaScript client the pages embed (web/package-lock.json).
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
COPY --from=web /src/web/node_modules web/node_modules
RUN cargo build --release --locked --bin gmshub \
    && cp target/release/gmshub /usr/local/bin/gmshub

FROM debian:bookworm-slim
# ca-certificates for the push providers (APNs, FCM, WNS); curl for the
# health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/gmshub --create-home gmshub \
    && mkdir -p /etc/gmshub
COPY --from=build /usr/local/bin/gmshub /usr/local/bin/gmshub
USER gmshub
WORKDIR /var/lib/gmshub
VOLUME /var/lib/gmshub
ENV GMSHUB__SQLITE__PATH=/var/lib/gmshub/gmshub.db
EXPOSE 8080
# GMS's node check: 200 while the node serves, 503 once it stops (OFFLINE).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/genesys/1/node || exit 1
# SIGTERM stops gracefully within [sml] suspending-wait-timeout (10 s);
# give `docker stop` longer than that (`--time 20`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gmshub"]
CMD ["--listen", "0.0.0.0:8080"]
