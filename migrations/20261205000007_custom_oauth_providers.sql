-- Custom OAuth 2 / OpenID Connect providers, added through /admin/custom-providers (GoTrue's
-- 20260219120000_add_custom_oauth_providers and 20260625000000_add_custom_claims_allowlist,
-- columns and names alike, so rows copy over with one INSERT ... SELECT). The identifier keeps
-- its `custom:` prefix, as in GoTrue.
--
-- Two deliberate differences: GoTrue's checks that every URL starts with https:// are left out,
-- because Latchkey's server-side-request-forgery rules (https only, public addresses only, also
-- after DNS resolution) live in the code, where LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS can
-- relax them for local fakes; and client_secret is stored as given (GoTrue encrypts it only
-- with GOTRUE_SECURITY_DB_ENCRYPTION, which Latchkey does not have): like every _auth_* table,
-- this one is closed to the API roles.
create table _auth_custom_oauth_providers (
    id uuid not null default gen_random_uuid(),
    provider_type text not null check (provider_type in ('oauth2', 'oidc')),
    identifier text not null,
    name text not null,
    client_id text not null,
    client_secret text not null,
    acceptable_client_ids text[] not null default '{}',
    scopes text[] not null default '{}',
    pkce_enabled boolean not null default true,
    attribute_mapping jsonb not null default '{}',
    authorization_params jsonb not null default '{}',
    enabled boolean not null default true,
    email_optional boolean not null default false,
    issuer text null,
    discovery_url text null,
    skip_nonce_check boolean not null default false,
    cached_discovery jsonb null,
    discovery_cached_at timestamptz null,
    authorization_url text null,
    token_url text null,
    userinfo_url text null,
    jwks_uri text null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    custom_claims_allowlist text[] not null default '{}',
    constraint _auth_custom_oauth_providers_pkey primary key (id),
    constraint _auth_custom_oauth_providers_identifier_key unique (identifier),
    constraint _auth_custom_oauth_providers_oidc_requires_issuer check (
        provider_type != 'oidc' or issuer is not null
    ),
    constraint _auth_custom_oauth_providers_oauth2_requires_endpoints check (
        provider_type != 'oauth2' or (
            authorization_url is not null and token_url is not null and userinfo_url is not null
        )
    ),
    constraint _auth_custom_oauth_providers_identifier_format check (
        identifier ~ '^[a-z0-9][a-z0-9:-]{0,48}[a-z0-9]$'
    ),
    constraint _auth_custom_oauth_providers_name_length check (
        char_length(name) >= 1 and char_length(name) <= 100
    ),
    constraint _auth_custom_oauth_providers_url_lengths check (
        char_length(coalesce(issuer, '')) <= 2048
        and char_length(coalesce(discovery_url, '')) <= 2048
        and char_length(coalesce(authorization_url, '')) <= 2048
        and char_length(coalesce(token_url, '')) <= 2048
        and char_length(coalesce(userinfo_url, '')) <= 2048
        and char_length(coalesce(jwks_uri, '')) <= 2048
    ),
    constraint _auth_custom_oauth_providers_client_id_length check (
        char_length(client_id) >= 1 and char_length(client_id) <= 512
    )
);
create index _auth_custom_oauth_providers_created_at_idx on _auth_custom_oauth_providers (created_at);

-- Private like every _auth_* table (see 20261123000002_rls.sql).
alter table _auth_custom_oauth_providers enable row level security;

-- PKCE towards the provider (X, custom providers with pkce_enabled): the verifier of the flow,
-- sent with the code exchange. GoTrue keeps it in a table of its own (oauth_client_states);
-- here it lives and expires with the flow it belongs to.
alter table _auth_flow_state add column provider_code_verifier text;
