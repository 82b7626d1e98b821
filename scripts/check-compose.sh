#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine (none runs in CI):
#   1. `docker-compose config -q` (Debian's compose v1; falls back to the `docker compose` v2
#      plugin if that is what the machine has). Catches type errors and `depends_on` pointing
#      at a service that does not exist.
#   2. `check-jsonschema --builtin-schema vendor.compose-spec` (PyPI; its schema is bundled, so
#      it runs offline). Catches unknown or misspelt keys that v1 silently accepts.
#   3. Security properties (issue #14): without GOTRUE_JWT_SECRET in the environment the file
#      does not resolve (no default secret), and every published port is bound to 127.0.0.1.
#
# Usage: bash scripts/check-compose.sh [FILE]          (default: docker-compose.yml)
# Env:   LATCHKEY_COMPOSE_SCHEMA_CHECK=0  skip step 2.
#        A missing docker-compose is installed with apt-get (as root, or through sudo).
#        check-jsonschema is installed into a private venv under ~/.cache/latchkey when it is
#        not on PATH; if that cannot be done (no network, no venv module), step 2 is skipped
#        with a warning rather than failing, because step 1 is the required check.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILE=${1:-$ROOT/docker-compose.yml}
CHECK_JSONSCHEMA_VERSION=0.39.0

note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly, or through sudo when we are not root.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Runs `docker-compose <args>` (v1, or the v2 plugin), installing v1 when neither exists.
compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose "$@"
    elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        docker compose "$@"
    else
        note "installing docker-compose (Debian package) ..." >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
        docker-compose "$@"
    fi
}

# A stand-in secret for resolving the file; never used by a server.
PLACEHOLDER_SECRET=compose-check-placeholder-secret-of-48-characters

compose_config() {
    GOTRUE_JWT_SECRET=$PLACEHOLDER_SECRET compose -f "$FILE" config -q
}

check_security() {
    local out
    if out=$(unset GOTRUE_JWT_SECRET; compose -f "$FILE" config 2>&1); then
        die "$FILE resolves without GOTRUE_JWT_SECRET: it must have no default secret"
    fi
    printf '%s\n' "$out" | grep -q GOTRUE_JWT_SECRET ||
        die "without GOTRUE_JWT_SECRET, $FILE fails without naming it: $out"
    note "no default JWT secret"
    # Published ports, as the resolved file lists them (`- 127.0.0.1:9999:9999/tcp`).
    local ports bad
    ports=$(GOTRUE_JWT_SECRET="$PLACEHOLDER_SECRET" compose -f "$FILE" config |
        awk '/^    ports:/ { inside = 1; next } inside && /^    - / { print $2; next } { inside = 0 }')
    [ -n "$ports" ] || die "found no published ports in $FILE (has the layout of 'config' changed?)"
    bad=$(printf '%s\n' "$ports" | grep -v '^127\.0\.0\.1:' || true)
    [ -z "$bad" ] || die "ports published beyond 127.0.0.1 in $FILE: $(echo $bad)"
    note "every published port is on 127.0.0.1: $(echo $ports)"
}

# Prints the path of a check-jsonschema executable, installing one if needed; prints nothing
# if it is unavailable.
find_check_jsonschema() {
    if command -v check-jsonschema >/dev/null 2>&1; then
        command -v check-jsonschema
        return
    fi
    local venv=${XDG_CACHE_HOME:-$HOME/.cache}/latchkey/check-jsonschema-$CHECK_JSONSCHEMA_VERSION
    if [ ! -x "$venv/bin/check-jsonschema" ]; then
        command -v python3 >/dev/null 2>&1 || return 0
        note "installing check-jsonschema $CHECK_JSONSCHEMA_VERSION into $venv ..." >&2
        rm -rf "$venv"
        # About 11 s here; the timeout keeps an unreachable PyPI from stalling the run.
        if ! { python3 -m venv "$venv" >/dev/null 2>&1 &&
               timeout 120 "$venv/bin/pip" install -q --disable-pip-version-check \
                   "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" >/dev/null 2>&1; }; then
            rm -rf "$venv"
            return 0
        fi
    fi
    echo "$venv/bin/check-jsonschema"
}

[ -f "$FILE" ] || die "$FILE not found"

echo "    docker-compose config: $FILE"
compose_config || die "docker-compose rejected $FILE"
check_security

if [ "${LATCHKEY_COMPOSE_SCHEMA_CHECK:-1}" = 0 ]; then
    note "compose-spec schema check skipped (LATCHKEY_COMPOSE_SCHEMA_CHECK=0)"
else
    cjs=$(find_check_jsonschema)
    if [ -z "$cjs" ]; then
        warn "check-jsonschema unavailable (no python3 venv or PyPI unreachable); schema check skipped"
    else
        echo "    compose-spec schema: $FILE"
        "$cjs" --builtin-schema vendor.compose-spec "$FILE" ||
            die "$FILE does not match the compose specification"
    fi
fi
echo "    compose file OK"
