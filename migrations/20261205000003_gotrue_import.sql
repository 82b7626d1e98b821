-- Bookkeeping of `latchkey import-gotrue` / `export-gotrue` (src/gotrue/).
--
-- Every GoTrue user the import brought in, by id, kept even after the user is deleted here: a
-- later run skips these users with their identities, sessions and refresh tokens, so running
-- the import again changes nothing, and never brings back a user, a session or an identity
-- that was deleted, signed out or unlinked through Latchkey since.
create table _auth_gotrue_imported_users (
    id uuid primary key,
    imported_at timestamptz not null default now()
);

-- One row per completed run. `--undo` compares the newest import or export with the audit
-- log, to refuse handing GoTrue back tables that miss what happened here since.
create table _auth_gotrue_runs (
    id bigserial primary key,
    kind text not null check (kind in ('import', 'export', 'undo')),
    finished_at timestamptz not null default now(),
    counts jsonb not null default '{}'::jsonb
);

-- Private like every _auth_* table (see 20261123000002_rls.sql).
alter table _auth_gotrue_imported_users enable row level security;
alter table _auth_gotrue_runs enable row level security;
