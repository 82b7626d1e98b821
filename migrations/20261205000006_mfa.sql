-- Multi-factor authentication: GoTrue's mfa_factors and mfa_challenges, with GoTrue's columns
-- (migrations 20221003041349 to 20250925093508), so that factors exported from a Supabase
-- project can be copied in with one INSERT ... SELECT (GoTrue's enum columns cast to text on
-- assignment).
--
-- Differences from GoTrue, on purpose:
-- - factor_type, status and aal are text with a check instead of Postgres enums, like
--   _auth_sessions.aal;
-- - no mfa_amr_claims table: a session's authentication methods are already the `amr` column
--   of _auth_sessions (newest first), which an MFA verification extends with `totp`;
-- - last_challenged_at is not unique (GoTrue's index would turn two challenges in the same
--   microsecond into a server error);
-- - last_totp_time_step (Latchkey's): the number of the last 30-second step whose TOTP code was
--   accepted, so that a code works once (RFC 6238 §5.2; GoTrue accepts a code again within
--   its window).

create table _auth_mfa_factors (
    id uuid primary key,
    user_id uuid not null references _auth_users (id) on delete cascade,
    friendly_name text,
    factor_type text not null check (factor_type in ('totp', 'webauthn', 'phone')),
    status text not null check (status in ('unverified', 'verified')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- The TOTP secret (base32), or GoTrue's encrypted-string JSON when
    -- GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT is on. Never returned after enrolment.
    secret text,
    phone text,
    last_challenged_at timestamptz,
    web_authn_credential jsonb,
    web_authn_aaguid uuid,
    last_webauthn_challenge_data jsonb,
    last_totp_time_step bigint
);
-- GoTrue's indexes, under Latchkey's own names: index names are unique per schema, and in a
-- Supabase database this schema (`auth`) also holds GoTrue's tables with GoTrue's names.
create unique index _auth_mfa_factors_user_friendly_name_unique on _auth_mfa_factors (friendly_name, user_id)
    where trim(friendly_name) <> '';
create unique index _auth_mfa_factors_user_phone_unique on _auth_mfa_factors (user_id, phone);
create index _auth_mfa_factors_user_created_at_idx on _auth_mfa_factors (user_id, created_at);
-- The cleanup of unverified factors (src/db/cleanup.rs).
create index _auth_mfa_factors_unverified_created_at_idx on _auth_mfa_factors (created_at)
    where status = 'unverified';

create table _auth_mfa_challenges (
    id uuid primary key,
    factor_id uuid not null references _auth_mfa_factors (id) on delete cascade,
    created_at timestamptz not null default now(),
    verified_at timestamptz,
    ip_address inet not null,
    otp_code text,
    web_authn_session_data jsonb
);
create index _auth_mfa_challenges_created_at_idx on _auth_mfa_challenges (created_at desc);
create index _auth_mfa_challenges_factor_id_idx on _auth_mfa_challenges (factor_id);

-- Sessions bound to a factor are downgraded when it goes (DELETE /factors/{id}).
create index _auth_sessions_factor_id_idx on _auth_sessions (factor_id) where factor_id is not null;

-- Locked down like every _auth_* table (20261123000002_rls.sql): RLS on, no policy, nothing
-- granted to the API roles.
alter table _auth_mfa_factors enable row level security;
alter table _auth_mfa_challenges enable row level security;
revoke all on table _auth_mfa_factors from public;
revoke all on table _auth_mfa_challenges from public;
do $$
declare
    r text;
begin
    foreach r in array array['anon', 'authenticated', 'service_role'] loop
        continue when not exists (select 1 from pg_roles where rolname = r);
        execute format('revoke all on table _auth_mfa_factors, _auth_mfa_challenges from %I', r);
    end loop;
end
$$;
