// The admin API through supabase-js's `auth.admin` with a service_role key.
// Spec: gotrue-api.md §1.5; authjs-contract.md §2.1–§2.3 (listUsers parses the Link header).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, randomEmail, randomPassword, refreshRaw, startServer } from '../lib/server.mjs';
import { authError, ok } from '../lib/expect.mjs';

let server;
let admin;

before(async () => {
  server = await startServer({ GOTRUE_MAILER_AUTOCONFIRM: 'true' });
  admin = makeClient(server.url, server.serviceKey).auth.admin;
}, { timeout: 60_000 });

after(async () => {
  await server?.stop();
});

async function createUser(attrs = {}) {
  const email = randomEmail('admin');
  const password = randomPassword();
  const { user } = ok(await admin.createUser({ email, password, email_confirm: true, ...attrs }), 'createUser');
  return { user, email, password };
}

describe('admin users', () => {
  test('createUser, then a duplicate is email_exists', async () => {
    const { user, email } = await createUser({ user_metadata: { name: 'Ada' }, app_metadata: { plan: 'pro' } });
    assert.equal(user.email, email);
    assert.ok(user.email_confirmed_at);
    assert.equal(user.user_metadata.name, 'Ada');
    assert.equal(user.app_metadata.plan, 'pro');
    assert.equal(user.app_metadata.provider, 'email');
    const again = await admin.createUser({ email, password: randomPassword() });
    authError(again.error, { name: 'AuthApiError', status: 422, code: 'email_exists' }, 'duplicate createUser');
  });

  test('listUsers pages through users with the Link header', async () => {
    // Two full pages of its own: the test must not count on users made by the tests before it.
    for (let i = 0; i < 4; i++) await createUser();
    const first = ok(await admin.listUsers({ page: 1, perPage: 2 }), 'listUsers page 1');
    assert.equal(first.users.length, 2);
    assert.equal(first.aud, 'authenticated');
    assert.equal(first.nextPage, 2);
    assert.ok(first.lastPage >= 2, `lastPage ${first.lastPage}`);
    assert.ok(first.total >= 4, `total ${first.total}`);
    const second = ok(await admin.listUsers({ page: 2, perPage: 2 }), 'listUsers page 2');
    assert.equal(second.users.length, 2);
    const ids = new Set([...first.users, ...second.users].map((u) => u.id));
    assert.equal(ids.size, 4, 'pages do not overlap');
    const all = ok(await admin.listUsers(), 'listUsers without arguments (empty page params)');
    assert.ok(all.users.length >= 4);
  });

  test('getUserById and updateUserById (metadata, password, ban)', async () => {
    const { user, email } = await createUser();
    const fetched = ok(await admin.getUserById(user.id), 'getUserById');
    assert.equal(fetched.user.id, user.id);
    const missing = await admin.getUserById('00000000-0000-4000-8000-000000000000');
    authError(missing.error, { status: 404, code: 'user_not_found' }, 'getUserById unknown');

    const updated = ok(await admin.updateUserById(user.id, { user_metadata: { team: 'a' } }), 'update metadata');
    assert.equal(updated.user.user_metadata.team, 'a');

    const client = makeClient(server.url, server.anonKey);
    const newPassword = randomPassword();
    ok(await admin.updateUserById(user.id, { password: newPassword }), 'update password');
    const signIn = ok(await client.auth.signInWithPassword({ email, password: newPassword }), 'sign in with new password');

    ok(await admin.updateUserById(user.id, { ban_duration: '24h' }), 'ban');
    const refused = await client.auth.signInWithPassword({ email, password: newPassword });
    authError(refused.error, { status: 400, code: 'user_banned' }, 'banned sign-in');
    const res = await refreshRaw(server, signIn.session.refresh_token);
    assert.equal(res.status, 400, 'a ban ends the sessions');
    ok(await admin.updateUserById(user.id, { ban_duration: 'none' }), 'unban');
    ok(await client.auth.signInWithPassword({ email, password: newPassword }), 'sign in after unban');
  });

  test('deleteUser ends the refresh token', async () => {
    const { user, email, password } = await createUser();
    const client = makeClient(server.url, server.anonKey);
    const { session } = ok(await client.auth.signInWithPassword({ email, password }), 'sign in');
    ok(await admin.deleteUser(user.id), 'deleteUser');
    const res = await refreshRaw(server, session.refresh_token);
    assert.equal(res.status, 400);
    assert.equal(res.json.code, 'refresh_token_not_found');
    const gone = await admin.getUserById(user.id);
    authError(gone.error, { status: 404 }, 'deleted user');
  });

  test('admin signOut with the user token ends the session', async () => {
    const { email, password } = await createUser();
    const client = makeClient(server.url, server.anonKey);
    const { session } = ok(await client.auth.signInWithPassword({ email, password }), 'sign in');
    const { error } = await admin.signOut(session.access_token);
    assert.equal(error, null);
    const res = await refreshRaw(server, session.refresh_token);
    assert.equal(res.status, 400);
  });

  test('the anon key and a user token are refused', async () => {
    const asAnon = makeClient(server.url, server.anonKey).auth.admin;
    authError((await asAnon.listUsers()).error, { status: 403, code: 'not_admin' }, 'anon listUsers');
    const { email, password } = await createUser();
    const client = makeClient(server.url, server.anonKey);
    const { session } = ok(await client.auth.signInWithPassword({ email, password }), 'sign in');
    const res = await fetch(`${server.authUrl}/admin/users`, {
      headers: { apikey: server.anonKey, authorization: `Bearer ${session.access_token}` },
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error_code, 'not_admin');
  });

  test('generateLink for each type, then verifyOtp with the hashed_token', async () => {
    const known = (await createUser()).email;
    const cases = [
      { type: 'signup', email: randomEmail('gl'), password: randomPassword(), verify: 'signup' },
      { type: 'invite', email: randomEmail('gl'), verify: 'invite' },
      { type: 'magiclink', email: known, verify: 'magiclink' },
      { type: 'recovery', email: known, verify: 'recovery' },
      { type: 'email_change_new', email: (await createUser()).email, newEmail: randomEmail('gl'), verify: 'email_change' },
      { type: 'email_change_current', email: (await createUser()).email, newEmail: randomEmail('gl'), verify: 'email_change' },
    ];
    for (const c of cases) {
      const { properties, user } = ok(await admin.generateLink(c), `generateLink ${c.type}`);
      assert.equal(properties.verification_type, c.type);
      assert.ok(properties.action_link.includes(properties.hashed_token), c.type);
      assert.match(properties.email_otp, /^\d{6}$/);
      assert.equal(user.email, c.email);
      const client = makeClient(server.url, server.anonKey);
      const { session } = ok(
        await client.auth.verifyOtp({ token_hash: properties.hashed_token, type: c.verify }),
        `verifyOtp ${c.type}`,
      );
      assert.equal(session.user.email, c.newEmail ?? c.email, c.type);
    }
  });

  test('inviteUserByEmail creates an invited user', async () => {
    const email = randomEmail('invite');
    const { user } = ok(await admin.inviteUserByEmail(email, { data: { team: 'blue' } }), 'inviteUserByEmail');
    assert.equal(user.email, email);
    assert.ok(user.invited_at);
    assert.equal(user.user_metadata.team, 'blue');
    const again = await admin.createUser({ email, password: randomPassword() });
    authError(again.error, { status: 422, code: 'email_exists' }, 'the invited address is taken');
  });
});
