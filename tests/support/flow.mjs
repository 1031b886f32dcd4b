// The whole sign-in flow an MCP client goes through, over plain HTTP, the way a
// browser would: dynamic client registration, GET /authorize (consent page or a
// silent redirect), POST /authorize (Approve), the IdP's login page, /callback,
// then the code exchange at /token. Used by tests and the benchmark.
import { createHash, randomBytes } from 'node:crypto';
import { completeLoginAt } from './idp.mjs';

/** A cookie jar keyed by host (browsers do not separate cookies by port). */
export class CookieJar {
  constructor() { this.cookies = new Map(); }
  /** Records every Set-Cookie of `res`, honouring deletion by Max-Age=0 / past Expires. */
  store(url, res) {
    const host = new URL(url).hostname;
    for (const line of res.headers.getSetCookie?.() ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires\s*=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now());
      const key = `${host}\t${name}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, value);
    }
  }
  header(url) {
    const host = new URL(url).hostname;
    const parts = [];
    for (const [key, value] of this.cookies) {
      const [h, name] = key.split('\t');
      if (h === host) parts.push(`${name}=${value}`);
    }
    return parts.join('; ');
  }
  get(name, host = '127.0.0.1') { return this.cookies.get(`${host}\t${name}`); }
  set(name, value, host = '127.0.0.1') { this.cookies.set(`${host}\t${name}`, value); }
  delete(name, host = '127.0.0.1') { this.cookies.delete(`${host}\t${name}`); }
  clone() { const j = new CookieJar(); j.cookies = new Map(this.cookies); return j; }
}

/** fetch without following redirects, sending and recording cookies. */
export async function jarFetch(jar, url, init = {}) {
  const headers = new Headers(init.headers);
  const cookie = jar.header(url);
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(url, res);
  return res;
}

export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** RFC 7591 registration of a client at the MCP worker. */
export async function registerClient(mcpOrigin, metadata = {}) {
  const res = await fetch(`${mcpOrigin}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Flow test client',
      redirect_uris: ['http://127.0.0.1:33418/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...metadata,
    }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** The hidden inputs and action of the consent page's form. */
export function parseConsentForm(html) {
  const form = html.match(/<form[^>]*>[\s\S]*?<\/form>/i)?.[0];
  if (!form) return null;
  const fields = {};
  for (const input of form.matchAll(/<input\b[^>]*>/gi)) {
    const name = input[0].match(/\bname="([^"]*)"/i)?.[1];
    const value = input[0].match(/\bvalue="([^"]*)"/i)?.[1] ?? '';
    if (name && /type="hidden"/i.test(input[0])) fields[name] = decodeEntities(value);
  }
  const buttons = [...form.matchAll(/<button\b[^>]*>/gi)].map((b) => ({
    name: b[0].match(/\bname="([^"]*)"/i)?.[1],
    value: b[0].match(/\bvalue="([^"]*)"/i)?.[1],
  }));
  const action = decodeEntities(form.match(/\baction="([^"]*)"/i)?.[1] ?? '');
  return { fields, buttons, action };
}

function decodeEntities(s) {
  return s.replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * Runs /authorize → (consent) → IdP login → /callback for `client`, returning the
 * redirect back to the client: { code, state, iss, consentShown, redirect }.
 * With `approve: false` it presses Cancel and returns the error redirect.
 */
export async function authorize({
  mcpOrigin, client, jar = new CookieJar(), user = 'alice', password = `${user}-password`,
  redirectUri = client.redirect_uris[0], scope, resource = `${mcpOrigin}/mcp`, approve = true,
  pkce = pkcePair(), state = randomBytes(12).toString('base64url'),
}) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri,
    code_challenge: pkce.challenge, code_challenge_method: 'S256', state,
  });
  if (scope) q.set('scope', scope);
  if (resource) q.set('resource', resource);
  let res = await jarFetch(jar, `${mcpOrigin}/authorize?${q}`);
  let consentShown = false;
  if (res.status === 200) {
    consentShown = true;
    const form = parseConsentForm(await res.text());
    if (!form) throw new Error('consent page has no form');
    const button = form.buttons.find((b) => b.name && (approve ? /approve|allow|yes/i : /cancel|deny|no/i).test(b.value ?? ''))
      ?? (form.buttons.find((b) => b.name) ?? {});
    const body = new URLSearchParams(form.fields);
    if (button.name) body.set(button.name, button.value ?? '');
    const action = new URL(form.action || '/authorize', `${mcpOrigin}/authorize`).toString();
    res = await jarFetch(jar, action, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
    });
  }
  if (res.status < 300 || res.status >= 400) {
    throw new Error(`/authorize answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
  }
  let location = res.headers.get('location');
  if (!location.startsWith(mcpOrigin) && !location.startsWith(redirectUri)) {
    // At the IdP: sign in, then come back to the worker's /callback.
    location = await completeLoginAt(location, { user, password });
    res = await jarFetch(jar, location);
    if (res.status < 300 || res.status >= 400) {
      throw new Error(`/callback answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
    }
    location = res.headers.get('location');
  }
  const back = new URL(location);
  return {
    consentShown, redirect: location, pkce, state,
    code: back.searchParams.get('code'), error: back.searchParams.get('error'),
    returnedState: back.searchParams.get('state'), iss: back.searchParams.get('iss'),
  };
}

/** POST /token with the authorization code. */
export async function exchangeCode({ mcpOrigin, client, code, verifier, redirectUri = client.redirect_uris[0], resource }) {
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: client.client_id,
  });
  if (resource) body.set('resource', resource);
  const res = await fetch(`${mcpOrigin}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
  });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`token exchange failed: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** POST /token with a refresh token (public client). */
export async function refresh({ mcpOrigin, client, refreshToken, scope }) {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id });
  if (scope) body.set('scope', scope);
  const res = await fetch(`${mcpOrigin}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body,
  });
  return { status: res.status, body: await res.json() };
}

/** POST /revoke of a refresh token (public client): ends its grant. Returns the status. */
export async function revokeRefreshToken(mcpOrigin, clientId, refreshToken) {
  const res = await fetch(`${mcpOrigin}/revoke`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token', client_id: clientId }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** A raw MCP POST of `body` to `url` with `token` as the bearer (none without one), as MCP clients send it (20 s bound). */
export function mcpPost(url, token, body, headers = {}) {
  return fetch(url, {
    method: 'POST',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', ...headers,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
}

/** A raw session-era MCP `initialize` POST to `url`, with `token` as the bearer when given. */
export function mcpInitialize(url, token) {
  return mcpPost(url, token, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
}

/** Polls `check` every 100 ms until it returns something truthy, for at most `ms`. */
export async function eventually(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await check();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Registers a public client and signs `user` in; returns the MCP tokens. */
export async function getMcpToken(stack, { user = 'alice', jar = new CookieJar(), client } = {}) {
  client ??= await registerClient(stack.mcpOrigin);
  const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client, jar, user });
  if (!auth.code) throw new Error(`no code in ${auth.redirect}`);
  const tokens = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier });
  return { ...tokens, client, jar };
}
