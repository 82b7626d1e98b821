// Email confirmation required (autoconfirm off), signups disabled, anonymous sign-ins disabled.
// Spec: gotrue-api.md §1.1 (POST /signup, /token), §3.2, §8 (GOTRUE_SMTP_MAX_FREQUENCY);
// authjs-contract.md §2, §5.3.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, randomEmail, randomPassword, show, sleep, startServer } from '../lib/server.mjs';
import { authError, ok } from '../lib/expect.mjs';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_FREQUENCY_S = 2;

let confirm; // autoconfirm off, anonymous off; no SMTP configured ⇒ mail is dropped
let closed; // GOTRUE_DISABLE_SIGNUP=true

before(async () => {
  const results = await Promise.allSettled([
    startServer({
      GOTRUE_MAILER_AUTOCONFIRM: 'false',
      GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED: 'false',
      GOTRUE_SMTP_MAX_FREQUENCY: `${MAX_FREQUENCY_S}s`,
      GOTRUE_RATE_LIMIT_EMAIL_SENT: '1000',
    }),
    startServer({ GOTRUE_DISABLE_SIGNUP: 'true' }),
  ]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(results.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop()));
    throw failed.reason;
  }
  [confirm, closed] = results.map((r) => r.value);
}, { timeout: 90_000 });

after(async () => {
  await Promise.all([confirm?.stop(), closed?.stop()]);
});

describe('signup with email confirmation', () => {
  test('signUp → user without a session', async () => {
    const email = randomEmail('confirm');
    const c = makeClient(confirm.url, confirm.anonKey);
    const { data, error } = await c.auth.signUp({ email, password: randomPassword(), options: { data: { x: 1 } } });
    assert.equal(error, null, `signUp: ${show(error)}`);
    assert.equal(data.session, null, 'no session before confirmation');
    assert.ok(data.user, 'the bare user object comes back');
    assert.match(data.user.id, UUID);
    assert.equal(data.user.email, email);
    assert.equal(data.user.aud, 'authenticated');
    assert.equal(data.user.role, 'authenticated');
    assert.ok(!data.user.email_confirmed_at, `email_confirmed_at must be unset: ${data.user.email_confirmed_at}`);
    assert.ok(data.user.confirmation_sent_at, 'confirmation_sent_at is set');
    assert.equal(data.user.user_metadata?.x, 1, `user_metadata ${show(data.user.user_metadata)}`);
    assert.equal(data.user.identities?.length, 1, `identities ${show(data.user.identities)}`);
    assert.equal(ok(await c.auth.getSession(), 'getSession').session, null, 'nothing stored');
  });

  test('signing in before confirming → 400 email_not_confirmed', async () => {
    const email = randomEmail('unconfirmed');
    const password = randomPassword();
    const c = makeClient(confirm.url, confirm.anonKey);
    ok(await c.auth.signUp({ email, password }), 'signUp');
    const { data, error } = await c.auth.signInWithPassword({ email, password });
    authError(error, { name: 'AuthApiError', status: 400, code: 'email_not_confirmed' }, 'sign in unconfirmed');
    assert.equal(data.session, null);
  });

  test('wrong password for an unconfirmed user is still invalid_credentials', async () => {
    const email = randomEmail('unconfirmed-wrong');
    const c = makeClient(confirm.url, confirm.anonKey);
    ok(await c.auth.signUp({ email, password: randomPassword() }), 'signUp');
    const { error } = await c.auth.signInWithPassword({ email, password: 'not-the-password' });
    authError(error, { status: 400, code: 'invalid_credentials' }, 'wrong password, unconfirmed user');
  });

  test('signing up an unconfirmed email again within GOTRUE_SMTP_MAX_FREQUENCY → 429 over_email_send_rate_limit', async () => {
    // The repeat sign-up re-sends the confirmation mail, which is subject to the per-user frequency limit.
    const email = randomEmail('again-quick');
    const c = makeClient(confirm.url, confirm.anonKey);
    ok(await c.auth.signUp({ email, password: randomPassword() }), 'first signUp');
    const quick = await c.auth.signUp({ email, password: randomPassword() });
    authError(quick.error, { status: 429, code: 'over_email_send_rate_limit' }, 'immediate repeat signUp');
  });

  test('signing up an unconfirmed email again after the frequency window → 200, confirmation re-sent', async () => {
    const email = randomEmail('again');
    const c = makeClient(confirm.url, confirm.anonKey);
    const first = ok(await c.auth.signUp({ email, password: randomPassword() }), 'first signUp').user;

    await sleep(MAX_FREQUENCY_S * 1000 + 200);
    const { data, error } = await c.auth.signUp({ email, password: randomPassword() });
    assert.equal(error, null, `repeat signUp after the frequency window: ${show(error)}`);
    assert.equal(data.session, null);
    assert.ok(data.user, 'a user object comes back');
    assert.equal(data.user.email, email);
    assert.ok(
      Date.parse(data.user.confirmation_sent_at) > Date.parse(first.confirmation_sent_at),
      `confirmation_sent_at should move forward: ${first.confirmation_sent_at} → ${data.user.confirmation_sent_at}`,
    );
  });

  test('signing up an already confirmed email → 200 with an obfuscated user (no enumeration)', async () => {
    const email = randomEmail('taken');
    const password = randomPassword();
    const admin = makeClient(confirm.url, confirm.serviceKey);
    const created = ok(
      await admin.auth.admin.createUser({ email, password, email_confirm: true }),
      'admin.createUser',
    ).user;
    assert.ok(created.email_confirmed_at, 'admin-created user is confirmed');

    const c = makeClient(confirm.url, confirm.anonKey);
    const { data, error } = await c.auth.signUp({ email, password: randomPassword() });
    assert.equal(error, null, `signUp of a taken email must not fail: ${show(error)}`);
    assert.equal(data.session, null);
    assert.ok(data.user, 'a (fake) user object comes back');
    assert.notEqual(data.user.id, created.id, 'the real user id is not revealed');
    assert.deepEqual(data.user.identities, [], 'obfuscated user has identities: []');

    // the real account is untouched
    const signIn = ok(await makeClient(confirm.url, confirm.anonKey).auth.signInWithPassword({ email, password }), 'signIn');
    assert.equal(signIn.user.id, created.id);
  });

  test('anonymous sign-ins disabled → 422 anonymous_provider_disabled', async () => {
    const { data, error } = await makeClient(confirm.url, confirm.anonKey).auth.signInAnonymously();
    authError(error, { name: 'AuthApiError', status: 422, code: 'anonymous_provider_disabled' }, 'signInAnonymously');
    assert.equal(data.session, null);
  });
});

describe('signups disabled', () => {
  test('signUp → 422 signup_disabled', async () => {
    const { data, error } = await makeClient(closed.url, closed.anonKey).auth.signUp({
      email: randomEmail('closed'),
      password: randomPassword(),
    });
    authError(error, { name: 'AuthApiError', status: 422, code: 'signup_disabled' }, 'signUp with signups disabled');
    assert.equal(data.user, null);
  });

  test('existing users still sign in; the admin API still creates users', async () => {
    const email = randomEmail('closed-admin');
    const password = randomPassword();
    const admin = makeClient(closed.url, closed.serviceKey);
    const created = ok(await admin.auth.admin.createUser({ email, password, email_confirm: true }), 'admin.createUser').user;
    const data = ok(
      await makeClient(closed.url, closed.anonKey).auth.signInWithPassword({ email, password }),
      'signInWithPassword with signups disabled',
    );
    assert.equal(data.user.id, created.id);
    assert.ok(data.session);
  });
});
