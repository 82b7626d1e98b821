// Email flows through supabase-js, with the server's mail captured by an SMTP sink on a local
// socket: verifyOtp, resetPasswordForEmail, signInWithOtp, resend, reauthenticate, email change,
// and the PKCE variants ending in exchangeCodeForSession.
// Spec: gotrue-api.md §1.1, §6.1, §11; authjs-contract.md §2, §3.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, randomEmail, randomPassword, request, startServer } from '../lib/server.mjs';
import { startSmtpSink } from '../lib/smtp.mjs';
import { authError, ok } from '../lib/expect.mjs';

const SITE = 'http://localhost:3000';
let sink;
let server;

before(async () => {
  sink = await startSmtpSink();
  server = await startServer({
    GOTRUE_SMTP_HOST: '127.0.0.1',
    GOTRUE_SMTP_PORT: String(sink.port),
    GOTRUE_SMTP_ADMIN_EMAIL: 'auth@latchkey.test',
    GOTRUE_SMTP_MAX_FREQUENCY: '0',
    GOTRUE_MAILER_AUTOCONFIRM: 'false',
    GOTRUE_SITE_URL: SITE,
    GOTRUE_URI_ALLOW_LIST: `${SITE}/**`,
  });
}, { timeout: 90_000 });

after(async () => {
  await server?.stop();
  await sink?.close();
});

/** Follows a mailed /verify link without following the redirect; returns the Location URL. */
async function follow(link) {
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303, `GET ${link} → ${res.status}`);
  return new URL(res.headers.get('location'));
}

/** A confirmed user signed in with `client`. */
async function confirmedUser(client, email, password) {
  ok(await client.auth.signUp({ email, password }), 'signUp');
  const mail = await sink.lastTo(email);
  const data = ok(await client.auth.verifyOtp({ email, token: mail.code, type: 'signup' }), 'verifyOtp signup');
  assert.ok(data.session?.access_token);
  return data;
}

describe('implicit flow', () => {
  test('signInWithOtp → code → verifyOtp({type: "email"}) signs in', async () => {
    const client = makeClient(server.url, server.anonKey);
    const email = randomEmail('otp');
    const sent = ok(await client.auth.signInWithOtp({ email, options: { data: { plan: 'pro' } } }), 'signInWithOtp');
    assert.equal(sent.user, null);
    const mail = await sink.lastTo(email);
    assert.equal(mail.subject, 'Confirm your email address');
    const data = ok(await client.auth.verifyOtp({ email, token: mail.code, type: 'email' }), 'verifyOtp');
    assert.equal(data.user.email, email);
    assert.equal(data.user.user_metadata.plan, 'pro');
    const me = ok(await client.auth.getUser(), 'getUser');
    assert.ok(me.user.email_confirmed_at);

    // The second time the address is known: a magic link.
    ok(await client.auth.signInWithOtp({ email, options: { shouldCreateUser: false } }), 'signInWithOtp again');
    const magic = await sink.lastTo(email);
    assert.equal(magic.subject, 'Your sign-in link');
    ok(await client.auth.verifyOtp({ email, token: magic.code, type: 'magiclink' }), 'verifyOtp magiclink');
    const reused = await client.auth.verifyOtp({ email, token: magic.code, type: 'magiclink' });
    authError(reused.error, { status: 403, code: 'otp_expired' }, 'reused code');
  });

  test('signInWithOtp with shouldCreateUser: false for an unknown address is otp_disabled', async () => {
    const client = makeClient(server.url, server.anonKey);
    const { error } = await client.auth.signInWithOtp({ email: randomEmail('nobody'), options: { shouldCreateUser: false } });
    authError(error, { status: 422, code: 'otp_disabled' });
  });

  test('resetPasswordForEmail → verifyOtp({type: "recovery"}) → updateUser({password})', async () => {
    const client = makeClient(server.url, server.anonKey);
    const email = randomEmail('reset');
    await confirmedUser(client, email, 'first-password');
    ok(await client.auth.signOut(), 'signOut');

    const unknown = ok(await client.auth.resetPasswordForEmail(randomEmail('unknown')), 'unknown address');
    assert.deepEqual(unknown, {});
    ok(await client.auth.resetPasswordForEmail(email, { redirectTo: `${SITE}/reset` }), 'resetPasswordForEmail');
    const mail = await sink.lastTo(email);
    assert.equal(mail.subject, 'Reset your password');
    assert.ok(new URL(mail.link).searchParams.get('redirect_to').startsWith(`${SITE}/reset`));

    const events = [];
    client.auth.onAuthStateChange((event) => events.push(event));
    ok(await client.auth.verifyOtp({ email, token: mail.code, type: 'recovery' }), 'verifyOtp recovery');
    ok(await client.auth.updateUser({ password: 'second-password' }), 'updateUser');
    assert.ok(events.includes('PASSWORD_RECOVERY'), JSON.stringify(events));
    const other = makeClient(server.url, server.anonKey);
    ok(await other.auth.signInWithPassword({ email, password: 'second-password' }), 'new password');
    const old = await other.auth.signInWithPassword({ email, password: 'first-password' });
    authError(old.error, { status: 400, code: 'invalid_credentials' });
  });

  test('resend({type: "signup"}) mails a fresh link; verifyOtp({token_hash}) confirms', async () => {
    const client = makeClient(server.url, server.anonKey);
    const email = randomEmail('resend');
    ok(await client.auth.signUp({ email, password: randomPassword() }), 'signUp');
    ok(await client.auth.resend({ type: 'signup', email }), 'resend');
    assert.equal(sink.to(email).length, 2);
    const hash = new URL((await sink.lastTo(email)).link).searchParams.get('token');
    const data = ok(await client.auth.verifyOtp({ token_hash: hash, type: 'signup' }), 'verifyOtp token_hash');
    assert.equal(data.user.email, email);
    ok(await client.auth.resend({ type: 'signup', email }), 'resend when confirmed is a silent no-op');
    assert.equal(sink.to(email).length, 2);
  });

  test('the mailed link redirects with the session in the fragment', async () => {
    const email = randomEmail('link');
    const client = makeClient(server.url, server.anonKey);
    ok(await client.auth.signUp({ email, password: randomPassword(), options: { emailRedirectTo: `${SITE}/welcome` } }));
    const target = await follow((await sink.lastTo(email)).link);
    assert.equal(`${target.origin}${target.pathname}`, `${SITE}/welcome`);
    const params = new URLSearchParams(target.hash.slice(1));
    assert.equal(params.get('type'), 'signup');
    const data = ok(
      await client.auth.setSession({ access_token: params.get('access_token'), refresh_token: params.get('refresh_token') }),
      'setSession from the fragment',
    );
    assert.equal(data.user.email, email);
    const again = new URLSearchParams((await follow((await sink.lastTo(email)).link)).hash.slice(1));
    assert.equal(again.get('error_code'), 'otp_expired');
  });

  test('updateUser({email}) needs both confirmations; reauthenticate() mails a nonce', async () => {
    const client = makeClient(server.url, server.anonKey);
    const [oldEmail, newEmail] = [randomEmail('old'), randomEmail('new')];
    await confirmedUser(client, oldEmail, 'a-password');
    const updated = ok(await client.auth.updateUser({ email: newEmail }), 'updateUser email');
    assert.equal(updated.user.new_email, newEmail);
    const first = ok(
      await client.auth.verifyOtp({ email: oldEmail, token: (await sink.lastTo(oldEmail)).code, type: 'email_change' }),
      'first confirmation',
    );
    assert.equal(first.session, null);
    const second = ok(
      await client.auth.verifyOtp({ email: newEmail, token: (await sink.lastTo(newEmail)).code, type: 'email_change' }),
      'second confirmation',
    );
    assert.equal(second.user.email, newEmail);

    ok(await client.auth.reauthenticate(), 'reauthenticate');
    const mail = await sink.lastTo(newEmail);
    assert.equal(mail.subject, 'Confirm reauthentication');
    ok(await client.auth.updateUser({ password: 'another-password', nonce: mail.code }), 'updateUser with nonce');
  });

  test('a wrong code is otp_expired; a malformed challenge is validation_failed', async () => {
    const client = makeClient(server.url, server.anonKey);
    const { error } = await client.auth.verifyOtp({ email: randomEmail('x'), token: '123456', type: 'email' });
    authError(error, { status: 403, code: 'otp_expired' });
    const res = await request(server.authUrl, '/otp', {
      body: { email: randomEmail('y'), code_challenge: 'short', code_challenge_method: 's256' },
      apikey: server.anonKey,
      apiVersion: '2024-01-01',
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.code, 'validation_failed');
  });
});

describe('PKCE flow', () => {
  test('signUp → link → ?code= → exchangeCodeForSession', async () => {
    const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
    const email = randomEmail('pkce');
    ok(await client.auth.signUp({ email, password: randomPassword(), options: { emailRedirectTo: `${SITE}/cb` } }));
    const link = (await sink.lastTo(email)).link;
    assert.ok(new URL(link).searchParams.get('token').startsWith('pkce_'));
    const target = await follow(link);
    assert.equal(target.pathname, '/cb');
    const code = target.searchParams.get('code');
    assert.ok(code);
    const data = ok(await client.auth.exchangeCodeForSession(code), 'exchangeCodeForSession');
    assert.equal(data.user.email, email);
    assert.ok(data.session.access_token);

    const second = makeClient(server.url, server.anonKey, { flowType: 'pkce', storage: client.__storage });
    const { error } = await second.auth.exchangeCodeForSession(code);
    assert.ok(error, 'a code works once');
  });

  test('resetPasswordForEmail and signInWithOtp with PKCE', async () => {
    const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
    const email = randomEmail('pkce-reset');
    await confirmedUser(makeClient(server.url, server.anonKey), email, 'old-password');

    ok(await client.auth.resetPasswordForEmail(email, { redirectTo: `${SITE}/reset` }), 'resetPasswordForEmail');
    let code = (await follow((await sink.lastTo(email)).link)).searchParams.get('code');
    ok(await client.auth.exchangeCodeForSession(code), 'exchange recovery code');
    ok(await client.auth.updateUser({ password: 'new-password' }), 'updateUser');

    const other = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
    ok(await other.auth.signInWithOtp({ email, options: { emailRedirectTo: `${SITE}/cb` } }), 'signInWithOtp');
    code = (await follow((await sink.lastTo(email)).link)).searchParams.get('code');
    const data = ok(await other.auth.exchangeCodeForSession(code), 'exchange magic-link code');
    assert.equal(data.user.email, email);
  });
});
