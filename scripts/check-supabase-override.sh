#!/usr/bin/env bash
# Validates deploy/supabase/docker-compose.latchkey.yml offline, merged over the stand-in for
# Supabase's docker/docker-compose.yml in deploy/supabase/upstream/ (no Docker engine needed):
#   1. `docker-compose -f upstream -f override config` resolves (types, keys, depends_on);
#   2. in the merged file, `auth` runs Latchkey: its image, `latchkey healthcheck` as the health
#      check (no wget left), the Kong client-address header with a trusted range, JSON logs,
#      and it keeps what Supabase relies on (container name supabase-auth for log routing,
#      GoTrue's variables, its dependencies).
# Run by scripts/test.sh after scripts/check-compose.sh (which installs docker-compose if
# needed). Usage: bash scripts/check-supabase-override.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$ROOT/deploy/supabase

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose "$@"
    elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        docker compose "$@"
    else
        die "docker-compose not found (scripts/check-compose.sh installs it)"
    fi
}

files=(-f "$DIR/upstream/docker-compose.yml" -f "$DIR/docker-compose.latchkey.yml" --env-file "$DIR/upstream/test.env")
echo "    docker-compose config: upstream stand-in + deploy/supabase/docker-compose.latchkey.yml"
merged=$(compose "${files[@]}" config) || die "docker-compose rejected the override"

# The `auth` service of the resolved file: from its key to the next service.
auth=$(printf '%s\n' "$merged" | awk '/^  auth:$/ { on = 1; print; next } on && /^  [a-z]/ { exit } on { print }')
[ -n "$auth" ] || die "no auth service in the merged file"

expect() {
    printf '%s\n' "$auth" | grep -Eq -- "$1" || die "auth service: expected /$1/ (${2})"
}
expect '^    image: latchkey:local$' "the Latchkey image"
expect '^      - latchkey$' "latchkey healthcheck as the health check"
expect '^      - healthcheck$' "latchkey healthcheck as the health check"
expect '^    container_name: supabase-auth$' "Vector routes logs by this name"
expect 'GOTRUE_RATE_LIMIT_HEADER: X-Real-IP' "the header Kong sets"
expect 'LATCHKEY_TRUSTED_PROXIES: [0-9]' "a trusted range for Kong"
expect 'LATCHKEY_LOG_FORMAT: json' "JSON logs for Vector"
expect 'GOTRUE_DB_DATABASE_URL: postgres://supabase_auth_admin' "Supabase's database settings kept"
expect 'GOTRUE_MAILER_URLPATHS_CONFIRMATION: /auth/v1/verify' "the mail URL paths kept"
expect '^      db:$' "the dependency on the database kept"
if printf '%s\n' "$auth" | grep -q -- '- wget'; then
    die "auth service: GoTrue's wget health check is still there (the image has no wget)"
fi
echo "    override OK: auth runs Latchkey with its own health check, Kong's header, JSON logs"
