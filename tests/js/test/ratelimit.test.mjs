// Per-address rate limits as supabase-js sees them: the refused call is an AuthApiError with
// status 429 and code over_request_rate_limit. Spec: gotrue-api.md §8; README "Rate limits".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, randomEmail, randomPassword, request, startServer } from '../lib/server.mjs';
import { authError, ok } from '../lib/expect.mjs';

let srv;

before(async () => {
  srv = await startServer({
    LATCHKEY_RATE_LIMIT_ENABLED: 'true',
    LATCHKEY_RATE_LIMIT_LOOPBACK: 'true',
    GOTRUE_MAILER_AUTOCONFIRM: 'true',
    GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '2/1h',
  });
}, { timeout: 60_000 });

after(async () => {
  await srv?.stop();
});

describe('rate limits', () => {
  test('the sign-in over budget is an AuthApiError 429 over_request_rate_limit', async () => {
    const email = randomEmail('limited');
    const password = randomPassword();
    const client = makeClient(srv.url, srv.anonKey);
    ok(await client.auth.signUp({ email, password }), 'signUp (1 of 2)');
    ok(await client.auth.signInWithPassword({ email, password }), 'signIn (2 of 2)');
    const { data, error } = await client.auth.signInWithPassword({ email, password });
    authError(error, { name: 'AuthApiError', status: 429, code: 'over_request_rate_limit' }, 'third call');
    assert.equal(error.message, 'Request rate limit reached');
    assert.equal(data.session, null);
  });

  test('the 429 carries Retry-After and RateLimit-* headers, readable by browser code', async () => {
    const res = await request(srv.authUrl, '/token?grant_type=password', {
      body: { email: randomEmail('limited'), password: 'whatever-123' },
      apikey: srv.anonKey,
      token: srv.anonKey,
      apiVersion: '2024-01-01',
      headers: { origin: 'http://localhost:3000' },
    });
    assert.equal(res.status, 429, res.text);
    assert.deepEqual(res.json, { code: 'over_request_rate_limit', message: 'Request rate limit reached' });
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `retry-after ${res.headers.get('retry-after')}`);
    assert.equal(res.headers.get('ratelimit-limit'), '2');
    assert.equal(res.headers.get('ratelimit-remaining'), '0');
    const exposed = res.headers.get('access-control-expose-headers') ?? '';
    for (const name of ['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) {
      assert.ok(exposed.includes(name), `${name} exposed: ${exposed}`);
    }
  });

  test('the service_role key is not limited', async () => {
    const admin = makeClient(srv.url, srv.serviceKey);
    for (let i = 0; i < 3; i += 1) {
      const { error } = await admin.auth.signUp({ email: randomEmail('admin'), password: randomPassword() });
      assert.equal(error, null, `admin signUp ${i}: ${error?.message}`);
    }
    // ... while the anon key, from the same address, is over budget.
    const anon = makeClient(srv.url, srv.anonKey);
    const { error } = await anon.auth.signUp({ email: randomEmail('anon'), password: randomPassword() });
    authError(error, { status: 429, code: 'over_request_rate_limit' }, 'anon signUp');
  });
});
