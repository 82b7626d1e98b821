// Swagger UI at /docs, driven like a person would in headless Chromium: sign up through
// "Try it out" on POST /signup, sign in through the password grant's form, paste the access
// token into "Authorize", and read the user back through GET /user. Proves that the forms start
// from useful examples, that "Authorize" feeds both security schemes, and that "Try it out"
// reaches this same server under the document's relative server URL /auth/v1. The server signs
// with an ES256 key (GOTRUE_JWT_KEYS), as a new Supabase project does, so "Authorize" carries an
// asymmetric token.
//
// Environment: see ../lib/chromium.mjs (CHROMIUM_BIN, DATABASE_URL, LATCHKEY_BIN).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importJsLib, launchChromium } from '../lib/chromium.mjs';

const { decodeJwt, randomEmail, randomPassword, startServer } = await importJsLib('server.mjs');
const { keySet, privateJwk } = await importJsLib('keys.mjs');

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const SCREENSHOT = join(ARTIFACTS, 'swagger-get-user.png');

const signingKey = privateJwk('ES256');
let server;
let browser;

before(async () => {
  // Autoconfirm, so that sign-up answers with a session (and its access token).
  server = await startServer({ GOTRUE_MAILER_AUTOCONFIRM: 'true', GOTRUE_JWT_KEYS: keySet(signingKey) });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The block of one operation, by tag and operationId (Swagger UI's element id). */
function operation(page, tag, operationId) {
  return page.locator(`#operations-${tag}-${operationId}`);
}

/** Expands an operation and presses "Try it out". */
async function tryItOut(block) {
  await block.locator('.opblock-summary').click();
  await block.locator('.try-out__btn').click();
}

/** Presses "Execute"; returns the status and body Swagger UI shows for the live response. */
async function execute(block) {
  await block.locator('.btn.execute').click();
  const live = block.locator('.live-responses-table');
  const status = live.locator('tr.response .response-col_status').first();
  await status.waitFor();
  const body = await live.locator('tr.response .response-col_description .highlight-code pre').first().textContent();
  return {
    status: Number((await status.textContent()).trim()),
    body: JSON.parse(body),
    requestUrl: (await block.locator('.request-url pre').textContent()).trim(),
  };
}

/** Fills the value of one security scheme in the "Authorize" dialog and applies it. */
async function authorize(page, scheme, value) {
  await page.locator('.auth-wrapper .btn.authorize').click();
  const container = page.locator('.modal-ux .auth-container', {
    has: page.locator('h4 code', { hasText: new RegExp(`^${scheme}$`) }),
  });
  await container.locator('input[type="text"]').fill(value);
  await container.getByRole('button', { name: 'Apply credentials' }).click();
  // Applied: the scheme now offers to log out instead.
  await container.getByRole('button', { name: 'Remove authorization' }).waitFor();
  await page.locator('.modal-ux .close-modal').click();
}

test('sign up, authorize and read the user through Swagger UI', async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  // Every call "Try it out" makes, with the headers it sends.
  const calls = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith('/auth/v1/')) {
      calls.push({ method: request.method(), path: url.pathname, headers: request.headers() });
    }
  });

  const response = await page.goto(`${server.url}/docs`);
  assert.equal(response.status(), 200);
  assert.equal(page.url(), `${server.url}/docs/`, '/docs redirects to /docs/');
  await page.locator('.opblock').first().waitFor();

  // The anon key, as supabase-js sends it (the public operations accept it).
  await authorize(page, 'apikey', server.anonKey);

  // Sign up: the form starts from the documented example.
  const signup = operation(page, 'auth', 'post_signup');
  await tryItOut(signup);
  const bodyField = signup.locator('textarea.body-param__text');
  assert.match(await bodyField.inputValue(), /"email": "someone@example\.com"/);
  const email = randomEmail('swagger');
  const password = randomPassword();
  await bodyField.fill(JSON.stringify({ email, password }, null, 2));
  const signedUp = await execute(signup);
  assert.equal(signedUp.status, 200, JSON.stringify(signedUp.body));
  assert.equal(signedUp.requestUrl, `${server.url}/auth/v1/signup`);
  assert.equal(signedUp.body.user.email, email);
  const accessToken = signedUp.body.access_token;
  assert.match(accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
  assert.deepEqual(decodeJwt(accessToken).header, { alg: 'ES256', kid: signingKey.kid, typ: 'JWT' });
  const signupCall = calls.find((c) => c.method === 'POST' && c.path === '/auth/v1/signup');
  assert.equal(signupCall?.headers.apikey, server.anonKey, 'the authorized apikey is sent');

  // The password grant's form: grant_type and body start from their examples, and work.
  const token = operation(page, 'auth', 'post_token');
  await tryItOut(token);
  assert.equal(await token.locator('input[placeholder="grant_type"]').inputValue(), 'password');
  const tokenBody = token.locator('textarea.body-param__text');
  assert.match(await tokenBody.inputValue(), /"password": "a-long-password"/);
  await tokenBody.fill(JSON.stringify({ email, password }));
  const signedIn = await execute(token);
  assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
  assert.equal(signedIn.requestUrl, `${server.url}/auth/v1/token?grant_type=password`);
  assert.equal(signedIn.body.user.email, email);

  // Paste the sign-up's access token into "Authorize" and read the user.
  await authorize(page, 'bearer', accessToken);
  const getUser = operation(page, 'user', 'get_user');
  await tryItOut(getUser);
  const me = await execute(getUser);
  assert.equal(me.status, 200, JSON.stringify(me.body));
  assert.equal(me.requestUrl, `${server.url}/auth/v1/user`);
  assert.equal(me.body.email, email);
  assert.equal(me.body.id, signedUp.body.user.id);
  const userCall = calls.find((c) => c.method === 'GET' && c.path === '/auth/v1/user');
  assert.equal(userCall?.headers.authorization, `Bearer ${accessToken}`);

  // From the operation's header down to the live response: the documented responses below
  // would make the picture three times as tall.
  mkdirSync(ARTIFACTS, { recursive: true });
  await getUser.scrollIntoViewIfNeeded();
  const scrollY = await page.evaluate(() => window.scrollY);
  const block = await getUser.boundingBox();
  const live = await getUser.locator('.live-responses-table').boundingBox();
  await page.screenshot({
    path: SCREENSHOT,
    fullPage: true,
    clip: { x: block.x, y: block.y + scrollY, width: block.width, height: live.y + live.height - block.y },
  });
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  await page.close();
});
