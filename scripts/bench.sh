#!/usr/bin/env bash
# Latchkey's benchmark, one command:   bash scripts/bench.sh [latchkey-bench options]
#
# Builds the server and the load generator (bench/) in release, starts a throwaway PostgreSQL
# cluster (unless DATABASE_URL is set: then that database is filled with bench data), and runs
# target/release/latchkey-bench, which writes bench/results/{results.md,results.json,
# throughput.svg}. Options are passed on, e.g. `--runs 1 --duration 2 --scenarios user`
# (see `target/release/latchkey-bench --help`). Takes about 20 minutes with the defaults (2 cores).
# `--users 1000000` seeds a million users with two sessions and ten refresh tokens each (in
# SQL, about 10 minutes more); `--cleanup-backlog N` measures the cleanup task under refresh
# load. With Debian's redis-server installed, the Redis rate limiter is compared with the
# in-memory one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PG_TMP=""
PG_BINDIR=""
REDIS_PID=""

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
    if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
        as_pg "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        rm -rf "$PG_TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

find_pg_bindir() {
    local d candidates=()
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pgbench" ]; then echo "$d"; return; fi
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pgbench" ]; then candidates+=("$d"); fi
    done
    if [ "${#candidates[@]}" -gt 0 ]; then printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1; fi
}

PG_BINDIR=$(find_pg_bindir)
if [ -z "$PG_BINDIR" ]; then
    echo "installing the Debian 'postgresql' package (server binaries and pgbench) ..."
    if is_root; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; fi
    PG_BINDIR=$(find_pg_bindir)
    [ -n "$PG_BINDIR" ] || die "no initdb/pgbench after installing postgresql"
fi
echo "PostgreSQL binaries: $PG_BINDIR ($("$PG_BINDIR/postgres" --version))"

# wrk drives the `user-wrk`, `user-floor` and `refresh-wrk` scenarios (the same loads from a
# client that is not ours, issue #24): Debian's package.
if ! command -v wrk >/dev/null 2>&1; then
    echo "installing the Debian 'wrk' package ..."
    if is_root; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; fi
    command -v wrk >/dev/null 2>&1 || die "no wrk after installing the wrk package"
fi

echo "==> cargo build --release --workspace"
cargo build --release --locked --workspace

if [ -z "${DATABASE_URL:-}" ]; then
    # Same kind of throwaway cluster as scripts/test.sh: trust auth on 127.0.0.1, fsync off
    # (nothing needs to survive a crash; it also keeps disk noise out of the numbers).
    PG_TMP=$(mktemp -d /tmp/latchkey-bench-pg.XXXXXX)
    if is_root; then chown postgres: "$PG_TMP"; fi
    as_pg "$PG_BINDIR/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_TMP/initdb.log"
    port=$((15000 + RANDOM % 17000))
    as_pg "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/postgres.log" -w -t 60 \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    # The server and pgbench reach a database on their own host over its Unix socket, as an
    # operator should run them (less kernel work per statement than TCP on loopback, see
    # BENCHMARKS.md #24); LATCHKEY_BENCH_TCP=1 measures over TCP on 127.0.0.1 instead, as
    # with a database on another host.
    if [ -n "${LATCHKEY_BENCH_TCP:-}" ]; then
        export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    else
        export DATABASE_URL="postgres://postgres@localhost:$port/postgres?host=$PG_TMP"
    fi
    echo "throwaway PostgreSQL on port $port ($DATABASE_URL)"
fi

# The rate limiter in Redis against the one in memory (--redis-url), with a throwaway
# redis-server when Debian's package is installed (scripts/test.sh installs it).
redis_args=()
if [[ " $* " != *" --redis-url"* ]] && command -v redis-server >/dev/null 2>&1; then
    redis_port=$((15000 + RANDOM % 17000))
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
    REDIS_PID=$!
    redis_args=(--redis-url "redis://127.0.0.1:$redis_port")
    echo "throwaway redis-server on port $redis_port"
fi

# 1000 keep-alive connections need more than the common default of 1024 descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "==> latchkey-bench $*"
target/release/latchkey-bench --server-bin target/release/latchkey --pgbench "$PG_BINDIR/pgbench" --wrk "$(command -v wrk)" \
    "${redis_args[@]}" "$@"
