// The OAuth 2.1 authorization server over HTTP against the MCP worker in workerd (wrangler dev),
// with real tokens from the real sign-in (consent page + stand-in IdP): discovery documents,
// 401 challenges, authorization request validation, the code exchange (PKCE, redirect URI,
// single use), refresh rotation, revocation, audiences, client authentication, malformed
// requests and CORS. One stack for the whole file; the access token lifetime is set to the
// 60 s minimum so that expiry is observable once the rest of the file has run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from './support/stack.mjs';
import { CookieJar, authorize, exchangeCode, getMcpToken, pkcePair, refresh, registerClient } from './support/flow.mjs';

const ACCESS_TTL = 60;
const REDIRECT = 'http://127.0.0.1:33418/callback';

let stack;
let origin;
let early; // a token issued first thing, checked for expiry at the end
let earlyAt; // when it had been issued (at the latest)

before(async () => {
  stack = await startTestStack({ todoApi: false, mcpVars: { OAUTH_ACCESS_TOKEN_TTL: String(ACCESS_TTL) } });
  origin = stack.mcpOrigin;
  early = await getMcpToken(stack);
  earlyAt = Date.now();
});

after(async () => {
  await stack?.stop();
});

// ---- helpers ----------------------------------------------------------------------------

const FORM = 'application/x-www-form-urlencoded';

async function post(path, body, headers = {}) {
  const res = await fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': FORM, ...headers },
    body: typeof body === 'string' ? body : new URLSearchParams(body),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { res, status: res.status, json, text };
}

/** Asserts an RFC 6749 error answer (status, code, never cached). */
function assertOAuthError(r, status, error) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error, error, r.text);
  assert.equal(typeof r.json.error_description, 'string');
  assert.equal(r.res.headers.get('cache-control'), 'no-store');
}

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A request to the MCP endpoint with `token` (or none): the MCP initialize call. */
async function mcp(token, { url = stack.mcpUrl, headers = {} } = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'oauth-test', version: '1' } },
    }),
  });
  const body = await res.text();
  return { status: res.status, www: res.headers.get('www-authenticate'), headers: res.headers, body };
}

function assertInvalidToken(r, path = '/mcp') {
  assert.equal(r.status, 401, r.body);
  assert.ok(r.www.startsWith(`Bearer realm="OAuth", resource_metadata="${origin}/.well-known/oauth-protected-resource${path}"`), r.www);
  assert.match(r.www, /error="invalid_token"/);
}

function assertAuthenticated(r) {
  assert.notEqual(r.status, 401, `${r.www} ${r.body}`);
  assert.equal(r.status, 200, r.body);
}

/** The /authorize URL for `client` with the given parameters (PKCE S256 unless overridden). */
function authorizeUrl(client, params = {}) {
  const pkce = pkcePair();
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uris[0], state: 'st-1',
    code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${origin}/mcp`,
  });
  for (const [k, v] of Object.entries(params)) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  return `${origin}/authorize?${q}`;
}

/** GET /authorize without following; for errors the worker answers before any consent. */
async function authorizeRaw(url, accept = 'text/html') {
  const res = await fetch(url, { redirect: 'manual', headers: { accept } });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

/**
 * Asserts an error shown where the person is (never a redirect): an HTML page naming the client
 * (`client_name`) with a link back to `redirectUri` carrying error, state and iss, no code.
 * Returns the error_description the link carries.
 */
function assertShownWithLinkBack(r, redirectUri, error, clientName) {
  assert.equal(r.status, 400, r.body.slice(0, 300));
  assert.equal(r.location, null, 'not redirected');
  assert.match(r.body, new RegExp(`<strong>${clientName}</strong> sent a request this server cannot accept`));
  const href = r.body.match(/class="button" href="([^"]+)"/)?.[1]?.replace(/&amp;/g, '&');
  assert.ok(href?.startsWith(`${redirectUri}?`), href);
  const q = new URL(href).searchParams;
  assert.equal(q.get('error'), error, href);
  assert.ok(q.get('error_description'));
  assert.equal(q.get('state'), 'st-1');
  assert.equal(q.get('iss'), origin);
  assert.equal(q.get('code'), null);
  return q.get('error_description');
}

/** The same request asking for JSON: the OAuth error as JSON, not redirected. */
async function assertJsonError(url, error) {
  const r = await authorizeRaw(url, 'application/json');
  assert.equal(r.status, 400, r.body.slice(0, 300));
  assert.equal(r.location, null);
  const body = JSON.parse(r.body);
  assert.equal(body.error, error);
  return body.error_description;
}

/** Signs `user` in for `client` and returns the code and its verifier (not exchanged). */
async function codeFor(client, opts = {}) {
  const auth = await authorize({ mcpOrigin: origin, client, jar: new CookieJar(), ...opts });
  assert.ok(auth.code, auth.redirect);
  assert.equal(auth.iss, origin);
  assert.equal(auth.returnedState, auth.state);
  return { code: auth.code, verifier: auth.pkce.verifier };
}

const codeParams = (client, code, verifier, extra = {}) => ({
  grant_type: 'authorization_code', code, redirect_uri: client.redirect_uris[0], code_verifier: verifier, ...extra,
});

// ---- discovery ----------------------------------------------------------------------------

test('authorization server metadata (RFC 8414)', async () => {
  const res = await fetch(`${origin}/.well-known/oauth-authorization-server`, { headers: { origin: 'https://inspector.example' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://inspector.example');
  const m = await res.json();
  assert.equal(m.issuer, origin);
  assert.equal(m.authorization_endpoint, `${origin}/authorize`);
  assert.equal(m.token_endpoint, `${origin}/token`);
  assert.equal(m.registration_endpoint, `${origin}/register`);
  assert.equal(m.revocation_endpoint, `${origin}/revoke`);
  assert.deepEqual(m.response_types_supported, ['code']);
  assert.deepEqual(m.grant_types_supported, ['authorization_code', 'refresh_token']);
  // private_key_jwt: metadata-document clients' assertions (tests/cimd.test.mjs), with its algorithms.
  assert.deepEqual(m.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt']);
  assert.deepEqual(m.token_endpoint_auth_signing_alg_values_supported, ['RS256', 'ES256']);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.ok(Array.isArray(m.scopes_supported) && m.scopes_supported.length > 0);
  assert.equal(m.authorization_response_iss_parameter_supported, true);
});

test('protected resource metadata (RFC 9728): bare and path-aware for /mcp and /sse', async () => {
  const as = await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json();
  // The bare document describes the resource its URL names, the origin (RFC 9728 §3.3).
  for (const [suffix, resource] of [['', origin], ['/mcp', `${origin}/mcp`], ['/sse', `${origin}/sse`]]) {
    const res = await fetch(`${origin}/.well-known/oauth-protected-resource${suffix}`);
    assert.equal(res.status, 200, suffix);
    const m = await res.json();
    assert.equal(m.resource, resource, suffix);
    assert.deepEqual(m.authorization_servers, [origin]);
    assert.deepEqual(m.bearer_methods_supported, ['header']);
    assert.equal(typeof m.resource_name, 'string');
    assert.ok(m.scopes_supported.length > 0);
    assert.ok(!m.scopes_supported.includes('offline_access'), 'offline_access belongs to the AS only');
    assert.ok(m.scopes_supported.every((s) => as.scopes_supported.includes(s)));
  }
  const res = await fetch(`${origin}/.well-known/oauth-protected-resource/mcp-other`);
  assert.equal(res.status, 404);
  await res.arrayBuffer();
});

// ---- 401 challenges -----------------------------------------------------------------------

test('protected routes without a token get a bare challenge naming the resource metadata', async () => {
  // Below a transport's path, the transport's own document is named (clients compare its
  // `resource` with the URL they connected to).
  for (const [url, path] of [[stack.mcpUrl, '/mcp'], [`${origin}/mcp/`, '/mcp'], [`${origin}/sse/message?sessionId=x`, '/sse']]) {
    const r = await mcp(null, { url });
    assert.equal(r.status, 401);
    // With the scope the resource needs (MCP 2025-11-25), and never cached.
    assert.equal(r.www, `Bearer realm="OAuth", resource_metadata="${origin}/.well-known/oauth-protected-resource${path}", scope="todo_api:read todo_api:write"`);
  }
  const res = await fetch(stack.sseUrl, { headers: { accept: 'text/event-stream' } });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('www-authenticate'), `Bearer realm="OAuth", resource_metadata="${origin}/.well-known/oauth-protected-resource/sse", scope="todo_api:read todo_api:write"`);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  await res.arrayBuffer();
  // A non-Bearer scheme is no token either.
  const r = await mcp(null, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
  assert.equal(r.status, 401);
  assert.doesNotMatch(r.www, /error=/);
  // The named document is there and names the canonical resource.
  const link = r.www.match(/resource_metadata="([^"]+)"/)[1];
  assert.equal((await (await fetch(link)).json()).resource, stack.mcpUrl);
});

test('unknown and malformed tokens get invalid_token', async () => {
  for (const bad of ['garbage', 'a:b:c', `${early.access_token}x`, early.refresh_token]) {
    assertInvalidToken(await mcp(bad));
  }
});

test('a valid token reaches the MCP handler', async () => {
  assertAuthenticated(await mcp(early.access_token));
  assert.equal(early.token_type, 'bearer');
  assert.equal(early.expires_in, ACCESS_TTL);
  assert.equal(early.resource, stack.mcpUrl);
});

// ---- authorization requests ------------------------------------------------------------------

test('unknown client and unregistered redirect URI are answered locally, never redirected', async () => {
  const client = await registerClient(origin, { client_name: 'Local errors client' });
  const unknown = await authorizeRaw(authorizeUrl({ ...client, client_id: 'no-such-client' }));
  assert.equal(unknown.status, 400);
  assert.equal(unknown.location, null);
  assert.match(await assertJsonError(authorizeUrl({ ...client, client_id: 'no-such-client' }), 'invalid_request'), /Invalid client_id/);
  for (const redirect of ['https://evil.example.com/callback', 'http://127.0.0.1:33418/other', 'http://localhost:33418/callback']) {
    const r = await authorizeRaw(authorizeUrl(client, { redirect_uri: redirect }));
    assert.equal(r.status, 400, redirect);
    assert.equal(r.location, null, redirect);
    assert.match(r.body, /<strong>Local errors client<\/strong> sent a request/, 'names the client');
    assert.match(r.body, /Invalid redirect URI/);
    assert.doesNotMatch(r.body, /href="https?:\/\/(evil|127|localhost)/, 'no link to an unregistered redirect');
  }
  // Everything else wrong as well: still not redirected.
  const r = await authorizeRaw(authorizeUrl(client, { redirect_uri: 'https://evil.example.com/cb', response_type: 'token', code_challenge: null }));
  assert.equal(r.status, 400);
  assert.equal(r.location, null);
});

test('open redirector (RFC 9700 §4.11.2): a client registered with any redirect URI is never redirected to on a bad request', async () => {
  const evil = await registerClient(origin, { client_name: 'Evil redirector', redirect_uris: ['https://evil.example/x'] });
  // The attack of the issue: a valid client and redirect, a nonsense response_type.
  const cases = [
    [{ response_type: 'x' }, 'unsupported_response_type'],
    [{ response_type: null }, 'invalid_request'],
    [{ code_challenge: null }, 'invalid_request'],
    [{ resource: 'https://elsewhere.example/' }, 'invalid_target'],
  ];
  for (const [params, error] of cases) {
    const url = authorizeUrl(evil, params);
    const r = await authorizeRaw(url);
    assert.equal(r.location, null, JSON.stringify(params));
    assertShownWithLinkBack(r, 'https://evil.example/x', error, 'Evil redirector');
    await assertJsonError(url, error);
  }
});

test('redirect URIs this server never uses may be registered beside a usable one; a request using one is refused locally (WOP 1.2.1)', async () => {
  const cursor = 'cursor://anysphere.cursor-mcp/oauth/callback';
  const remote = 'http://app.example.com/callback';
  const client = await registerClient(origin, { client_name: 'Several surfaces', redirect_uris: [REDIRECT, remote, cursor] });
  assert.deepEqual(client.redirect_uris, [REDIRECT, remote, cursor]);
  const r = await authorizeRaw(authorizeUrl(client, { redirect_uri: remote }));
  assert.equal(r.status, 400, r.body.slice(0, 300));
  assert.equal(r.location, null);
  assert.match(r.body, /Invalid redirect URI/);
  assert.doesNotMatch(r.body, /href="http:\/\/app\.example\.com/, 'no link to the unusable redirect');
  assert.match(await assertJsonError(authorizeUrl(client, { redirect_uri: remote }), 'invalid_request'), /Invalid redirect URI.*loopback/);
  // The private-use scheme (RFC 8252 §7.1) and the loopback one lead to the consent page.
  for (const redirect_uri of [cursor, REDIRECT]) {
    const ok = await authorizeRaw(authorizeUrl(client, { redirect_uri }));
    assert.equal(ok.status, 200, ok.body.slice(0, 300));
  }
});

test('PKCE missing, plain, omitted method or unknown method is invalid_request, shown with a link back', async () => {
  const client = await registerClient(origin);
  const cases = [
    [{ code_challenge: null, code_challenge_method: null }, /PKCE/],
    [{ code_challenge_method: 'plain' }, /plain PKCE method is not allowed/],
    [{ code_challenge_method: null }, /plain PKCE method is not allowed/],
    [{ code_challenge_method: 'S512' }, /Unsupported PKCE code_challenge_method/],
  ];
  for (const [params, description] of cases) {
    const r = await authorizeRaw(authorizeUrl(client, params));
    assert.match(assertShownWithLinkBack(r, REDIRECT, 'invalid_request', 'Flow test client'), description, JSON.stringify(params));
    assert.match(await assertJsonError(authorizeUrl(client, params), 'invalid_request'), description);
  }
  assertShownWithLinkBack(await authorizeRaw(authorizeUrl(client, { response_type: 'token' })), REDIRECT, 'unsupported_response_type', 'Flow test client');
});

test('resource indicators: canonical accepted, others invalid_target (shown, not redirected)', async () => {
  const client = await registerClient(origin);
  for (const resource of [`${origin}/mcp-other`, `${origin}/mcp#frag`, 'https://evil.example.com/mcp', `${origin}/other`]) {
    assertShownWithLinkBack(await authorizeRaw(authorizeUrl(client, { resource })), REDIRECT, 'invalid_target', 'Flow test client');
  }
  // The canonical resource, the origin (what the root metadata names) and an omitted one all
  // lead to the consent page (200), not an error.
  for (const resource of [`${origin}/mcp`, origin, null]) {
    const r = await authorizeRaw(authorizeUrl(client, { resource }));
    assert.equal(r.status, 200, r.body.slice(0, 300));
  }
});

test('a resource with extra query parameters maps to the resource at /authorize and /token (WOP 1.2.3)', async () => {
  const client = await registerClient(origin);
  const resource = `${origin}/mcp?mode=direct`;
  const { code, verifier } = await codeFor(client, { resource });
  const tokens = await exchangeCode({ mcpOrigin: origin, client, code, verifier, resource: `${origin}/mcp?x=1` });
  assert.equal(tokens.resource, `${origin}/mcp`);
  assertAuthenticated(await mcp(tokens.access_token));
  assertAuthenticated(await mcp(tokens.access_token, { url: `${origin}/mcp?mode=direct` }));
  const r = await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id, resource: `${origin}/other?x=1` });
  assertOAuthError(r, 400, 'invalid_target');
});

// ---- the code exchange ------------------------------------------------------------------------

test('code exchange: PKCE, redirect URI, client binding and single use', async (t) => {
  const client = await registerClient(origin);
  const thief = await registerClient(origin);
  const { code, verifier } = await codeFor(client, { user: 'bob' });

  await t.test('wrong verifier → invalid_grant', async () => {
    assertOAuthError(await post('/token', codeParams(client, code, pkcePair().verifier, { client_id: client.client_id })), 400, 'invalid_grant');
  });
  await t.test('missing verifier → invalid_request', async () => {
    assertOAuthError(await post('/token', codeParams(client, code, verifier, { client_id: client.client_id, code_verifier: '' })), 400, 'invalid_request');
  });
  await t.test('redirect URI mismatch → invalid_grant', async () => {
    for (const redirect of ['http://127.0.0.1:33418/other', 'http://127.0.0.1:40000/callback', 'https://evil.example.com/cb']) {
      assertOAuthError(await post('/token', codeParams(client, code, verifier, { client_id: client.client_id, redirect_uri: redirect })), 400, 'invalid_grant');
    }
  });
  await t.test('code used by another client → invalid_grant', async () => {
    assertOAuthError(await post('/token', codeParams(client, code, verifier, { client_id: thief.client_id })), 400, 'invalid_grant');
  });
  await t.test('resource outside the grant → invalid_target', async () => {
    assertOAuthError(await post('/token', codeParams(client, code, verifier, { client_id: client.client_id, resource: `${origin}/` })), 400, 'invalid_target');
  });

  let tokens;
  await t.test('none of that consumed the code: the right exchange works, never cached', async () => {
    const r = await post('/token', codeParams(client, code, verifier, { client_id: client.client_id }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.res.headers.get('cache-control'), 'no-store');
    assert.equal(r.res.headers.get('pragma'), 'no-cache');
    tokens = r.json;
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(tokens.refresh_token);
    assertAuthenticated(await mcp(tokens.access_token));
  });
  await t.test('a replayed code fails and revokes the grant with its tokens', async () => {
    assertOAuthError(await post('/token', codeParams(client, code, verifier, { client_id: client.client_id })), 400, 'invalid_grant');
    assertInvalidToken(await mcp(tokens.access_token));
    assertOAuthError(await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id }), 400, 'invalid_grant');
  });
});

// ---- refresh ------------------------------------------------------------------------------------

test('refresh: rotation, one retry with the previous token, then it is finished', async () => {
  const { client, refresh_token: r0 } = await getMcpToken(stack, { user: 'bob' });
  const first = await refresh({ mcpOrigin: origin, client, refreshToken: r0 });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const r1 = first.body.refresh_token;
  assert.ok(r1 && r1 !== r0);
  assertAuthenticated(await mcp(first.body.access_token));
  // The response got lost: the retry with the previous token gets the same answer (concurrent
  // refreshes of one token must not strand a caller; see the lifecycle tests).
  const retry = await refresh({ mcpOrigin: origin, client, refreshToken: r0 });
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.equal(retry.body.refresh_token, r1);
  // The client goes on with the newest tokens: the old ones are finished.
  const second = await refresh({ mcpOrigin: origin, client, refreshToken: r1 });
  assert.equal(second.status, 200);
  const r2 = second.body.refresh_token;
  assert.ok(r2 && r2 !== r1);
  const next = await refresh({ mcpOrigin: origin, client, refreshToken: r2 });
  assert.equal(next.status, 200);
  for (const old of [r0, r1]) {
    const res = await refresh({ mcpOrigin: origin, client, refreshToken: old });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
  }
  assertAuthenticated(await mcp(next.body.access_token));
  // Another client cannot use it.
  const other = await registerClient(origin);
  assert.equal((await refresh({ mcpOrigin: origin, client: other, refreshToken: next.body.refresh_token })).body.error, 'invalid_grant');
});

test('a scope the grant lacks is invalid_scope at the code exchange and at refresh; narrowing works', async () => {
  const client = await registerClient(origin);
  const { code, verifier } = await codeFor(client, { scope: 'todo_api:read' });
  // Only scopes the grant lacks (granted elsewhere, or unknown), or more than it has: refused,
  // and the code is still good afterwards.
  for (const scope of ['todo_api:write', 'admin', 'todo_api:read todo_api:write']) {
    assertOAuthError(await post('/token', codeParams(client, code, verifier, { client_id: client.client_id, scope })), 400, 'invalid_scope');
  }
  const tokens = await exchangeCode({ mcpOrigin: origin, client, code, verifier });
  assert.equal(tokens.scope, 'todo_api:read');
  for (const scope of ['todo_api:read todo_api:write', 'todo_api:write', 'admin']) {
    const r = await refresh({ mcpOrigin: origin, client, refreshToken: tokens.refresh_token, scope });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_scope');
  }
  // An empty scope is no scope: the whole grant, not an empty token.
  const empty = await post('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id, scope: '' });
  assert.equal(empty.status, 200, empty.text);
  assert.equal(empty.json.scope, 'todo_api:read');
  tokens.refresh_token = empty.json.refresh_token;
  const ok = await refresh({ mcpOrigin: origin, client, refreshToken: tokens.refresh_token, scope: 'todo_api:read' });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.scope, 'todo_api:read');
  // Resource pinning: a resource outside the grant is refused.
  const r = await post('/token', { grant_type: 'refresh_token', refresh_token: ok.body.refresh_token, client_id: client.client_id, resource: `${origin}/other` });
  assertOAuthError(r, 400, 'invalid_target');
});

// ---- revocation and audiences --------------------------------------------------------------------

test('revocation: an access token alone, then a refresh token with its whole grant', async () => {
  const { client, access_token, refresh_token } = await getMcpToken(stack, { user: 'bob' });
  // Used first, so the isolate's token cache holds it: revocation must still take effect at once.
  assertAuthenticated(await mcp(access_token));
  const r = await post('/revoke', { token: access_token, token_type_hint: 'access_token', client_id: client.client_id });
  assert.equal(r.status, 200);
  assertInvalidToken(await mcp(access_token));
  const fresh = await refresh({ mcpOrigin: origin, client, refreshToken: refresh_token });
  assert.equal(fresh.status, 200, 'the grant survived');
  assertAuthenticated(await mcp(fresh.body.access_token));
  // Another client's revocation is ignored (and still answered 200).
  const other = await registerClient(origin);
  assert.equal((await post('/revoke', { token: fresh.body.refresh_token, client_id: other.client_id })).status, 200);
  assertAuthenticated(await mcp(fresh.body.access_token));
  // The refresh token revokes the grant and every access token of it.
  assert.equal((await post('/revoke', { token: fresh.body.refresh_token, client_id: client.client_id })).status, 200);
  assertInvalidToken(await mcp(fresh.body.access_token));
  assert.equal((await refresh({ mcpOrigin: origin, client, refreshToken: fresh.body.refresh_token })).status, 400);
  // Unknown tokens are fine; a missing one is not.
  assert.equal((await post('/revoke', { token: 'nonsense', client_id: client.client_id })).status, 200);
  assertOAuthError(await post('/revoke', { client_id: client.client_id }), 400, 'invalid_request');
});

test('wrong audience: a token for /sse is refused at /mcp, and /mcp tokens stop at /mcp-other', async () => {
  const client = await registerClient(origin);
  const { code, verifier } = await codeFor(client, { resource: stack.sseUrl });
  const tokens = await exchangeCode({ mcpOrigin: origin, client, code, verifier });
  assert.equal(tokens.resource, stack.sseUrl);
  const r = await mcp(tokens.access_token);
  assertInvalidToken(r);
  assert.match(r.www, /audience/);
  // /mcp-other is not a protected route of this resource at all.
  const other = await fetch(`${origin}/mcp-other`, { headers: { authorization: `Bearer ${early.access_token}` } });
  assert.equal(other.status, 404);
  await other.arrayBuffer();
});

test('the resource the root metadata names is one tokens are issued for and accepted at /mcp and /sse', async () => {
  const named = (await (await fetch(`${origin}/.well-known/oauth-protected-resource`)).json()).resource;
  assert.equal(named, origin);
  const client = await registerClient(origin);
  const { code, verifier } = await codeFor(client, { resource: named });
  const tokens = await exchangeCode({ mcpOrigin: origin, client, code, verifier });
  assert.equal(tokens.resource, named);
  assertAuthenticated(await mcp(tokens.access_token));
  const sse = new AbortController();
  const res = await fetch(stack.sseUrl, { headers: { accept: 'text/event-stream', authorization: `Bearer ${tokens.access_token}` }, signal: sse.signal });
  assert.equal(res.status, 200);
  sse.abort();
  await res.body?.cancel().catch(() => {});
  // Still only this origin's protected routes.
  const other = await fetch(`${origin}/mcp-other`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  assert.equal(other.status, 404);
  await other.arrayBuffer();
});

// ---- client authentication -------------------------------------------------------------------------

test('client_secret_basic: Basic works, post and malformed Basic are refused', async () => {
  const client = await registerClient(origin, { token_endpoint_auth_method: 'client_secret_basic' });
  assert.ok(client.client_secret);
  const { code, verifier } = await codeFor(client);
  const params = codeParams(client, code, verifier);

  let r = await post('/token', { ...params, client_id: client.client_id, client_secret: client.client_secret });
  assertOAuthError(r, 401, 'invalid_client');
  assert.equal(r.res.headers.get('www-authenticate'), null, 'no Basic challenge when Basic was not tried');
  r = await post('/token', params, { authorization: basic(client.client_id, 'wrong') });
  assertOAuthError(r, 401, 'invalid_client');
  assert.equal(r.res.headers.get('www-authenticate'), 'Basic realm="OAuth"');
  for (const bad of ['Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, 'Basic']) {
    r = await post('/token', params, { authorization: bad });
    assertOAuthError(r, 401, 'invalid_client');
    assert.equal(r.res.headers.get('www-authenticate'), 'Basic realm="OAuth"');
  }
  r = await post('/token', { ...params, client_secret: client.client_secret }, { authorization: basic(client.client_id, client.client_secret) });
  assertOAuthError(r, 400, 'invalid_request');
  r = await post('/token', { ...params, client_id: client.client_id });
  assertOAuthError(r, 401, 'invalid_client');

  r = await post('/token', params, { authorization: basic(client.client_id, client.client_secret) });
  assert.equal(r.status, 200, r.text);
  assertAuthenticated(await mcp(r.json.access_token));
  // Revocation takes the same authentication.
  assertOAuthError(await post('/revoke', { token: r.json.access_token, client_id: client.client_id }), 401, 'invalid_client');
  assert.equal((await post('/revoke', { token: r.json.access_token }, { authorization: basic(client.client_id, client.client_secret) })).status, 200);
  assertInvalidToken(await mcp(r.json.access_token));
});

test('client_secret_post: post works, Basic is refused', async () => {
  const client = await registerClient(origin, { token_endpoint_auth_method: 'client_secret_post' });
  const { code, verifier } = await codeFor(client);
  const params = codeParams(client, code, verifier);
  let r = await post('/token', params, { authorization: basic(client.client_id, client.client_secret) });
  assertOAuthError(r, 401, 'invalid_client');
  assert.equal(r.res.headers.get('www-authenticate'), 'Basic realm="OAuth"');
  r = await post('/token', { ...params, client_id: client.client_id, client_secret: 'wrong' });
  assertOAuthError(r, 401, 'invalid_client');
  r = await post('/token', { ...params, client_id: client.client_id, client_secret: client.client_secret });
  assert.equal(r.status, 200, r.text);
  assertAuthenticated(await mcp(r.json.access_token));
  // A public client may not present a secret.
  const pub = await registerClient(origin);
  r = await post('/token', { grant_type: 'refresh_token', refresh_token: 'x:y:z', client_id: pub.client_id, client_secret: 'made-up' });
  assertOAuthError(r, 401, 'invalid_client');
});

// ---- malformed requests ----------------------------------------------------------------------------

test('malformed token requests are 400 invalid_request', async () => {
  const client = await registerClient(origin);
  const body = { grant_type: 'authorization_code', code: 'a:b:c', code_verifier: 'v'.repeat(43), client_id: client.client_id };
  assertOAuthError(await post('/token', JSON.stringify(body), { 'content-type': 'application/json' }), 400, 'invalid_request');
  assertOAuthError(await post('/token', new URLSearchParams(body).toString(), { 'content-type': 'text/plain' }), 400, 'invalid_request');
  assertOAuthError(await post('/token', `${new URLSearchParams(body)}&code=again`), 400, 'invalid_request');
  assertOAuthError(await post('/token', `${new URLSearchParams(body)}&client_id=${client.client_id}`), 400, 'invalid_request');
  assertOAuthError(await post('/token', { client_id: client.client_id }), 400, 'invalid_request');
  assertOAuthError(await post('/token', { grant_type: 'password', client_id: client.client_id }), 400, 'unsupported_grant_type');
  assertOAuthError(await post('/token', body), 400, 'invalid_grant');
  const get = await fetch(`${origin}/token`);
  assert.equal(get.status, 405);
  await get.arrayBuffer();
});

test('registration: validation errors, malformed JSON and oversized documents', async () => {
  const reg = (body) => post('/register', typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': 'application/json' });
  assertOAuthError(await reg('{"redirect_uris": ['), 400, 'invalid_request');
  for (const redirect of ['javascript:alert(1)', 'http://evil.example.com/cb', 'https://app.example.com/cb#x', 'data:text/html,x']) {
    assertOAuthError(await reg({ redirect_uris: [redirect] }), 400, 'invalid_redirect_uri');
  }
  assertOAuthError(await reg({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt' }), 400, 'invalid_client_metadata');
  assertOAuthError(await reg({ redirect_uris: [REDIRECT], grant_types: ['client_credentials'] }), 400, 'invalid_client_metadata');
  assertOAuthError(await reg({ redirect_uris: [REDIRECT], response_types: ['token'] }), 400, 'invalid_client_metadata');
  const big = await reg({ redirect_uris: [REDIRECT], client_name: 'x', padding: 'x'.repeat(70 * 1024) });
  assertOAuthError(big, 413, 'invalid_request');
  // A good public registration: 201, no secret, never cached.
  const ok = await reg({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'ok' });
  assert.equal(ok.status, 201);
  assert.equal(ok.res.headers.get('cache-control'), 'no-store');
  assert.equal(ok.json.client_secret, undefined);
  assert.equal(typeof ok.json.client_id_issued_at, 'number');
  assert.equal(ok.json.registration_client_uri, undefined);
});

// ---- CORS -----------------------------------------------------------------------------------------

test('CORS: preflight on /token and /mcp, headers on answers', async () => {
  for (const path of ['/token', '/register', '/mcp']) {
    const res = await fetch(`${origin}${path}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://inspector.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id',
      },
    });
    assert.equal(res.status, 204, path);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://inspector.example');
    const allowed = res.headers.get('access-control-allow-headers').toLowerCase();
    for (const h of ['authorization', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']) {
      assert.ok(allowed.includes(h), `${path}: ${h} in ${allowed}`);
    }
    assert.match(res.headers.get('access-control-allow-methods'), /POST/);
    await res.arrayBuffer();
  }
  const r = await mcp(null, { headers: { origin: 'https://inspector.example' } });
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://inspector.example');
  const exposed = r.headers.get('access-control-expose-headers').toLowerCase();
  assert.ok(exposed.includes('www-authenticate') && exposed.includes('mcp-session-id'), exposed);
  const tok = await post('/token', { grant_type: 'refresh_token', refresh_token: 'x:y:z', client_id: 'nobody' }, { origin: 'https://inspector.example' });
  assert.equal(tok.status, 401);
  assert.equal(tok.res.headers.get('access-control-allow-origin'), 'https://inspector.example');
});

// ---- expiry (last: the token from the start has had time to expire) ---------------------------------

test('an expired access token gets invalid_token; its refresh token still works', async () => {
  assert.equal(early.expires_in, ACCESS_TTL);
  // Issued at or before earlyAt, so expired from earlyAt + its lifetime on (the worker counts whole
  // seconds, rounded down); half a second more for the two clocks' readings.
  const wait = earlyAt + ACCESS_TTL * 1000 + 500 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  assertInvalidToken(await mcp(early.access_token));
  const r = await refresh({ mcpOrigin: origin, client: early.client, refreshToken: early.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertAuthenticated(await mcp(r.body.access_token));
});
