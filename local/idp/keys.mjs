// The stand-in IdP's RSA signing keys, persisted as a private JWKS in the state directory
// so tokens stay verifiable across restarts. The first key signs; older keys stay published
// after a rotation so tokens they signed remain valid until they expire.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** How many keys a rotation keeps (newest first); older ones are dropped. */
const KEEP_KEYS = 3;

export function jwksPath(stateDir) {
  return join(stateDir, 'jwks.json');
}

/** RFC 7638 thumbprint of an RSA key: a stable `kid` that depends only on the public key. */
function thumbprint({ e, n }) {
  return createHash('sha256').update(JSON.stringify({ e, kty: 'RSA', n })).digest('base64url');
}

/** A new private RS256 signing key as a JWK with a stable kid. */
export function generateSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg: 'RS256', use: 'sig' };
}

function writeJwks(stateDir, jwks) {
  mkdirSync(stateDir, { recursive: true });
  const file = jwksPath(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Reads the private JWKS of `stateDir`, or returns null when there is none yet. */
export function readJwks(stateDir) {
  const file = jwksPath(stateDir);
  if (!existsSync(file)) return null;
  const jwks = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0 || jwks.keys.some((k) => k.kty !== 'RSA' || !k.d || !k.kid)) {
    throw new Error(`${file} is not a private RSA JWKS; delete it to have a new key generated`);
  }
  return jwks;
}

/** The private JWKS of `stateDir`, generating and saving a first key if there is none. */
export function loadOrCreateJwks(stateDir) {
  const existing = readJwks(stateDir);
  if (existing) return existing;
  const jwks = { keys: [generateSigningKey()] };
  writeJwks(stateDir, jwks);
  return jwks;
}

/** Puts a new signing key first (keeping the previous ones published) and saves the JWKS. */
export function rotateJwks(stateDir) {
  const current = loadOrCreateJwks(stateDir);
  const jwks = { keys: [generateSigningKey(), ...current.keys].slice(0, KEEP_KEYS) };
  writeJwks(stateDir, jwks);
  return jwks;
}

/** The public half of a private JWKS, as served at `{issuer}/jwks`. */
export function publicJwks(jwks) {
  return { keys: jwks.keys.map(({ kty, n, e, kid, alg, use }) => ({ kty, n, e, kid, alg, use })) };
}
