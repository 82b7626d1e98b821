// signInWithIdToken (POST /token?grant_type=id_token) against a fake OIDC issuer (the Google
// fake of lib/oauth-fakes.mjs: its own key, its JWKS), and custom providers through
// supabase.auth.admin.customProviders, then signInWithOAuth({provider: 'custom:<id>'}).
// Each refusal is GoTrue's: 400 with `error` / `error_description` (auth-js's AuthApiError).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { makeClient, randomEmail, startServer, timeoutFetch } from '../lib/server.mjs';
import { CLIENT_ID, CLIENT_SECRET, fakeUser, signIdToken, startFakeProvider } from '../lib/oauth-fakes.mjs';
import { authError, ok } from '../lib/expect.mjs';

const SITE = 'http://localhost:3000';
let issuer;
let other;
let server;

before(async () => {
  issuer = await startFakeProvider('google');
  other = await startFakeProvider('google');
  server = await startServer({
    ...issuer.env,
    GOTRUE_SITE_URL: SITE,
    GOTRUE_URI_ALLOW_LIST: `${SITE}/**`,
    GOTRUE_MAILER_AUTOCONFIRM: 'true',
    // The custom provider below is the fake on 127.0.0.1.
    LATCHKEY_CUSTOM_OAUTH_ALLOW_PRIVATE_URLS: 'true',
  });
}, { timeout: 90_000 });

after(async () => {
  await server?.stop();
  await issuer?.close();
  await other?.close();
});

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/** Claims of a token from `from` (default: the configured issuer), valid for ten minutes. */
function claims(overrides = {}, from = issuer) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: from.url, aud: CLIENT_ID, sub: `sub-${Math.random().toString(36).slice(2)}`,
    email: randomEmail('idtoken'), email_verified: true, name: 'Ada Lovelace',
    iat: now, exp: now + 600, nonce: sha256('the-raw-nonce'), ...overrides,
  };
}

async function signIn(token, nonce = 'the-raw-nonce', provider = 'google') {
  const client = makeClient(server.url, server.anonKey);
  return client.auth.signInWithIdToken({ provider, token, nonce });
}

describe('signInWithIdToken', () => {
  test('a token of the issuer signs in', async () => {
    const c = claims();
    const data = ok(await signIn(signIdToken(c)), 'signInWithIdToken');
    assert.equal(data.user.email, c.email);
    assert.equal(data.user.app_metadata.provider, 'google');
    assert.equal(data.user.identities[0].id, c.sub);
    assert.ok(data.session.access_token);
  });

  const refusals = [
    ['another audience', () => signIdToken(claims({ aud: 'someone-else' })), 'the-raw-nonce', /Unacceptable audience/],
    ['another nonce', () => signIdToken(claims()), 'not-the-nonce', /Nonces mismatch/],
    ['expired', () => signIdToken(claims({ exp: Math.floor(Date.now() / 1000) - 3600 })), 'the-raw-nonce', /Bad ID token/],
    ['an unknown key', () => signIdToken(claims(), 'unpublished-key'), 'the-raw-nonce', /Bad ID token/],
    ["another issuer's token", () => signIdToken(claims({}, other)), 'the-raw-nonce', /Bad ID token/],
  ];
  for (const [what, token, nonce, message] of refusals) {
    test(`refused: ${what}`, async () => {
      const { data, error } = await signIn(token(), nonce);
      authError(error, { status: 400 }, what);
      assert.match(error.message, message);
      assert.equal(data.session, null);
    });
  }
});

describe('custom providers', () => {
  test('admin.customProviders, then signInWithOAuth custom:acme against the fake issuer', async () => {
    const admin = makeClient(server.url, server.serviceKey).auth.admin.customProviders;
    const created = ok(
      await admin.createProvider({
        provider_type: 'oidc', identifier: 'custom:acme', name: 'Acme SSO',
        client_id: CLIENT_ID, client_secret: CLIENT_SECRET, issuer: issuer.url,
      }),
      'createProvider',
    );
    assert.equal(created.identifier, 'custom:acme');
    const listed = ok(await admin.listProviders(), 'listProviders');
    assert.deepEqual(listed.providers.map((p) => p.identifier), ['custom:acme']);
    const updated = ok(await admin.updateProvider('custom:acme', { name: 'Acme' }), 'updateProvider');
    assert.equal(updated.name, 'Acme');
    assert.equal(ok(await admin.getProvider('custom:acme'), 'getProvider').name, 'Acme');

    const email = randomEmail('custom');
    issuer.setUser(fakeUser(email));
    const client = makeClient(server.url, server.anonKey);
    const { url } = ok(
      await client.auth.signInWithOAuth({
        provider: 'custom:acme',
        options: { redirectTo: `${SITE}/welcome`, skipBrowserRedirect: true },
      }),
      'signInWithOAuth',
    );
    // /authorize → the fake → /callback → the app, by hand as a browser would.
    let next = url;
    for (let hop = 0; hop < 5 && !next.startsWith(SITE); hop++) {
      const res = await timeoutFetch(next, { redirect: 'manual' });
      assert.ok(res.headers.get('location'), `${next} → ${res.status} ${await res.text()}`);
      next = new URL(res.headers.get('location'), next).toString();
    }
    const fragment = Object.fromEntries(new URLSearchParams(new URL(next).hash.slice(1)));
    assert.ok(fragment.access_token, next);
    const { user } = ok(await client.auth.getUser(fragment.access_token), 'getUser');
    assert.equal(user.email, email);
    assert.equal(user.app_metadata.provider, 'custom:acme');

    ok(await admin.deleteProvider('custom:acme'), 'deleteProvider');
    authError((await admin.getProvider('custom:acme')).error, { status: 404, code: 'custom_provider_not_found' });
  });
});
