-- A table readable only after MFA: Supabase's "enforce MFA" pattern, unchanged on Latchkey.
-- Access tokens carry the session's assurance level in `aal` (`aal1` after a password,
-- `aal2` once a TOTP code was verified on the session), and auth.jwt() exposes the claims
-- PostgREST (or latchkey::rls) sets for the request. tests/it/mfa/rls.rs runs this file.

create table if not exists public.payslips (
    id uuid primary key default gen_random_uuid(),
    owner uuid not null default auth.uid(),
    amount_cents bigint not null
);
alter table public.payslips enable row level security;

-- Who may see a row: its owner...
drop policy if exists "owners read their payslips" on public.payslips;
create policy "owners read their payslips" on public.payslips
    for select to authenticated
    using (owner = auth.uid());

-- ...and only from a session that passed MFA. Restrictive: it must hold as well as the policy
-- above, whatever permissive policies are added later.
drop policy if exists "only after mfa" on public.payslips;
create policy "only after mfa" on public.payslips
    as restrictive
    for all to authenticated
    using ((select auth.jwt() ->> 'aal') = 'aal2');

grant select on public.payslips to authenticated;
