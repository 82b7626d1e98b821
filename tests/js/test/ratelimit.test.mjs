// Per-address rate limits as supabase-js sees them: the refused call is an AuthApiError with
// status 429 and code over_request_rate_limit. Spec: gotrue-api.md §8; README "Rate limits".
//
// Every test gets its own server, so its own budget of 2 sign-ins/sign-ups for 127.0.0.1:
// each one spends the budget it needs itself and passes alone (`--test-name-pattern`) and in
// any order.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, randomEmail, randomPassword, request, startServer } from '../lib/server.mjs';
import { authError, ok, status } from '../lib/expect.mjs';

const BUDGET = 2;

let srv;

beforeEach(async () => {
  srv = await startServer({
    LATCHKEY_RATE_LIMIT_ENABLED: 'true',
    LATCHKEY_RATE_LIMIT_LOOPBACK: 'true',
    GOTRUE_MAILER_AUTOCONFIRM: 'true',
    GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: `${BUDGET}/1h`,
  });
}, { timeout: 60_000 });

afterEach(async () => {
  await srv?.stop();
  srv = undefined;
});

/** A raw password sign-in from the browser's origin, as supabase-js sends it. */
function rawSignIn() {
  return request(srv.authUrl, '/token?grant_type=password', {
    body: { email: randomEmail('limited'), password: 'whatever-123' },
    apikey: srv.anonKey,
    token: srv.anonKey,
    apiVersion: '2024-01-01',
    headers: { origin: 'http://localhost:3000' },
  });
}

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
    // Within the budget: a wrong sign-in is refused as such, and counted.
    for (let i = 1; i <= BUDGET; i += 1) {
      const res = await rawSignIn();
      status(res, 400, `sign-in ${i} of ${BUDGET}`);
      assert.equal(res.headers.get('ratelimit-remaining'), String(BUDGET - i));
    }
    const res = await rawSignIn();
    status(res, 429, 'the sign-in over budget');
    assert.deepEqual(res.json, { code: 'over_request_rate_limit', message: 'Request rate limit reached' });
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `retry-after ${res.headers.get('retry-after')}`);
    assert.equal(res.headers.get('ratelimit-limit'), String(BUDGET));
    assert.equal(res.headers.get('ratelimit-remaining'), '0');
    const exposed = res.headers.get('access-control-expose-headers') ?? '';
    for (const name of ['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) {
      assert.ok(exposed.includes(name), `${name} exposed: ${exposed}`);
    }
  });

  test('the service_role key is not limited and spends none of the budget', async () => {
    const admin = makeClient(srv.url, srv.serviceKey);
    for (let i = 0; i <= BUDGET; i += 1) {
      const { error } = await admin.auth.signUp({ email: randomEmail('admin'), password: randomPassword() });
      assert.equal(error, null, `admin signUp ${i}: ${error?.message}`);
    }
    // The anon key, from the same address, still has its whole budget, and no more.
    const anon = makeClient(srv.url, srv.anonKey);
    for (let i = 1; i <= BUDGET; i += 1) {
      ok(await anon.auth.signUp({ email: randomEmail('anon'), password: randomPassword() }), `anon signUp ${i}`);
    }
    const { error } = await anon.auth.signUp({ email: randomEmail('anon'), password: randomPassword() });
    authError(error, { status: 429, code: 'over_request_rate_limit' }, 'anon signUp over budget');
  });
});
