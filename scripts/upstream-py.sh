#!/usr/bin/env bash
# Runs the official supabase-py auth client's own test suite against Latchkey:
#
#   bash scripts/upstream-py.sh <path to a supabase-py checkout> [pytest arguments...]
#
# For example (a copy without history, such as `git archive`'s, does as well; so does the
# path of its src/auth):
#   git clone --depth 1 https://github.com/supabase/supabase-py /tmp/supabase-py
#   cargo build --bin latchkey && bash scripts/upstream-py.sh /tmp/supabase-py
#
# NOT part of CI or scripts/test.sh: the suite (src/auth/tests of github.com/supabase/supabase-py)
# is published only on GitHub, in no PyPI package, and CI downloads nothing from GitHub. Bring a
# checkout (or an export of its src/auth) yourself; nothing from it belongs in this repository.
#
# What it does, the way the suite's own infra/docker-compose.yml sets up GoTrue:
# - a venv with the suite's test dependencies from PyPI (its pyproject's "tests" group) and the
#   checkout's own supabase_auth (its src/ on PYTHONPATH; its runtime dependencies from PyPI);
# - a throwaway PostgreSQL cluster (unless DATABASE_URL is set), one database shared by all
#   instances, as the compose file's four GoTrue containers share one;
# - four Latchkey instances on the ports the suite expects, with the compose file's GOTRUE_*
#   settings: 9999 (sign-up on, autoconfirm off), 9998 (autoconfirm on), 9997 (sign-up off),
#   9996 (autoconfirm on, RS256 signing key);
# - pytest on the suite, then the summary; everything is stopped and deleted on exit, except the
#   servers' logs, kept in target/upstream-py/logs (replaced on the next run) to explain failures.
#
# Where the compose file's settings cannot apply here (see the comments at `common_env`):
# the compose file's Twilio credentials come from its CI's secrets: here they are made up, and
# Twilio's API is moved to a closed local port (LATCHKEY_SMS_PROVIDER_URL), so no text leaves;
# SMTP goes to a mail catcher container, so mails go to a mail folder instead; GoTrue limits
# requests per address only with GOTRUE_RATE_LIMIT_HEADER set, which the compose file does not
# set, so Latchkey's per-address limiter (on by default) is switched off likewise.
#
# Environment:
#   LATCHKEY_BIN        the server binary (default target/debug/latchkey, built if missing)
#   DATABASE_URL        use this server (must allow CREATE DATABASE) instead of a throwaway one
#   UPSTREAM_PY_VENV    where to keep the venv (default target/upstream-py/venv; reused)
#   PYTHON              the interpreter that makes the venv (default python3, needs >= 3.9)
# Needs: python3 with venv, the PostgreSQL server binaries (initdb, pg_ctl), free ports 9996-9999.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
# initdb and postgres refuse to run as root; as root they run as the `postgres` system user.
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ $# -ge 1 ] || die "usage: $0 <path to a supabase-py checkout> [pytest arguments...]"
CHECKOUT=$(cd "$1" && pwd) || die "no such directory: $1"
shift
# The checkout's root, or its src/auth folder (the auth package's own repository layout).
SUITE="$CHECKOUT/src/auth"
if [ ! -d "$SUITE/tests" ] && [ -d "$CHECKOUT/tests" ] && [ -d "$CHECKOUT/src/supabase_auth" ]; then
    SUITE="$CHECKOUT"
fi
[ -d "$SUITE/tests" ] && [ -d "$SUITE/src/supabase_auth" ] ||
    die "$CHECKOUT has no src/auth/tests and src/auth/src/supabase_auth (a supabase-py checkout?)"

WORK=$(mktemp -d /tmp/latchkey-upstream-py.XXXXXX)
LOGS="$ROOT/target/upstream-py/logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"
SERVER_PIDS=()
PG_BINDIR=""
PG_DATA=""

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the server binary ---------------------------------------------------------------------

BIN=${LATCHKEY_BIN:-$ROOT/target/debug/latchkey}
if [ ! -x "$BIN" ]; then
    [ -z "${LATCHKEY_BIN:-}" ] || die "LATCHKEY_BIN=$BIN is not an executable"
    echo "==> building $BIN"
    (cd "$ROOT" && cargo build --locked --bin latchkey)
fi

for port in 9996 9997 9998 9999; do
    ! port_in_use "$port" || die "port $port is in use; the suite needs 9996-9999 free"
done

# ---- Python --------------------------------------------------------------------------------

VENV=${UPSTREAM_PY_VENV:-$ROOT/target/upstream-py/venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> making the venv $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
echo "==> installing the suite's dependencies from PyPI"
# supabase_auth's own dependencies, then its "tests" dependency group (pytest-cov is left out:
# the Makefile's coverage flags are not used here).
"$VENV/bin/pip" install -q \
    'httpx[http2]>=0.26,<0.29' 'pydantic>=1.10,<3' 'pyjwt[crypto]>=2.10.1' \
    'Faker>=37.4.0' 'respx>=0.20.2,<0.23.0' 'pytest>=8.4.1' 'pytest-mock>=3.14.0' \
    'pytest-depends>=1.0.1' 'pytest-asyncio>=1.0.0' 'pyotp>=2.9.0' 'typing_extensions'

# ---- PostgreSQL ----------------------------------------------------------------------------

find_pg_bindir() {
    local d
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | sort -V | tail -n 1
}

if [ -z "${DATABASE_URL:-}" ]; then
    PG_BINDIR=$(find_pg_bindir)
    [ -n "$PG_BINDIR" ] || die "no PostgreSQL server binaries (apt-get install postgresql), or set DATABASE_URL"
    PG_DATA="$WORK/pg"
    mkdir -p "$PG_DATA"
    if is_root; then chown postgres: "$WORK" "$PG_DATA"; fi
    as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    started=""
    for _ in 1 2 3 4 5; do
        pg_port=$((15000 + RANDOM % 17000))
        port_in_use "$pg_port" && continue
        if as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$WORK/postgres.log" -w -t 60 \
            -o "-p $pg_port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null; then
            started=1
            break
        fi
    done
    [ -n "$started" ] || { tail -n 20 "$WORK/postgres.log" >&2; die "could not start PostgreSQL"; }
    DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
    echo "==> PostgreSQL on port $pg_port"
fi
# One fresh database for this run, shared by the four instances.
DB_NAME="upstream_py_$$"
psql_admin() { "$PG_BINDIR/psql" "$DATABASE_URL" -qAtc "$1"; }
if [ -z "$PG_BINDIR" ]; then PG_BINDIR=$(dirname "$(command -v psql)"); fi
psql_admin "CREATE DATABASE $DB_NAME" || die "could not create database $DB_NAME"
SUITE_DB_URL="${DATABASE_URL%/*}/$DB_NAME"
DATABASE_URL="$SUITE_DB_URL" "$BIN" migrate >"$WORK/migrate.log" 2>&1 ||
    { cat "$WORK/migrate.log" >&2; die "latchkey migrate failed"; }

# ---- the four instances --------------------------------------------------------------------

# Secrets and keys are read from the compose file itself: 9998 lists an HS256 key that signs and
# an RSA key that only verifies; 9996 the same keys the other way round.
COMPOSE="$SUITE/infra/docker-compose.yml"
[ -f "$COMPOSE" ] || die "missing $COMPOSE"
# Prints the value of one variable of one service of the compose file (single-quoted values).
compose_value() {
    awk -v svc="  $1:" -v key="      $2: " '
        index($0, svc) == 1 { inside = 1; next }
        inside && /^  [a-z_]+:/ { inside = 0 }
        inside && index($0, key) == 1 { v = substr($0, length(key) + 1); gsub(/^'\''|'\''$/, "", v); print v; exit }
    ' "$COMPOSE"
}

common_env() {
    local port=$1
    # DATABASE_URL: the shared throwaway database instead of the compose file's `db` service.
    # LATCHKEY_MAIL_DIR: mails go to a folder, as the compose file's SMTP host `mail` (an
    # Inbucket container) does not exist here; the suite reads no mail.
    # LATCHKEY_RATE_LIMIT_ENABLED=false: GoTrue limits per address only when
    # GOTRUE_RATE_LIMIT_HEADER is set, which the compose file does not set.
    echo DATABASE_URL="$SUITE_DB_URL" LATCHKEY_MAIL_DIR="$WORK/mail-$port" \
        LATCHKEY_RATE_LIMIT_ENABLED=false \
        PORT="$port" GOTRUE_API_HOST=127.0.0.1 API_EXTERNAL_URL="http://localhost:$port" \
        GOTRUE_SITE_URL="http://localhost:$port" GOTRUE_JWT_EXP=3600 GOTRUE_LOG_LEVEL=debug \
        GOTRUE_DISABLE_SIGNUP=false GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED=true \
        GOTRUE_SMTP_ADMIN_EMAIL=admin@email.com
}

start_instance() {
    local port=$1
    shift
    # shellcheck disable=SC2046 # common_env's words are NAME=value pairs without spaces
    env $(common_env "$port") "$@" "$BIN" serve >"$LOGS/latchkey-$port.log" 2>&1 &
    SERVER_PIDS+=($!)
}

HS_SECRET=$(compose_value gotrue GOTRUE_JWT_SECRET)
start_instance 9999 GOTRUE_JWT_SECRET="$HS_SECRET" GOTRUE_MAILER_AUTOCONFIRM=false \
    GOTRUE_MAILER_URLPATHS_CONFIRMATION=/verify GOTRUE_URI_ALLOW_LIST=https://supabase.io/docs \
    GOTRUE_MAILER_SUBJECTS_CONFIRMATION='Please confirm' \
    GOTRUE_EXTERNAL_GOOGLE_ENABLED=true \
    GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID="$(compose_value gotrue GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID)" \
    GOTRUE_EXTERNAL_GOOGLE_SECRET="$(compose_value gotrue GOTRUE_EXTERNAL_GOOGLE_SECRET)" \
    GOTRUE_EXTERNAL_GOOGLE_REDIRECT_URI=http://localhost:9999/callback \
    GOTRUE_EXTERNAL_PHONE_ENABLED=true GOTRUE_SMS_PROVIDER=twilio GOTRUE_SMS_AUTOCONFIRM=false \
    GOTRUE_SMS_TWILIO_ACCOUNT_SID=ACupstreampy GOTRUE_SMS_TWILIO_AUTH_TOKEN=upstream-py \
    GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID=MGupstreampy LATCHKEY_SMS_PROVIDER_URL=http://127.0.0.1:9
start_instance 9998 GOTRUE_JWT_SECRET="$HS_SECRET" \
    GOTRUE_JWT_KEYS="$(compose_value autoconfirm GOTRUE_JWT_KEYS)" \
    GOTRUE_MAILER_AUTOCONFIRM=true GOTRUE_SMS_AUTOCONFIRM=true GOTRUE_EXTERNAL_PHONE_ENABLED=true \
    GOTRUE_OAUTH_SERVER_ENABLED=true GOTRUE_OAUTH_SERVER_ALLOW_DYNAMIC_REGISTRATION=true
start_instance 9997 GOTRUE_JWT_SECRET="$HS_SECRET" GOTRUE_DISABLE_SIGNUP=true \
    GOTRUE_MAILER_AUTOCONFIRM=false GOTRUE_EXTERNAL_PHONE_ENABLED=false \
    GOTRUE_EXTERNAL_EMAIL_ENABLED=false
start_instance 9996 \
    GOTRUE_JWT_SECRET="$(compose_value autoconfirm_with_asymmetric_keys GOTRUE_JWT_SECRET)" \
    GOTRUE_JWT_KEYS="$(compose_value autoconfirm_with_asymmetric_keys GOTRUE_JWT_KEYS)" \
    GOTRUE_MAILER_AUTOCONFIRM=true GOTRUE_SMS_AUTOCONFIRM=true GOTRUE_EXTERNAL_PHONE_ENABLED=true

for port in 9996 9997 9998 9999; do
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 ||
        { tail -n 30 "$LOGS/latchkey-$port.log" >&2; die "Latchkey on port $port did not start"; }
done
echo "==> Latchkey on ports 9996-9999 ($BIN), logs in $LOGS"

# ---- the suite -----------------------------------------------------------------------------

echo "==> pytest (supabase-py $(git -C "$CHECKOUT" rev-parse --short HEAD 2>/dev/null || echo "checkout"))"
set +e
(cd "$SUITE" && PYTHONPATH="$SUITE/src" "$VENV/bin/python" -m pytest -p no:cacheprovider \
    -o asyncio_mode=auto -q -rfE "$@" tests)
rc=$?
set -e
exit "$rc"
