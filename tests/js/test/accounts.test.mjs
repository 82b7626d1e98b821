// Accounts and sessions through the real supabase-js client (autoconfirm on, anonymous on,
// refresh-token reuse interval 10 s). Spec: gotrue-api.md §1.1, §2, §3.2, §4.1, §5.3–5.4;
// authjs-contract.md §1.3–1.5, §2, §2.2, §5, §6.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeJwt,
  makeClient,
  randomEmail,
  randomPassword,
  refreshRaw,
  request,
  show,
  startServer,
  verifyJwtSignature,
} from '../lib/server.mjs';
import { authError, ok, status } from '../lib/expect.mjs';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let srv;

before(async () => {
  srv = await startServer({
    GOTRUE_MAILER_AUTOCONFIRM: 'true',
    GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED: 'true',
    GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL: '10',
  });
}, { timeout: 60_000 });

after(async () => {
  await srv?.stop();
});

const client = () => makeClient(srv.url, srv.anonKey);

/** A fresh client signed up (and thus signed in) as a new user. */
async function signedUp(extra = {}) {
  const c = client();
  const email = randomEmail(extra.prefix ?? 'acct');
  const password = randomPassword();
  const data = ok(await c.auth.signUp({ email, password, options: { data: extra.data ?? {} } }), 'signUp');
  assert.ok(data.session, `signUp with autoconfirm should return a session, got ${show(data)}`);
  return { c, email, password, user: data.user, session: data.session };
}

/** Another fresh client signed in as an existing user (a second session). */
async function signedIn(email, password) {
  const c = client();
  const data = ok(await c.auth.signInWithPassword({ email, password }), 'signInWithPassword');
  return { c, session: data.session, user: data.user };
}

/** Asserts a raw refresh with `token` is rejected as a 4xx with one of `codes`. */
async function assertRefreshRejected(token, codes, what) {
  const res = await refreshRaw(srv, token);
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected a 4xx refresh failure, got ${res.status} ${res.text}`);
  if (codes) assert.ok(codes.includes(res.json?.code), `${what}: expected code in ${codes}, got ${res.text}`);
  return res;
}

async function assertRefreshWorks(token, what) {
  const res = status(await refreshRaw(srv, token), 200, what);
  assert.equal(typeof res.json?.refresh_token, 'string', `${what}: ${res.text}`);
  return res.json;
}

describe('signUp', () => {
  test('returns a session and the user (email lower-cased, metadata, email identity)', async () => {
    const c = client();
    const email = randomEmail('Mixed.Case').replace('@example.com', '@Example.COM');
    const password = randomPassword();
    const { data, error } = await c.auth.signUp({ email, password, options: { data: { name: 'Ada', n: 1 } } });
    assert.equal(error, null, `signUp error: ${show(error)}`);

    const { user, session } = data;
    assert.ok(session, 'autoconfirm signUp must return a session');
    assert.equal(typeof session.access_token, 'string');
    assert.equal(typeof session.refresh_token, 'string');
    assert.ok(session.refresh_token.length >= 12, `refresh token ${session.refresh_token}`);
    assert.equal(session.token_type, 'bearer');
    assert.ok(session.expires_in > 0, `expires_in ${session.expires_in}`);
    assert.equal(typeof session.expires_at, 'number');

    assert.match(user.id, UUID);
    assert.equal(user.email, email.toLowerCase());
    assert.equal(user.aud, 'authenticated');
    assert.equal(user.role, 'authenticated');
    assert.equal(user.phone, '', 'phone is "" when absent');
    assert.equal(user.is_anonymous, false);
    assert.ok(user.email_confirmed_at, 'autoconfirm sets email_confirmed_at');
    assert.ok(user.confirmed_at, 'confirmed_at');
    assert.ok(user.created_at && user.updated_at, 'timestamps');
    assert.equal(user.user_metadata.name, 'Ada', `user_metadata ${show(user.user_metadata)}`);
    assert.equal(user.user_metadata.n, 1, `user_metadata ${show(user.user_metadata)}`);
    assert.equal(user.app_metadata.provider, 'email', `app_metadata ${show(user.app_metadata)}`);
    assert.deepEqual(user.app_metadata.providers, ['email']);

    assert.equal(user.identities?.length, 1, `identities ${show(user.identities)}`);
    const [identity] = user.identities;
    assert.equal(identity.provider, 'email');
    assert.equal(identity.user_id, user.id);
    assert.equal(identity.id, user.id, 'email identity: id (provider_id) is the user id');
    assert.match(identity.identity_id, UUID, 'identity_id is the identities row uuid');
    assert.equal(identity.email, email.toLowerCase());
    assert.equal(identity.identity_data?.email, email.toLowerCase(), `identity_data ${show(identity.identity_data)}`);
    assert.equal(identity.identity_data?.sub, user.id);

    assert.deepEqual(session.user, user, 'session.user is the returned user');
    const stored = ok(await c.auth.getSession(), 'getSession').session;
    assert.equal(stored?.access_token, session.access_token, 'session persisted in storage');
  });

  test('duplicate email → 422 user_already_exists', async () => {
    const { email } = await signedUp();
    const { data, error } = await client().auth.signUp({ email: email.toUpperCase(), password: randomPassword() });
    authError(error, { name: 'AuthApiError', status: 422, code: 'user_already_exists' }, 'duplicate signUp');
    assert.equal(data.session, null);
    assert.equal(data.user, null);
  });

  test('weak password → AuthWeakPasswordError with reasons ["length"]', async () => {
    const { data, error } = await client().auth.signUp({ email: randomEmail('weak'), password: '12345' });
    authError(error, { name: 'AuthWeakPasswordError', status: 422, code: 'weak_password' }, 'weak signUp');
    assert.ok(Array.isArray(error.reasons) && error.reasons.includes('length'), `reasons ${show(error.reasons)}`);
    assert.equal(data.session, null);
  });

  test('missing password → 4xx, no user created', async () => {
    const email = randomEmail('nopw');
    const { error } = await client().auth.signUp({ email, password: '' });
    authError(error, { statusClass: 4 }, 'signUp without password');
    const { error: e2 } = await client().auth.signInWithPassword({ email, password: 'whatever-123' });
    authError(e2, { status: 400, code: 'invalid_credentials' }, 'sign in after failed signUp');
  });
});

describe('signInWithPassword', () => {
  test('signs in; email is matched case-insensitively', async () => {
    const { email, password, user } = await signedUp();
    const c = client();
    const data = ok(await c.auth.signInWithPassword({ email: email.toUpperCase(), password }), 'signIn');
    assert.equal(data.user.id, user.id);
    assert.equal(data.session.user.id, user.id);
    assert.ok(data.user.last_sign_in_at, 'last_sign_in_at');
    assert.equal(data.session.token_type, 'bearer');
    assert.equal(data.weakPassword ?? undefined, undefined, 'no weak_password for a good password');
  });

  test('wrong password and unknown email → 400 invalid_credentials, same message', async () => {
    const { email } = await signedUp();
    const wrong = await client().auth.signInWithPassword({ email, password: 'not-the-password' });
    authError(wrong.error, { name: 'AuthApiError', status: 400, code: 'invalid_credentials' }, 'wrong password');
    const unknown = await client().auth.signInWithPassword({ email: randomEmail('nobody'), password: 'whatever-123' });
    authError(unknown.error, { name: 'AuthApiError', status: 400, code: 'invalid_credentials' }, 'unknown email');
    assert.equal(wrong.error.message, unknown.error.message, 'no account enumeration through the message');
    assert.equal(wrong.data.session, null);
  });

  test('access token claims (HS256, signed with GOTRUE_JWT_SECRET)', async () => {
    const { email, password, user } = await signedUp({ data: { color: 'blue' } });
    const before = Math.floor(Date.now() / 1000);
    const { session } = ok(await client().auth.signInWithPassword({ email, password }), 'signIn');
    const { header, payload } = decodeJwt(session.access_token);

    assert.equal(header.alg, 'HS256');
    assert.equal(header.typ, 'JWT');
    assert.ok(verifyJwtSignature(session.access_token, srv.jwtSecret), 'signature must verify with the test secret');

    assert.equal(payload.aud, 'authenticated', `aud must be the string "authenticated": ${show(payload.aud)}`);
    assert.equal(payload.role, 'authenticated');
    assert.equal(payload.sub, user.id);
    assert.equal(payload.email, email);
    assert.equal(payload.phone, '');
    assert.match(String(payload.session_id), UUID, `session_id ${payload.session_id}`);
    assert.equal(payload.aal, 'aal1');
    assert.ok(Array.isArray(payload.amr) && payload.amr.length >= 1, `amr ${show(payload.amr)}`);
    assert.equal(payload.amr[0].method, 'password', `amr ${show(payload.amr)}`);
    assert.equal(typeof payload.amr[0].timestamp, 'number', `amr ${show(payload.amr)}`);
    assert.equal(payload.is_anonymous, false);
    assert.equal(payload.exp - payload.iat, 3600, `exp - iat = ${payload.exp - payload.iat}`);
    assert.ok(Math.abs(payload.iat - before) <= 5, `iat ${payload.iat} vs now ${before}`);
    assert.equal(payload.app_metadata?.provider, 'email', `app_metadata ${show(payload.app_metadata)}`);
    assert.equal(payload.user_metadata?.color, 'blue', `user_metadata ${show(payload.user_metadata)}`);

    assert.equal(session.expires_at, payload.exp, 'expires_at equals the JWT exp');
    assert.ok(Math.abs(session.expires_in - 3600) <= 5, `expires_in ${session.expires_in}`);
  });
});

describe('anonymous sign-in', () => {
  test('signInAnonymously → session for an anonymous user', async () => {
    const c = client();
    const data = ok(await c.auth.signInAnonymously({ options: { data: { guest: true } } }), 'signInAnonymously');
    assert.ok(data.session, 'session');
    assert.equal(data.user.is_anonymous, true);
    assert.equal(data.user.email, '', 'anonymous users have email ""');
    assert.equal(data.user.role, 'authenticated');
    assert.equal(data.user.user_metadata.guest, true, `user_metadata ${show(data.user.user_metadata)}`);
    assert.deepEqual(data.user.identities ?? [], [], 'anonymous users have no identities');

    const { payload } = decodeJwt(data.session.access_token);
    assert.equal(payload.is_anonymous, true);
    assert.equal(payload.role, 'authenticated');
    assert.equal(payload.amr?.[0]?.method, 'anonymous', `amr ${show(payload.amr)}`);

    const user = ok(await c.auth.getUser(), 'getUser (anonymous)').user;
    assert.equal(user.id, data.user.id);
    assert.equal(user.is_anonymous, true);
  });
});

describe('user', () => {
  test('getSession (local) and getUser (server) return the signed-in user', async () => {
    const { c, user, session } = await signedUp();
    const s = ok(await c.auth.getSession(), 'getSession').session;
    assert.equal(s.access_token, session.access_token);
    assert.equal(s.user.id, user.id);
    const u = ok(await c.auth.getUser(), 'getUser').user;
    assert.equal(u.id, user.id);
    assert.equal(u.email, user.email);
    assert.equal(u.identities?.length, 1);
  });

  test('getUser without a session → AuthSessionMissingError (no request)', async () => {
    const { error } = await client().auth.getUser();
    authError(error, { name: 'AuthSessionMissingError' }, 'getUser with no session');
  });

  test('GET /user with the anon key as bearer → 403 bad_jwt (no sub)', async () => {
    const res = await request(srv.authUrl, '/user', { apikey: srv.anonKey, token: srv.anonKey, apiVersion: '2024-01-01' });
    status(res, 403, 'GET /user with anon key');
    assert.equal(res.json?.code, 'bad_jwt', res.text);
  });

  test('GET /user without Authorization → 401 no_authorization', async () => {
    const res = await request(srv.authUrl, '/user', { apikey: srv.anonKey, apiVersion: '2024-01-01' });
    status(res, 401, 'GET /user without bearer');
    assert.equal(res.json?.code, 'no_authorization', res.text);
  });

  test('updateUser merges user_metadata; null deletes a key', async () => {
    const { c } = await signedUp({ data: { keep: 'me' } });
    const u1 = ok(await c.auth.updateUser({ data: { a: 1, b: 2 } }), 'updateUser a,b').user;
    assert.equal(u1.user_metadata.a, 1);
    assert.equal(u1.user_metadata.b, 2);
    assert.equal(u1.user_metadata.keep, 'me', `shallow merge keeps existing keys: ${show(u1.user_metadata)}`);
    const u2 = ok(await c.auth.updateUser({ data: { b: null } }), 'updateUser b:null').user;
    assert.equal(u2.user_metadata.a, 1, `user_metadata ${show(u2.user_metadata)}`);
    assert.ok(!('b' in u2.user_metadata), `b should be deleted: ${show(u2.user_metadata)}`);
    const stored = ok(await c.auth.getSession(), 'getSession').session;
    assert.equal(stored.user.user_metadata.a, 1, 'stored session.user was replaced');
    const fresh = ok(await c.auth.getUser(), 'getUser').user;
    assert.deepEqual(fresh.user_metadata, u2.user_metadata, 'metadata persisted');
  });

  test('updateUser with the same password → 422 same_password', async () => {
    const { c, password } = await signedUp();
    const { error } = await c.auth.updateUser({ password });
    authError(error, { name: 'AuthApiError', status: 422, code: 'same_password' }, 'same password');
  });

  test('updateUser with a weak password → AuthWeakPasswordError', async () => {
    const { c } = await signedUp();
    const { error } = await c.auth.updateUser({ password: 'abc' });
    authError(error, { name: 'AuthWeakPasswordError', status: 422, code: 'weak_password' }, 'weak new password');
  });

  test('updateUser password: new one works, old one fails, other sessions are signed out', async () => {
    const { c, email, password, session } = await signedUp();
    const other = await signedIn(email, password);
    const next = randomPassword();
    ok(await c.auth.updateUser({ password: next }), 'updateUser password');

    ok(await client().auth.signInWithPassword({ email, password: next }), 'sign in with the new password');
    const old = await client().auth.signInWithPassword({ email, password });
    authError(old.error, { status: 400, code: 'invalid_credentials' }, 'sign in with the old password');

    await assertRefreshRejected(other.session.refresh_token, null, 'other session after a password change');
    await assertRefreshWorks(session.refresh_token, 'the session that changed the password');
  });

  test('PUT /user with app_metadata as a user → 403 not_admin', async () => {
    const { session } = await signedUp();
    const res = await request(srv.authUrl, '/user', {
      method: 'PUT',
      body: { app_metadata: { role: 'admin' } },
      apikey: srv.anonKey,
      token: session.access_token,
      apiVersion: '2024-01-01',
    });
    status(res, 403, 'PUT /user app_metadata');
    assert.equal(res.json?.code, 'not_admin', res.text);
  });
});

describe('refresh tokens', () => {
  test('refreshSession rotates the refresh token, keeps the session id', async () => {
    const { c, session } = await signedUp();
    const data = ok(await c.auth.refreshSession(), 'refreshSession');
    assert.notEqual(data.session.refresh_token, session.refresh_token, 'a new refresh token');
    assert.equal(data.user.id, session.user.id);
    assert.equal(
      decodeJwt(data.session.access_token).payload.session_id,
      decodeJwt(session.access_token).payload.session_id,
      'same session',
    );
    const stored = ok(await c.auth.getSession(), 'getSession').session;
    assert.equal(stored.refresh_token, data.session.refresh_token, 'stored session updated');
  });

  test('replaying the just-rotated token returns the current token (lost-response recovery)', async () => {
    const { session } = await signedUp();
    const r0 = session.refresh_token;
    const first = await assertRefreshWorks(r0, 'refresh r0');
    const r1 = first.refresh_token;
    assert.notEqual(r1, r0);

    const replay = await assertRefreshWorks(r0, 'replay r0 right away');
    assert.equal(replay.refresh_token, r1, 'the replay hands back the active token r1');
    assert.equal(typeof replay.access_token, 'string');
    assert.equal(replay.user?.id, session.user.id, 'token response carries the user');

    const second = await assertRefreshWorks(r1, 'r1 still works after the replay');
    assert.notEqual(second.refresh_token, r1);
  });

  test('a revoked ancestor inside the reuse interval (10 s) still refreshes', async () => {
    const { session } = await signedUp();
    const r0 = session.refresh_token;
    const r1 = (await assertRefreshWorks(r0, 'refresh r0')).refresh_token;
    const r2 = (await assertRefreshWorks(r1, 'refresh r1')).refresh_token;
    const again = await assertRefreshWorks(r0, 'replay r0 within the reuse interval');
    assert.equal(typeof again.refresh_token, 'string');
    await assertRefreshWorks(r2, 'r2 unaffected');
  });

  test('unknown refresh token → 400 refresh_token_not_found', async () => {
    const res = await refreshRaw(srv, 'abcdefghijkl');
    status(res, 400, 'refresh with an unknown token');
    assert.equal(res.json?.code, 'refresh_token_not_found', res.text);
  });

  test('empty refresh_token → 400 OAuth-style {error: "invalid_request"} (in both API versions)', async () => {
    for (const apiVersion of [undefined, '2024-01-01']) {
      const res = await request(srv.authUrl, '/token?grant_type=refresh_token', {
        body: { refresh_token: '' },
        apikey: srv.anonKey,
        apiVersion,
      });
      status(res, 400, `refresh with an empty token (api version ${apiVersion ?? 'none'})`);
      assert.equal(res.json?.error, 'invalid_request', res.text);
      assert.equal(typeof res.json?.error_description, 'string', res.text);
    }
  });

  test('supabase-js refreshSession({refresh_token}) with an unknown token → AuthApiError 400', async () => {
    const { error } = await client().auth.refreshSession({ refresh_token: 'zzzzzzzzzzzz' });
    authError(error, { name: 'AuthApiError', status: 400, code: 'refresh_token_not_found' }, 'bad refresh');
  });

  test('setSession({access_token, refresh_token}) adopts a session in a fresh client', async () => {
    const { session, user } = await signedUp();
    const c = client();
    const events = [];
    c.auth.onAuthStateChange((event) => events.push(event));
    const data = ok(
      await c.auth.setSession({ access_token: session.access_token, refresh_token: session.refresh_token }),
      'setSession',
    );
    assert.equal(data.user.id, user.id);
    assert.equal(data.session.access_token, session.access_token);
    assert.ok(events.includes('SIGNED_IN'), `events ${events}`);
    const u = ok(await c.auth.getUser(), 'getUser after setSession').user;
    assert.equal(u.id, user.id);
    ok(await c.auth.refreshSession(), 'refresh after setSession');
  });
});

describe('refresh token reuse detection (reuse interval 0)', () => {
  let strict;
  before(async () => {
    strict = await startServer({
      GOTRUE_MAILER_AUTOCONFIRM: 'true',
      GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL: '0',
    });
  }, { timeout: 60_000 });
  after(async () => {
    await strict?.stop();
  });

  test('reusing an old revoked token → 400 refresh_token_already_used, and the family is revoked', async () => {
    const c = makeClient(strict.url, strict.anonKey);
    const { session } = ok(await c.auth.signUp({ email: randomEmail('reuse'), password: randomPassword() }), 'signUp');
    const r0 = session.refresh_token;
    const step = async (t, what) => {
      const res = status(await refreshRaw(strict, t), 200, what);
      return res.json.refresh_token;
    };
    const r1 = await step(r0, 'refresh r0');
    const r2 = await step(r1, 'refresh r1');

    const reuse = await refreshRaw(strict, r0);
    status(reuse, 400, 'reuse r0 (its child r1 is no longer active)');
    assert.equal(reuse.json?.code, 'refresh_token_already_used', reuse.text);

    const after = await refreshRaw(strict, r2);
    assert.ok(after.status >= 400 && after.status < 500, `r2 must be revoked after reuse detection: ${after.status} ${after.text}`);
  });
});

describe('signOut', () => {
  const GONE = ['refresh_token_not_found', 'session_not_found'];

  test("scope 'local' ends only this session", async () => {
    const a = await signedUp();
    const b = await signedIn(a.email, a.password);
    const res = await a.c.auth.signOut({ scope: 'local' });
    assert.equal(res.error, null, `signOut local: ${show(res.error)}`);
    assert.equal(ok(await a.c.auth.getSession(), 'getSession').session, null, 'local session removed');

    await assertRefreshRejected(a.session.refresh_token, GONE, "signed-out session's refresh token");
    const me = await request(srv.authUrl, '/user', {
      apikey: srv.anonKey,
      token: a.session.access_token,
      apiVersion: '2024-01-01',
    });
    status(me, 403, "GET /user with the signed-out session's access token");
    assert.equal(me.json?.code, 'session_not_found', me.text);

    await assertRefreshWorks(b.session.refresh_token, 'the other session keeps working');
  });

  test("scope 'others' ends the other sessions and keeps this one", async () => {
    const a = await signedUp();
    const b = await signedIn(a.email, a.password);
    const c = await signedIn(a.email, a.password);
    const res = await a.c.auth.signOut({ scope: 'others' });
    assert.equal(res.error, null, `signOut others: ${show(res.error)}`);

    assert.ok(ok(await a.c.auth.getSession(), 'getSession').session, 'this session is kept locally');
    ok(await a.c.auth.getUser(), 'getUser on the kept session');
    ok(await a.c.auth.refreshSession(), 'refresh on the kept session');

    await assertRefreshRejected(b.session.refresh_token, GONE, 'other session b');
    await assertRefreshRejected(c.session.refresh_token, GONE, 'other session c');
    const { error } = await b.c.auth.refreshSession();
    assert.ok(error, 'b can no longer refresh');
    assert.ok(error.status >= 400 && error.status < 500, `b refresh error must be 4xx: ${show(error)}`);
  });

  test('global (default) ends every session of the user', async () => {
    const a = await signedUp();
    const b = await signedIn(a.email, a.password);
    const stranger = await signedUp();
    const res = await a.c.auth.signOut();
    assert.equal(res.error, null, `signOut: ${show(res.error)}`);
    assert.equal(ok(await a.c.auth.getSession(), 'getSession').session, null, 'local session removed');

    await assertRefreshRejected(a.session.refresh_token, GONE, "a's refresh token");
    await assertRefreshRejected(b.session.refresh_token, GONE, "b's refresh token");

    const { error: userErr } = await b.c.auth.getUser();
    assert.ok(userErr, "b's access token no longer resolves to a session");
    assert.ok(
      userErr.name === 'AuthSessionMissingError' ||
        (userErr.name === 'AuthApiError' && userErr.status >= 400 && userErr.status < 500),
      `getUser after global sign-out: ${show(userErr)}`,
    );
    const { error: refreshErr } = await b.c.auth.refreshSession();
    assert.ok(refreshErr, 'b cannot refresh');
    assert.ok(
      refreshErr.name === 'AuthSessionMissingError' ||
        (refreshErr.name === 'AuthApiError' && refreshErr.status >= 400 && refreshErr.status < 500),
      `refresh after global sign-out: ${show(refreshErr)}`,
    );

    await assertRefreshWorks(stranger.session.refresh_token, "another user's session is untouched");
  });

  test('POST /logout answers 204; unknown scope → 400 validation_failed', async () => {
    const a = await signedUp();
    const bad = await request(srv.authUrl, '/logout?scope=everything', {
      method: 'POST',
      apikey: srv.anonKey,
      token: a.session.access_token,
      apiVersion: '2024-01-01',
    });
    status(bad, 400, 'logout with unknown scope');
    assert.equal(bad.json?.code, 'validation_failed', bad.text);
    const res = await request(srv.authUrl, '/logout?scope=local', {
      method: 'POST',
      apikey: srv.anonKey,
      token: a.session.access_token,
      headers: { 'content-type': 'application/json;charset=UTF-8' },
    });
    status(res, 204, 'logout local');
  });
});

describe('onAuthStateChange', () => {
  test('sees SIGNED_IN, TOKEN_REFRESHED, USER_UPDATED, SIGNED_OUT', async () => {
    const { email, password } = await signedUp();
    const c = client();
    const events = [];
    const { data } = c.auth.onAuthStateChange((event, session) => {
      events.push([event, session?.user?.id ?? null]);
    });
    await new Promise((r) => setTimeout(r, 20));

    const { user } = ok(await c.auth.signInWithPassword({ email, password }), 'signIn');
    ok(await c.auth.refreshSession(), 'refreshSession');
    ok(await c.auth.updateUser({ data: { seen: true } }), 'updateUser');
    assert.equal((await c.auth.signOut()).error, null, 'signOut');
    await new Promise((r) => setTimeout(r, 20));
    data.subscription.unsubscribe();

    const names = events.map(([e]) => e).filter((e) => e !== 'INITIAL_SESSION');
    assert.deepEqual(names, ['SIGNED_IN', 'TOKEN_REFRESHED', 'USER_UPDATED', 'SIGNED_OUT'], `events ${show(events)}`);
    for (const [e, id] of events) {
      if (e === 'SIGNED_IN' || e === 'TOKEN_REFRESHED' || e === 'USER_UPDATED') assert.equal(id, user.id, e);
      if (e === 'SIGNED_OUT') assert.equal(id, null);
    }
  });
});
