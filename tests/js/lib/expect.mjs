// Assertion helpers with messages that show what actually came back.
import assert from 'node:assert/strict';
import { show } from './server.mjs';

/** Asserts a supabase-js call returned no error, then returns its data. */
export function ok(result, what = 'call') {
  assert.ok(result && typeof result === 'object', `${what}: expected a {data, error} result, got ${show(result)}`);
  assert.equal(result.error, null, `${what}: expected no error, got ${show(result.error)}`);
  return result.data;
}

/**
 * Asserts `error` is an auth-js error with the given properties.
 * expected: { name, status, code, statusClass: 4 }
 */
export function authError(error, expected, what = 'call') {
  assert.ok(error, `${what}: expected an error ${show(expected)}, got none`);
  const msg = `${what}: expected ${show(expected)}, got ${show(error)}`;
  if (expected.name !== undefined) assert.equal(error.name, expected.name, msg);
  if (expected.status !== undefined) assert.equal(error.status, expected.status, msg);
  if (expected.code !== undefined) assert.equal(error.code, expected.code, msg);
  if (expected.statusClass !== undefined) {
    assert.equal(Math.floor(Number(error.status) / 100), expected.statusClass, msg);
  }
  return error;
}

/** Asserts a raw response has the given status (message includes the body). */
export function status(res, expected, what = 'request') {
  assert.equal(res.status, expected, `${what}: expected HTTP ${expected}, got ${res.status} ${res.text.slice(0, 500)}`);
  return res;
}
