// Private JWKs for GOTRUE_JWT_KEYS, made with node:crypto (nothing is downloaded), in the shape
// `latchkey keys generate` prints: kid, alg, use "sig", key_ops ["sign", "verify"].

import { generateKeyPairSync, randomUUID } from 'node:crypto';

/** A new private JWK for 'ES256' or 'RS256'. */
export function privateJwk(alg) {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg, use: 'sig', key_ops: ['sign', 'verify'] };
}

/** The same key, verify-only: published and accepted, but not signing. */
export function verifyOnly(jwk) {
  return { ...jwk, key_ops: ['verify'] };
}

/** A GOTRUE_JWT_KEYS value. */
export function keySet(...keys) {
  return JSON.stringify(keys);
}
