// Test harness: runs the real `latchkey` binary against a fresh Postgres database and hands the
// tests a supabase-js client factory, minted API keys and a raw HTTP helper.
//
// Environment:
//   LATCHKEY_BIN               server binary (default ../../target/debug/latchkey relative to tests/js)
//   DATABASE_URL               a Postgres *maintenance* database, e.g. postgres://postgres@127.0.0.1:5432/postgres
//                              (each server gets its own fresh database `lkjs_<random>` on that cluster)
//   LATCHKEY_START_TIMEOUT_MS  how long to wait for the "listening" line (default 30000)
//   LATCHKEY_JS_LOG            set to 1 to echo the server's stderr (its logs) to this process's stderr
//   LATCHKEY_KEEP_DB           set to 1 to keep the per-server databases after the run

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createClient } from '@supabase/supabase-js';

export const JS_TESTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Fixed HS256 secret every test server is started with (GoTrue requires >= 32 chars). */
export const JWT_SECRET = 'latchkey-js-test-secret-with-at-least-32-characters';

const START_TIMEOUT_MS = Number(process.env.LATCHKEY_START_TIMEOUT_MS || 30_000);
const STOP_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

/** Base environment, close to a Supabase self-hosted deployment. Overridable per server. */
const BASE_ENV = {
  GOTRUE_API_HOST: '127.0.0.1',
  PORT: '0',
  GOTRUE_JWT_SECRET: JWT_SECRET,
  GOTRUE_JWT_EXP: '3600',
  GOTRUE_JWT_AUD: 'authenticated',
  GOTRUE_JWT_DEFAULT_GROUP_NAME: 'authenticated',
  GOTRUE_JWT_ADMIN_ROLES: 'service_role,supabase_admin',
  GOTRUE_SITE_URL: 'http://localhost:3000',
  GOTRUE_MAILER_AUTOCONFIRM: 'false',
  GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED: 'false',
  GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL: '10',
  GOTRUE_DISABLE_SIGNUP: 'false',
  GOTRUE_LOG_LEVEL: 'warn',
  // One server serves a whole file of tests from 127.0.0.1: with per-address limits on, the
  // 31st sign-in would get a 429. test/ratelimit.test.mjs turns them back on.
  LATCHKEY_RATE_LIMIT_ENABLED: 'false',
};

// Inherited variables that would make a run depend on the caller's shell.
const SCRUBBED_ENV = /^(GOTRUE_|API_EXTERNAL_URL$|DATABASE_URL$|DB_NAMESPACE$|PORT$)/;

// ---------------------------------------------------------------------------------------------
// keys

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

/** Signs `payload` as an HS256 JWT. */
export function signJwt(payload, secret = JWT_SECRET) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(payload));
  const sig = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${sig}`;
}

/** True when `token`'s HS256 signature verifies with `secret`. */
export function verifyJwtSignature(token, secret = JWT_SECRET) {
  const [h, p, s] = token.split('.');
  const expected = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return s === expected;
}

export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`not a JWT: ${token}`);
  return {
    header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
  };
}

function mintKey(role, secret) {
  const iat = Math.floor(Date.now() / 1000);
  return signJwt({ role, iss: 'supabase', iat, exp: iat + 10 * 365 * 24 * 3600 }, secret);
}

// ---------------------------------------------------------------------------------------------
// database

function maintenanceUrl() {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      'DATABASE_URL is not set. Point it at a Postgres maintenance database, e.g. ' +
        'DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres — each test server gets a fresh ' +
        'database lkjs_<random> on that cluster.',
    );
  }
  return url;
}

function databaseUrlFor(baseUrl, dbName) {
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
}

async function withPg(fn) {
  const client = new pg.Client({
    connectionString: maintenanceUrl(),
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

async function createDatabase() {
  const name = `lkjs_${randomBytes(6).toString('hex')}`;
  try {
    await withPg((c) => c.query(`CREATE DATABASE "${name}"`));
  } catch (err) {
    throw new Error(
      `could not create test database ${name} via DATABASE_URL=${redact(maintenanceUrl())}: ` +
        `${err.message || err.code || err}`,
    );
  }
  return name;
}

async function dropDatabase(name) {
  if (process.env.LATCHKEY_KEEP_DB === '1') return;
  try {
    await withPg((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  } catch (err) {
    process.stderr.write(`[harness] could not drop database ${name}: ${err.message}\n`);
  }
}

// ---------------------------------------------------------------------------------------------
// server process

function binaryPath() {
  const fromEnv = process.env.LATCHKEY_BIN;
  const bin = fromEnv ? resolve(process.cwd(), fromEnv) : resolve(JS_TESTS_DIR, '../../target/debug/latchkey');
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(
      `latchkey binary not found or not executable at ${bin}. Build it (cargo build) or set LATCHKEY_BIN.`,
    );
  }
  return bin;
}

const liveChildren = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** A timer that does not keep the process alive. */
function delay(ms, value) {
  return new Promise((r) => setTimeout(() => r(value), ms).unref());
}

function tail(text, max = 4000) {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/**
 * Starts `latchkey serve` on a fresh database, or on `opts.database` (the `dbName` of a server
 * stopped with `stop({ keepDatabase: true })`: a restart with other settings).
 * Resolves to { url, authUrl, anonKey, serviceKey, jwtSecret, dbName, env, stop(), logs() }.
 * `url` is the server root (what you would give createClient); `authUrl` = url + '/auth/v1'.
 */
export async function startServer(envOverrides = {}, opts = {}) {
  const bin = binaryPath();
  const baseDbUrl = maintenanceUrl();
  const dbName = opts.database ?? (await createDatabase());

  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !SCRUBBED_ENV.test(k)),
  );
  const env = {
    ...inherited,
    ...BASE_ENV,
    DATABASE_URL: databaseUrlFor(baseDbUrl, dbName),
    ...Object.fromEntries(Object.entries(envOverrides).map(([k, v]) => [k, String(v)])),
  };
  const jwtSecret = env.GOTRUE_JWT_SECRET;

  installExitHook();
  const child = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);

  let stdout = '';
  let stderr = '';
  const echo = process.env.LATCHKEY_JS_LOG === '1';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    if (echo) process.stderr.write(d.replace(/^(?=.)/gm, `[latchkey ${dbName}] `));
  });
  child.stdout.setEncoding('utf8');

  const exited = new Promise((res) => {
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      res({ code, signal });
    });
  });
  let spawnError = null;
  child.once('error', (err) => {
    spawnError = err;
  });

  let url;
  try {
    url = await new Promise((res, rej) => {
      const timer = setTimeout(() => {
        rej(new Error(`latchkey did not print "latchkey listening on http://…" within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      child.stdout.on('data', (d) => {
        stdout += d;
        const m = stdout.match(/latchkey listening on (https?:\/\/[^\s]+)/);
        if (m) {
          clearTimeout(timer);
          res(m[1].replace(/\/+$/, ''));
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        rej(new Error(`could not start latchkey: ${err.message}`));
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        rej(
          new Error(
            `latchkey exited before it was ready (code ${code}, signal ${signal}` +
              `${spawnError ? `, ${spawnError.message}` : ''})`,
          ),
        );
      });
    });
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.race([exited, delay(5000)]);
    await dropDatabase(dbName);
    err.message +=
      `\n  binary: ${bin}\n  database: ${dbName}` +
      `\n  --- stdout ---\n${tail(stdout) || '(empty)'}\n  --- stderr ---\n${tail(stderr) || '(empty)'}`;
    throw err;
  }

  let stopped = null;
  const server = {
    url,
    authUrl: `${url}/auth/v1`,
    anonKey: mintKey('anon', jwtSecret),
    serviceKey: mintKey('service_role', jwtSecret),
    jwtSecret,
    dbName,
    env,
    logs: () => stderr,
    /** SIGTERM, wait for exit (SIGKILL after 10 s), drop the database unless
     *  `keepDatabase`. Idempotent. */
    stop({ keepDatabase = false } = {}) {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const res = await Promise.race([exited, delay(STOP_TIMEOUT_MS, null)]);
          if (res === null) {
            process.stderr.write(`[harness] latchkey (${dbName}) ignored SIGTERM for ${STOP_TIMEOUT_MS} ms; killing\n`);
            child.kill('SIGKILL');
            await exited;
          }
        }
        if (!keepDatabase) await dropDatabase(dbName);
      })();
      return stopped;
    },
  };
  return server;
}

// ---------------------------------------------------------------------------------------------
// clients

/** A synchronous Map-backed storage adapter (what supabase-js expects of localStorage). */
export function memoryStorage() {
  const map = new Map();
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => {
      map.set(k, v);
    },
    removeItem: (k) => {
      map.delete(k);
    },
  };
}

/** fetch with a timeout so a hung server fails a test instead of hanging the run. */
export function timeoutFetch(input, init = {}) {
  return fetch(input, { ...init, signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

// supabase-js constructs a realtime client eagerly; on Node 20 without --experimental-websocket
// there is no global WebSocket, so give it an inert transport (realtime is never used here).
class InertWebSocket {
  constructor() {
    this.readyState = 3;
  }
  close() {}
  send() {}
}

/**
 * supabase-js client against `url` (the server root; auth-js appends /auth/v1).
 * opts: { flowType, storage, headers, fetch, storageKey }
 */
export function makeClient(url, key, opts = {}) {
  const storage = opts.storage ?? memoryStorage();
  const options = {
    auth: {
      autoRefreshToken: false,
      persistSession: true,
      detectSessionInUrl: false,
      storage,
      flowType: opts.flowType ?? 'implicit',
      ...(opts.storageKey ? { storageKey: opts.storageKey } : {}),
    },
    global: { fetch: opts.fetch ?? timeoutFetch, headers: opts.headers ?? {} },
  };
  if (typeof globalThis.WebSocket === 'undefined') options.realtime = { transport: InertWebSocket };
  const client = createClient(url, key, options);
  client.__storage = storage;
  return client;
}

/**
 * Raw HTTP against the server. `path` is appended to `base` (e.g. server.authUrl or server.url).
 * opts: { method, body (object ⇒ JSON, string ⇒ sent as is), headers, apiVersion, apikey, token }
 * Resolves to { status, headers, text, json } (json is undefined when the body is not JSON).
 */
export async function request(base, path, opts = {}) {
  const headers = { ...(opts.headers ?? {}) };
  if (opts.apikey) headers.apikey = opts.apikey;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.apiVersion) headers['x-supabase-api-version'] = opts.apiVersion;
  let body = opts.body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    body = JSON.stringify(body);
    headers['content-type'] ??= 'application/json';
  } else if (typeof body === 'string') {
    headers['content-type'] ??= 'application/json';
  }
  const res = await timeoutFetch(`${base}${path}`, {
    method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    redirect: 'manual',
  });
  const text = await res.text();
  let json;
  try {
    json = text.length ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Raw refresh-token grant (bypasses supabase-js's 60 s failure cache). */
export function refreshRaw(server, refreshToken) {
  return request(server.authUrl, '/token?grant_type=refresh_token', {
    body: { refresh_token: refreshToken },
    apikey: server.anonKey,
    token: server.anonKey,
    apiVersion: '2024-01-01',
  });
}

// ---------------------------------------------------------------------------------------------
// misc test helpers

export function randomEmail(prefix = 'user') {
  return `${prefix}-${randomBytes(6).toString('hex')}@example.com`;
}

export function randomPassword() {
  return `Pw-${randomBytes(9).toString('base64url')}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Compact, readable description of a value for assertion messages. */
export function show(value) {
  if (value instanceof Error) {
    const extra = {};
    for (const k of ['name', 'status', 'code', 'reasons']) if (value[k] !== undefined) extra[k] = value[k];
    return `${value.name}: ${value.message} ${JSON.stringify(extra)}`;
  }
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
