-- What following a confirmation link approves besides the address (issue #14; see
-- src/auth/proven_address.rs). A confirmation mail goes to an address nobody has proven yet,
-- and anyone may have asked for it: the real owner, or someone who put the owner's address on
-- an account they hold. The token remembers what the request that mailed it may keep:
--
-- confirms_account: true when that request made the account as it stands (the sign-up that
--   created it, an admin, or the account's signed-in holder adding an address): the link then
--   confirms the account as it is, as GoTrue does. False when it only proves the address (a
--   magic link, an invitation of an existing account, a provider sign-in): the account is then
--   handed to the mailbox owner, and whatever nobody proved (other identities, sessions, an
--   earlier password, metadata) goes.
-- confirms_password_hash: with confirms_account false, the password the confirmation sets: the
--   one a repeated sign-up of the unconfirmed address was given. Null: none.
alter table _auth_one_time_tokens
    add column confirms_account boolean not null default false,
    add column confirms_password_hash text,
    add constraint _auth_one_time_tokens_confirms_check check (
        (token_type = 'confirmation_token' or (not confirms_account and confirms_password_hash is null))
        and not (confirms_account and confirms_password_hash is not null)
    );

-- Links mailed before this migration keep the behaviour they were sent under.
update _auth_one_time_tokens set confirms_account = true where token_type = 'confirmation_token';
