-- Wrong codes typed in for a one-time token. A wrong code counts against every live token of
-- the verification's types sent to the typed-in address (the reauthentication nonce: against
-- the user's nonce); a token whose count reaches LATCHKEY_OTP_MAX_ATTEMPTS is deleted, so its
-- code dies and a new one must be requested. A new code for the same user and kind starts
-- again at zero. (GoTrue has no such count; it relies on rate limits alone.)
alter table _auth_one_time_tokens
    add column failed_attempts integer not null default 0 check (failed_attempts >= 0);
