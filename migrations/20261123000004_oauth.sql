-- OAuth sign-in (GET /authorize → provider → /callback). The flow's id is the `state` sent to
-- the provider; the callback claims the row (callback_at) before it calls the provider, so a
-- state works once even when two callbacks race. RLS is already on for _auth_flow_state.
alter table _auth_flow_state add column callback_at timestamptz;
-- GET /user/identities/authorize: the signed-in user the new identity is to be linked to.
alter table _auth_flow_state add column linking_target_id uuid references _auth_users (id) on delete cascade;
