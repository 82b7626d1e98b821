// The send-email hook with the real supabase-js (issue #18): with the hook on, signUp and
// resetPasswordForEmail reach an HTTP receiver instead of SMTP. The receiver checks Latchkey's
// signature with the npm `standardwebhooks` package (the Standard Webhooks authors' code, not
// Latchkey's), and the codes it gets verify through supabase-js's verifyOtp.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ok } from '../lib/expect.mjs';
import { makeClient, randomEmail, randomPassword, startServer } from '../lib/server.mjs';
import { startSmtpSink } from '../lib/smtp.mjs';

const SECRET = 'v1,whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IG9mIDMyIGJ5dGVz';

/** A hook endpoint that keeps every verified input and answers 401 to a bad signature. */
async function startReceiver() {
  const verifier = new Webhook(SECRET.replace(/^v1,/, ''));
  const inputs = [];
  let refused = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      try {
        inputs.push(verifier.verify(body, req.headers));
      } catch (err) {
        refused += 1;
        res.writeHead(401).end(String(err));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    inputs,
    refused: () => refused,
    close: () => server.close(),
  };
}

test('signUp and resetPasswordForEmail go to a signed send-email hook, and its codes verify', async () => {
  const receiver = await startReceiver();
  const sink = await startSmtpSink();
  const server = await startServer({
    GOTRUE_SMTP_HOST: '127.0.0.1',
    GOTRUE_SMTP_PORT: String(sink.port),
    GOTRUE_SMTP_ADMIN_EMAIL: 'auth@latchkey.test',
    GOTRUE_SMTP_MAX_FREQUENCY: '0',
    GOTRUE_MAILER_AUTOCONFIRM: 'false',
    GOTRUE_HOOK_SEND_EMAIL_ENABLED: 'true',
    GOTRUE_HOOK_SEND_EMAIL_URI: receiver.url,
    GOTRUE_HOOK_SEND_EMAIL_SECRETS: SECRET,
  });
  try {
    const client = makeClient(server.url, server.anonKey);
    const email = randomEmail('sendhook');
    const password = randomPassword();

    const signedUp = ok(await client.auth.signUp({ email, password }), 'sign-up');
    assert.equal(signedUp.session, null, 'confirmation required');
    assert.equal(receiver.inputs.length, 1);
    const signup = receiver.inputs[0];
    assert.equal(signup.metadata.name, 'send-email');
    assert.equal(signup.user.id, signedUp.user.id);
    assert.equal(signup.user.email, email);
    assert.equal(signup.email_data.email_action_type, 'signup');
    assert.equal(signup.email_data.site_url, server.url);
    assert.equal(signup.email_data.redirect_to, 'http://localhost:3000');
    assert.match(signup.email_data.token, /^\d{6}$/);
    assert.equal(signup.email_data.token_new, '');
    const confirmed = ok(await client.auth.verifyOtp({ email, token: signup.email_data.token, type: 'signup' }), 'verify');
    assert.equal(confirmed.user.email, email);
    assert.ok(confirmed.session.access_token);

    ok(await client.auth.resetPasswordForEmail(email), 'recovery');
    assert.equal(receiver.inputs.length, 2);
    const recovery = receiver.inputs[1];
    assert.equal(recovery.email_data.email_action_type, 'recovery');
    const recovered = ok(
      await client.auth.verifyOtp({ token_hash: recovery.email_data.token_hash, type: 'recovery' }),
      'verify recovery',
    );
    assert.equal(recovered.user.id, signedUp.user.id);

    assert.equal(receiver.refused(), 0, 'every call carried a valid signature');
    assert.equal(sink.messages.length, 0, 'SMTP received nothing');
  } finally {
    await server.stop();
    await sink.close();
    receiver.close();
  }
});
