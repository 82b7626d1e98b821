-- Latchkey's core tables. Column names follow GoTrue's (auth.users, auth.identities, ...) so
-- that rows exported from a Supabase project can be copied in with one INSERT ... SELECT.
-- Tables are created unqualified: the migrator runs with search_path set to the configured
-- namespace (GOTRUE_DB_NAMESPACE, default "auth").
-- Differences from GoTrue, on purpose: one-time tokens live only in their own table (hashed),
-- so the users.*_token columns are absent; refresh tokens are stored as SHA-256 hashes.

create table _auth_users (
    instance_id uuid not null default '00000000-0000-0000-0000-000000000000',
    id uuid primary key,
    aud varchar(255) not null default '',
    role varchar(255) not null default '',
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_sent_at timestamptz,
    recovery_sent_at timestamptz,
    email_change varchar(255),
    email_change_sent_at timestamptz,
    email_change_confirm_status smallint not null default 0
        check (email_change_confirm_status between 0 and 2),
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb not null default '{}'::jsonb,
    raw_user_meta_data jsonb not null default '{}'::jsonb,
    is_super_admin boolean,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    phone text,
    phone_confirmed_at timestamptz,
    phone_change text,
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    banned_until timestamptz,
    reauthentication_sent_at timestamptz,
    is_sso_user boolean not null default false,
    deleted_at timestamptz,
    is_anonymous boolean not null default false
);

-- Emails are unique regardless of case (GoTrue lower-cases them on the way in; this also
-- protects rows imported with mixed case).
create unique index _auth_users_email_key on _auth_users (lower(email)) where is_sso_user = false;
create unique index _auth_users_phone_key on _auth_users (phone);
create index _auth_users_created_at_idx on _auth_users (created_at desc);

create table _auth_identities (
    id uuid primary key default gen_random_uuid(),
    provider_id text not null,
    user_id uuid not null references _auth_users (id) on delete cascade,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    email text generated always as (lower(identity_data ->> 'email')) stored,
    constraint _auth_identities_provider_id_provider_key unique (provider_id, provider)
);
create index _auth_identities_user_id_idx on _auth_identities (user_id);
create index _auth_identities_email_idx on _auth_identities (email);

create table _auth_sessions (
    id uuid primary key,
    user_id uuid not null references _auth_users (id) on delete cascade,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    factor_id uuid,
    aal text not null default 'aal1' check (aal in ('aal1', 'aal2', 'aal3')),
    not_after timestamptz,
    refreshed_at timestamptz,
    user_agent text,
    ip inet,
    tag text,
    -- Authentication methods of this session, newest first: [{"method","timestamp"}].
    -- (GoTrue keeps these in mfa_amr_claims; one column is enough here.)
    amr jsonb not null default '[]'::jsonb,
    -- Number of the session's current refresh token; see src/auth/refresh.rs.
    refresh_token_counter bigint not null default 0
);
create index _auth_sessions_user_id_idx on _auth_sessions (user_id);

create table _auth_refresh_tokens (
    id bigserial primary key,
    -- hex(sha256(token)); the token itself is never stored.
    token_hash text not null,
    user_id uuid not null references _auth_users (id) on delete cascade,
    session_id uuid not null references _auth_sessions (id) on delete cascade,
    counter bigint not null,
    -- token_hash of the token this one replaced.
    parent text,
    revoked boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint _auth_refresh_tokens_token_hash_key unique (token_hash)
);
create index _auth_refresh_tokens_session_idx on _auth_refresh_tokens (session_id, revoked);

create table _auth_audit_log (
    instance_id uuid not null default '00000000-0000-0000-0000-000000000000',
    id uuid primary key,
    payload json not null,
    created_at timestamptz not null default now(),
    ip_address varchar(64) not null default ''
);
create index _auth_audit_log_created_at_idx on _auth_audit_log (created_at desc);
