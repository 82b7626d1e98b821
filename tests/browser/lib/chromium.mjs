// What every browser test shares: Debian's Chromium, and the harness of tests/js.
//
// Environment: CHROMIUM_BIN (default /usr/bin/chromium; scripts/test.sh exports it), plus what
// ../../js/lib/server.mjs needs (DATABASE_URL, LATCHKEY_BIN).

import { chromium } from 'playwright-core';

// Debian's Chromium as the environment notes start it; playwright-core adds --headless,
// --no-sandbox (chromiumSandbox: false: CI runs as root) and a fresh temporary profile.
const CHROMIUM_ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium; close it with `await browser.close()`. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_ARGS,
  });
}

/**
 * A module of tests/js/lib (`server.mjs`, `oauth-fakes.mjs`), reused as is: tests/js must have
 * its node_modules (scripts/test.sh runs `npm ci` there first).
 */
export function importJsLib(name) {
  return import(`../../js/lib/${name}`).catch((err) => {
    throw new Error(`could not load tests/js/lib/${name} (${err.message}); run \`npm ci\` in tests/js first`);
  });
}
