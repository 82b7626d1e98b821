// The custom access token hook with the real supabase-js (issue #18): claims added by a
// Postgres function or by an HTTP hook reach the session's access_token and getClaims(). The
// HTTP receiver checks Latchkey's signature with the npm `standardwebhooks` package, the
// Standard Webhooks authors' JavaScript implementation, so the signing is checked by code
// that is not Latchkey's.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { ok } from '../lib/expect.mjs';
import { privateJwk, keySet } from '../lib/keys.mjs';
import { decodeJwt, makeClient, randomEmail, randomPassword, startServer } from '../lib/server.mjs';

const SECRET = 'v1,whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IG9mIDMyIGJ5dGVz';

const ADD_CLAIMS = `
create function public.add_claims(event jsonb) returns jsonb language sql as $$
  select jsonb_build_object('claims', event->'claims'
    || jsonb_build_object('tenant_id', 'acme', 'scopes', jsonb_build_array('read', 'write')))
$$`;

/** An ES256 server, so that getClaims() verifies locally against the JWKS. */
function hookEnv(uri, secrets) {
  return {
    GOTRUE_MAILER_AUTOCONFIRM: 'true',
    GOTRUE_JWT_KEYS: keySet(privateJwk('ES256')),
    GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_ENABLED: 'true',
    GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_URI: uri,
    ...(secrets ? { GOTRUE_HOOK_CUSTOM_ACCESS_TOKEN_SECRETS: secrets } : {}),
  };
}

async function expectCustomClaims(server) {
  const client = makeClient(server.url, server.anonKey);
  const { session } = ok(await client.auth.signUp({ email: randomEmail('hook'), password: randomPassword() }), 'sign-up');
  const payload = decodeJwt(session.access_token).payload;
  assert.equal(payload.tenant_id, 'acme');
  assert.deepEqual(payload.scopes, ['read', 'write']);
  const { claims } = ok(await client.auth.getClaims(), 'getClaims');
  assert.equal(claims.tenant_id, 'acme');
  assert.deepEqual(claims.scopes, ['read', 'write']);
  assert.equal(claims.sub, session.user.id);
  // A refreshed session keeps them.
  const refreshed = ok(await client.auth.refreshSession(), 'refresh');
  assert.equal(decodeJwt(refreshed.session.access_token).payload.tenant_id, 'acme');
}

test('a pg-functions hook adds claims that getClaims() sees', async () => {
  const server = await startServer(hookEnv('pg-functions://postgres/public/add_claims'));
  try {
    const db = new pg.Client({ connectionString: server.env.DATABASE_URL });
    await db.connect();
    try {
      await db.query(ADD_CLAIMS);
    } finally {
      await db.end();
    }
    await expectCustomClaims(server);
  } finally {
    await server.stop();
  }
});

test('an HTTP hook, verified with the npm standardwebhooks package, adds claims', async () => {
  const verifier = new Webhook(SECRET.replace(/^v1,/, ''));
  let verified = 0;
  const receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      let input;
      try {
        input = verifier.verify(body, req.headers);
      } catch (err) {
        res.writeHead(401).end(String(err));
        return;
      }
      verified += 1;
      const claims = { ...input.claims, tenant_id: 'acme', scopes: ['read', 'write'] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ claims }));
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const uri = `http://127.0.0.1:${receiver.address().port}/hook`;
  const server = await startServer(hookEnv(uri, SECRET));
  try {
    await expectCustomClaims(server);
    assert.equal(verified, 2, 'sign-up and refresh, both signed');
  } finally {
    await server.stop();
    receiver.close();
  }
});
