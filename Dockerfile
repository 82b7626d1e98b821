# Latchkey container image: `docker build -t latchkey .` (or `docker-compose up --build`).

# ---- build stage ---------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# Compile the dependencies first, against stub sources, so that editing src/ does not rebuild
# the ~380 crates below (a release build of them takes about 5 minutes). Cargo needs every
# workspace member's manifest to read the workspace: each member of `members` in Cargo.toml
# is copied here with a stub main (tests/it/deploy.rs checks that none is missing). No
# `|| true`: if the stub build breaks, the image build says so instead of silently
# rebuilding everything.
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p src bench/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > bench/src/main.rs \
 && cargo build --release --locked --bin latchkey \
 && rm -rf src bench/src target/release/.fingerprint/latchkey-* target/release/deps/latchkey-* \
           target/release/deps/liblatchkey-* target/release/latchkey*

# migrations/ is embedded into the binary by sqlx::migrate!(), so it must be in the context.
COPY . .
RUN cargo build --release --locked --bin latchkey \
 && install -D -m 0755 target/release/latchkey /out/latchkey

# ---- runtime stage -------------------------------------------------------------------------
# Distroless: glibc, CA certificates (TLS to OAuth providers, SMTP, managed Postgres) and
# nothing else, no shell, no package manager (about 25 MB). The health check is the binary's
# own `latchkey healthcheck`, so neither curl nor wget is needed. The `nonroot` variant runs
# as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder /out/latchkey /usr/local/bin/latchkey

# The server defaults to 127.0.0.1 (right on a laptop); inside a container it must listen on
# every interface or nothing outside the container can reach it. Logs are JSON lines off a
# terminal (LATCHKEY_LOG_FORMAT=text for readable ones).
ENV GOTRUE_API_HOST=0.0.0.0 \
    PORT=9999

# Numeric, so that runtimes enforcing runAsNonRoot can check it without /etc/passwd.
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 9999
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["latchkey", "healthcheck"]
ENTRYPOINT ["latchkey"]
CMD ["serve"]
