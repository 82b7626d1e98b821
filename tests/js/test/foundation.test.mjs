// Global HTTP behaviour: health, settings, error formats, body limit, CORS, docs.
// Spec: gotrue-api.md §0, §1.1 (/health, /settings), §2.5, §3.1; authjs-contract.md §1, §5.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, startServer } from '../lib/server.mjs';
import { status } from '../lib/expect.mjs';

const ORIGIN = 'http://localhost:3000';
const CLIENT_HEADERS = ['apikey', 'authorization', 'content-type', 'x-client-info', 'x-supabase-api-version'];

let srv; // defaults: signup on, autoconfirm off, anonymous off
let flipped; // signup disabled, autoconfirm on, anonymous on

async function startAll(specs) {
  const results = await Promise.allSettled(specs.map((env) => startServer(env)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(results.filter((r) => r.status === 'fulfilled').map((r) => r.value.stop()));
    throw failed.reason;
  }
  return results.map((r) => r.value);
}

before(async () => {
  [srv, flipped] = await startAll([
    {},
    {
      GOTRUE_DISABLE_SIGNUP: 'true',
      GOTRUE_MAILER_AUTOCONFIRM: 'true',
      GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED: 'true',
    },
  ]);
}, { timeout: 90_000 });

after(async () => {
  await Promise.all([srv?.stop(), flipped?.stop()]);
});

function headerList(value) {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

describe('health', () => {
  test('GET /auth/v1/health → 200 {version, name, description}', async () => {
    const res = status(await request(srv.authUrl, '/health'), 200, 'GET /auth/v1/health');
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    for (const k of ['version', 'name', 'description']) {
      assert.equal(typeof res.json?.[k], 'string', `health.${k} should be a string: ${res.text}`);
      assert.ok(res.json[k].length > 0, `health.${k} should not be empty: ${res.text}`);
    }
  });

  test('GET /health at the root answers the same', async () => {
    const a = status(await request(srv.authUrl, '/health'), 200);
    const b = status(await request(srv.url, '/health'), 200, 'GET /health');
    assert.deepEqual(b.json, a.json);
  });

  test('no apikey is needed (GoTrue itself never checks it)', async () => {
    const res = await fetch(`${srv.authUrl}/health`);
    assert.equal(res.status, 200);
  });
});

describe('settings', () => {
  test('GET /auth/v1/settings → defaults', async () => {
    const res = status(await request(srv.authUrl, '/settings', { apikey: srv.anonKey }), 200, 'GET /settings');
    const s = res.json;
    assert.equal(typeof s?.external, 'object', `settings.external missing: ${res.text}`);
    assert.equal(s.external.email, true, 'external.email');
    assert.equal(s.external.phone, false, 'external.phone');
    assert.equal(s.external.anonymous_users, false, 'external.anonymous_users');
    for (const p of ['github', 'google', 'apple', 'azure', 'gitlab']) {
      assert.equal(typeof s.external[p], 'boolean', `external.${p} should be a boolean: ${res.text}`);
    }
    assert.equal(s.disable_signup, false, 'disable_signup');
    assert.equal(s.mailer_autoconfirm, false, 'mailer_autoconfirm');
    assert.equal(typeof s.phone_autoconfirm, 'boolean', 'phone_autoconfirm');
    assert.equal(typeof s.sms_provider, 'string', 'sms_provider');
    assert.equal(typeof s.saml_enabled, 'boolean', 'saml_enabled');
  });

  test('settings reflect GOTRUE_DISABLE_SIGNUP / GOTRUE_MAILER_AUTOCONFIRM / anonymous users', async () => {
    const res = status(await request(flipped.authUrl, '/settings'), 200);
    assert.equal(res.json.disable_signup, true, `disable_signup: ${res.text}`);
    assert.equal(res.json.mailer_autoconfirm, true, `mailer_autoconfirm: ${res.text}`);
    assert.equal(res.json.external.anonymous_users, true, `external.anonymous_users: ${res.text}`);
    assert.equal(res.json.external.email, true, `external.email: ${res.text}`);
  });

  test('GET /settings at the root answers the same', async () => {
    const a = status(await request(srv.authUrl, '/settings'), 200);
    const b = status(await request(srv.url, '/settings'), 200, 'GET /settings');
    assert.deepEqual(b.json, a.json);
  });
});

describe('errors', () => {
  const badJson = '{"email": "a@example.com", "password": ';

  test('bad JSON, legacy format (no X-Supabase-Api-Version)', async () => {
    const res = status(
      await request(srv.authUrl, '/signup', { body: badJson, apikey: srv.anonKey }),
      400,
      'POST /signup with bad JSON',
    );
    assert.equal(res.json?.code, 400, `legacy body.code must be the HTTP status: ${res.text}`);
    assert.equal(res.json.error_code, 'bad_json', `body.error_code: ${res.text}`);
    assert.equal(typeof res.json.msg, 'string', `body.msg: ${res.text}`);
    assert.equal(res.headers.get('x-sb-error-code'), 'bad_json');
  });

  test('bad JSON, 2024-01-01 format', async () => {
    const res = status(
      await request(srv.authUrl, '/signup', { body: badJson, apikey: srv.anonKey, apiVersion: '2024-01-01' }),
      400,
    );
    assert.equal(res.json?.code, 'bad_json', `versioned body.code is the error code: ${res.text}`);
    assert.equal(typeof res.json.message, 'string', `body.message: ${res.text}`);
    assert.equal(res.json.error_code, undefined, `no legacy error_code in the versioned body: ${res.text}`);
    assert.equal(res.json.msg, undefined, `no legacy msg in the versioned body: ${res.text}`);
    assert.equal(res.headers.get('x-supabase-api-version'), '2024-01-01');
    assert.equal(res.headers.get('x-sb-error-code'), 'bad_json');
  });

  test('a later API version date also selects the new format', async () => {
    const res = status(
      await request(srv.authUrl, '/signup', { body: badJson, apikey: srv.anonKey, apiVersion: '2025-06-30' }),
      400,
    );
    assert.equal(res.json?.code, 'bad_json', res.text);
    assert.equal(res.headers.get('x-supabase-api-version'), '2024-01-01');
  });

  test('unknown route → 404 with a JSON error body', async () => {
    for (const base of [srv.authUrl, srv.url]) {
      const res = status(
        await request(base, '/definitely-not-a-route', { apikey: srv.anonKey }),
        404,
        `GET ${base}/definitely-not-a-route`,
      );
      assert.match(res.headers.get('content-type') ?? '', /application\/json/, `content-type for ${base}`);
      assert.equal(typeof res.json, 'object', `404 body should be JSON: ${res.text}`);
      assert.ok(
        typeof res.json.msg === 'string' || typeof res.json.message === 'string',
        `404 body should carry a message: ${res.text}`,
      );
    }
  });

  test('body over 1 MiB → 413 request_entity_too_large', async () => {
    const body = JSON.stringify({
      email: 'big@example.com',
      password: 'password-123',
      data: { pad: 'x'.repeat(1024 * 1024 + 16) },
    });
    let res;
    try {
      res = await request(srv.authUrl, '/signup', { body, apikey: srv.anonKey, apiVersion: '2024-01-01' });
    } catch (err) {
      assert.fail(`the server dropped the connection instead of answering 413: ${err.cause?.message ?? err.message}`);
    }
    status(res, 413, 'POST /signup with a 1 MiB+ body');
    assert.equal(res.json?.code, 'request_entity_too_large', res.text);
    assert.equal(res.headers.get('x-sb-error-code'), 'request_entity_too_large');
  });

  test('a body just under 1 MiB is read normally', async () => {
    const body = JSON.stringify({ email: 'not-an-email', password: 'password-123', data: { pad: 'x'.repeat(1000 * 1000) } });
    const res = await request(srv.authUrl, '/signup', { body, apikey: srv.anonKey, apiVersion: '2024-01-01' });
    assert.notEqual(res.status, 413, `a ${body.length}-byte body must not be rejected as too large`);
    status(res, 400, 'signUp with an invalid email (and a large body)');
    assert.ok(
      ['validation_failed', 'email_address_invalid'].includes(res.json?.code),
      `an invalid email is a validation error: ${res.text}`,
    );
  });
});

describe('CORS', () => {
  test('preflight for the headers supabase-js sends is allowed', async () => {
    const res = await fetch(`${srv.authUrl}/token?grant_type=password`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': CLIENT_HEADERS.join(', '),
      },
    });
    assert.ok(res.status === 200 || res.status === 204, `preflight status ${res.status}`);
    const allowOrigin = res.headers.get('access-control-allow-origin');
    assert.ok(allowOrigin === ORIGIN || allowOrigin === '*', `access-control-allow-origin: ${allowOrigin}`);
    const methods = headerList(res.headers.get('access-control-allow-methods'));
    assert.ok(methods.includes('post') || methods.includes('*'), `allow-methods: ${methods}`);
    const allowed = headerList(res.headers.get('access-control-allow-headers'));
    if (!allowed.includes('*')) {
      for (const h of CLIENT_HEADERS) assert.ok(allowed.includes(h), `allow-headers lacks ${h}: ${allowed}`);
    }
  });

  test('error responses expose X-Supabase-Api-Version to browsers', async () => {
    // auth-js decides how to parse an error body from this header; a browser only shows it if exposed.
    const res = await request(srv.authUrl, '/definitely-not-a-route', {
      apikey: srv.anonKey,
      apiVersion: '2024-01-01',
      headers: { origin: ORIGIN },
    });
    status(res, 404, 'GET unknown route with Origin');
    assert.equal(res.headers.get('x-supabase-api-version'), '2024-01-01');
    const allowOrigin = res.headers.get('access-control-allow-origin');
    assert.ok(allowOrigin === ORIGIN || allowOrigin === '*', `access-control-allow-origin: ${allowOrigin}`);
    const exposed = headerList(res.headers.get('access-control-expose-headers'));
    assert.ok(
      exposed.includes('x-supabase-api-version') || exposed.includes('*'),
      `access-control-expose-headers lacks x-supabase-api-version: ${exposed}`,
    );
  });
});

describe('docs', () => {
  test('/docs/ serves HTML', async () => {
    const res = status(await request(srv.url, '/docs/'), 200, 'GET /docs/');
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(res.text, /<html/i);
  });

  test('/openapi.json is an OpenAPI document', async () => {
    const res = status(await request(srv.url, '/openapi.json'), 200, 'GET /openapi.json');
    assert.equal(typeof res.json?.openapi, 'string', `openapi field: ${res.text.slice(0, 200)}`);
    assert.match(res.json.openapi, /^3\./);
    assert.equal(typeof res.json.paths, 'object');
    assert.ok(Object.keys(res.json.paths).length > 0, 'openapi.json documents no paths');
  });
});
