// The sign-in page in examples/sign-in, in headless Chromium: "Sign in with Google" (and
// GitHub) sends the browser through Latchkey's /authorize, the node fake of the provider
// (which approves at once) and Latchkey's /callback back to the page with `?code=`, where
// supabase-js exchanges the code; the page then shows the user, survives a reload, and signs
// out. Screenshots of the signed-in page go to ../artifacts/sign-in-<provider>.png.
//
// Environment: see ../lib/chromium.mjs (CHROMIUM_BIN, DATABASE_URL, LATCHKEY_BIN). Needs the
// node_modules of tests/js (the harness, the fakes) and of examples/sign-in (supabase-js for
// the page); scripts/test.sh runs `npm ci` in both first.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importJsLib, launchChromium } from '../lib/chromium.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(HERE, '..', 'artifacts');

const { randomEmail, refreshRaw, startServer } = await importJsLib('server.mjs');
const { fakeUser, startFakeProvider } = await importJsLib('oauth-fakes.mjs');
const { startSignInPage } = await import('../../../examples/sign-in/serve.mjs');

const NAMES = { google: 'Google', github: 'GitHub' };
const fakes = {};
let server;
let site;
let browser;

/** A port that was free a moment ago (the page's origin must be known before Latchkey starts). */
async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

before(async () => {
  for (const provider of Object.keys(NAMES)) fakes[provider] = await startFakeProvider(provider);
  const port = await freePort();
  const pageUrl = `http://127.0.0.1:${port}`;
  // The configuration examples/sign-in/README.md gives: the page is the site.
  server = await startServer({
    ...fakes.google.env,
    ...fakes.github.env,
    GOTRUE_SITE_URL: pageUrl,
    GOTRUE_URI_ALLOW_LIST: `${pageUrl}/**`,
  });
  site = await startSignInPage({ latchkeyUrl: server.url, anonKey: server.anonKey, host: '127.0.0.1', port });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.stop();
  for (const fake of Object.values(fakes)) await fake.close();
});

/** A fresh browser context (own localStorage) with a tab on the page, recording what it does. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const tab = await context.newPage();
  const log = { errors: [], navigations: [], origins: new Set() };
  tab.on('pageerror', (err) => log.errors.push(err.message));
  tab.on('request', (request) => {
    log.origins.add(new URL(request.url()).origin);
    if (request.isNavigationRequest() && request.frame() === tab.mainFrame()) log.navigations.push(request.url());
  });
  const response = await tab.goto(site.url);
  assert.equal(response.status(), 200);
  return { context, tab, log };
}

/** The session supabase-js keeps in localStorage (null when signed out). */
function storedSession(tab) {
  return tab.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => /^sb-.*-auth-token$/.test(k));
    return key ? JSON.parse(localStorage.getItem(key)) : null;
  });
}

for (const [provider, name] of Object.entries(NAMES)) {
  describe(name, () => {
    test(`"Sign in with ${name}" signs in through the provider, and "Sign out" signs out`, async () => {
      const email = randomEmail('grace');
      fakes[provider].setUser(fakeUser(email, { name: 'Grace Hopper' }));
      const { context, tab, log } = await openPage();

      await tab.getByRole('button', { name: `Sign in with ${name}` }).click();
      await tab.locator('#signed-in').waitFor();
      assert.equal(await tab.locator('#user-email').textContent(), email);
      assert.equal(await tab.locator('#user-provider').textContent(), name);
      assert.equal(await tab.locator('#user-name').textContent(), 'Grace Hopper');
      assert.equal(await tab.locator('#user-identities').textContent(), name);
      assert.ok(await tab.locator('#signed-out').isHidden());

      // The way there: the page, /authorize, the provider, /callback, the page with ?code=,
      // which supabase-js then removed from the address bar.
      const steps = log.navigations.map((u) => new URL(u));
      assert.deepEqual(
        steps.map((u) => `${u.origin}${u.pathname}`),
        [`${site.url}/`, `${server.url}/auth/v1/authorize`, `${fakes[provider].url}${steps[2].pathname}`,
          `${server.url}/callback`, `${site.url}/`],
        log.navigations.join('\n'),
      );
      assert.equal(steps[1].searchParams.get('code_challenge_method'), 's256', 'PKCE');
      assert.ok(steps[4].searchParams.get('code'), 'back with a code');
      assert.equal(tab.url(), `${site.url}/`, 'the code is gone from the address bar');
      // supabase-js came from the page's own server: no CDN, nothing else.
      assert.deepEqual(
        [...log.origins].sort(),
        [site.url, server.url, fakes[provider].url].sort(),
      );

      mkdirSync(ARTIFACTS, { recursive: true });
      await tab.screenshot({ path: join(ARTIFACTS, `sign-in-${provider}.png`) });

      // The session is kept across a reload.
      const session = await storedSession(tab);
      assert.equal(session.user.email, email);
      assert.match(session.provider_token, /^provider-access-/);
      await tab.reload();
      await tab.locator('#signed-in').waitFor();
      assert.equal(await tab.locator('#user-email').textContent(), email);

      // Sign out: back to the buttons, nothing stored, and the server revoked the session.
      await tab.getByRole('button', { name: 'Sign out' }).click();
      await tab.getByRole('button', { name: `Sign in with ${name}` }).waitFor();
      assert.ok(await tab.locator('#signed-in').isHidden());
      assert.equal(await storedSession(tab), null);
      const refreshed = await refreshRaw(server, session.refresh_token);
      assert.equal(refreshed.status, 400, refreshed.text);
      assert.ok(await tab.locator('#error').isHidden(), await tab.locator('#error').textContent());
      assert.deepEqual(log.errors, [], 'no script errors on the page');
      await context.close();
    });
  });
}

test('a declined consent comes back to the page as an error', async () => {
  fakes.google.denyNext('access_denied');
  const { context, tab, log } = await openPage();
  await tab.getByRole('button', { name: 'Sign in with Google' }).click();
  await tab.locator('#error').waitFor();
  assert.equal(
    await tab.locator('#error').textContent(),
    'The user has denied your application access. (access_denied)',
  );
  assert.ok(await tab.getByRole('button', { name: 'Sign in with Google' }).isVisible(), 'still signed out');
  assert.equal(tab.url(), `${site.url}/`, 'the error is gone from the address bar');
  assert.equal(await storedSession(tab), null);
  assert.deepEqual(log.errors, []);
  await context.close();
});

test('the buttons are the providers Latchkey has enabled, in the page\'s order', async () => {
  // Discord and GitLab are only listed (a click would go to the real sites); WorkOS is enabled
  // but gets no button (its sign-in needs a connection the app chooses).
  const listedOnly = (provider) => ({
    [`GOTRUE_EXTERNAL_${provider}_ENABLED`]: 'true',
    [`GOTRUE_EXTERNAL_${provider}_CLIENT_ID`]: 'listed-only',
    [`GOTRUE_EXTERNAL_${provider}_SECRET`]: 'listed-only',
  });
  const three = await startServer({
    ...fakes.github.env, ...listedOnly('GITLAB'), ...listedOnly('DISCORD'), ...listedOnly('WORKOS'),
  });
  const other = await startSignInPage({ latchkeyUrl: three.url, anonKey: three.anonKey, host: '127.0.0.1', port: 0 });
  const context = await browser.newContext();
  try {
    // /settings held back once the page asked: no button may show before its answer.
    let answerSettings;
    let settingsAsked;
    const held = new Promise((resolve) => { answerSettings = resolve; });
    const asked = new Promise((resolve) => { settingsAsked = resolve; });
    await context.route('**/auth/v1/settings', async (route) => {
      settingsAsked();
      await held;
      await route.continue();
    });
    const tab = await context.newPage();
    await tab.goto(other.url);
    await asked;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await tab.locator('#providers button').count(), 0, 'not before /settings');
    answerSettings();
    await tab.getByRole('button', { name: 'Sign in with GitHub' }).waitFor();
    assert.deepEqual(
      await tab.locator('#providers button').allTextContents(),
      ['Sign in with Discord', 'Sign in with GitHub', 'Sign in with GitLab'],
    );
    assert.ok(await tab.locator('#no-providers').isHidden());
  } finally {
    await context.close();
    await other.close();
    await three.stop();
  }
});

test('without providers the page says how to enable one; without /settings it says so', async () => {
  const none = await startServer({});
  const other = await startSignInPage({ latchkeyUrl: none.url, anonKey: none.anonKey, host: '127.0.0.1', port: 0 });
  const context = await browser.newContext();
  try {
    const tab = await context.newPage();
    await tab.goto(other.url);
    await tab.locator('#no-providers').waitFor();
    assert.equal(await tab.locator('#providers button').count(), 0);

    await context.route('**/auth/v1/settings', (route) => route.fulfill({ status: 503, body: '{}' }));
    await tab.reload();
    await tab.locator('#error').waitFor();
    assert.equal(
      await tab.locator('#error').textContent(),
      'Could not ask Latchkey which providers are enabled: GET /settings answered 503',
    );
  } finally {
    await context.close();
    await other.close();
    await none.stop();
  }
});
