// Phone sign-in with the real supabase-js (issue #19): signUp / signInWithOtp / verifyOtp /
// signInWithPassword / updateUser / resend with a phone number, and the admin API's phone
// fields. Texts go to a fake of Twilio's Messages API started here (LATCHKEY_SMS_PROVIDER_URL);
// codes are read from the texts it receives, as a phone's owner would read them.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { authError, ok } from '../lib/expect.mjs';
import { makeClient, randomPassword, startServer } from '../lib/server.mjs';

const ACCOUNT_SID = 'ACjs00000000000000000000000000000';
const TEST_NUMBER = '15550002222';
const TEST_CODE = '135790';

/** A fake Twilio: records each message's form, answers as Twilio does. */
function startFakeTwilio() {
  const texts = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      texts.push({ path: req.url, to: form.get('To'), body: form.get('Body') });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sid: `SM${texts.length}`, status: 'queued' }));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${server.address().port}`, texts, close: () => server.close() });
    });
  });
}

function randomNumber() {
  return `1555${String(Math.floor(Math.random() * 10_000_000)).padStart(7, '0')}`;
}

let twilio;
let server;

/** The code in the last text to `number`. */
function lastCode(number) {
  const text = twilio.texts.filter((t) => t.to === `+${number}`).at(-1);
  assert.ok(text, `a text to ${number}`);
  return text.body.replace('Your code is ', '');
}

before(async () => {
  twilio = await startFakeTwilio();
  server = await startServer({
    GOTRUE_EXTERNAL_PHONE_ENABLED: 'true',
    GOTRUE_SMS_PROVIDER: 'twilio',
    GOTRUE_SMS_TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    GOTRUE_SMS_TWILIO_AUTH_TOKEN: 'js-twilio-token',
    GOTRUE_SMS_TWILIO_MESSAGE_SERVICE_SID: 'MGjs',
    LATCHKEY_SMS_PROVIDER_URL: twilio.url,
    GOTRUE_SMS_TEST_OTP: `${TEST_NUMBER}:${TEST_CODE}`,
    GOTRUE_SMS_MAX_FREQUENCY: '0s',
  });
}, { timeout: 60_000 });

after(async () => {
  await server?.stop();
  twilio?.close();
});

describe('phone sign-in', () => {
  test('signUp({phone, password}), verifyOtp({type: "sms"}), then signInWithPassword({phone})', async () => {
    const client = makeClient(server.url, server.anonKey);
    const phone = randomNumber();
    const password = randomPassword();
    const { user, session } = ok(await client.auth.signUp({ phone: `+${phone}`, password }), 'signUp');
    assert.equal(session, null, 'the number waits for its code');
    assert.equal(user.phone, phone);
    assert.equal(twilio.texts.at(-1).path, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
    const verified = ok(await client.auth.verifyOtp({ phone, token: lastCode(phone), type: 'sms' }), 'verifyOtp');
    assert.ok(verified.session.access_token);
    assert.ok(verified.user.phone_confirmed_at);
    const signedIn = ok(await client.auth.signInWithPassword({ phone, password }), 'signInWithPassword');
    assert.equal(signedIn.user.id, user.id);
    const wrong = await client.auth.signInWithPassword({ phone, password: 'not-the-password' });
    authError(wrong.error, { status: 400, code: 'invalid_credentials' }, 'wrong password');
  });

  test('signInWithOtp({phone}) with a code read from the texts', async () => {
    const client = makeClient(server.url, server.anonKey);
    const phone = randomNumber();
    ok(await client.auth.signInWithOtp({ phone }), 'signInWithOtp');
    const { session, user } = ok(
      await client.auth.verifyOtp({ phone, token: lastCode(phone), type: 'sms' }),
      'verifyOtp',
    );
    assert.ok(session.refresh_token);
    assert.equal(user.phone, phone);
    const wrong = await client.auth.verifyOtp({ phone, token: '000000', type: 'sms' });
    authError(wrong.error, { status: 403, code: 'otp_expired' }, 'a used or wrong code');
  });

  test('signInWithOtp({phone}) with a test number and its fixed code, no text sent', async () => {
    const client = makeClient(server.url, server.anonKey);
    const before = twilio.texts.length;
    ok(await client.auth.signInWithOtp({ phone: TEST_NUMBER }), 'signInWithOtp (signs the number up)');
    const { session } = ok(
      await client.auth.verifyOtp({ phone: TEST_NUMBER, token: TEST_CODE, type: 'sms' }),
      'verifyOtp',
    );
    assert.ok(session.access_token);
    // A known test number: GoTrue's message id for a code that was not sent.
    const { messageId } = ok(await client.auth.signInWithOtp({ phone: TEST_NUMBER }), 'signInWithOtp again');
    assert.equal(messageId, 'test-otp');
    ok(await client.auth.verifyOtp({ phone: TEST_NUMBER, token: TEST_CODE, type: 'sms' }), 'verifyOtp again');
    assert.equal(twilio.texts.length, before);
  });

  test('updateUser({phone}) and verifyOtp({type: "phone_change"}), resend on the way', async () => {
    const client = makeClient(server.url, server.anonKey);
    const phone = randomNumber();
    ok(await client.auth.signInWithOtp({ phone }), 'signInWithOtp');
    ok(await client.auth.verifyOtp({ phone, token: lastCode(phone), type: 'sms' }), 'verifyOtp');
    const newPhone = randomNumber();
    const { user } = ok(await client.auth.updateUser({ phone: newPhone }), 'updateUser');
    assert.equal(user.phone, phone, 'unchanged until the new number is proven');
    assert.equal(user.new_phone, newPhone);
    const first = lastCode(newPhone);
    ok(await client.auth.resend({ type: 'phone_change', phone }), 'resend phone_change');
    const second = lastCode(newPhone);
    assert.equal(twilio.texts.filter((t) => t.to === `+${newPhone}`).length, 2);
    if (first !== second) {
      const stale = await client.auth.verifyOtp({ phone: newPhone, token: first, type: 'phone_change' });
      authError(stale.error, { status: 403, code: 'otp_expired' }, 'the replaced code');
    }
    const changed = ok(
      await client.auth.verifyOtp({ phone: newPhone, token: second, type: 'phone_change' }),
      'verifyOtp phone_change',
    );
    assert.equal(changed.user.phone, newPhone);
    const { user: current } = ok(await client.auth.getUser(), 'getUser');
    assert.equal(current.phone, newPhone);
  });

  test('resend({type: "sms", phone}) texts the sign-up code again', async () => {
    const client = makeClient(server.url, server.anonKey);
    const phone = randomNumber();
    ok(await client.auth.signUp({ phone, password: randomPassword() }), 'signUp');
    const { messageId } = ok(await client.auth.resend({ type: 'sms', phone }), 'resend');
    assert.ok(messageId.startsWith('SM'));
    assert.equal(twilio.texts.filter((t) => t.to === `+${phone}`).length, 2);
    ok(await client.auth.verifyOtp({ phone, token: lastCode(phone), type: 'sms' }), 'verifyOtp');
  });

  test('admin createUser({phone, phone_confirm}) signs in with its password', async () => {
    const admin = makeClient(server.url, server.serviceKey).auth.admin;
    const phone = randomNumber();
    const password = randomPassword();
    const { user } = ok(await admin.createUser({ phone, password, phone_confirm: true }), 'createUser');
    assert.equal(user.phone, phone);
    assert.ok(user.phone_confirmed_at);
    const again = await admin.createUser({ phone, password });
    authError(again.error, { status: 422, code: 'phone_exists' }, 'duplicate phone');
    const client = makeClient(server.url, server.anonKey);
    const { user: signedIn } = ok(await client.auth.signInWithPassword({ phone, password }), 'signInWithPassword');
    assert.equal(signedIn.id, user.id);
  });
});
