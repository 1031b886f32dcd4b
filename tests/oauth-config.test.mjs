// Registration policy in workerd: a stack with dynamic client registration off
// (OAUTH_DYNAMIC_REGISTRATION=false) and the admin endpoint on (OAUTH_ADMIN_TOKEN).
// The metadata has no registration_endpoint, /register is refused, a real MCP SDK client
// that must register itself fails with a clear error, and a client created through
// POST /admin/clients signs in end to end with the same SDK client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from './support/stack.mjs';
import { connectClient, TestOAuthProvider } from './support/sdk-oauth.mjs';
import { authorize, exchangeCode, getMcpToken, refresh, registerClient } from './support/flow.mjs';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ADMIN = 'test-admin-token-0123456789abcdef0123456789';

describe('OAUTH_DYNAMIC_REGISTRATION=false with OAUTH_ADMIN_TOKEN, OAUTH_ALLOW_PUBLIC_CLIENTS=false', () => {
  let stack;
  before(async () => {
    stack = await startTestStack({
      mcpVars: { OAUTH_DYNAMIC_REGISTRATION: 'false', OAUTH_ADMIN_TOKEN: ADMIN, OAUTH_ALLOW_PUBLIC_CLIENTS: 'false' },
    });
  });
  after(async () => { await stack?.stop(); });

  const admin = (body, token) => fetch(`${stack.mcpOrigin}/admin/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

  test('metadata omits registration_endpoint and /register is refused', async () => {
    const m = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
    assert.equal(m.registration_endpoint, undefined);
    assert.equal(m.token_endpoint, `${stack.mcpOrigin}/token`);
    const res = await fetch(`${stack.mcpOrigin}/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:33419/callback'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.error, 'access_denied');
    assert.match(body.error_description, /registration is disabled/);
  });

  test('an MCP SDK client that must register cannot connect, with a clear error', async () => {
    const provider = new TestOAuthProvider();
    await assert.rejects(connectClient('http', stack.mcpUrl, provider), /dynamic client registration/i);
    assert.equal(provider.registrations, 0);
    assert.equal(provider.authorizations.length, 0, 'never sent to authorize');
  });

  test('OAUTH_ALLOW_PUBLIC_CLIENTS=false: the admin endpoint refuses a public client too', async () => {
    const res = await admin({ redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none' }, ADMIN);
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error, 'invalid_client_metadata');
    assert.match(body.error_description, /public client\) is not accepted/);
  });

  test('the admin endpoint refuses a missing or wrong token', async () => {
    for (const token of [null, 'wrong', `${ADMIN}x`]) {
      const res = await admin({ redirect_uris: ['https://app.example.com/cb'] }, token);
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error, 'invalid_token');
    }
  });

  test('a client created by the admin endpoint signs in end to end with the SDK', async () => {
    const redirectUrl = 'http://127.0.0.1:33419/callback';
    const res = await admin({ client_name: 'Pre-registered SDK client', redirect_uris: [redirectUrl] }, ADMIN);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const info = await res.json();
    assert.equal(info.token_endpoint_auth_method, 'client_secret_basic');
    assert.ok(info.client_secret?.length >= 32);
    assert.equal(info.client_secret_expires_at, 0);

    const provider = new TestOAuthProvider({ redirectUrl, clientInformation: info });
    const { client, signedIn } = await connectClient('http', stack.mcpUrl, provider);
    try {
      assert.equal(signedIn, true);
      // The SDK re-saves the given client stamped with the issuer; it registers nothing new.
      assert.equal(provider.clientInformation().client_id, info.client_id);
      const { tools } = await client.listTools();
      assert.ok(tools.length > 0);
      assert.deepEqual(provider.tokenRequests, ['authorization_code']);
    } finally {
      await client.close();
    }
  });
  test('clients are listed, read, updated and deleted through the admin endpoint; a deleted one gets 401 invalid_client', async () => {
    const call = (method, path, body) => fetch(`${stack.mcpOrigin}/admin/clients${path}`, {
      method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const created = await (await admin({ client_name: 'To administer', redirect_uris: ['https://app.example.com/cb'] }, ADMIN)).json();
    const list = await (await call('GET', '')).json();
    assert.ok(list.clients.some((c) => c.client_id === created.client_id));
    assert.ok(list.clients.every((c) => c.client_secret === undefined));
    let res = await call('PUT', `/${created.client_id}`, { client_name: 'Renamed', redirect_uris: ['https://app.example.com/cb'] });
    assert.equal(res.status, 200);
    assert.equal((await (await call('GET', `/${created.client_id}`)).json()).client_name, 'Renamed');
    res = await call('GET', '/grants?user_id=nobody');
    assert.deepEqual(await res.json(), { grants: [] });
    assert.equal((await call('DELETE', `/${created.client_id}`)).status, 204);
    assert.equal((await call('GET', `/${created.client_id}`)).status, 404);
    res = await fetch(`${stack.mcpOrigin}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${created.client_id}:${created.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'u:g:x' }),
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, 'invalid_client');
    assert.equal((await fetch(`${stack.mcpOrigin}/admin/clients/${created.client_id}`)).status, 401, 'sub-paths need the token');
  });
});

// Endpoint paths and the scope split, configured: a real SDK client finds every endpoint
// through discovery (nothing in it knows the paths), signs in through the consent page and
// the IdP, calls a tool, refreshes at the configured token path (through the refresh
// object, which must recognise it) and revokes at the configured revocation path.
describe('OAUTH_*_PATH and MCP_REQUIRED_SCOPES', () => {
  const paths = {
    OAUTH_AUTHORIZE_PATH: '/oauth/authorize', OAUTH_TOKEN_PATH: '/oauth/token',
    OAUTH_REGISTER_PATH: '/oauth/register', OAUTH_REVOKE_PATH: '/oauth/revoke',
  };
  let stack;
  before(async () => {
    stack = await startTestStack({
      mcpVars: { ...paths, MCP_SCOPES: 'todo_api:read todo_api:write', MCP_REQUIRED_SCOPES: 'todo_api:read' },
    });
  });
  after(async () => { await stack?.stop(); });

  test('the metadata advertises the configured paths, the old ones are gone, and scopes are split', async () => {
    const as = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
    assert.equal(as.authorization_endpoint, `${stack.mcpOrigin}/oauth/authorize`);
    assert.equal(as.token_endpoint, `${stack.mcpOrigin}/oauth/token`);
    assert.equal(as.registration_endpoint, `${stack.mcpOrigin}/oauth/register`);
    assert.equal(as.revocation_endpoint, `${stack.mcpOrigin}/oauth/revoke`);
    assert.deepEqual(as.scopes_supported.filter((s) => s !== 'offline_access').sort(), ['todo_api:read', 'todo_api:write']);
    for (const old of ['/token', '/register', '/revoke']) {
      const res = await fetch(`${stack.mcpOrigin}${old}`, { method: 'POST', body: '' });
      assert.equal(res.status, 404, `${old} is not an endpoint any more`);
    }
    const prm = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.deepEqual(prm.scopes_supported, ['todo_api:read'], 'the resource advertises what it needs');
    const challenge = (await fetch(stack.mcpUrl, { method: 'POST' })).headers.get('www-authenticate');
    assert.match(challenge, /scope="todo_api:read"/);
  });

  test('an SDK client signs in, calls a tool, refreshes and revokes through the configured paths', async () => {
    const provider = new TestOAuthProvider();
    const posted = [];
    const plain = provider.fetch;
    provider.fetch = async (url, init) => {
      if (init?.method === 'POST') posted.push(new URL(url).pathname);
      return plain(url, init);
    };
    const { client, signedIn } = await connectClient('http', stack.mcpUrl, provider);
    try {
      assert.equal(signedIn, true);
      assert.equal(new URL(provider.authorizations[0].url).pathname, '/oauth/authorize');
      assert.equal(provider.authorizations[0].consentShown, true);
      assert.ok(posted.includes('/oauth/register') && posted.includes('/oauth/token'), posted.join(' '));
      const result = await client.callTool({ name: 'get_my_todo_list', arguments: {} });
      assert.notEqual(result.isError, true, JSON.stringify(result));
    } finally {
      await client.close();
    }
    const { client_id: clientId } = provider.clientInformation();
    const token = async (body) => fetch(`${stack.mcpOrigin}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: clientId, ...body }),
    });
    let res = await token({ grant_type: 'refresh_token', refresh_token: provider.tokens().refresh_token });
    assert.equal(res.status, 200, await res.clone().text());
    const refreshed = await res.json();
    const callWith = (access) => fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    assert.equal((await callWith(refreshed.access_token)).status, 200);
    res = await fetch(`${stack.mcpOrigin}/oauth/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: clientId, token: refreshed.refresh_token }),
    });
    assert.equal(res.status, 200);
    assert.equal((await callWith(refreshed.access_token)).status, 401, 'revoked at the configured path');
  });
});

// A path setting on one of the worker's own routes (PingOne's /callback, /health) is refused
// when the settings are read, naming the setting, instead of leaving the endpoint or the
// sign-in callback silently unreachable.
describe('OAUTH_TOKEN_PATH on the sign-in callback', () => {
  let stack;
  before(async () => {
    stack = await startTestStack({ idp: false, todoApi: false, mcpVars: { OAUTH_TOKEN_PATH: '/callback' } });
  });
  after(async () => { await stack?.stop(); });

  test('every request but /health gets a 500 naming the setting', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/callback', '/authorize']) {
      const res = await fetch(`${stack.mcpOrigin}${path}`);
      assert.equal(res.status, 500, path);
      const body = await res.json();
      assert.equal(body.error, 'server_error');
      assert.match(body.error_description, /OAUTH_TOKEN_PATH must not be \/callback, a route of the application/);
    }
    assert.equal((await fetch(`${stack.mcpOrigin}/health`)).status, 200);
  });
});

// DOWNSTREAMS (named downstream MCP servers) is read with the other settings: a malformed value
// stops the worker with a 500 naming it, and a pre-registered client whose secret is not set
// stops sign-ins for the named downstreams; neither error shows a URL or a secret.
describe('a bad DOWNSTREAMS value', () => {
  let broken, noSecret;
  before(async () => {
    [broken, noSecret] = await Promise.all([
      startTestStack({ idp: false, todoApi: false, mcpVars: { DOWNSTREAMS: '[{"name": "notes", "url": "https://notes.example/do-not-echo"' } }),
      startTestStack({
        todoApi: false,
        idpEnv: { IDP_ADMIN_API: '1' },
        mcpVars: {
          DOWNSTREAMS: JSON.stringify([{ name: 'cal', url: 'https://cal.example/do-not-echo', auth: 'oauth', client_id: 'gw', client_secret_var: 'CAL_SECRET' }]),
        },
      }),
    ]);
  });
  after(async () => { await Promise.all([broken?.stop(), noSecret?.stop()]); });

  const refused = async (res, pattern) => {
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.error, 'server_error');
    assert.match(body.error_description, pattern);
    assert.doesNotMatch(body.error_description, /do-not-echo/);
  };

  test('malformed: every request but /health gets a 500 naming the setting, not its value', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/mcp/notes', '/authorize', '/mcp']) {
      await refused(await fetch(`${broken.mcpOrigin}${path}`), /DOWNSTREAMS.*JSON array/);
    }
    assert.equal((await fetch(`${broken.mcpOrigin}/health`)).status, 200);
  });

  test('a client secret that is not set: a sign-in for that downstream is refused naming its entry, its PingOne token revoked; discovery still works', async () => {
    const meta = await fetch(`${noSecret.mcpOrigin}/.well-known/oauth-protected-resource/mcp/cal`);
    assert.equal(meta.status, 200);
    assert.equal((await meta.json()).resource, `${noSecret.mcpOrigin}/mcp/cal`);
    // Refused at the end of the sign-in, not completed into a grant every call would refuse.
    const client = await registerClient(noSecret.mcpOrigin);
    const auth = await authorize({ mcpOrigin: noSecret.mcpOrigin, client, user: 'alice', resource: `${noSecret.mcpOrigin}/mcp/cal` });
    assert.equal(auth.code, null, auth.redirect);
    assert.equal(auth.error, 'server_error', auth.redirect);
    const why = new URL(auth.redirect).searchParams.get('error_description');
    assert.match(why, /DOWNSTREAMS.*'cal'.*secret/);
    assert.doesNotMatch(why, /do-not-echo/);
    // The PingOne refresh token that sign-in got was revoked: alice holds none at the IdP.
    const res = await fetch(`${noSecret.idpUrl}/admin/users/alice/revoke-tokens`, { method: 'POST' });
    assert.equal((await res.json()).revoked, 0);
    // A sign-in for the server's own /mcp is not affected.
    const own = await authorize({ mcpOrigin: noSecret.mcpOrigin, client, user: 'bob' });
    assert.ok(own.code, own.redirect);
  });
});

// Registration hygiene: private-use redirect schemes switched off, and a bound on
// registrations per source (CF-Connecting-IP) and hour.
describe('OAUTH_ALLOW_PRIVATE_USE_SCHEMES=false, OAUTH_REGISTRATION_LIMIT=3', () => {
  let stack;
  before(async () => {
    stack = await startTestStack({
      idp: false, todoApi: false, mcpVars: { OAUTH_ALLOW_PRIVATE_USE_SCHEMES: 'false', OAUTH_REGISTRATION_LIMIT: '3' },
    });
  });
  after(async () => { await stack?.stop(); });

  const register = (body, ip = '192.0.2.1') => fetch(`${stack.mcpOrigin}/register`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'cf-connecting-ip': ip },
    body: JSON.stringify({ client_name: 'Native', token_endpoint_auth_method: 'none', ...body }),
  });

  test('a private-use redirect may be listed beside a usable one but not used; alone it is refused', async () => {
    const cursor = 'cursor://anysphere.cursor-mcp/oauth/callback';
    const loopback = 'http://127.0.0.1:33419/callback';
    let res = await register({ redirect_uris: [cursor] });
    assert.equal(res.status, 400);
    const refused = await res.json();
    assert.equal(refused.error, 'invalid_redirect_uri');
    assert.match(refused.error_description, /private-use/);
    res = await register({ redirect_uris: [loopback, cursor] });
    assert.equal(res.status, 201);
    const client = await res.json();
    const url = (redirect) => `${stack.mcpOrigin}/authorize?${new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: redirect, state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    })}`;
    const bad = await fetch(url(cursor), { redirect: 'manual', headers: { accept: 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('location'), null);
    assert.match((await bad.json()).error_description, /Invalid redirect URI.*private-use/);
    const ok = await fetch(url(loopback), { redirect: 'manual' });
    assert.notEqual(ok.status, 400, 'the loopback redirect is usable');
    await ok.arrayBuffer();
  });

  test('a fourth registration from one source within the hour is 429 with Retry-After; another source is not affected', async () => {
    const ok = { redirect_uris: ['http://127.0.0.1:33419/callback'] };
    for (let i = 0; i < 3; i++) {
      const res = await register(ok, '198.51.100.20');
      assert.equal(res.status, 201, await res.text());
    }
    const res = await register(ok, '198.51.100.20');
    assert.equal(res.status, 429);
    const retry = Number(res.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 3600, String(retry));
    const body = await res.json();
    assert.equal(body.error, 'temporarily_unavailable');
    assert.match(body.error_description, /Too many client registrations/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal((await register(ok, '198.51.100.21')).status, 201);
  });

  test('application_type is echoed; a web client must have an https redirect', async () => {
    let res = await register({ application_type: 'web', redirect_uris: ['http://127.0.0.1:33419/callback'] }, '198.51.100.30');
    assert.equal(res.status, 400);
    assert.match((await res.json()).error_description, /application_type web/);
    res = await register({ application_type: 'native', redirect_uris: ['http://127.0.0.1:33419/callback'] }, '198.51.100.30');
    assert.equal(res.status, 201);
    assert.equal((await res.json()).application_type, 'native');
  });
});

// Lifecycle settings and the PingOne scopes, from the environment into the worker: one stack
// with all of them set; each test fails if its variable is ignored (the defaults differ:
// OAUTH_CLIENT_TTL 90 days, no idle expiry, no renewal, PINGONE_SCOPES without email).
describe('OAUTH_CLIENT_TTL, OAUTH_REFRESH_TOKEN_IDLE_TTL, OAUTH_CLIENT_RENEWAL, PINGONE_SCOPES', () => {
  const CLIENT_TTL = 7200;
  const IDLE_TTL = 5400;
  const PINGONE_SCOPES = 'openid profile email todo_api:read todo_api:write';
  let stack;
  before(async () => {
    stack = await startTestStack({
      todoApi: false,
      mcpVars: {
        OAUTH_ADMIN_TOKEN: ADMIN, OAUTH_CLIENT_TTL: String(CLIENT_TTL), OAUTH_REFRESH_TOKEN_IDLE_TTL: String(IDLE_TTL),
        OAUTH_CLIENT_RENEWAL: 'true', PINGONE_SCOPES,
      },
    });
  });
  after(async () => { await stack?.stop(); });

  const adminGet = async (path) => {
    const res = await fetch(`${stack.mcpOrigin}/admin/clients${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(res.status, 200, path);
    return res.json();
  };
  const now = () => Math.floor(Date.now() / 1000);
  const near = (got, want, what) => assert.ok(Math.abs(got - want) <= 30, `${what}: ${got}, expected about ${want}`);

  test('PINGONE_SCOPES: the sign-in asks PingOne for exactly those scopes', async () => {
    const signIn = await getMcpToken(stack, { user: 'alice' });
    assert.ok(signIn.access_token);
    // The redirect to the IdP, taken again without following it.
    const client = signIn.client;
    const q = new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uris[0], state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
      resource: `${stack.mcpOrigin}/mcp`,
    });
    // Already approved in signIn's jar: /authorize goes straight to the IdP.
    const cookie = signIn.jar.header(stack.mcpOrigin);
    const res = await fetch(`${stack.mcpOrigin}/authorize?${q}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    assert.ok(res.status >= 300 && res.status < 400, `status ${res.status}`);
    const to = new URL(res.headers.get('location'));
    assert.equal(to.origin, new URL(stack.issuer).origin, to.href);
    assert.deepEqual(to.searchParams.get('scope').split(' ').sort(), PINGONE_SCOPES.split(' ').sort());
  });

  test('OAUTH_CLIENT_TTL: a used dynamic registration lasts that long', async () => {
    const { client } = await getMcpToken(stack, { user: 'alice' });
    near((await adminGet(`/${client.client_id}`)).registration_expires_at, now() + CLIENT_TTL, 'registration_expires_at');
  });

  test('OAUTH_REFRESH_TOKEN_IDLE_TTL: a refresh moves the grant\'s end to that long after it', async () => {
    const tokens = await getMcpToken(stack, { user: 'bob' });
    const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: tokens.client, refreshToken: tokens.refresh_token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const userId = tokens.refresh_token.split(':')[0];
    const { grants } = await adminGet(`/grants?user_id=${encodeURIComponent(userId)}&client_id=${tokens.client.client_id}`);
    assert.equal(grants.length, 1, JSON.stringify(grants));
    near(grants[0].expires_at, now() + IDLE_TTL, 'the grant\'s end');
  });

  test('OAUTH_CLIENT_RENEWAL: a registration with less than half its TTL left is renewed by a token request', async () => {
    const tokens = await getMcpToken(stack, { user: 'alice' });
    const id = tokens.client.client_id;
    // Age the registration: its stored record says it ends in 10 minutes (the local KV's blob,
    // rewritten in place; workerd reads blobs from disk on every get).
    const { readLocalKv, localKvFiles } = await import('./support/local-kv.mjs');
    const row = (await readLocalKv(stack.stateDir)).find((r) => r.key === `client:${id}`);
    assert.ok(row, 'the client record in the local KV');
    const record = JSON.parse(row.value);
    assert.ok(record.registrationExpiresAt, row.value);
    const soon = now() + 600;
    const aged = JSON.stringify({ ...record, registrationExpiresAt: soon });
    const files = localKvFiles(stack.stateDir).filter((f) => f.includes('blobs') && readFileSync(f, 'utf8') === row.value);
    assert.equal(files.length, 1);
    writeFileSync(files[0], aged);
    assert.equal((await adminGet(`/${id}`)).registration_expires_at, soon, 'the worker sees the aged record');
    const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: tokens.client, refreshToken: tokens.refresh_token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    near((await adminGet(`/${id}`)).registration_expires_at, now() + CLIENT_TTL, 'renewed registration_expires_at');
  });
});
