// The downstream OAuth MCP stand-in (local/oauth-downstream/) on its own, with real clients: the
// TypeScript SDK 1.x client signs in through its OAuth (discovery from the 401, dynamic
// registration, PKCE, resource) with the stand-in's consent page driven in headless Chromium,
// calls the tools, refreshes after DS_ACCESS_TTL, and the stand-in's rules hold: a token only at
// its own resource, /public/mcp without one, rotation with reuse detection, /admin/revoke, CIMD.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  UnauthorizedError, discoverAuthorizationServerMetadata, exchangeAuthorization, startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { closeWithin, launchChromium, startCallbackServer, within } from './support/browser.mjs';
import { freePort, startTestStack } from './support/stack.mjs';
import { eventually, mcpInitialize, refresh as refreshAt } from './support/flow.mjs';

const ACCESS_TTL = 2;

let stack;
let ds; // stack.oauthDownstream
let browser;
let page;
let callback;

before(async () => {
  callback = await startCallbackServer();
  [stack, browser] = await Promise.all([
    startTestStack({ idp: false, todoApi: false, mcp: false, oauthDownstream: { env: { DS_ACCESS_TTL: String(ACCESS_TTL), DS_CIMD: '1' } } }),
    launchChromium(),
  ]);
  ds = stack.oauthDownstream;
  page = await (await browser.newContext()).newPage();
});

after(async () => {
  await closeWithin(browser);
  await stack?.stop();
  await callback?.close();
});

/**
 * In Chromium: opens `url` (the stand-in's /authorize), fills the sign-in form and presses
 * Approve or Deny; resolves with the URL the browser was sent back to.
 */
async function consentInBrowser(url, { user, password = `${user}-password`, action = 'approve' }) {
  const back = callback.next();
  await within(page, page.goto(url), 10_000, 'the consent page');
  if (user) {
    await page.fill('#username', user);
    await page.fill('#password', password);
  }
  await page.click(`#${action}`);
  return within(page, back, 10_000, `the redirect after ${action}`);
}

/** An OAuthClientProvider whose "browser" is headless Chromium on the stand-in's consent page. */
class BrowserOAuthProvider {
  constructor(user) {
    this.user = user;
    this.registrations = 0;
    this.code = undefined;
    this._tokens = undefined;
  }
  get redirectUrl() { return callback.url; }
  get clientMetadata() {
    return {
      client_name: `oauth-downstream test (${this.user})`, redirect_uris: [callback.url],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none',
    };
  }
  state() { this._state = randomBytes(12).toString('base64url'); return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this.registrations++; this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(url) {
    const back = await consentInBrowser(url.href, { user: this.user });
    assert.equal(back.searchParams.get('state'), this._state);
    assert.equal(back.searchParams.get('iss'), ds.origin);
    this.code = back.searchParams.get('code');
    assert.ok(this.code, `no code in ${back}`);
  }
}

const transportFor = (url, provider) => new StreamableHTTPClientTransport(new URL(url), provider ? { authProvider: provider } : {});

/** Connects the SDK client to `url`, signing in through `provider` when the server says 401. */
async function connect(url, provider) {
  let client = new Client({ name: 'oauth-downstream-test', version: '1.0.0' });
  let transport = transportFor(url, provider);
  try {
    await client.connect(transport);
    return client;
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  }
  await transport.finishAuth(provider.code);
  client = new Client({ name: 'oauth-downstream-test', version: '1.0.0' });
  await client.connect(transportFor(url, provider));
  return client;
}

const toolJson = (result) => JSON.parse(result.content[0].text);

/** A raw refresh at the stand-in's /token (flow.mjs's, aimed at the stand-in): { status, body }. */
const refresh = (clientId, refreshToken) => refreshAt({ mcpOrigin: ds.origin, client: { client_id: clientId }, refreshToken });

const adminLog = async () => (await fetch(`${ds.adminUrl}/log`)).json();

test('discovery: its own authorization server, one protected resource per path, 401 challenges naming each', async () => {
  const as = await (await fetch(`${ds.origin}/.well-known/oauth-authorization-server`)).json();
  assert.equal(as.issuer, ds.origin);
  assert.equal(as.registration_endpoint, `${ds.origin}/register`);
  assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
  assert.equal(as.client_id_metadata_document_supported, true);
  for (const url of [ds.mcpUrl, ds.v1McpUrl]) {
    const path = new URL(url).pathname;
    const prm = await (await fetch(`${ds.origin}/.well-known/oauth-protected-resource${path}`)).json();
    assert.equal(prm.resource, url);
    assert.deepEqual(prm.authorization_servers, [ds.origin]);
    const res = await mcpInitialize(url);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate'), new RegExp(`^Bearer .*resource_metadata="${ds.origin}/\\.well-known/oauth-protected-resource${path}"`));
  }
  assert.equal((await fetch(`${ds.origin}/.well-known/oauth-protected-resource/public/mcp`)).status, 404);
});

test('/public/mcp works without any token', async () => {
  const client = await connect(ds.publicMcpUrl);
  const { now } = toolJson(await client.callTool({ name: 'public_time', arguments: {} }));
  assert.ok(Math.abs(Date.parse(now) - Date.now()) < 60_000);
  await client.close();
});

let dana; // { provider, client }

test('the SDK client registers, signs in as dana on the consent page in Chromium and calls whoami and notes', async () => {
  const provider = new BrowserOAuthProvider('dana');
  const client = await connect(ds.mcpUrl, provider);
  dana = { provider, client };
  assert.equal(provider.registrations, 1);
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  assert.deepEqual(
    { user: toolJson(whoami).user, resource: toolJson(whoami).resource },
    { user: 'dana', resource: ds.mcpUrl },
  );
  assert.ok(!JSON.stringify(whoami).includes(provider.tokens().access_token), 'whoami must not echo the token');
  await client.callTool({ name: 'notes_add', arguments: { text: 'first downstream note' } });
  const { notes } = toolJson(await client.callTool({ name: 'notes_list', arguments: {} }));
  assert.deepEqual(notes.map((n) => n.text), ['first downstream note']);
});

test('after DS_ACCESS_TTL the SDK refreshes once and carries on', async () => {
  const before = dana.provider.tokens();
  await eventually(async () => (await mcpInitialize(ds.mcpUrl, before.access_token)).status === 401, 'the access token to expire', (ACCESS_TTL + 5) * 1000);
  const { user } = toolJson(await dana.client.callTool({ name: 'whoami', arguments: {} }));
  assert.equal(user, 'dana');
  const after = dana.provider.tokens();
  assert.notEqual(after.access_token, before.access_token);
  assert.notEqual(after.refresh_token, before.refresh_token, 'refresh tokens rotate');
  const log = await adminLog();
  assert.equal(log.token_requests.refresh_token, 1);
  assert.equal(log.refreshes.dana, 1);
});

let erin; // { provider, client }

test('a /mcp token is refused at /v1/mcp; /v1/mcp signs in on its own and its token is refused at /mcp', async () => {
  const danaToken = dana.provider.tokens().access_token;
  assert.equal((await mcpInitialize(ds.mcpUrl, danaToken)).status, 200);
  const refused = await mcpInitialize(ds.v1McpUrl, danaToken);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /error="invalid_token"/);
  assert.match(refused.headers.get('www-authenticate'), /oauth-protected-resource\/v1\/mcp"/);

  const provider = new BrowserOAuthProvider('erin');
  const client = await connect(ds.v1McpUrl, provider);
  erin = { provider, client };
  const echo = toolJson(await client.callTool({ name: 'v1_echo', arguments: { text: 'hi' } }));
  assert.deepEqual(echo, { user: 'erin', resource: ds.v1McpUrl, echo: 'hi', server: 'downstream-v1' });
  assert.equal((await mcpInitialize(ds.mcpUrl, provider.tokens().access_token)).status, 401);
});

test('a used refresh token presented again is invalid_grant and ends the grant', async () => {
  const clientId = erin.provider.clientInformation().client_id;
  const old = erin.provider.tokens();
  const first = await refresh(clientId, old.refresh_token);
  assert.equal(first.status, 200);
  const reused = await refresh(clientId, old.refresh_token);
  assert.deepEqual([reused.status, reused.body.error], [400, 'invalid_grant']);
  const next = await refresh(clientId, first.body.refresh_token);
  assert.deepEqual([next.status, next.body.error], [400, 'invalid_grant'], 'the whole grant ended');
  assert.equal((await mcpInitialize(ds.v1McpUrl, first.body.access_token)).status, 401);
  assert.equal((await adminLog()).refresh_reuse.erin, 1);
});

test('/admin/revoke?user=dana: the next refresh is invalid_grant and the access token gets 401', async () => {
  const tokens = dana.provider.tokens();
  assert.equal((await mcpInitialize(ds.mcpUrl, tokens.access_token)).status, 200);
  const revoked = await (await fetch(`${ds.adminUrl}/revoke?user=dana`, { method: 'POST' })).json();
  assert.ok(revoked.revoked >= 2);
  assert.equal((await mcpInitialize(ds.mcpUrl, tokens.access_token)).status, 401);
  const res = await refresh(dana.provider.clientInformation().client_id, tokens.refresh_token);
  assert.deepEqual([res.status, res.body.error], [400, 'invalid_grant']);
  await dana.client.close();
  await erin.client.close();
});

test('Deny sends access_denied back; a wrong password keeps the page with an error; bad input gets OAuth JSON', async () => {
  const asUrl = new URL(ds.origin);
  const metadata = await discoverAuthorizationServerMetadata(asUrl);
  const reg = await (await fetch(`${ds.origin}/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'deny test', redirect_uris: [callback.url], token_endpoint_auth_method: 'none' }),
  })).json();
  const { authorizationUrl } = await startAuthorization(asUrl, {
    metadata, clientInformation: reg, redirectUrl: callback.url, state: 's-deny', resource: new URL(ds.mcpUrl),
  });
  const denied = await consentInBrowser(authorizationUrl.href, { action: 'deny' });
  assert.deepEqual([denied.searchParams.get('error'), denied.searchParams.get('state')], ['access_denied', 's-deny']);
  assert.equal(denied.searchParams.get('code'), null);

  const again = await startAuthorization(asUrl, {
    metadata, clientInformation: reg, redirectUrl: callback.url, state: 's-pw', resource: new URL(ds.mcpUrl),
  });
  await within(page, page.goto(again.authorizationUrl.href), 10_000, 'the consent page');
  await page.fill('#username', 'dana');
  await page.fill('#password', 'not-her-password');
  await page.click('#approve');
  await within(page, page.waitForSelector('#error'), 10_000, 'the wrong-password message');
  assert.match(await page.textContent('#error'), /wrong user name or password/i);

  const unknownResource = await startAuthorization(asUrl, {
    metadata, clientInformation: reg, redirectUrl: callback.url, state: 's-res', resource: new URL(`${ds.origin}/other/mcp`),
  });
  const r = await fetch(unknownResource.authorizationUrl, { redirect: 'manual' });
  assert.equal(new URL(r.headers.get('location')).searchParams.get('error'), 'invalid_target');

  for (const [path, init] of [
    ['/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&client_id=nobody&refresh_token=x' }],
    ['/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' }],
    ['/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=authorization_code&client_id=${reg.client_id}&code=nope&code_verifier=x` }],
  ]) {
    const res = await fetch(`${ds.origin}${path}`, init);
    assert.equal(res.status, 400, path);
    assert.match((await res.json()).error, /^(invalid_client|invalid_request|invalid_grant)$/, path);
  }
});

test('a confidential client: client_secret_basic at /token (the SDK picks it) and /revoke; unsupported methods refused', async () => {
  const asUrl = new URL(ds.origin);
  const metadata = await discoverAuthorizationServerMetadata(asUrl);
  assert.ok(metadata.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
  const register = (body) => fetch(`${ds.origin}/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [callback.url], ...body }),
  });
  const refusedReg = await register({ token_endpoint_auth_method: 'private_key_jwt' });
  assert.deepEqual([refusedReg.status, (await refusedReg.json()).error], [400, 'invalid_client_metadata']);
  const reg = await (await register({ client_name: 'confidential test' })).json();
  assert.equal(reg.token_endpoint_auth_method, 'client_secret_basic');
  assert.ok(reg.client_secret);

  const { authorizationUrl, codeVerifier } = await startAuthorization(asUrl, {
    metadata, clientInformation: reg, redirectUrl: callback.url, state: 's-basic', resource: new URL(ds.mcpUrl),
  });
  const back = await consentInBrowser(authorizationUrl.href, { user: 'dana' });
  const sent = [];
  const fetchFn = (url, init) => { sent.push(new Headers(init.headers).get('authorization')); return fetch(url, init); };
  const tokens = await exchangeAuthorization(asUrl, {
    metadata, clientInformation: reg, authorizationCode: back.searchParams.get('code'), codeVerifier,
    redirectUri: callback.url, resource: new URL(ds.mcpUrl), fetchFn,
  });
  assert.match(sent[0] ?? '', /^Basic /, 'the SDK authenticated with client_secret_basic');
  assert.equal((await mcpInitialize(ds.mcpUrl, tokens.access_token)).status, 200);

  const basic = `Basic ${Buffer.from(`${encodeURIComponent(reg.client_id)}:${encodeURIComponent('wrong')}`).toString('base64')}`;
  const wrong = await fetch(`${ds.origin}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
  });
  assert.deepEqual([wrong.status, (await wrong.json()).error], [400, 'invalid_client']);

  const good = `Basic ${Buffer.from(`${encodeURIComponent(reg.client_id)}:${encodeURIComponent(reg.client_secret)}`).toString('base64')}`;
  const revoke = await fetch(`${ds.origin}/revoke`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: good },
    body: new URLSearchParams({ token: tokens.refresh_token, token_type_hint: 'refresh_token' }),
  });
  assert.equal(revoke.status, 200);
  assert.equal((await mcpInitialize(ds.mcpUrl, tokens.access_token)).status, 401, 'revoking the refresh token ends the grant');
  const after = await fetch(`${ds.origin}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: good },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
  });
  assert.deepEqual([after.status, (await after.json()).error], [400, 'invalid_grant']);
});

test('DS_CIMD=1: a URL client id (client metadata document on loopback http) signs in and gets tokens for its resource', async () => {
  const port = await freePort();
  const docUrl = `http://127.0.0.1:${port}/oauth/client.json`;
  const docs = createServer((req, res) => {
    const doc = req.url === '/oauth/client.json'
      ? { client_id: docUrl, client_name: 'CIMD test client', redirect_uris: [callback.url], token_endpoint_auth_method: 'none' }
      : { client_id: 'http://elsewhere.example/doc.json', redirect_uris: [callback.url] };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise((r) => docs.listen(port, '127.0.0.1', r));
  try {
    const asUrl = new URL(ds.origin);
    const metadata = await discoverAuthorizationServerMetadata(asUrl);
    const clientInformation = { client_id: docUrl };
    const { authorizationUrl, codeVerifier } = await startAuthorization(asUrl, {
      metadata, clientInformation, redirectUrl: callback.url, state: 's-cimd', resource: new URL(ds.v1McpUrl),
    });
    const back = await consentInBrowser(authorizationUrl.href, { user: 'erin' });
    const tokens = await exchangeAuthorization(asUrl, {
      metadata, clientInformation, authorizationCode: back.searchParams.get('code'), codeVerifier,
      redirectUri: callback.url, resource: new URL(ds.v1McpUrl),
    });
    assert.equal((await mcpInitialize(ds.v1McpUrl, tokens.access_token)).status, 200);
    assert.equal((await mcpInitialize(ds.mcpUrl, tokens.access_token)).status, 401);

    // A document whose client_id is not its own URL is refused.
    const bad = await startAuthorization(asUrl, {
      metadata, clientInformation: { client_id: `http://127.0.0.1:${port}/mismatch.json` }, redirectUrl: callback.url, state: 's', resource: new URL(ds.mcpUrl),
    });
    const res = await fetch(bad.authorizationUrl, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error, 'invalid_client');
  } finally {
    docs.closeAllConnections();
    await new Promise((r) => docs.close(r));
  }

  // Registrations do not pile up: the two SDK clients, the deny-test and confidential clients
  // (the refused registration left nothing), the document.
  const clients = await (await fetch(`${ds.adminUrl}/clients`)).json();
  assert.deepEqual(clients.map((c) => c.registered_by).sort(), ['cimd', 'dcr', 'dcr', 'dcr', 'dcr']);
  assert.ok(clients.every((c) => !('client_secret' in c)));
});
