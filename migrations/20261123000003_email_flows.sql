-- Email flows: one-time tokens (confirmation, recovery / magic link, email change,
-- reauthentication) and PKCE flow state (also used by the OAuth flows).
--
-- GoTrue keeps each token twice, in a users.*_token column and in one_time_tokens; Latchkey keeps
-- it only here. token_hash is what the email link carries: hex(sha224(email || otp)), prefixed
-- with "pkce_" for PKCE flows. The OTP itself is never stored; an OTP typed in by the user is
-- checked by recomputing the hash. Expiry is measured from the users.*_sent_at column of the
-- token's kind, as GoTrue does.

create table _auth_one_time_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references _auth_users (id) on delete cascade,
    token_type text not null check (token_type in (
        'confirmation_token',
        'reauthentication_token',
        'recovery_token',
        'email_change_token_new',
        'email_change_token_current',
        'phone_change_token'
    )),
    token_hash text not null check (char_length(token_hash) > 0),
    -- The address the token was sent to (lower-case).
    relates_to text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint _auth_one_time_tokens_user_id_token_type_key unique (user_id, token_type)
);
create index _auth_one_time_tokens_token_hash_idx on _auth_one_time_tokens (token_hash);
create index _auth_one_time_tokens_relates_to_idx on _auth_one_time_tokens (relates_to);

create table _auth_flow_state (
    id uuid primary key,
    -- Null while an OAuth flow has not come back from the provider yet.
    user_id uuid references _auth_users (id) on delete cascade,
    -- A random UUID string handed to the client as ?code=.
    auth_code text not null,
    -- Null for implicit OAuth flows, which also get a row.
    code_challenge_method text check (code_challenge_method in ('s256', 'plain')),
    code_challenge text,
    provider_type text not null,
    provider_access_token text,
    provider_refresh_token text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- amr method of the session the exchange issues: email/signup, magiclink, recovery, invite,
    -- email_change, oauth, ...
    authentication_method text not null,
    auth_code_issued_at timestamptz,
    -- The validated redirect_to of the flow (GoTrue's column name).
    referrer text,
    invite_token text,
    constraint _auth_flow_state_auth_code_key unique (auth_code)
);
create index _auth_flow_state_user_method_idx on _auth_flow_state (user_id, authentication_method, created_at desc);
create index _auth_flow_state_created_at_idx on _auth_flow_state (created_at desc);

-- Private like every _auth_* table (see 20261123000002_rls.sql): RLS on, no policies, and no
-- grants to the API roles (new tables in this schema get none by default).
alter table _auth_one_time_tokens enable row level security;
alter table _auth_flow_state enable row level security;
