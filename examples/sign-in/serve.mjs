// A tiny static server for the sign-in page: index.html, app.js, the supabase-js UMD bundle
// from this folder's node_modules (no CDN), and /config.js, generated from the environment,
// which tells the page where Latchkey is and which anon key to send.
//
//   LATCHKEY_URL  Latchkey's root URL (default http://localhost:9999)
//   ANON_KEY      the anon API key (`cargo run -- keys` prints it)
//   HOST, PORT    where to listen (default localhost:3000, Latchkey's default GOTRUE_SITE_URL)
//
// `node serve.mjs` (or `npm start`) serves until Ctrl-C; tests import startSignInPage().

import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

function supabaseBundle() {
  try {
    return createRequire(import.meta.url).resolve('@supabase/supabase-js/dist/umd/supabase.js');
  } catch {
    throw new Error(`@supabase/supabase-js is not installed: run \`npm ci\` in ${HERE}`);
  }
}

/**
 * Starts the page's server. Resolves to { url, close() }.
 * options: { latchkeyUrl, anonKey, host = 'localhost', port = 3000 }
 */
export async function startSignInPage({ latchkeyUrl, anonKey, host = 'localhost', port = 3000 }) {
  if (!latchkeyUrl) throw new Error('the URL of Latchkey is missing (LATCHKEY_URL)');
  if (!anonKey) throw new Error('the anon key is missing (ANON_KEY; `cargo run -- keys` prints one)');
  const config = `window.LATCHKEY_CONFIG = ${JSON.stringify({ url: latchkeyUrl, anonKey })};\n`;
  const files = {
    '/': { path: join(HERE, 'index.html'), type: 'text/html; charset=utf-8' },
    '/index.html': { path: join(HERE, 'index.html'), type: 'text/html; charset=utf-8' },
    '/app.js': { path: join(HERE, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/vendor/supabase.js': { path: supabaseBundle(), type: 'text/javascript; charset=utf-8' },
  };

  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://page.invalid');
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD' }).end();
      return;
    }
    let body;
    let type;
    if (pathname === '/config.js') {
      body = config;
      type = 'text/javascript; charset=utf-8';
    } else if (files[pathname]) {
      body = await readFile(files[pathname].path).catch(() => null);
      type = files[pathname].type;
    }
    if (body == null) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${address.port}`,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const page = await startSignInPage({
      latchkeyUrl: (process.env.LATCHKEY_URL || 'http://localhost:9999').replace(/\/+$/, ''),
      anonKey: process.env.ANON_KEY,
      host: process.env.HOST || 'localhost',
      port: Number(process.env.PORT || 3000),
    });
    console.log(`sign-in page on ${page.url}`);
    for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => page.close().then(() => process.exit(0)));
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
}
