// Node fakes of Google (OpenID Connect) and GitHub on 127.0.0.1 and a free port, implementing
// exactly what Latchkey calls (the twins of tests/it/fake_providers.rs):
//
//   Google  GET  /.well-known/openid-configuration   discovery (issuer = the fake's URL)
//           GET  /o/oauth2/auth                      authorize
//           POST /token                              code → access/refresh token + RS256 ID token
//           GET  /certs                              JWKS (tests/it/fixtures/google_test_jwks.json)
//           GET  /userinfo                           profile, used when the ID token is left out
//   GitHub  GET  /login/oauth/authorize              authorize
//           POST /login/oauth/access_token           code → access token
//           GET  /api/v3/user, /api/v3/user/emails   profile and addresses
//
// The authorize page approves at once and answers 302 to the redirect_uri with `code` and
// `state` (or `error=…` after denyNext()). The token endpoint checks the client's credentials
// (HTTP Basic or form fields), the code and the redirect URI. ID tokens are signed with the
// test-only RSA key in tests/it/fixtures, so Latchkey checks them against a real JWKS.

import { randomBytes, randomUUID, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLIENT_ID = 'latchkey-test-client';
export const CLIENT_SECRET = 'latchkey-test-secret';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../it/fixtures');
const KEY_PEM = readFileSync(resolve(FIXTURES, 'google_test_key.pem'), 'utf8');
const JWKS = readFileSync(resolve(FIXTURES, 'google_test_jwks.json'), 'utf8');
const KEY_ID = 'test-key-1';

/** The account the fake says is signing in. `id` is numeric, as GitHub's are. */
export function fakeUser(email, { verified = true, name = 'Ada Lovelace', id } = {}) {
  return { id: id ?? String(randomBytes(4).readUInt32BE() + 1), email, verified, name };
}

function b64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** `claims` as an RS256 token signed with the fixture key (the one the fakes publish), naming `kid`. */
export function signIdToken(claims, kid = KEY_ID) {
  const header = b64url({ alg: 'RS256', typ: 'JWT', kid });
  const payload = b64url(claims);
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), KEY_PEM).toString('base64url');
  return `${header}.${payload}.${signature}`;
}

function idToken(issuer, user) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url({ alg: 'RS256', typ: 'JWT', kid: KEY_ID });
  const claims = b64url({
    iss: issuer,
    aud: CLIENT_ID,
    sub: user.id,
    email: user.email,
    email_verified: user.verified,
    name: user.name,
    picture: 'https://example.com/a.png',
    iat: now,
    exp: now + 3600,
  });
  const signature = sign('sha256', Buffer.from(`${header}.${claims}`), KEY_PEM).toString('base64url');
  return `${header}.${claims}.${signature}`;
}

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain' : 'application/json';
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function clientAuthorized(req, form) {
  const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
  return (
    req.headers.authorization === basic ||
    (form.get('client_id') === CLIENT_ID && form.get('client_secret') === CLIENT_SECRET)
  );
}

/**
 * Starts a fake provider: kind is 'google' or 'github'.
 * Resolves to { kind, url, env, calls, setUser(user), denyNext(error), withoutIdToken(),
 * lastAuthorize(), close() }. `env` enables the provider in Latchkey (pass it to startServer).
 */
export async function startFakeProvider(kind) {
  if (kind !== 'google' && kind !== 'github') throw new Error(`unknown fake provider ${kind}`);
  const github = kind === 'github';
  const state = { user: null, deny: null, noIdToken: false, lastAuthorize: null };
  const codes = new Map(); // code → { user, redirectUri }
  const tokens = new Map(); // access token → user
  /** Every request, as `METHOD /path`, in order. */
  const calls = [];
  let url;

  function authorize(query, res) {
    state.lastAuthorize = Object.fromEntries(query);
    if (query.get('client_id') !== CLIENT_ID) return send(res, 400, 'unknown client');
    let back;
    try {
      back = new URL(query.get('redirect_uri'));
    } catch {
      return send(res, 400, 'bad redirect_uri');
    }
    if (state.deny) {
      back.searchParams.set('error', state.deny);
      back.searchParams.set('error_description', 'The user has denied your application access.');
      state.deny = null;
    } else {
      if (!state.user) return send(res, 500, 'no fake user set: call setUser() first');
      const code = randomUUID().replaceAll('-', '');
      codes.set(code, { user: state.user, redirectUri: query.get('redirect_uri') });
      back.searchParams.set('code', code);
    }
    back.searchParams.set('state', query.get('state') ?? '');
    res.writeHead(302, { location: back.toString(), 'content-length': 0 });
    res.end();
  }

  async function token(req, res) {
    const form = await readForm(req);
    if (!clientAuthorized(req, form)) return send(res, 401, { error: 'invalid_client' });
    const grant = codes.get(form.get('code') ?? '');
    codes.delete(form.get('code') ?? '');
    if (!grant || form.get('redirect_uri') !== grant.redirectUri || form.get('grant_type') !== 'authorization_code') {
      return send(res, 400, { error: 'invalid_grant' });
    }
    const accessToken = `provider-access-${randomUUID()}`;
    tokens.set(accessToken, grant.user);
    const body = { access_token: accessToken, token_type: 'bearer', scope: 'email profile' };
    if (!github) {
      body.refresh_token = `provider-refresh-${randomUUID()}`;
      body.expires_in = 3599;
      if (!state.noIdToken) body.id_token = idToken(url, grant.user);
    }
    send(res, 200, body);
  }

  /** The user behind the request's bearer token, or null (after a 401 answer). */
  function bearer(req, res) {
    const user = tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    if (!user) send(res, 401, { message: 'Bad credentials' });
    return user ?? null;
  }

  const routes = github
    ? {
        'GET /login/oauth/authorize': (req, res, query) => authorize(query, res),
        'POST /login/oauth/access_token': token,
        'GET /api/v3/user': (req, res) => {
          const user = bearer(req, res);
          if (user) {
            send(res, 200, {
              id: Number(user.id),
              login: 'ada',
              name: user.name,
              avatar_url: 'https://example.com/ada.png',
              email: null,
            });
          }
        },
        'GET /api/v3/user/emails': (req, res) => {
          const user = bearer(req, res);
          if (user) {
            send(res, 200, [
              { email: 'secondary@example.org', primary: false, verified: true },
              { email: user.email, primary: true, verified: user.verified },
            ]);
          }
        },
      }
    : {
        'GET /.well-known/openid-configuration': (req, res) =>
          send(res, 200, {
            issuer: url,
            authorization_endpoint: `${url}/o/oauth2/auth`,
            token_endpoint: `${url}/token`,
            jwks_uri: `${url}/certs`,
            userinfo_endpoint: `${url}/userinfo`,
          }),
        'GET /o/oauth2/auth': (req, res, query) => authorize(query, res),
        'POST /token': token,
        'GET /certs': (req, res) => send(res, 200, JSON.parse(JWKS)),
        'GET /userinfo': (req, res) => {
          const user = bearer(req, res);
          if (user) {
            send(res, 200, { id: user.id, email: user.email, verified_email: user.verified, name: user.name });
          }
        },
      };

  const server = createServer((req, res) => {
    const { pathname, searchParams } = new URL(req.url, 'http://fake.invalid');
    const route = `${req.method} ${pathname}`;
    calls.push(route);
    const handler = routes[route];
    if (!handler) return send(res, 404, `no route ${route}`);
    Promise.resolve(handler(req, res, searchParams)).catch((err) => {
      if (!res.headersSent) send(res, 500, String(err?.stack ?? err));
    });
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  url = `http://127.0.0.1:${server.address().port}`;
  const upper = kind.toUpperCase();

  return {
    kind,
    url,
    calls,
    /** The variables that enable this provider in Latchkey. */
    env: {
      [`GOTRUE_EXTERNAL_${upper}_ENABLED`]: 'true',
      [`GOTRUE_EXTERNAL_${upper}_CLIENT_ID`]: CLIENT_ID,
      [`GOTRUE_EXTERNAL_${upper}_SECRET`]: CLIENT_SECRET,
      [`GOTRUE_EXTERNAL_${upper}_URL`]: url,
    },
    /** Who signs in from now on (see fakeUser). */
    setUser(user) {
      state.user = user;
    },
    /** The next authorize request answers `error=<error>` instead of a code. */
    denyNext(error = 'access_denied') {
      state.deny = error;
    },
    /** Google: leave the ID token out of token responses, so Latchkey reads /userinfo. */
    withoutIdToken(value = true) {
      state.noIdToken = value;
    },
    /** The query of the last authorize request, as an object. */
    lastAuthorize: () => state.lastAuthorize,
    close() {
      server.closeAllConnections();
      return new Promise((res) => server.close(() => res()));
    },
  };
}
