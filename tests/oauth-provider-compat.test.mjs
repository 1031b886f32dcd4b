// Storage compatibility with the REAL @cloudflare/workers-oauth-provider, both ways, on one KV
// namespace: the version the original TypeScript worker pins (0.1.0) and the current 1.2.3,
// pinned in package.json as the npm aliases wop-0.1 and wop-1.2. tests/compat-worker/ runs each
// version's OAuthProvider in workerd (its own `wrangler dev`, sharing the MCP worker's
// --persist-to directory and KV id, so both processes use the same local KV).
//
//   a. The TypeScript provider registers a client, completes an authorization (props shaped
//      like the original PingOne worker's) and issues tokens (authorization_code + PKCE S256,
//      with a refresh token). The MCP worker then serves /mcp with that access token (the
//      official MCP SDK client), refreshes at its /token and revokes at its /revoke.
//   b. The MCP worker registers a client, signs alice in through the stand-in IdP and issues
//      tokens; the TypeScript provider reads them: its protected route gets the props
//      (1.2.3 also through OAuthHelpers.unwrapToken) and its /token refreshes our refresh token.
//
// A respect in which a version is not compatible is a `todo` subtest naming it, never skipped
// or asserted away. The Todo API is the in-memory fake, which records the bearer the tools send.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ROOT, startTestStack } from './support/stack.mjs';
import { authorize, eventually, exchangeCode, getMcpToken, pkcePair, registerClient } from './support/flow.mjs';
import { decodeJwt, discover, loginAndGetTokens } from './support/idp.mjs';
import { startFakeTodoApi } from './support/fake-todo-api.mjs';

const VERSIONS = ['0.1.0', '1.2.3'];
const REDIRECT = 'http://127.0.0.1:33420/callback';
const SCOPE = 'todo_api:read todo_api:write';

const started = Date.now();
const api = await startFakeTodoApi();
const stack = await startTestStack({
  todoApi: false,
  mcpVars: { API_URL: api.url },
  extraWorkers: [{
    name: 'oauth-provider-compat',
    config: join(ROOT, 'tests', 'compat-worker', 'wrangler.toml'),
    vars: (s) => ({ MCP_ORIGIN: s.mcpOrigin }),
    persistWith: 'mcp',
  }],
});
after(async () => { await stack.stop(); await api.close(); });
console.log(`# stack with the compat worker up in ${Date.now() - started} ms`);

const { mcpOrigin } = stack;
const ts = (version) => `${stack.workerUrls['oauth-provider-compat']}/${version}`;

// A real PingOne(-stand-in) sign-in of alice, as the original's /callback would have had it.
const idp = await loginAndGetTokens({ issuer: stack.issuer, redirectUri: `${mcpOrigin}/callback` });
const idClaims = decodeJwt(idp.id_token).payload;
const SUB = idClaims.sub;
const userinfo = await (await fetch((await discover(stack.issuer)).userinfo_endpoint, {
  headers: { authorization: `Bearer ${idp.access_token}` }, signal: AbortSignal.timeout(20_000),
})).json();
assert.equal(userinfo.sub, SUB);
/** Props exactly as the original worker's /callback stores them (src/auth/ping-handler.ts):
 *  userinfo claims and the PingOne token response. (JSON drops the claims userinfo lacks.) */
const ORIGINAL_PROPS = JSON.parse(JSON.stringify({
  sub: userinfo.sub,
  preferred_username: userinfo.preferred_username,
  given_name: userinfo.given_name,
  family_name: userinfo.family_name,
  email: userinfo.email,
  tokenSet: {
    access_token: idp.access_token, token_type: idp.token_type, expires_in: idp.expires_in,
    scope: idp.scope, id_token: idp.id_token,
  },
}));
/** Props as this worker's sign-in stores them (src/login/oidc.rs SignedIn::props). */
const OUR_PROPS = {
  subjectToken: idp.access_token,
  subjectTokenExpiresAt: Math.floor(Date.now() / 1000) + idp.expires_in,
  scopes: idp.scope.split(' '),
  claims: { sub: SUB, preferred_username: 'alice', name: idClaims.name, email: idClaims.email },
};

async function form(url, params, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch {}
  return { status: res.status, body };
}

const ours = (path, params) => form(`${mcpOrigin}${path}`, params);

async function tsRegister(version, authMethod = 'none') {
  const res = await fetch(`${ts(version)}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: `compat client (${version})`, redirect_uris: [REDIRECT], token_endpoint_auth_method: authMethod,
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = await res.json();
  assert.equal(res.status, 201, `${version} /register: ${JSON.stringify(body)}`);
  return body;
}

/** How `client` authenticates at a token endpoint: client_secret_basic if it has a secret. */
function clientAuth(client, params) {
  if (!client.client_secret) return [{ ...params, client_id: client.client_id }, {}];
  const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
  return [params, { authorization: `Basic ${basic}` }];
}
const tokenAt = (base, client, params) => form(`${base}/token`, ...clientAuth(client, params));

/** The TypeScript provider's authorization (completed programmatically) and code exchange. */
async function tsTokens(version, client, { props, resource }) {
  const pkce = pkcePair();
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT, scope: SCOPE, state: 'st-1',
    code_challenge: pkce.challenge, code_challenge_method: 'S256',
    compat_user: SUB, compat_props: Buffer.from(JSON.stringify(props)).toString('base64url'),
  });
  if (resource) q.set('resource', resource);
  const res = await fetch(`${ts(version)}/authorize?${q}`, { redirect: 'manual', signal: AbortSignal.timeout(20_000) });
  assert.equal(res.status, 302, `${version} /authorize: ${res.status} ${await res.text()}`);
  const back = new URL(res.headers.get('location'));
  assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
  assert.equal(back.searchParams.get('state'), 'st-1');
  const code = back.searchParams.get('code');
  assert.match(code, new RegExp(`^${SUB}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{32}$`));
  const params = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pkce.verifier };
  if (resource) params.resource = resource;
  const r = await tokenAt(ts(version), client, params);
  assert.equal(r.status, 200, `${version} code exchange: ${JSON.stringify(r.body)}`);
  assert.ok(r.body.access_token && r.body.refresh_token, 'access and refresh token issued');
  return r.body;
}

/** An MCP session on our /mcp through the official SDK client, with `token` as the bearer. */
async function mcp(token) {
  const client = new Client({ name: 'oauth-provider-compat', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return client;
}

/** Status of a bare `initialize` at our /mcp with `token`. */
async function mcpStatus(token) {
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } },
    }),
    signal: AbortSignal.timeout(20_000),
  });
  await res.arrayBuffer();
  return res.status;
}

const text = (result) => result.content.map((c) => c.text).join('\n');
const sentBearer = (since) => api.requests.slice(since).map((r) => r.authorization);

/** The TypeScript provider's protected route with `token`: { status, body }. */
async function tsApi(version, token) {
  const res = await fetch(`${ts(version)}/mcp`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: await res.json() };
}

/** The grant record of a `user:grant:secret` token and the key metadata KV lists for it, read
 *  through the compat worker's own KV binding (the namespace both workers share). */
async function kvGrant(token) {
  const [userId, grantId] = token.split(':');
  const key = `grant:${userId}:${grantId}`;
  const res = await fetch(`${stack.workerUrls['oauth-provider-compat']}/kv-grant?key=${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(20_000) });
  assert.equal(res.status, 200);
  const got = await res.json();
  assert.ok(got.listed && got.record, `${key} is not in KV`);
  return got;
}

/** The key metadata workers-oauth-provider 1.x writes with a grant record (grantKeyMetadata). */
function metadataFor(record) {
  const m = { clientId: record.clientId };
  if (record.resource !== undefined) m.resource = record.resource;
  if (record.redirectUri !== undefined) m.redirectUri = record.redirectUri;
  return m;
}

for (const version of VERSIONS) {
  test(`${version} → this worker: a grant and tokens of the TypeScript provider are served, refreshed and revoked here`, async (t) => {
    const client = await tsRegister(version);
    // 0.1.0's own API route accepts only tokens without an audience or bound to the bare origin,
    // so the grants of a working 0.1.0 deployment carry no resource; 1.x binds every grant.
    const resource = version === '0.1.0' ? undefined : `${mcpOrigin}/mcp`;
    const tokens = await tsTokens(version, client, { props: ORIGINAL_PROPS, resource });
    const stored = await tsApi(version, tokens.access_token);
    assert.equal(stored.status, 200, `its own API route: ${JSON.stringify(stored.body)}`);
    assert.deepEqual(stored.body.props, ORIGINAL_PROPS);
    // The key metadata of its grant: none from 0.1.0; from 1.2.3, the rule metadataFor follows.
    const written = await kvGrant(tokens.refresh_token);
    assert.deepEqual(written.metadata, version === '0.1.0' ? null : metadataFor(written.record));

    await t.test('the access token opens an MCP session at our /mcp (SDK initialize + tools/list)', async () => {
      const c = await mcp(tokens.access_token);
      try {
        const { tools } = await c.listTools();
        assert.ok(tools.some((x) => x.name === 'who_am_I') && tools.some((x) => x.name === 'get_my_todo_list'));
      } finally { await c.close(); }
    });

    await t.test('our tools use the PingOne token in props shaped like the original\'s (tokenSet.access_token)', async () => {
      const c = await mcp(tokens.access_token);
      try {
        const who = await c.callTool({ name: 'who_am_I', arguments: {} });
        assert.ok(!who.isError, `who_am_I: ${text(who)}`);
        assert.match(text(who), new RegExp(SUB));
        const since = api.requests.length;
        const list = await c.callTool({ name: 'get_my_todo_list', arguments: {} });
        assert.ok(!list.isError, `get_my_todo_list: ${text(list)}`);
        assert.deepEqual(sentBearer(since), [`Bearer ${idp.access_token}`]);
      } finally { await c.close(); }
    });

    await t.test('with props in our shape, a grant of a confidential client of the TypeScript provider drives our tools and refreshes here', async () => {
      const other = await tsRegister(version, 'client_secret_basic');
      assert.equal(other.client_secret.length, 32);
      const mine = await tsTokens(version, other, { props: OUR_PROPS, resource });
      // Its client secret is stored hashed by the TypeScript provider; our /token checks it.
      const wrong = await tokenAt(mcpOrigin, { ...other, client_secret: 'x'.repeat(32) }, { grant_type: 'refresh_token', refresh_token: mine.refresh_token });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error, 'invalid_client');
      const r = await tokenAt(mcpOrigin, other, { grant_type: 'refresh_token', refresh_token: mine.refresh_token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const c = await mcp(r.body.access_token);
      try {
        const since = api.requests.length;
        const list = await c.callTool({ name: 'get_my_todo_list', arguments: {} });
        assert.ok(!list.isError, `get_my_todo_list: ${text(list)}`);
        assert.deepEqual(sentBearer(since), [`Bearer ${idp.access_token}`], 'the PingOne token decrypted from its props');
        const who = await c.callTool({ name: 'who_am_I', arguments: {} });
        assert.ok(!who.isError, text(who));
        const shown = JSON.parse(text(who));
        assert.equal(shown.user.sub, SUB);
        assert.equal(shown.mcpSession.clientId, other.client_id);
      } finally { await c.close(); }
    });

    if (version === '0.1.0') {
      await t.test('a 0.1.0 token bound to <origin>/mcp works here; 0.1.0 itself refuses it (its audience rule)', async () => {
        const bound = await tsTokens(version, await tsRegister(version), { props: ORIGINAL_PROPS, resource: `${mcpOrigin}/mcp` });
        assert.equal(await mcpStatus(bound.access_token), 200);
        const own = await tsApi(version, bound.access_token);
        assert.equal(own.status, 401);
        assert.equal(own.body.error_description, 'Token audience does not match resource server');
      });
    }

    let refreshed;
    await t.test('our /token refreshes its refresh token (rotation), and the new access token works here', async () => {
      const r = await ours('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.notEqual(r.body.refresh_token, tokens.refresh_token);
      assert.match(r.body.access_token, new RegExp(`^${SUB}:`));
      refreshed = r.body;
      assert.equal(await mcpStatus(refreshed.access_token), 200);
      // Our rewrite carries the key metadata 1.x writes (a 0.1.0 grant gains it), derived from the record.
      const { metadata, record } = await kvGrant(refreshed.refresh_token);
      assert.deepEqual(metadata, metadataFor(record));
      // "Last used" of the connections page: our refresh stamps the grant it wrote anyway.
      assert.equal(typeof record.tokensIssuedAt, 'number', JSON.stringify(record));
      // The grant we rewrote is still the TypeScript provider's to read: its API gets the props.
      const seen = await tsApi(version, refreshed.access_token);
      assert.equal(seen.status, 200, JSON.stringify(seen.body));
      assert.deepEqual(seen.body.props, ORIGINAL_PROPS);
    });

    await t.test('the TypeScript provider refreshes the refresh token we rotated', async () => {
      const r = await form(`${ts(version)}/token`, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: client.client_id });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      refreshed = r.body;
      assert.equal(await mcpStatus(refreshed.access_token), 200);
    });

    await t.test('our /revoke revokes its access token, then its refresh token ends the grant', async () => {
      assert.equal((await ours('/revoke', { token: refreshed.access_token, client_id: client.client_id })).status, 200);
      assert.equal(await mcpStatus(refreshed.access_token), 401);
      assert.equal((await tsApi(version, refreshed.access_token)).status, 401, 'gone for the TypeScript provider too');
      assert.equal((await ours('/revoke', { token: refreshed.refresh_token, client_id: client.client_id })).status, 200);
      const again = await ours('/token', { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: client.client_id });
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_grant');
      const theirs = await form(`${ts(version)}/token`, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: client.client_id });
      assert.equal(theirs.body.error, 'invalid_grant', `the grant is gone for ${version} too: ${JSON.stringify(theirs.body)}`);
    });
  });

  test(`this worker → ${version}: our client, grant and tokens are read by the TypeScript provider`, async (t) => {
    // 0.1.0 compares a token's audience with the bare origin (see above): a client that asks
    // for the origin as its resource gets a token 0.1.0 accepts.
    const resource = version === '0.1.0' ? mcpOrigin : `${mcpOrigin}/mcp`;
    const client = await registerClient(mcpOrigin, { redirect_uris: [REDIRECT] });
    const auth = await authorize({ mcpOrigin, client, resource });
    assert.ok(auth.code, `our /authorize: ${auth.redirect}`);
    const tokens = await exchangeCode({ mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier });
    assert.ok(tokens.refresh_token);

    await t.test(`its protected route accepts our access token and decrypts our props`, async () => {
      const r = await tsApi(version, tokens.access_token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      // alice's PingOne access token from our /callback, and her claims.
      assert.equal(decodeJwt(r.body.props.subjectToken).payload.sub, SUB);
      assert.equal(r.body.props.claims.sub, SUB);
      assert.equal(r.body.props.claims.preferred_username, 'alice');
      assert.equal('refreshToken' in r.body.props, false, 'no PingOne refresh token in props');
      if (version !== '0.1.0') {
        assert.equal(r.body.auth.clientId, client.client_id);
        assert.equal(r.body.auth.userId, SUB);
        assert.equal(r.body.auth.audience, resource);
        assert.deepEqual(r.body.auth.scope, SCOPE.split(' '));
      }
    });

    if (version === '0.1.0') {
      await t.test('0.1.0 refuses our default token (bound to <origin>/mcp) at its route, as it does its own', async () => {
        const { access_token } = await getMcpToken(stack, { client: await registerClient(mcpOrigin, { redirect_uris: [REDIRECT] }) });
        const r = await tsApi(version, access_token);
        assert.equal(r.status, 401);
        assert.equal(r.body.error_description, 'Token audience does not match resource server');
      });
    } else {
      await t.test('OAuthHelpers.unwrapToken reads our access token', async () => {
        const r = await form(`${ts(version)}/unwrap`, { token: tokens.access_token });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const tok = r.body.token;
        assert.ok(tok, 'unwrapToken returned the token');
        assert.equal(tok.userId, SUB);
        assert.equal(tok.grant.clientId, client.client_id);
        assert.deepEqual(tok.grant.scope, SCOPE.split(' '));
        assert.equal(tok.grant.props.claims.sub, SUB);
      });
    }

    await t.test('its /token refreshes our refresh token; the new tokens work at both workers', async () => {
      const ours0 = await kvGrant(tokens.refresh_token);
      assert.deepEqual(ours0.metadata, { clientId: client.client_id, resource, redirectUri: REDIRECT }, 'our grant\'s key metadata');
      assert.equal(typeof ours0.record.tokensIssuedAt, 'number', 'stamped at our code exchange');
      const r = await form(`${ts(version)}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.client_id });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      // The TypeScript provider's rewrite keeps the field it does not know.
      assert.equal((await kvGrant(r.body.refresh_token)).record.tokensIssuedAt, ours0.record.tokensIssuedAt);
      if (version !== '0.1.0') {
        // 1.2.3 rewrote our grant with its own key metadata: exactly what we had written.
        assert.deepEqual((await kvGrant(r.body.refresh_token)).metadata, ours0.metadata);
      }
      const seen = await tsApi(version, r.body.access_token);
      assert.equal(seen.status, 200, JSON.stringify(seen.body));
      assert.equal(seen.body.props.claims.sub, SUB);
      assert.equal(await mcpStatus(r.body.access_token), 200);
      // And back: we refresh the refresh token it rotated.
      const back = await ours('/token', { grant_type: 'refresh_token', refresh_token: r.body.refresh_token, client_id: client.client_id });
      assert.equal(back.status, 200, JSON.stringify(back.body));
      assert.equal(await mcpStatus(back.body.access_token), 200);
      // The revocation through the TypeScript provider ends the grant here too. It is another
      // worker, so our isolate learns of it only from KV: a token it validated a moment ago is
      // refused once its token cache entry runs out (OAUTH_TOKEN_CACHE_TTL, 10 s by default; the
      // README's security notes).
      const rv = await form(`${ts(version)}/token`, { token: back.body.refresh_token, client_id: client.client_id });
      assert.equal(rv.status, 200, JSON.stringify(rv.body));
      await eventually(async () => (await mcpStatus(back.body.access_token)) === 401, 'the revoked grant\'s token refused at /mcp', 12_000);
    });
  });
}

// An MCP access token that outlives the PingOne token behind it. This worker never issues one
// (its access tokens are capped at the PingOne token's remaining life), so the grant comes from
// the TypeScript provider, in this worker's props shape, with a PingOne token whose recorded
// expiry has passed but which the IdP would still accept: only the worker's own check stands
// between the call and the Todo API.
test('a bearer token whose PingOne token has expired is a 401 at a tool call in both eras, never a tool run', async () => {
  const client = await tsRegister('1.2.3');
  const props = {
    subjectToken: idp.access_token, subjectTokenExpiresAt: Math.floor(Date.now() / 1000) - 5,
    scopes: idp.scope.split(' '), claims: { sub: SUB },
  };
  const tokens = await tsTokens('1.2.3', client, { props, resource: `${mcpOrigin}/mcp` });
  const before = api.requests.length;
  const call = (headers, body) => fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', ...headers,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const modern = await call(
    { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'get_my_todo_list' },
    {
      jsonrpc: '2.0', id: 1, method: 'tools/call', params: {
        name: 'get_my_todo_list', arguments: {},
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
      },
    },
  );
  assert.equal(modern.status, 401, await modern.text());
  assert.match(modern.headers.get('www-authenticate'), /error="invalid_token"/);
  const legacy = await call({ 'mcp-protocol-version': '2025-06-18' }, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } },
  });
  assert.equal(legacy.status, 401);
  await legacy.arrayBuffer();
  assert.equal(api.requests.length, before, 'the Todo API was never called');
});
