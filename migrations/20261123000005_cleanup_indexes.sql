-- Indexes for the piecemeal cleanup (src/db/cleanup.rs), so that its small batches find their
-- rows without scanning whole tables (GoTrue indexes the same columns). Both are partial: they
-- hold only the rows a cleanup statement can pick, which keeps them small.
--
-- Revoked refresh tokens, by when they were revoked (the parent of every rotation lands here).
create index _auth_refresh_tokens_revoked_updated_at_idx on _auth_refresh_tokens (updated_at)
    where revoked;
-- Sessions with a time box (GOTRUE_SESSIONS_TIMEBOX); the others never expire this way.
create index _auth_sessions_not_after_idx on _auth_sessions (not_after)
    where not_after is not null;
