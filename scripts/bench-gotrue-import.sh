#!/usr/bin/env bash
# Times `latchkey import-gotrue --retarget` on a GoTrue database of N users (default 100 000),
# each with an email identity, a session, two v1 refresh tokens (one rotated away) and an amr
# claim, every fourth with a verified TOTP factor, plus the project's `profiles` table and
# sign-up trigger. Prints wall time and the
# importer's peak RSS (GNU time), and the load average while it ran.
#
#   CLUSTER_URL=postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres bash scripts/bench-gotrue-import.sh
#
# LATCHKEY_BIN picks the binary (default target/release/latchkey; build it with
# `cargo build --release`). The database lk_bench_gotrue_import is dropped first and left
# behind for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CLUSTER_URL:?set CLUSTER_URL to a PostgreSQL cluster URL (a superuser)}"
USERS="${USERS:-100000}"
BIN="${LATCHKEY_BIN:-target/release/latchkey}"
DB=lk_bench_gotrue_import
DB_URL="${CLUSTER_URL%/*}/$DB"

psql -q "$CLUSTER_URL" -c "drop database if exists $DB with (force)" -c "create database $DB"
psql -q -v ON_ERROR_STOP=1 "$DB_URL" -f tests/it/fixtures/gotrue_schema.sql
psql -q -v ON_ERROR_STOP=1 "$DB_URL" <<SQL
create table public.profiles (id uuid primary key references auth.users (id) on delete cascade, email text);
create function public.handle_new_user() returns trigger language plpgsql security definer set search_path = '' as \$\$
begin insert into public.profiles (id, email) values (new.id, new.email); return new; end \$\$;
create trigger on_auth_user_created after insert on auth.users for each row execute procedure public.handle_new_user();

insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
    confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data,
    raw_user_meta_data, created_at, updated_at)
select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
    'user' || n || '@example.com',
    -- One libxcrypt bcrypt hash for everyone: the import copies hashes, it never computes one.
    '\$2a\$10\$5HmCXxusfTiUNzKk8JuICe22PTvwH6B6H4DqSABSLxVSUMCynGd92', now(), '', '', '', '',
    '{"provider": "email", "providers": ["email"]}', jsonb_build_object('n', n), now(), now()
from generate_series(1, $USERS) n;
insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
select id::text, id, jsonb_build_object('sub', id, 'email', email), 'email', now(), now() from auth.users;
insert into auth.sessions (id, user_id, created_at, updated_at, aal, refreshed_at)
select gen_random_uuid(), id, now(), now(), 'aal1', now() from auth.users;
insert into auth.refresh_tokens (token, user_id, revoked, created_at, updated_at, session_id)
select substr(md5(random()::text || s.id::text || r), 1, 12), s.user_id::text, r = 1, now(), now(), s.id
from auth.sessions s, generate_series(1, 2) r;
insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
select id, now(), now(), 'password', gen_random_uuid() from auth.sessions;
-- A 160-bit base32 secret (md5's hex digits mapped into the base32 alphabet).
insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
select gen_random_uuid(), id, 'authenticator', 'totp', 'verified', now(), now(),
    upper(translate(md5(random()::text || id::text), '0189', 'wxyz'))
from auth.users where (raw_user_meta_data ->> 'n')::int % 4 = 0;
analyze;
SQL

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
DATABASE_URL="$DB_URL" /usr/bin/time -v "$BIN" import-gotrue --retarget 2> time.log | tail -3
grep -E "Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" time.log
rm -f time.log
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
psql -qtA "$DB_URL" -c "select count(*) || ' users, ' || (select count(*) from auth._auth_refresh_tokens) || ' refresh tokens, ' || (select count(*) from auth._auth_mfa_factors) || ' MFA factors in Latchkey' from auth._auth_users"
