#!/usr/bin/env bash
# Latchkey's one test command:   bash scripts/test.sh
#
# Runs everything on a fresh Debian bookworm machine that has Rust: installs the PostgreSQL
# server binaries if they are missing, starts a throwaway cluster (unless DATABASE_URL is
# already set), checks docker-compose.yml, builds once, runs the Rust tests, the supabase-js
# suite in tests/js, the browser suite in tests/browser (Swagger UI, the sign-in page of
# examples/sign-in), and fuzzes the API from its OpenAPI document (scripts/fuzz.sh). Works as
# root (CI) and as a normal user (with sudo for installs).
#
# Environment:
#   DATABASE_URL                  use this server instead of starting a throwaway cluster
#                                 (must allow CREATE DATABASE: the tests make one per test)
#   LATCHKEY_SKIP_COMPOSE_CHECK=1 skip the docker-compose.yml validation
#   LATCHKEY_SKIP_RUST=1          skip `cargo test` (the binary is still built for tests/js)
#   LATCHKEY_SKIP_JS=1            skip the npm suites (tests/js, tests/browser)
#   LATCHKEY_BROWSER_TESTS=0      skip the browser suite in tests/browser (when there is one)
#   LATCHKEY_SKIP_FUZZ=1          skip scripts/fuzz.sh (schemathesis against /openapi.json)
# Exported to the tests: DATABASE_URL, LATCHKEY_REQUIRE_SERVICES=1 (Redis, PgBouncer and
# HAProxy are installed, so the tests that start them must run, never skip), and for the npm
# suites LATCHKEY_BIN (the debug binary).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

START_SECONDS=$SECONDS
STEP="start-up"
PG_BINDIR=""
PG_TMP=""
APT_UPDATED=0

# ---- helpers -------------------------------------------------------------------------------

header() {
    STEP=$*
    printf '\n==> %s\n' "$*"
}
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
can_be_root() { is_root || command -v sudo >/dev/null 2>&1; }

# Runs a command as root: directly, or through sudo when we are not root.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these yourself: $*"
    if [ "$APT_UPDATED" = 0 ]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# initdb and postgres refuse to run as root, so as root they run as the `postgres` system
# user (the Debian package creates it); as anyone else they run as that user.
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

elapsed() {
    local s=$((SECONDS - START_SECONDS))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# Runs on every exit (success, failure, Ctrl-C): stops and deletes the throwaway cluster.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$PG_TMP" ] && [ -d "$PG_TMP" ]; then
        if [ -f "$PG_TMP/data/postmaster.pid" ]; then
            as_pg "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
                as_pg "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 ||
                warn "could not stop the throwaway PostgreSQL in $PG_TMP"
        fi
        rm -rf "$PG_TMP"
    fi
    if [ "$rc" -eq 0 ]; then
        printf '\n==> all tests passed in %s\n' "$(elapsed)"
    else
        printf '\n==> FAILED (exit %d) during: %s - after %s\n' "$rc" "$STEP" "$(elapsed)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
# Turn signals into an ordinary exit so the EXIT trap above cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- PostgreSQL ----------------------------------------------------------------------------

# Prints the directory holding initdb/pg_ctl, or nothing. `pg_config --bindir` names it on a
# Debian server install (with only libpq-dev it says /usr/bin, which has no initdb, hence the
# check); otherwise take the newest /usr/lib/postgresql/<version>/bin.
find_pg_bindir() {
    local d candidates=()
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return
        fi
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then candidates+=("$d"); fi
    done
    if [ "${#candidates[@]}" -gt 0 ]; then
        printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1
    fi
}

ensure_postgres() {
    PG_BINDIR=$(find_pg_bindir)
    if [ -n "$PG_BINDIR" ]; then
        echo "found $PG_BINDIR ($("$PG_BINDIR/postgres" --version))"
        return
    fi
    if ! can_be_root; then
        # Someone else's server is enough for the tests; without one we cannot go on.
        [ -n "${DATABASE_URL:-}" ] || die "no PostgreSQL server binaries and no root/sudo to install them; install the 'postgresql' package or set DATABASE_URL"
        warn "no PostgreSQL server binaries (tests that start a private cluster may fail)"
        return
    fi
    echo "installing the Debian 'postgresql' package ..."
    apt_install postgresql
    PG_BINDIR=$(find_pg_bindir)
    [ -n "$PG_BINDIR" ] || die "installed 'postgresql' but found no initdb"
    # The package starts a default cluster on port 5432; nothing here uses it, so stop it
    # rather than leave a server running that we never asked for.
    if command -v pg_lsclusters >/dev/null 2>&1; then
        { pg_lsclusters --no-header 2>/dev/null || true; } | while read -r ver name _; do
            as_root pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        done
    fi
    echo "installed $PG_BINDIR ($("$PG_BINDIR/postgres" --version))"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A throwaway cluster in a fresh temp dir: trust auth on 127.0.0.1 only, fsync off (nothing
# here needs to survive a crash), room for many per-test databases and pools.
start_cluster() {
    [ -n "$PG_BINDIR" ] || die "cannot start a cluster without PostgreSQL server binaries"
    # Always under /tmp: the `postgres` user must be able to reach it (not under /root), and
    # the unix socket path inside it must stay short (about 100 bytes at most).
    PG_TMP=$(mktemp -d /tmp/latchkey-test-pg.XXXXXX)
    if is_root; then
        getent passwd postgres >/dev/null || die "running as root but there is no 'postgres' user to run PostgreSQL as"
        chown postgres: "$PG_TMP"
    fi

    if ! as_pg "$PG_BINDIR/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed"
    fi

    # Ports below Linux's ephemeral range (32768+), which the tests' port-0 listeners use. A
    # port taken between the check and the start just makes pg_ctl fail; then try another.
    local attempt port
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$((15000 + RANDOM % 17000))
        port_in_use "$port" && continue
        if as_pg "$PG_BINDIR/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/postgres.log" -w -t 60 \
            -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" \
            start >/dev/null; then
            export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
            echo "PostgreSQL running in $PG_TMP, port $port"
            echo "DATABASE_URL=$DATABASE_URL"
            return
        fi
        echo "attempt $attempt: could not start on port $port, retrying" >&2
    done
    tail -n 30 "$PG_TMP/postgres.log" >&2 || true
    die "could not start PostgreSQL"
}

# ---- other tools ---------------------------------------------------------------------------

# Redis (shared rate limits), PgBouncer (transaction pooling) and HAProxy (the load balancer in
# front of three replicas): tests/it starts private instances of each on loopback, so only the
# programs are needed. The packages' own services are stopped: nothing here uses them.
ensure_services() {
    local missing=() program package
    for program in redis-server:redis-server pgbouncer:pgbouncer haproxy:haproxy; do
        package=${program#*:}
        program=${program%%:*}
        if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$program" ] && [ ! -x "/usr/bin/$program" ]; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        can_be_root || die "need root (or sudo) to install ${missing[*]} for the multi-replica tests"
        echo "installing Debian ${missing[*]} ..."
        apt_install "${missing[@]}"
        for package in "${missing[@]}"; do
            as_root service "$package" stop >/dev/null 2>&1 || true
        done
    fi
    echo "$(redis-server --version | cut -d' ' -f1-3); $(/usr/sbin/pgbouncer --version | head -n 1); $(/usr/sbin/haproxy -v | head -n 1)"
    # From here on a missing program fails the tests that need it instead of skipping them.
    export LATCHKEY_REQUIRE_SERVICES=1
}

ensure_cargo() {
    # rustup puts cargo in ~/.cargo/bin, which non-login shells (CI) may not have on PATH.
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck source=/dev/null
        . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust (https://rustup.rs)"
}

ensure_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "installing Debian 'nodejs' and 'npm' ..."
        apt_install nodejs npm
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    # supabase-js wants Node >= 20 (22 officially); Debian bookworm ships 18.
    [ "$major" -ge 20 ] || warn "Node $(node --version) is older than 20; the supabase-js suite may fail"
}

# Browser tests drive Debian's Chromium through chromedriver.
ensure_chromium() {
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        echo "installing Debian 'chromium' and 'chromium-driver' ..."
        apt_install chromium chromium-driver
    fi
    export CHROMIUM_BIN=/usr/bin/chromium CHROMEDRIVER_BIN=/usr/bin/chromedriver
    echo "$("$CHROMIUM_BIN" --version 2>/dev/null || echo chromium), $("$CHROMEDRIVER_BIN" --version | head -n 1)"
}

# schemathesis goes into a venv (scripts/fuzz.sh makes it); Debian splits venv out of python3.
ensure_python_venv() {
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo "installing Debian 'python3' and 'python3-venv' ..."
        apt_install python3 python3-venv
    fi
}

# Installs a directory's npm dependencies (exactly the lockfile when there is one).
npm_install() {
    local dir=$1
    (
        cd "$dir"
        if [ -f package-lock.json ] || [ -f npm-shrinkwrap.json ]; then
            npm ci --no-audit --no-fund
        else
            warn "$dir has no package-lock.json; using npm install"
            npm install --no-audit --no-fund
        fi
    )
}

# Installs a directory's npm dependencies and runs its `npm test` against the binary built above.
run_npm_suite() {
    npm_install "$1"
    (cd "$1" && npm test)
}

# ---- the run -------------------------------------------------------------------------------

header "Environment"
ensure_cargo
echo "$(cargo --version); $(rustc --version 2>/dev/null || echo "rustc not on PATH")"
echo "running as $(id -un) on $(uname -sm)${CI:+ (CI)}"

header "PostgreSQL server binaries"
ensure_postgres

header "Redis, PgBouncer, HAProxy (shared rate limits, pooling, several replicas)"
ensure_services

if [ "${LATCHKEY_SKIP_COMPOSE_CHECK:-0}" = 1 ]; then
    header "docker-compose.yml check (skipped: LATCHKEY_SKIP_COMPOSE_CHECK=1)"
else
    header "docker-compose.yml check"
    bash "$ROOT/scripts/check-compose.sh" "$ROOT/docker-compose.yml"
    # The override that swaps Supabase's GoTrue for Latchkey, over a stand-in of its compose file.
    header "deploy/supabase override check"
    bash "$ROOT/scripts/check-supabase-override.sh"
fi

if [ -n "${DATABASE_URL:-}" ]; then
    # Not echoed: it may carry a password.
    header "PostgreSQL: using DATABASE_URL from the environment"
    export DATABASE_URL
else
    header "PostgreSQL: throwaway cluster"
    start_cluster
fi

LATCHKEY_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/latchkey
export LATCHKEY_BIN

if [ "${LATCHKEY_SKIP_RUST:-0}" = 1 ]; then
    header "cargo build --locked --bins (tests skipped: LATCHKEY_SKIP_RUST=1)"
    cargo build --locked --bins
else
    # One dev-profile build of everything, reused by `cargo test` and by the npm suites.
    header "cargo build --locked --tests --bins"
    cargo build --locked --tests --bins

    header "cargo test --locked"
    # --no-fail-fast: report failures from every test binary, not just the first one.
    cargo test --locked --no-fail-fast
fi

if [ "${LATCHKEY_SKIP_JS:-0}" = 1 ]; then
    header "npm suites skipped (LATCHKEY_SKIP_JS=1)"
else
    if [ -f tests/js/package.json ]; then
        header "supabase-js suite (tests/js)"
        [ -x "$LATCHKEY_BIN" ] || die "$LATCHKEY_BIN was not built"
        ensure_node
        echo "node $(node --version), npm $(npm --version)"
        run_npm_suite tests/js
    fi

    # Browser tests (Swagger UI, the sign-in page of examples/sign-in): they live in
    # tests/browser, and need Chromium + chromedriver. They reuse the harness and the OAuth
    # fakes in tests/js/lib, whose node_modules the supabase-js suite above has just
    # installed, and serve the sign-in page with supabase-js from its own node_modules.
    if [ "${LATCHKEY_BROWSER_TESTS:-1}" != 0 ] && [ -d tests/browser ]; then
        header "browser suite (tests/browser)"
        [ -x "$LATCHKEY_BIN" ] || die "$LATCHKEY_BIN was not built"
        ensure_chromium
        if [ -f tests/browser/package.json ]; then
            ensure_node
            npm_install examples/sign-in
            run_npm_suite tests/browser
        else
            warn "tests/browser has no package.json; nothing to run"
        fi
    fi
fi

if [ "${LATCHKEY_SKIP_FUZZ:-0}" = 1 ]; then
    header "fuzzing skipped (LATCHKEY_SKIP_FUZZ=1)"
else
    header "fuzzing from the OpenAPI document (scripts/fuzz.sh)"
    [ -x "$LATCHKEY_BIN" ] || die "$LATCHKEY_BIN was not built"
    ensure_python_venv
    bash "$ROOT/scripts/fuzz.sh"
fi
