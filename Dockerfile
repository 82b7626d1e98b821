# Latchkey container image: `docker build -t latchkey .` (or `docker-compose up --build`).

# ---- build stage ---------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# Compile the dependencies first, against stub sources, so that editing src/ does not rebuild
# the ~380 crates below (a release build of them takes about 5 minutes). If the stub build
# ever fails (say the manifest grows targets the stubs don't provide) the `|| true` only costs
# the cache; the real build below still decides success.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && (cargo build --release --locked || true) \
 && rm -rf src target/release/.fingerprint/latchkey-* target/release/deps/latchkey-* \
           target/release/deps/liblatchkey-*

# migrations/ is embedded into the binary by sqlx::migrate!(), so it must be in the context.
COPY . .
RUN cargo build --release --locked --bin latchkey \
 && install -D -m 0755 target/release/latchkey /out/latchkey

# ---- runtime stage -------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to OAuth providers, SMTP and managed Postgres.
# curl: used by the compose healthcheck (`curl -fsS http://localhost:9999/health`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/latchkey --shell /usr/sbin/nologin latchkey

COPY --from=builder /out/latchkey /usr/local/bin/latchkey

# The server defaults to 127.0.0.1 (right on a laptop); inside a container it must listen on
# every interface or nothing outside the container can reach it.
ENV GOTRUE_API_HOST=0.0.0.0 \
    PORT=9999

USER latchkey
WORKDIR /home/latchkey
EXPOSE 9999
ENTRYPOINT ["latchkey"]
CMD ["serve"]
