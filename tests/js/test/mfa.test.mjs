// Multi-factor authentication through supabase-js's `auth.mfa` and `auth.admin.mfa`: TOTP
// enrolment, challenge, verify, challengeAndVerify, listFactors, unenroll and the assurance
// levels before and after. Codes are computed here from the enrolment's secret, as an
// authenticator app would (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { makeClient, randomEmail, randomPassword, sleep, startServer } from '../lib/server.mjs';
import { authError, ok } from '../lib/expect.mjs';

let srv;

before(async () => {
  srv = await startServer({ GOTRUE_MAILER_AUTOCONFIRM: 'true' });
}, { timeout: 60_000 });

after(async () => {
  await srv?.stop();
});

const client = () => makeClient(srv.url, srv.anonKey);

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The code of 30-second step `step` for the base32 `secret`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** The current step, with at least 10 s of it left, so the server checks codes in the same step. */
async function stableStep() {
  const into = (Date.now() / 1000) % 30;
  if (into >= 20) await sleep((30 - into) * 1000 + 200);
  return Math.floor(Date.now() / 1000 / 30);
}

async function signedUp() {
  const c = client();
  const email = randomEmail('mfa');
  const password = randomPassword();
  ok(await c.auth.signUp({ email, password }), 'signUp');
  return { c, email, password };
}

async function aal(c) {
  const data = ok(await c.auth.mfa.getAuthenticatorAssuranceLevel(), 'getAuthenticatorAssuranceLevel');
  return [data.currentLevel, data.nextLevel, data.currentAuthenticationMethods.map((m) => m.method)];
}

describe('auth.mfa with TOTP', () => {
  test('enroll, challenge, verify, replay, sign in again, unenroll', async () => {
    const { c, email, password } = await signedUp();
    assert.deepEqual(await aal(c), ['aal1', 'aal1', ['password']]);

    const enrolled = ok(
      await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'Phone', issuer: 'Latchkey JS' }),
      'enroll',
    );
    assert.equal(enrolled.type, 'totp');
    assert.equal(enrolled.friendly_name, 'Phone');
    // supabase-js makes the SVG document a data: URI; test a prefix (the whole is ~30 kB).
    assert.ok(/^data:image\/svg\+xml;utf-8,(<\?xml[^>]*>)?<svg /.test(enrolled.totp.qr_code), 'an SVG data URI');
    assert.ok(!enrolled.totp.qr_code.includes('#'), 'no # to end the data: URI early');
    assert.match(enrolled.totp.secret, /^[A-Z2-7]{32}$/);
    assert.ok(enrolled.totp.uri.startsWith('otpauth://totp/Latchkey%20JS:'), enrolled.totp.uri);
    assert.ok(enrolled.totp.uri.includes('issuer=Latchkey%20JS'), enrolled.totp.uri);
    const factorId = enrolled.id;
    const secret = enrolled.totp.secret;

    let factors = ok(await c.auth.mfa.listFactors(), 'listFactors');
    assert.equal(factors.all.length, 1);
    assert.equal(factors.all[0].status, 'unverified');
    assert.equal(factors.totp.length, 0, 'only verified factors are listed by type');

    const challenge = ok(await c.auth.mfa.challenge({ factorId }), 'challenge');
    assert.equal(challenge.type, 'totp');
    assert.ok(challenge.expires_at > Date.now() / 1000, `expires_at ${challenge.expires_at}`);
    const step = await stableStep();
    const right = totp(secret, step);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    const refused = await c.auth.mfa.verify({ factorId, challengeId: challenge.id, code: wrong });
    authError(refused.error, { name: 'AuthApiError', status: 422, code: 'mfa_verification_failed' }, 'wrong code');

    ok(await c.auth.mfa.verify({ factorId, challengeId: challenge.id, code: right }), 'verify');
    const [level, next, methods] = await aal(c);
    assert.deepEqual([level, next], ['aal2', 'aal2']);
    assert.deepEqual(methods, ['totp', 'password']);
    factors = ok(await c.auth.mfa.listFactors(), 'listFactors after verify');
    assert.deepEqual(factors.totp.map((f) => [f.id, f.status]), [[factorId, 'verified']]);

    // The same code again, on a new challenge: refused (a code works once).
    const replay = await c.auth.mfa.challengeAndVerify({ factorId, code: right });
    authError(replay.error, { status: 422, code: 'mfa_verification_failed' }, 'replayed code');

    // A password sign-in elsewhere is aal1, can reach aal2, and may not change the password.
    const other = client();
    ok(await other.auth.signInWithPassword({ email, password }), 'signInWithPassword');
    assert.deepEqual((await aal(other)).slice(0, 2), ['aal1', 'aal2']);
    const change = await other.auth.updateUser({ password: randomPassword() });
    authError(change.error, { status: 401, code: 'insufficient_aal' }, 'password change at aal1');
    const nextCode = totp(secret, Math.max(await stableStep(), step + 1));
    ok(await other.auth.mfa.challengeAndVerify({ factorId, code: nextCode }), 'challengeAndVerify');
    assert.deepEqual((await aal(other)).slice(0, 2), ['aal2', 'aal2']);

    ok(await c.auth.mfa.unenroll({ factorId }), 'unenroll');
    factors = ok(await c.auth.mfa.listFactors(), 'listFactors after unenroll');
    assert.equal(factors.all.length, 0);
    // The sessions that reached aal2 through the factor are aal1 again once refreshed.
    ok(await other.auth.refreshSession(), 'refreshSession');
    assert.deepEqual(await aal(other), ['aal1', 'aal1', ['password']]);
  });

  test('an expired challenge is refused', async () => {
    const { c } = await signedUp();
    const { id: factorId, totp: key } = ok(await c.auth.mfa.enroll({ factorType: 'totp' }), 'enroll');
    const { id: challengeId } = ok(await c.auth.mfa.challenge({ factorId }), 'challenge');
    // Five minutes is the shortest expiry GoTrue allows: age the challenge instead of waiting.
    const db = new pg.Client({ connectionString: srv.env.DATABASE_URL });
    await db.connect();
    try {
      await db.query("update auth._auth_mfa_challenges set created_at = now() - interval '301 seconds' where id = $1", [
        challengeId,
      ]);
    } finally {
      await db.end();
    }
    const code = totp(key.secret, await stableStep());
    const late = await c.auth.mfa.verify({ factorId, challengeId, code });
    authError(late.error, { status: 422, code: 'mfa_challenge_expired' }, 'expired challenge');
    assert.deepEqual((await aal(c)).slice(0, 2), ['aal1', 'aal1']);
  });

  test('admin.mfa lists and deletes a user\'s factors', async () => {
    const { c } = await signedUp();
    const { data: { user } } = await c.auth.getUser();
    const { id: factorId } = ok(await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'Laptop' }), 'enroll');
    const admin = makeClient(srv.url, srv.serviceKey).auth.admin;
    const listed = ok(await admin.mfa.listFactors({ userId: user.id }), 'admin listFactors');
    assert.deepEqual(listed.factors.map((f) => [f.id, f.friendly_name, f.factor_type]), [[factorId, 'Laptop', 'totp']]);
    assert.ok(!('secret' in listed.factors[0]), 'the secret is never shown again');
    const deleted = ok(await admin.mfa.deleteFactor({ userId: user.id, id: factorId }), 'admin deleteFactor');
    // auth-js wraps this answer once more than the others ({ data: { data: factor } }).
    assert.equal(deleted.data.id, factorId);
    assert.equal(ok(await admin.mfa.listFactors({ userId: user.id }), 'listFactors again').factors.length, 0);
  });
});
