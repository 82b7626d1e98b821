// Sign-in with Google and GitHub through supabase-js, against node fakes of both providers
// (lib/oauth-fakes.mjs). The browser's part is played by hand: signInWithOAuth (with
// skipBrowserRedirect) only builds the URL, and the redirects /authorize → provider →
// /callback → redirectTo are followed one by one with fetch, as a browser would.
// Spec: gotrue-api.md §1 (/authorize, /callback), §2; authjs-contract.md §3.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeClient, randomEmail, randomPassword, request, startServer, timeoutFetch } from '../lib/server.mjs';
import { fakeUser, startFakeProvider } from '../lib/oauth-fakes.mjs';
import { startSmtpSink } from '../lib/smtp.mjs';
import { authError, ok } from '../lib/expect.mjs';

const SITE = 'http://localhost:3000';
const PROVIDERS = ['google', 'github'];
const fakes = {};
let sink;
let server;

before(async () => {
  for (const provider of PROVIDERS) fakes[provider] = await startFakeProvider(provider);
  sink = await startSmtpSink();
  server = await startServer({
    ...fakes.google.env,
    ...fakes.github.env,
    GOTRUE_SITE_URL: SITE,
    GOTRUE_URI_ALLOW_LIST: `${SITE}/**`,
    GOTRUE_MAILER_AUTOCONFIRM: 'false',
    GOTRUE_SMTP_HOST: '127.0.0.1',
    GOTRUE_SMTP_PORT: String(sink.port),
    GOTRUE_SMTP_ADMIN_EMAIL: 'auth@latchkey.test',
    GOTRUE_SMTP_MAX_FREQUENCY: '0',
    GOTRUE_SECURITY_MANUAL_LINKING_ENABLED: 'true',
  });
}, { timeout: 90_000 });

after(async () => {
  await server?.stop();
  await sink?.close();
  for (const fake of Object.values(fakes)) await fake.close();
});

/**
 * Follows redirects by hand from `start` until one leaves for the app at SITE.
 * Returns { end (URL at SITE), hops: [{ url, status }] } — every URL fetched on the way.
 */
async function follow(start) {
  const hops = [];
  let url = start;
  for (let i = 0; i < 10; i++) {
    const res = await timeoutFetch(url, { redirect: 'manual' });
    hops.push({ url, status: res.status });
    const location = res.headers.get('location');
    assert.ok(
      res.status >= 300 && res.status < 400 && location,
      `GET ${url} → ${res.status} ${await res.text()}; hops so far: ${JSON.stringify(hops)}`,
    );
    const next = new URL(location, url);
    if (next.origin === new URL(SITE).origin) return { end: next, hops };
    url = next.toString();
  }
  throw new Error(`more than 10 redirects: ${JSON.stringify(hops)}`);
}

/** The `/callback` URL the provider sent the browser to, from a follow()'s hops. */
function callbackOf(hops) {
  const hop = hops.find((h) => new URL(h.url).pathname === '/callback');
  assert.ok(hop, `no /callback among ${JSON.stringify(hops)}`);
  return hop.url;
}

/** The parameters of a URL's fragment. */
function fragment(url) {
  return Object.fromEntries(new URLSearchParams(url.hash.slice(1)));
}

/** signInWithOAuth without a browser: the URL it would open. */
async function oauthUrl(client, provider, options = {}) {
  const data = ok(
    await client.auth.signInWithOAuth({
      provider,
      options: { redirectTo: `${SITE}/welcome`, skipBrowserRedirect: true, ...options },
    }),
    `signInWithOAuth ${provider}`,
  );
  assert.equal(data.provider, provider);
  return data.url;
}

function providersOf(user) {
  return user.identities.map((i) => i.provider);
}

/** A confirmed email/password account, made through the admin API. */
async function passwordAccount(email) {
  const admin = makeClient(server.url, server.serviceKey).auth.admin;
  const password = randomPassword();
  const { user } = ok(await admin.createUser({ email, password, email_confirm: true }), 'createUser');
  return { user, password };
}

for (const provider of PROVIDERS) {
  describe(provider, () => {
    const fake = () => fakes[provider];

    test('PKCE: signInWithOAuth → provider → ?code= → exchangeCodeForSession', async () => {
      const email = randomEmail(`pkce-${provider}`);
      const profile = fakeUser(email);
      fake().setUser(profile);
      const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });

      const url = new URL(await oauthUrl(client, provider, { scopes: 'openid', queryParams: { prompt: 'consent' } }));
      assert.equal(`${url.origin}${url.pathname}`, `${server.authUrl}/authorize`);
      assert.equal(url.searchParams.get('provider'), provider);
      assert.equal(url.searchParams.get('redirect_to'), `${SITE}/welcome`);
      assert.equal(url.searchParams.get('code_challenge_method'), 's256');
      assert.match(url.searchParams.get('code_challenge'), /^[\w-]{43}$/);
      const stored = [...client.__storage.map.keys()].filter((k) => k.endsWith('-code-verifier'));
      assert.ok(stored.length >= 1, `a verifier is stored: ${[...client.__storage.map.keys()]}`);

      const { end, hops } = await follow(url);
      assert.deepEqual(
        hops.map((h) => [new URL(h.url).origin, h.status]),
        [
          [server.url, 302], // /auth/v1/authorize
          [fake().url, 302], // the provider approves
          [server.url, 302], // /callback
        ],
      );
      assert.equal(`${end.origin}${end.pathname}`, `${SITE}/welcome`);
      assert.equal(end.hash, '', 'nothing in the fragment');
      const code = end.searchParams.get('code');
      assert.ok(code, `a code in ${end}`);
      // The provider got our scopes on top of its defaults, the forwarded parameter, a flow id.
      const asked = fake().lastAuthorize();
      assert.match(asked.scope, /openid$/);
      assert.equal(asked.prompt, 'consent');
      assert.match(asked.state, /^[0-9a-f-]{36}$/);
      assert.equal(asked.redirect_uri, `${server.url}/callback`);

      const events = [];
      client.auth.onAuthStateChange((event) => events.push(event));
      const { session, user } = ok(await client.auth.exchangeCodeForSession(code), 'exchangeCodeForSession');
      assert.equal(user.email, email);
      assert.ok(user.email_confirmed_at, 'the provider vouched for the address');
      assert.equal(user.app_metadata.provider, provider);
      assert.deepEqual(user.app_metadata.providers, [provider]);
      assert.deepEqual(providersOf(user), [provider]);
      assert.equal(user.identities[0].id, profile.id);
      assert.equal(user.identities[0].identity_data.email, email);
      assert.equal(user.user_metadata.full_name, 'Ada Lovelace');
      assert.match(session.provider_token, /^provider-access-/);
      if (provider === 'google') assert.match(session.provider_refresh_token, /^provider-refresh-/);
      else assert.ok(!session.provider_refresh_token, 'GitHub hands out no refresh token');
      assert.ok(events.includes('SIGNED_IN'), `events: ${events}`);

      // The session is stored and works against the server.
      const me = ok(await client.auth.getUser(), 'getUser');
      assert.equal(me.user.id, user.id);
      assert.equal((await client.auth.getSession()).data.session.access_token, session.access_token);
      // The code works once (raw, since supabase-js dropped its verifier after the exchange).
      const again = await request(server.authUrl, '/token?grant_type=pkce', {
        body: { auth_code: code, code_verifier: 'x'.repeat(43) },
        apikey: server.anonKey,
      });
      assert.equal(again.status, 404, again.text);
      assert.equal(again.json.error_code, 'flow_state_not_found');
    });

    test('implicit: the session and provider_token come back in the fragment → setSession', async () => {
      const email = randomEmail(`implicit-${provider}`);
      const profile = fakeUser(email);
      fake().setUser(profile);
      const client = makeClient(server.url, server.anonKey, { flowType: 'implicit' });

      const url = new URL(await oauthUrl(client, provider));
      assert.equal(url.searchParams.get('code_challenge'), null);
      const { end } = await follow(url);
      assert.equal(`${end.origin}${end.pathname}${end.search}`, `${SITE}/welcome`);
      const tokens = fragment(end);
      for (const key of ['access_token', 'refresh_token', 'expires_in', 'expires_at', 'token_type', 'provider_token']) {
        assert.ok(tokens[key], `${key} in ${end.hash}`);
      }
      assert.equal(tokens.token_type, 'bearer');
      assert.equal(Number(tokens.expires_in), 3600);
      assert.match(tokens.provider_token, /^provider-access-/);

      const { session, user } = ok(
        await client.auth.setSession({ access_token: tokens.access_token, refresh_token: tokens.refresh_token }),
        'setSession',
      );
      assert.equal(session.access_token, tokens.access_token);
      assert.equal(user.email, email);
      assert.equal(user.app_metadata.provider, provider);
      assert.deepEqual(providersOf(user), [provider]);

      // Signing in again with the same provider account finds the same user.
      const second = makeClient(server.url, server.anonKey);
      const { end: back } = await follow(await oauthUrl(second, provider));
      const user2 = ok(
        await second.auth.setSession({
          access_token: fragment(back).access_token,
          refresh_token: fragment(back).refresh_token,
        }),
        'setSession (second sign-in)',
      ).user;
      assert.equal(user2.id, user.id);
      assert.equal(user2.identities.length, 1);
      // Both sessions refresh independently.
      ok(await client.auth.refreshSession(), 'refreshSession');
    });

    test('an unverified provider email does not take over an email/password account', async () => {
      const email = randomEmail(`owner-${provider}`);
      const { user: owner, password } = await passwordAccount(email);

      fake().setUser(fakeUser(email, { verified: false }));
      const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
      const { end } = await follow(await oauthUrl(client, provider));
      const { user: stranger } = ok(
        await client.auth.exchangeCodeForSession(end.searchParams.get('code')),
        'exchangeCodeForSession (unverified)',
      );
      assert.notEqual(stranger.id, owner.id, 'a separate account');
      assert.equal(stranger.email, '', 'which does not get the address');
      assert.equal(stranger.identities[0].identity_data.email, null);
      // The owner still signs in with the password, and has no new identity.
      const signedIn = ok(
        await makeClient(server.url, server.anonKey).auth.signInWithPassword({ email, password }),
        'owner signInWithPassword',
      );
      assert.deepEqual(providersOf(signedIn.user), ['email']);

      // A provider account that verified the address joins the owner's account instead.
      fake().setUser(fakeUser(email, { verified: true }));
      const verified = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
      const { end: back } = await follow(await oauthUrl(verified, provider));
      const { user: linked } = ok(
        await verified.auth.exchangeCodeForSession(back.searchParams.get('code')),
        'exchangeCodeForSession (verified)',
      );
      assert.equal(linked.id, owner.id);
      assert.deepEqual(providersOf(linked), ['email', provider]);
      assert.deepEqual(linked.app_metadata.providers, ['email', provider]);
    });

    test('a new unverified email needs the confirmation mail before it signs in', async () => {
      const email = randomEmail(`unverified-${provider}`);
      const profile = fakeUser(email, { verified: false });
      fake().setUser(profile);
      const client = makeClient(server.url, server.anonKey);
      const { end } = await follow(await oauthUrl(client, provider));
      const error = fragment(end);
      assert.equal(error.error, 'access_denied', end.toString());
      assert.equal(error.error_code, 'provider_email_needs_verification');
      assert.match(error.error_description, /confirmation email/);
      assert.equal(error.access_token, undefined);
      // Trying again does not get around it.
      const { end: again } = await follow(await oauthUrl(client, provider));
      assert.equal(fragment(again).error_code, 'provider_email_needs_verification');

      // The mail confirms the address and signs the owner in. Stricter than GoTrue (issue #14):
      // the unverified identity that asked for the mail does not survive it, since anyone can
      // claim an address the provider has not checked.
      const mail = await sink.lastTo(email);
      const confirmed = ok(await client.auth.verifyOtp({ email, token: mail.code, type: 'signup' }), 'verifyOtp signup');
      assert.deepEqual(providersOf(confirmed.user), ['email']);
      // Once the provider vouches for the address (or after linkIdentity), it signs in to the
      // owner's account.
      fake().setUser({ ...profile, verified: true });
      const { end: signedIn } = await follow(await oauthUrl(client, provider));
      const tokens = fragment(signedIn);
      assert.ok(tokens.access_token, signedIn.toString());
      const { user } = ok(await client.auth.setSession(tokens), 'setSession');
      assert.equal(user.id, confirmed.user.id);
      assert.equal(user.email, email);
      assert.deepEqual(providersOf(user), ['email', provider]);
    });

    test('the provider\'s error comes back to redirectTo (query and fragment)', async () => {
      for (const flowType of ['implicit', 'pkce']) {
        fake().denyNext('access_denied');
        const client = makeClient(server.url, server.anonKey, { flowType });
        const { end } = await follow(await oauthUrl(client, provider));
        assert.equal(`${end.origin}${end.pathname}`, `${SITE}/welcome`, `${flowType}: ${end}`);
        assert.equal(end.searchParams.get('error'), 'access_denied', `${flowType}: ${end}`);
        assert.equal(end.searchParams.get('error_description'), 'The user has denied your application access.');
        assert.equal(fragment(end).error, 'access_denied');
        assert.equal(end.searchParams.get('code'), null);
      }
    });

    test('a callback URL works once: replays are refused', async () => {
      fake().setUser(fakeUser(randomEmail(`replay-${provider}`)));
      const replay = async (callback) => {
        const res = await timeoutFetch(callback, { redirect: 'manual' });
        assert.equal(res.status, 303, `replayed ${callback}`);
        const to = new URL(res.headers.get('location'));
        assert.equal(to.origin, SITE, 'back to the site');
        assert.equal(to.searchParams.get('error'), 'invalid_request');
        assert.equal(fragment(to).error_code, to.searchParams.get('error_code'));
        assert.equal(fragment(to).access_token, undefined);
        return to.searchParams.get('error_code');
      };

      // Implicit: the flow is gone once used.
      const implicit = await follow(await oauthUrl(makeClient(server.url, server.anonKey), provider));
      assert.ok(fragment(implicit.end).access_token);
      assert.equal(await replay(callbackOf(implicit.hops)), 'bad_oauth_state');

      // PKCE: the flow waits for its exchange, but its state is spent.
      const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
      const pkce = await follow(await oauthUrl(client, provider));
      assert.equal(await replay(callbackOf(pkce.hops)), 'flow_state_already_used');
      // The replay did not spoil the first code.
      ok(await client.auth.exchangeCodeForSession(pkce.end.searchParams.get('code')), 'exchange after a replay');
    });
  });
}

describe('provider details', () => {
  test('Google without an ID token: the profile comes from userinfo', async () => {
    const email = randomEmail('userinfo');
    fakes.google.setUser(fakeUser(email));
    fakes.google.withoutIdToken();
    try {
      const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
      const calls = fakes.google.calls.length;
      const { end } = await follow(await oauthUrl(client, 'google'));
      const { user } = ok(await client.auth.exchangeCodeForSession(end.searchParams.get('code')), 'exchange');
      assert.equal(user.email, email);
      assert.ok(fakes.google.calls.slice(calls).includes('GET /userinfo'), fakes.google.calls.slice(calls).join(', '));
    } finally {
      fakes.google.withoutIdToken(false);
    }
  });

  test('a disabled or unknown provider is refused at /authorize', async () => {
    const res = await request(server.authUrl, '/authorize?provider=twitter');
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error_code, 'validation_failed');
    assert.equal(res.json.msg, 'Unsupported provider: twitter');
    const settings = await request(server.authUrl, '/settings', { apikey: server.anonKey });
    assert.equal(settings.json.external.google, true);
    assert.equal(settings.json.external.github, true);
  });

  test('linkIdentity adds a GitHub identity to a Google user; unlinkIdentity removes it', async () => {
    fakes.google.setUser(fakeUser(randomEmail('link')));
    const client = makeClient(server.url, server.anonKey, { flowType: 'pkce' });
    const { end } = await follow(await oauthUrl(client, 'google'));
    ok(await client.auth.exchangeCodeForSession(end.searchParams.get('code')), 'sign in with Google');

    // Another address at GitHub: manual linking, not linking by email.
    fakes.github.setUser(fakeUser(randomEmail('link-other')));
    const link = ok(
      await client.auth.linkIdentity({
        provider: 'github',
        options: { redirectTo: `${SITE}/linked`, skipBrowserRedirect: true },
      }),
      'linkIdentity',
    );
    const linked = await follow(link.url);
    assert.equal(linked.end.pathname, '/linked');
    ok(await client.auth.exchangeCodeForSession(linked.end.searchParams.get('code')), 'exchange after linking');
    const { identities } = ok(await client.auth.getUserIdentities(), 'getUserIdentities');
    assert.deepEqual(identities.map((i) => i.provider).sort(), ['github', 'google']);

    ok(await client.auth.unlinkIdentity(identities.find((i) => i.provider === 'github')), 'unlinkIdentity');
    ok(await client.auth.refreshSession(), 'refreshSession');
    const after = ok(await client.auth.getUserIdentities(), 'getUserIdentities after unlinking');
    assert.deepEqual(after.identities.map((i) => i.provider), ['google']);
    const last = await client.auth.unlinkIdentity(after.identities[0]);
    authError(last.error, { status: 422, code: 'single_identity_not_deletable' }, 'unlink the last identity');
  });
});
