// Asymmetric signing keys with the real supabase-js (issue #16): with an ES256 or RS256
// signing key, `auth.getClaims()` verifies the access token locally against
// /.well-known/jwks.json. Every request the client sends is counted: supabase-js fetches the
// JWKS once per client (and keeps it ten minutes), then verifies any number of tokens
// without a single request, where an HS256 server costs a GET /user per call. After a
// rotation, tokens of the old and the new key both verify, until the old key leaves the set.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { authError, ok } from '../lib/expect.mjs';
import { keySet, privateJwk, verifyOnly } from '../lib/keys.mjs';
import { decodeJwt, makeClient, randomEmail, randomPassword, startServer, timeoutFetch } from '../lib/server.mjs';

const JWKS = 'GET /auth/v1/.well-known/jwks.json';

/** A client whose requests are listed as `METHOD /path`, with a JWKS cache of its own
 *  (supabase-js shares one per storage key, and every test server is on 127.0.0.1). */
function countingClient(server) {
  const requests = [];
  const fetch = (input, init = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    requests.push(`${init.method ?? input.method ?? 'GET'} ${url.pathname}`);
    return timeoutFetch(input, init);
  };
  const client = makeClient(server.url, server.anonKey, { fetch, storageKey: `sb-${randomUUID()}-auth-token` });
  return { client, requests };
}

async function signedUp(client) {
  const data = ok(await client.auth.signUp({ email: randomEmail('keys'), password: randomPassword() }), 'sign-up');
  return data.session;
}

function withKeys(...keys) {
  return { GOTRUE_MAILER_AUTOCONFIRM: 'true', GOTRUE_JWT_KEYS: keySet(...keys) };
}

for (const alg of ['ES256', 'RS256']) {
  test(`${alg}: getClaims() verifies without a request to the server, across a rotation`, async () => {
    const [first, second] = [privateJwk(alg), privateJwk(alg)];
    let server = await startServer(withKeys(first));
    try {
      const { client, requests } = countingClient(server);
      const session = await signedUp(client);
      const oldToken = session.access_token;
      assert.deepEqual(decodeJwt(oldToken).header, { alg, kid: first.kid, typ: 'JWT' });

      requests.length = 0;
      const claims = ok(await client.auth.getClaims(), 'getClaims');
      assert.equal(claims.claims.sub, session.user.id);
      assert.deepEqual(requests, [JWKS], 'the first call fetches the key set, once');
      requests.length = 0;
      for (let n = 0; n < 5; n += 1) {
        const again = ok(await client.auth.getClaims(), `getClaims ${n}`);
        assert.equal(again.claims.email, session.user.email);
      }
      assert.deepEqual(requests, [], 'no request for the claims once the keys are known');

      // Rotation: the new key signs, the old one only verifies (same database).
      await server.stop({ keepDatabase: true });
      server = await startServer(withKeys(verifyOnly(first), second), { database: server.dbName });
      const rotated = countingClient(server);
      const newToken = (await signedUp(rotated.client)).access_token;
      assert.equal(decodeJwt(newToken).header.kid, second.kid);
      rotated.requests.length = 0;
      for (const token of [oldToken, newToken, oldToken, newToken]) {
        ok(await rotated.client.auth.getClaims(token), 'getClaims after the rotation');
      }
      assert.deepEqual(rotated.requests, [JWKS], 'one key set covers both keys');
      ok(await rotated.client.auth.getUser(oldToken), 'the server accepts the old token');

      // The old key leaves the set: its tokens fail, locally and at the server.
      await server.stop({ keepDatabase: true });
      server = await startServer(withKeys(second), { database: server.dbName });
      const retired = countingClient(server);
      ok(await retired.client.auth.getClaims(newToken), 'the new key still verifies');
      // Its kid is not in the set: supabase-js asks GET /user, which refuses it.
      const refused = await retired.client.auth.getClaims(oldToken);
      authError(refused.error, { status: 403, code: 'bad_jwt' }, 'getClaims of a retired key');
    } finally {
      await server.stop();
    }
  });
}

test('HS256 (the secret): the JWKS is empty and getClaims() asks GET /user every time', async () => {
  const server = await startServer({ GOTRUE_MAILER_AUTOCONFIRM: 'true' });
  try {
    const { client, requests } = countingClient(server);
    const session = await signedUp(client);
    assert.equal(decodeJwt(session.access_token).header.alg, 'HS256');
    requests.length = 0;
    for (let n = 0; n < 2; n += 1) ok(await client.auth.getClaims(), 'getClaims');
    assert.deepEqual(requests, ['GET /auth/v1/user', 'GET /auth/v1/user']);
  } finally {
    await server.stop();
  }
});
