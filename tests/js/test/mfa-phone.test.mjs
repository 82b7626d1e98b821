// Phone MFA factors through supabase-js's `auth.mfa`: enroll({factorType: 'phone'}),
// challenge (by SMS and by WhatsApp), verify with the code the fake Twilio received, and the
// assurance level after. The fake is Twilio's Messages API on 127.0.0.1:0, reached through
// LATCHKEY_SMS_PROVIDER_URL; it checks the Basic credentials as Twilio would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { makeClient, randomEmail, randomPassword, startServer } from '../lib/server.mjs';
import { authError, ok } from '../lib/expect.mjs';

const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
const AUTH_TOKEN = 'fake-twilio-auth-token';
const SERVICE_SID = 'MG0123456789abcdef0123456789abcdef';

/** Every message the fake Twilio accepted: the form it got. */
const texts = [];
let twilio;
let srv;

function fakeTwilio() {
  const expected = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;
  return createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const json = (status, value) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      if (req.url !== `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`) return json(404, { code: 20404 });
      if (req.headers.authorization !== expected) return json(401, { code: 20003, message: 'Authenticate', status: 401 });
      const form = Object.fromEntries(new URLSearchParams(body));
      texts.push(form);
      json(201, { sid: `SM${texts.length}`, status: 'queued', to: form.To, from: form.From, body: form.Body });
    });
  });
}

/** The code in the last text, as the phone's owner reads it. */
function lastCode() {
  const text = texts.at(-1);
  const code = /(\d{6})/.exec(text.Body)?.[1];
  assert.ok(code, `a code in ${JSON.stringify(text)}`);
  return code;
}

before(async () => {
  twilio = fakeTwilio();
  await new Promise((resolve) => twilio.listen(0, '127.0.0.1', resolve));
  srv = await startServer({
    GOTRUE_MAILER_AUTOCONFIRM: 'true',
    GOTRUE_SMS_PROVIDER: 'twilio',
    GOTRUE_SMS_TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    GOTRUE_SMS_TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID: SERVICE_SID,
    LATCHKEY_SMS_PROVIDER_URL: `http://127.0.0.1:${twilio.address().port}`,
    GOTRUE_MFA_PHONE_ENROLL_ENABLED: 'true',
    GOTRUE_MFA_PHONE_VERIFY_ENABLED: 'true',
    GOTRUE_MFA_PHONE_MAX_FREQUENCY: '1ms',
  });
}, { timeout: 60_000 });

after(async () => {
  await srv?.stop();
  twilio?.close();
});

async function signedUp() {
  const c = makeClient(srv.url, srv.anonKey);
  ok(await c.auth.signUp({ email: randomEmail('mfa-phone'), password: randomPassword() }), 'signUp');
  return c;
}

async function aal(c) {
  const data = ok(await c.auth.mfa.getAuthenticatorAssuranceLevel(), 'getAuthenticatorAssuranceLevel');
  return [data.currentLevel, data.nextLevel, data.currentAuthenticationMethods.map((m) => m.method)];
}

describe('auth.mfa with phone factors', () => {
  test('enroll a phone, challenge by SMS, verify the texted code: aal2', async () => {
    const c = await signedUp();
    const enrolled = ok(
      await c.auth.mfa.enroll({ factorType: 'phone', phone: '+15555550123', friendlyName: 'Work phone' }),
      'enroll',
    );
    assert.equal(enrolled.type, 'phone');
    assert.equal(enrolled.phone, '+15555550123');
    assert.equal(enrolled.friendly_name, 'Work phone');

    const challenge = ok(await c.auth.mfa.challenge({ factorId: enrolled.id, channel: 'sms' }), 'challenge');
    assert.equal(challenge.type, 'phone');
    assert.ok(challenge.expires_at > Date.now() / 1000);
    const text = texts.at(-1);
    assert.equal(text.To, '+15555550123');
    assert.equal(text.Channel, 'sms');

    const wrong = lastCode() === '000000' ? '000001' : '000000';
    const refused = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: challenge.id, code: wrong });
    authError(refused.error, { name: 'AuthApiError', status: 422, code: 'mfa_verification_failed' }, 'wrong code');
    const verified = ok(
      await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: challenge.id, code: lastCode() }),
      'verify',
    );
    assert.ok(verified.access_token);
    const [current, next, methods] = await aal(c);
    assert.deepEqual([current, next], ['aal2', 'aal2']);
    assert.equal(methods[0], 'mfa/phone');

    const factors = ok(await c.auth.mfa.listFactors(), 'listFactors');
    assert.equal(factors.phone.length, 1);
    assert.equal(factors.phone[0].phone, '15555550123');
    assert.equal(factors.phone[0].status, 'verified');
  });

  test('a WhatsApp challenge; its code works once', async () => {
    const c = await signedUp();
    const enrolled = ok(await c.auth.mfa.enroll({ factorType: 'phone', phone: '+447700900123' }), 'enroll');
    const challenge = ok(await c.auth.mfa.challenge({ factorId: enrolled.id, channel: 'whatsapp' }), 'challenge');
    assert.equal(texts.at(-1).To, 'whatsapp:+447700900123');
    ok(await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: challenge.id, code: lastCode() }), 'verify');
    assert.equal((await aal(c))[0], 'aal2');
    // The challenge is used up (GoTrue's answer to a verified challenge).
    const replay = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: challenge.id, code: lastCode() });
    authError(replay.error, { status: 422, code: 'mfa_ip_address_mismatch' }, 'replayed code');
  });
});
