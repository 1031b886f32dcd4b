// Helpers for tests that talk to the stand-in IdP (local/idp): a scripted browser sign-in,
// a full authorization-code login of the MCP worker's client, and token forging.
import { constants, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readJwks } from '../../local/idp/keys.mjs';
import { CookieJar, jarFetch, pkcePair } from './flow.mjs';

const MAX_HOPS = 20;

function formOf(html, actionPattern) {
  for (const m of html.matchAll(/<form\b[^>]*>/gi)) {
    const action = m[0].match(/\baction="([^"]*)"/i)?.[1];
    if (action && actionPattern.test(action)) return action.replace(/&amp;/g, '&');
  }
  return null;
}

function alertText(html) {
  const m = html.match(/role="alert"[^>]*>([\s\S]*?)</i);
  return m ? m[1].trim() : null;
}

/**
 * Signs in at the IdP the way a browser would, starting from `url` (an authorize URL, or any
 * IdP page of a sign-in already under way): follows redirects, fills the login form with
 * `user`/`password`, and returns the URL the IdP finally redirects to (the client's
 * redirect_uri with `code` or `error`) without fetching it. Throws with the page's message
 * when the sign-in fails. Each call uses a fresh cookie jar.
 */
export async function completeLoginAt(url, { user = 'alice', password = `${user}-password` } = {}) {
  const jar = new CookieJar();
  const idpOrigin = new URL(url).origin;
  const redirectUri = new URL(url).searchParams.get('redirect_uri');
  let next = { url, init: {} };
  let submitted = false;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const res = await jarFetch(jar, next.url, next.init);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = new URL(res.headers.get('location'), next.url);
      // The client's redirect_uri, or anything off the IdP, is the way back: stop there.
      const back = redirectUri && location.toString().startsWith(redirectUri);
      if (back || location.origin !== idpOrigin) return location.toString();
      next = { url: location.toString(), init: {} };
      continue;
    }
    const body = await res.text();
    const login = res.status === 200 ? formOf(body, /\/login$/) : null;
    if (!login) {
      throw new Error(`IdP answered ${res.status} at ${new URL(next.url).pathname}: ${alertText(body) ?? body.slice(0, 300)}`);
    }
    if (submitted) throw new Error(`login failed: ${alertText(body) ?? 'the login form came back'}`);
    submitted = true;
    next = {
      url: new URL(login, next.url).toString(),
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user, password }).toString(),
      },
    };
  }
  throw new Error(`sign-in did not finish within ${MAX_HOPS} redirects`);
}

/**
 * Starts signing in at the IdP from `url` as `completeLoginAt` does, but presses the login
 * page's Cancel instead of signing in; returns the URL the IdP finally redirects to (the
 * client's redirect_uri with `error=access_denied`) without fetching it.
 */
export async function cancelLoginAt(url) {
  const jar = new CookieJar();
  const idpOrigin = new URL(url).origin;
  let next = { url, init: {} };
  let cancelled = false;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const res = await jarFetch(jar, next.url, next.init);
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = new URL(res.headers.get('location'), next.url);
      if (location.origin !== idpOrigin) return location.toString();
      next = { url: location.toString(), init: {} };
      continue;
    }
    const body = await res.text();
    const abort = res.status === 200 && !cancelled ? formOf(body, /\/abort$/) : null;
    if (!abort) {
      throw new Error(`IdP answered ${res.status} at ${new URL(next.url).pathname}: ${alertText(body) ?? body.slice(0, 300)}`);
    }
    cancelled = true;
    next = {
      url: new URL(abort, next.url).toString(),
      init: { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'cancel=cancel' },
    };
  }
  throw new Error(`cancelling did not finish within ${MAX_HOPS} redirects`);
}

export function basicAuth(clientId, clientSecret) {
  // RFC 6749 §2.3.1: form-urlencode each part before joining them.
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

/** The IdP's discovery document. */
export async function discover(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`discovery at ${issuer} answered ${res.status}`);
  return res.json();
}

/**
 * POSTs a form to the token endpoint with client_secret_basic (`auth: 'post'`: client_secret_post);
 * returns { status, body }.
 */
export async function tokenRequest(issuer, { clientId, clientSecret, auth = 'basic' }, params) {
  const { token_endpoint: endpoint } = await discover(issuer);
  const post = auth === 'post';
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(post ? {} : { authorization: basicAuth(clientId, clientSecret) }),
    },
    body: new URLSearchParams({ ...params, ...(post ? { client_id: clientId, client_secret: clientSecret } : {}) }).toString(),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Authorization code + PKCE S256 + nonce against the IdP with a scripted sign-in, then the
 * code exchange with client_secret_basic (`auth: 'post'`: client_secret_post). Returns the
 * token response plus the `nonce` sent.
 */
export async function loginAndGetTokens({
  issuer, clientId = 'mcp-worker', clientSecret = 'dev-secret-change-me', redirectUri, auth = 'basic',
  user = 'alice', password = `${user}-password`, scope = 'openid profile todo_api:read todo_api:write', resource,
}) {
  const config = await discover(issuer);
  const pkce = pkcePair();
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state, nonce,
    code_challenge: pkce.challenge, code_challenge_method: 'S256',
  });
  if (resource) q.set('resource', resource);
  const back = new URL(await completeLoginAt(`${config.authorization_endpoint}?${q}`, { user, password }));
  if (back.searchParams.get('error')) {
    throw new Error(`authorization failed: ${back.searchParams.get('error')} ${back.searchParams.get('error_description') ?? ''}`);
  }
  if (back.searchParams.get('state') !== state) throw new Error('authorization response has the wrong state');
  const params = { grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: pkce.verifier };
  if (resource) params.resource = resource;
  const { status, body } = await tokenRequest(issuer, { clientId, clientSecret, auth }, params);
  if (status !== 200) throw new Error(`code exchange failed: ${status} ${JSON.stringify(body)}`);
  return { ...body, nonce };
}

let foreignKey;
/** A process-wide RSA key the IdP does not know. */
function foreign() {
  foreignKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return foreignKey;
}

const RSA_ALGS = {
  RS256: { hash: 'sha256' }, RS384: { hash: 'sha384' }, RS512: { hash: 'sha512' },
  PS256: { hash: 'sha256', pss: 32 }, PS384: { hash: 'sha384', pss: 48 }, PS512: { hash: 'sha512', pss: 64 },
};

/**
 * Forges a compact JWT with exactly `claims`, for negative tests.
 *   key: 'idp' signs with the IdP's current signing key (read from `stateDir`), so a token
 *        that is wrong only in its claims (expired, other audience) can be made;
 *        'foreign' signs with a key the IdP never published.
 *   alg: RS256 (default), RS384/RS512/PS256/PS384/PS512; 'none' (no signature); or HS256,
 *        keyed with `secret`, by default the PEM of the chosen RSA public key (the classic
 *        algorithm-confusion attack).
 *   kid: header kid (default: the signing key's kid, 'foreign-key' for a foreign key;
 *        null to leave it out). typ: header typ (default 'at+jwt', as the IdP's access tokens).
 */
export function signToken(claims, { key = 'idp', alg = 'RS256', kid, typ = 'at+jwt', stateDir, secret } = {}) {
  let privateKey;
  let keyId;
  if (key === 'idp') {
    if (!stateDir) throw new Error("signToken with key 'idp' needs the IdP's stateDir");
    const jwks = readJwks(stateDir);
    if (!jwks) throw new Error(`no IdP keys in ${stateDir}`);
    privateKey = createPrivateKey({ key: jwks.keys[0], format: 'jwk' });
    keyId = jwks.keys[0].kid;
  } else if (key === 'foreign') {
    privateKey = foreign();
    keyId = 'foreign-key';
  } else {
    throw new Error(`unknown key ${key}`);
  }
  const header = { alg, typ };
  const headerKid = kid === undefined ? keyId : kid;
  if (headerKid !== null && alg !== 'none') header.kid = headerKid;
  if (typ === null) delete header.typ;
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(header)}.${b64(claims)}`;
  let signature;
  if (alg === 'none') {
    signature = '';
  } else if (alg === 'HS256') {
    const hmacKey = secret ?? createPublicKey(privateKey).export({ type: 'spki', format: 'pem' });
    signature = createHmac('sha256', hmacKey).update(input).digest('base64url');
  } else if (RSA_ALGS[alg]) {
    const { hash, pss } = RSA_ALGS[alg];
    const k = pss ? { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss } : privateKey;
    signature = sign(hash, Buffer.from(input), k).toString('base64url');
  } else {
    throw new Error(`unsupported alg ${alg}`);
  }
  return `${input}.${signature}`;
}

/** Decodes a JWT's header and payload without verifying it. */
export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}
