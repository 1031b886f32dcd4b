// Client ID Metadata Documents in workerd: real clients identify themselves by the https URL of
// a metadata document instead of registering, the document served by a local HTTPS server
// (self-signed certificate, trusted by workerd through NODE_EXTRA_CA_CERTS, which miniflare
// reads). The stack runs with CIMD_ALLOW_LOOPBACK=true (the development setting that lets a
// document live on 127.0.0.1); one test starts a stack without it.
//   - the TypeScript SDK's OAuth client (OAuthClientProvider.clientMetadataUrl) and mcp-remote
//     (--client-metadata-url) sign in, the consent page names the client as its document does,
//     and they call tools;
//   - private_key_jwt (RFC 7523): a ChatGPT-shaped document (none and private_key_jwt offered,
//     keys at a jwks_uri on the same server) and one offering only private_key_jwt (inline
//     jwks) sign in through the stand-in IdP, exchange, refresh and revoke with assertions
//     signed by jose; replayed, wrongly signed and missing assertions are refused;
//   - the consent page (headless Chromium, screenshots in test-output/) names the host that
//     published the document first and warns about a web page or redirect URI on another host;
//   - refusals, shown on the page (or as JSON), never redirected: mismatching client_id,
//     unlisted redirect URI, oversized, slow, invalid and redirecting documents, private
//     addresses, loopback without the development setting.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { ROOT, startTestStack } from './support/stack.mjs';
import { CookieJar, pkcePair } from './support/flow.mjs';
import { TestOAuthProvider, connectClient, followAuthorization } from './support/sdk-oauth.mjs';
import { startMcpRemote } from './support/mcp-remote.mjs';
import { closeWithin, launchChromium } from './support/browser.mjs';
import { selfSignedCert } from './support/tls.mjs';
import { readLocalKv } from './support/local-kv.mjs';

const scratch = mkdtempSync(join(tmpdir(), 'cimd-'));
let stack;
let docs; // { origin, hits: Map<path, count>, mcpRemoteRedirect, close() }

const SDK_NAME = 'CIMD Test Client (SDK)';
const REMOTE_NAME = 'CIMD Test Client (mcp-remote)';
const SDK_REDIRECT = 'http://127.0.0.1:33419/callback';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
// ChatGPT's redirect URI: never fetched here (the sign-in stops at the redirect).
const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';
// A redirect URI on another host than the documents' (never reached: the browser test stops at consent).
const ELSEWHERE_REDIRECT = 'https://collector.example.net/cb';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
// The clients' signing keys: ChatGPT's RS256 (published at its jwks_uri), the agent's ES256
// (inline in its document). Made in before(), read by the document server per request.
const keys = {};

/** A self-signed certificate for 127.0.0.1 / localhost: { key, cert, certPath }. */
const selfSigned = () => selfSignedCert(scratch);

/** The HTTPS server of metadata documents; each path is one kind of document. */
async function startDocServer(tls) {
  const hits = new Map();
  const state = { hits, mcpRemoteRedirect: undefined, sockets: new Set() };
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const path = new URL(req.url, 'https://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const url = `${state.origin}${path}`;
    const json = (doc, headers = {}) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300', ...headers });
      res.end(JSON.stringify(doc));
    };
    const doc = (name, redirects) => ({
      client_id: url, client_name: name, redirect_uris: redirects,
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    switch (path) {
      case '/clients/sdk.json': return json(doc(SDK_NAME, [SDK_REDIRECT]));
      case '/clients/mcp-remote.json': return json(doc(REMOTE_NAME, [state.mcpRemoteRedirect]));
      case '/clients/chatgpt.json':
        // The shape of ChatGPT's live document: prefers private_key_jwt, also offers none.
        return json({
          ...doc('ChatGPT (test)', [CHATGPT_REDIRECT]),
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
          jwks_uri: `${state.origin}/clients/chatgpt-jwks.json`,
        });
      case '/clients/chatgpt-jwks.json':
        return json({ keys: [keys.chatgpt.jwk] });
      case '/clients/agent.json':
        return json({
          ...doc('Agent (test)', [CHATGPT_REDIRECT]),
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [keys.agent.jwk] },
        });
      case '/clients/elsewhere.json':
        // A document naming a web page and a redirect URI on hosts other than its own.
        return json({ ...doc('Trusted Bank Assistant', [SDK_REDIRECT, ELSEWHERE_REDIRECT]), client_uri: 'https://bank.example/' });
      case '/clients/mismatch.json':
        return json({ ...doc('Mismatch', [SDK_REDIRECT]), client_id: `${state.origin}/clients/sdk.json` });
      case '/clients/secret.json':
        return json({ ...doc('Secretive', [SDK_REDIRECT]), token_endpoint_auth_method: 'client_secret_basic', client_secret: 'x' });
      case '/clients/invalid.json':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"client_id": "oops"');
      case '/clients/redirect.json':
        res.writeHead(302, { location: `${state.origin}/clients/sdk.json` });
        return res.end();
      case '/clients/big.json': {
        // Chunked, no Content-Length: the cap must hold while reading.
        res.writeHead(200, { 'content-type': 'application/json' });
        const padded = { ...doc('Big', [SDK_REDIRECT]), padding: 'x'.repeat(8 * 1024) };
        const body = JSON.stringify(padded);
        for (let i = 0; i < body.length; i += 1024) res.write(body.slice(i, i + 1024));
        return res.end();
      }
      case '/clients/slow.json':
        // Headers at once, then the body never ends.
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.write('{"client_id": ');
      default:
        res.writeHead(404);
        return res.end();
    }
  });
  server.on('connection', (s) => { state.sockets.add(s); s.on('close', () => state.sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.origin = `https://127.0.0.1:${server.address().port}`;
  state.close = async () => {
    for (const s of state.sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return state;
}

/** A key pair for `alg` and its public JWK as a client publishes it. */
async function clientKey(alg, kid) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

before(async () => {
  keys.chatgpt = await clientKey('RS256', 'chatgpt-1');
  keys.agent = await clientKey('ES256', 'agent-1');
  const tls = selfSigned();
  // Inherited by wrangler; miniflare adds it to the certificates workerd trusts.
  process.env.NODE_EXTRA_CA_CERTS = tls.certPath;
  docs = await startDocServer(tls);
  stack = await startTestStack({ mcpVars: { CIMD_ALLOW_LOOPBACK: 'true' } });
});

after(async () => {
  await stack?.stop();
  await docs?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** GET /authorize for `clientId` (PKCE S256); JSON when asked. Never follows a redirect. */
async function authorize(base, clientId, { redirectUri = SDK_REDIRECT, json = false } = {}) {
  const url = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, state: 'st-1',
    code_challenge: CHALLENGE, code_challenge_method: 'S256',
  })) url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: 'manual', headers: json ? { accept: 'application/json' } : {} });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

/** A refusal shown where the person is: 4xx, no Location, the reason in page and JSON. */
async function assertRefusedLocally(clientId, pattern, opts = {}) {
  const page = await authorize(stack.mcpOrigin, clientId, opts);
  assert.equal(page.status, 400, page.body.slice(0, 400));
  assert.equal(page.location, null, 'never redirected');
  assert.match(page.body, /<html/i);
  const asJson = await authorize(stack.mcpOrigin, clientId, { ...opts, json: true });
  assert.equal(asJson.status, 400);
  assert.equal(asJson.location, null);
  const err = JSON.parse(asJson.body);
  assert.match(err.error_description, pattern);
  return { page, err };
}

test('authorization server metadata advertises client ID metadata documents', async () => {
  const res = await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`);
  const meta = await res.json();
  assert.equal(meta.client_id_metadata_document_supported, true);
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('none'));
});

test('the TypeScript SDK identifies itself by its metadata document URL, signs in and calls tools', async () => {
  const docUrl = `${docs.origin}/clients/sdk.json`;
  const paths = [];
  class CimdProvider extends TestOAuthProvider {
    get clientMetadataUrl() { return docUrl; }
  }
  const provider = new CimdProvider({ user: 'alice', redirectUrl: SDK_REDIRECT, clientName: 'must not be registered' });
  const recordingFetch = provider.fetch;
  provider.fetch = async (url, init) => { paths.push(new URL(url).pathname); return recordingFetch(url, init); };
  const before = docs.hits.get('/clients/sdk.json') ?? 0;
  const { client, signedIn } = await connectClient('http', stack.mcpUrl, provider);
  try {
    assert.equal(signedIn, true);
    assert.equal(provider.clientInformation().client_id, docUrl, 'the client id is the document URL');
    assert.ok(!paths.includes('/register'), `no dynamic registration: ${paths}`);
    assert.ok((docs.hits.get('/clients/sdk.json') ?? 0) > before, 'the worker fetched the document');
    const [trip] = provider.authorizations;
    assert.equal(trip.consentShown, true);
    assert.equal(new URL(trip.url).searchParams.get('client_id'), docUrl);
    // The consent page (a fresh browser) names the client as its document does.
    const consent = await fetch(trip.url, { redirect: 'manual' });
    const html = await consent.text();
    assert.equal(consent.status, 200);
    assert.ok(html.includes(SDK_NAME), 'consent page shows the name from the document');
    assert.ok(html.includes(docUrl), 'and the client id URL');

    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'who_am_I'));
    const who = await client.callTool({ name: 'who_am_I', arguments: {} });
    assert.notEqual(who.isError, true, JSON.stringify(who));
    assert.equal(JSON.parse(who.content[0].text).user.preferred_username, 'alice');
    const label = `via CIMD ${Date.now()}`;
    const created = await client.callTool({ name: 'create_new_todo', arguments: { text: label } });
    assert.ok(created.structuredContent.todos.some((t) => t.text === label));
  } finally {
    await client.close();
  }

  // Its refresh token works with the document URL as client id (no secret).
  const refreshed = await fetch(`${stack.mcpOrigin}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: provider.tokens().refresh_token, client_id: docUrl }),
  });
  assert.equal(refreshed.status, 200, await refreshed.clone().text());
  // A secret is refused: a metadata-document client has none.
  const withSecret = await fetch(`${stack.mcpOrigin}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token', refresh_token: (await refreshed.json()).refresh_token, client_id: docUrl, client_secret: 'guess',
    }),
  });
  assert.equal(withSecret.status, 401);
  assert.equal((await withSecret.json()).error, 'invalid_client');
});

test('mcp-remote with --client-metadata-url signs in without registering and calls tools', async () => {
  const docUrl = `${docs.origin}/clients/mcp-remote.json`;
  const remote = await startMcpRemote(stack.mcpUrl, join(scratch, 'mcp-remote'), ['--client-metadata-url', docUrl]);
  try {
    docs.mcpRemoteRedirect = `http://127.0.0.1:${remote.port}/oauth/callback`;
    await remote.waitFor(() => remote.browserUrls().length > 0, 'the browser to be opened');
    const [url] = remote.browserUrls();
    const authorizeUrl = new URL(url);
    assert.equal(authorizeUrl.searchParams.get('client_id'), docUrl, 'identified by its document, not registered');
    assert.equal(authorizeUrl.searchParams.get('redirect_uri'), docs.mcpRemoteRedirect);

    const consent = await fetch(url, { redirect: 'manual' });
    assert.equal(consent.status, 200);
    assert.ok((await consent.text()).includes(REMOTE_NAME), 'consent page shows the name from the document');

    const trip = await followAuthorization(url, { jar: new CookieJar(), user: 'bob', redirectUri: docs.mcpRemoteRedirect });
    assert.equal(trip.consentShown, true);
    assert.equal(trip.idpLogin, true);
    const landing = await fetch(trip.redirect);
    assert.equal(landing.status, 200);
    await landing.arrayBuffer();

    await remote.waitFor(() => /Proxy established|Local STDIO server running/.test(remote.stderr), 'the proxy');
    const init = await remote.request('initialize', {
      protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'cimd-stand-in', version: '1.0.0' },
    });
    assert.equal(init.error, undefined, JSON.stringify(init.error));
    remote.notify('notifications/initialized');
    const who = await remote.request('tools/call', { name: 'who_am_I', arguments: {} });
    assert.notEqual(who.result.isError, true, JSON.stringify(who.result));
    assert.equal(JSON.parse(who.result.content[0].text).user.preferred_username, 'bob');
    const listed = await remote.request('tools/call', { name: 'get_my_todo_list', arguments: {} });
    assert.equal(listed.error, undefined, JSON.stringify(listed.error));
  } finally {
    await remote.close();
  }
});

/** A client assertion (RFC 7523) of `clientId` signed with `key`, for the token endpoint. */
function assertion(key, clientId, { aud = `${stack.mcpOrigin}/token`, jti = randomUUID() } = {}) {
  return new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(clientId).setSubject(clientId).setAudience(aud)
    .setIssuedAt().setExpirationTime('60s').setJti(jti)
    .sign(key.privateKey);
}

/** POST a form to the worker's `path`; { status, body } (body parsed when JSON). */
async function postForm(path, params) {
  const res = await fetch(`${stack.mcpOrigin}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const withAssertion = (params, a) => ({ ...params, client_assertion_type: ASSERTION_TYPE, client_assertion: a });

/** Signs in as `user` through the consent page and the stand-in IdP; the code and PKCE verifier. */
async function signIn(clientId, user = 'alice') {
  const pkce = pkcePair();
  const url = new URL(`${stack.mcpOrigin}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: CHATGPT_REDIRECT, state: 'st-pk',
    code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: stack.mcpUrl,
  })) url.searchParams.set(k, v);
  const trip = await followAuthorization(url.toString(), { jar: new CookieJar(), user, redirectUri: CHATGPT_REDIRECT });
  assert.equal(trip.idpLogin, true);
  const back = new URL(trip.redirect);
  assert.equal(back.searchParams.get('state'), 'st-pk');
  return { code: back.searchParams.get('code'), verifier: pkce.verifier };
}

/** The MCP initialize call with `token`: its HTTP status. */
async function mcpStatus(token) {
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'pkjwt-test', version: '1' } },
    }),
  });
  await res.arrayBuffer();
  return res.status;
}

test('the metadata advertises private_key_jwt with RS256 and ES256', async () => {
  const meta = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
  for (const field of ['token_endpoint_auth_methods_supported', 'revocation_endpoint_auth_methods_supported']) {
    assert.ok(meta[field].includes('private_key_jwt'), `${field}: ${meta[field]}`);
    assert.ok(meta[field].includes('none'), field);
  }
  assert.deepEqual(meta.token_endpoint_auth_signing_alg_values_supported, ['RS256', 'ES256']);
  assert.deepEqual(meta.revocation_endpoint_auth_signing_alg_values_supported, ['RS256', 'ES256']);
});

test('a ChatGPT-shaped document signs in, refreshes and revokes with private_key_jwt assertions', async () => {
  const docUrl = `${docs.origin}/clients/chatgpt.json`;
  const key = keys.chatgpt;
  const { code, verifier } = await signIn(docUrl);
  // The code exchange names no client_id: the assertion says who (its sub) and proves it.
  const exchanged = await postForm('/token', withAssertion({
    grant_type: 'authorization_code', code, redirect_uri: CHATGPT_REDIRECT, code_verifier: verifier,
  }, await assertion(key, docUrl)));
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  const { access_token: access, refresh_token: refresh } = exchanged.body;
  assert.ok(access && refresh);
  assert.equal(await mcpStatus(access), 200, 'the token opens the MCP endpoint');
  assert.equal(docs.hits.get('/clients/chatgpt-jwks.json'), 1, 'the worker fetched the key set');

  // A refresh with an assertion; the same assertion again is a replay.
  const a = await assertion(key, docUrl);
  const refreshed = await postForm('/token', withAssertion({ grant_type: 'refresh_token', refresh_token: refresh, client_id: docUrl }, a));
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  const replay = await postForm('/token', withAssertion({ grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token }, a));
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error, 'invalid_client');
  assert.match(replay.body.error_description, /jti was used before/);
  // Signed with a key the document does not publish (same kid): refused, never taken for none.
  const stranger = await clientKey('RS256', key.kid);
  const forged = await postForm('/token', withAssertion(
    { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, client_id: docUrl },
    await assertion(stranger, docUrl),
  ));
  assert.equal(forged.status, 401);
  assert.equal(forged.body.error, 'invalid_client');
  assert.match(forged.body.error_description, /signature does not verify/);
  // Neither refusal used the refresh token: it still works.
  const again = await postForm('/token', withAssertion(
    { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token }, await assertion(key, docUrl),
  ));
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(docs.hits.get('/clients/chatgpt-jwks.json'), 1, 'the key set was cached');

  // Revocation with an assertion addressed to the revocation endpoint ends the grant.
  const revoked = await postForm('/revoke', withAssertion(
    { token: again.body.refresh_token, token_type_hint: 'refresh_token' },
    await assertion(key, docUrl, { aud: `${stack.mcpOrigin}/revoke` }),
  ));
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  assert.equal(await mcpStatus(again.body.access_token), 401, 'the access token died with its grant');
  const dead = await postForm('/token', withAssertion(
    { grant_type: 'refresh_token', refresh_token: again.body.refresh_token }, await assertion(key, docUrl),
  ));
  assert.equal(dead.status, 400);
  assert.equal(dead.body.error, 'invalid_grant');
});

test('a document offering only private_key_jwt (inline jwks) needs an assertion on every request', async () => {
  const docUrl = `${docs.origin}/clients/agent.json`;
  const key = keys.agent;
  const { code, verifier } = await signIn(docUrl, 'bob');
  const params = { grant_type: 'authorization_code', code, redirect_uri: CHATGPT_REDIRECT, code_verifier: verifier };
  const without = await postForm('/token', { ...params, client_id: docUrl });
  assert.equal(without.status, 401);
  assert.equal(without.body.error, 'invalid_client');
  // The refusal did not use the code.
  const exchanged = await postForm('/token', withAssertion({ ...params, client_id: docUrl }, await assertion(key, docUrl)));
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  const { refresh_token: refresh, access_token: access } = exchanged.body;
  assert.equal(await mcpStatus(access), 200);
  for (const [path, p] of [['/token', { grant_type: 'refresh_token', refresh_token: refresh }], ['/revoke', { token: refresh }]]) {
    const res = await postForm(path, { ...p, client_id: docUrl });
    assert.equal(res.status, 401, `${path} without an assertion`);
    assert.equal(res.body.error, 'invalid_client');
  }
  const revoked = await postForm('/revoke', withAssertion({ token: refresh }, await assertion(key, docUrl)));
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  assert.equal(await mcpStatus(access), 401);
});

test('the consent page names the host that published the document and warns about other hosts (headless Chromium)', async () => {
  const out = join(ROOT, 'test-output');
  mkdirSync(out, { recursive: true });
  const docHost = new URL(docs.origin).host;
  const authorizeUrl = (clientId, redirectUri) => {
    const url = new URL(`${stack.mcpOrigin}/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code', client_id: clientId, redirect_uri: redirectUri, state: 'st-consent',
      code_challenge: CHALLENGE, code_challenge_method: 'S256',
    })) url.searchParams.set(k, v);
    return url.href;
  };
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    // Web page and redirect URI on other hosts.
    await page.goto(authorizeUrl(`${docs.origin}/clients/elsewhere.json`, ELSEWHERE_REDIRECT), { timeout: 30_000 });
    await page.waitForSelector('button[value="approve"]', { timeout: 30_000 });
    const shot = join(out, 'consent-metadata-document-elsewhere.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
    const vouch = await page.innerText('.vouch');
    assert.equal(vouch, `Published by ${docHost}`);
    // Prominent: larger than the card's ordinary text, and first in the card.
    const sizes = await page.evaluate(() => [
      parseFloat(getComputedStyle(document.querySelector('.vouch')).fontSize),
      parseFloat(getComputedStyle(document.querySelector('.card p:not(.vouch)')).fontSize),
      document.querySelector('.card').firstElementChild.className,
    ]);
    assert.ok(sizes[0] > sizes[1], `vouch ${sizes[0]}px vs ${sizes[1]}px`);
    assert.equal(sizes[2], 'vouch');
    const warnings = await page.$$eval('.warning', (els) => els.map((e) => e.innerText));
    assert.deepEqual(warnings, [
      `Its web page is on bank.example, not on ${docHost}: only ${docHost} vouches for this application.`,
      `You will be sent back to collector.example.net, not to ${docHost}: whoever runs it gets this access.`,
    ]);
    const text = await page.innerText('body');
    assert.match(text, new RegExp(`Trusted Bank Assistant \\(as ${docHost.replace(/[.]/g, '\\.')} names it\\) wants to connect`));
    assert.equal(await page.getAttribute('.card a[href="https://bank.example/"]', 'rel'), 'noopener noreferrer');
    assert.equal(await page.innerText('.card a[href="https://bank.example/"]'), 'bank.example');

    // A document whose redirect is a loopback listener (an app on this device): no warning.
    await page.goto(authorizeUrl(`${docs.origin}/clients/sdk.json`, SDK_REDIRECT), { timeout: 30_000 });
    await page.waitForSelector('button[value="approve"]', { timeout: 30_000 });
    await page.screenshot({ path: join(out, 'consent-metadata-document.png'), fullPage: true });
    assert.equal(await page.innerText('.vouch'), `Published by ${docHost}`);
    assert.equal((await page.$$('.warning')).length, 0);
    assert.match(await page.innerText('body'), new RegExp(`${SDK_NAME.replace(/[()]/g, '\\$&')} \\(as `));
  } finally {
    await closeWithin(browser);
  }
});

test('refused documents are shown locally with the reason, never redirected', async () => {
  const u = (p) => `${docs.origin}/clients/${p}`;
  let r = await assertRefusedLocally(u('mismatch.json'), /^CIMD fetch failed for .*mismatch\.json: .*client_id does not equal its URL/);
  assert.match(r.page.body, /CIMD fetch failed/);
  await assertRefusedLocally(u('secret.json'), /CIMD fetch failed.*(client secret|must be none)/);
  await assertRefusedLocally(u('invalid.json'), /CIMD fetch failed.*not valid JSON/);
  await assertRefusedLocally(u('redirect.json'), /CIMD fetch failed.*did not answer 200 OK \(redirects are not followed\)/);
  await assertRefusedLocally(u('missing.json'), /CIMD fetch failed.*did not answer 200 OK/);
  await assertRefusedLocally(u('big.json'), /CIMD fetch failed.*larger than 5120 bytes/);
  // A redirect URI the document does not list.
  r = await assertRefusedLocally(u('sdk.json'), /Invalid redirect URI/, { redirectUri: 'http://127.0.0.1:33419/elsewhere' });
  // Private addresses are refused before any fetch, whatever the development setting.
  await assertRefusedLocally('https://10.255.255.1/clients/sdk.json', /CIMD fetch failed.*private/);
  await assertRefusedLocally('https://127.0.0.1/clients/../sdk.json', /CIMD fetch failed.*dot segments/);
  // Failed documents are not cached: the token endpoint fetches again and refuses the client.
  const before = docs.hits.get('/clients/mismatch.json');
  const token = await fetch(`${stack.mcpOrigin}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'a:b:c', client_id: u('mismatch.json') }),
  });
  assert.equal(token.status, 401);
  const err = await token.json();
  assert.equal(err.error, 'invalid_client');
  assert.match(err.error_description, /CIMD fetch failed/);
  assert.equal(docs.hits.get('/clients/mismatch.json'), before + 1);
});

test('a document that never finishes is given up on within the time limit', async () => {
  const started = Date.now();
  await assertRefusedLocally(`${docs.origin}/clients/slow.json`, /CIMD fetch failed.*no complete answer within 5 s/);
  // Two requests (page and JSON), each bounded by the 5 s limit.
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 9_000 && elapsed < 25_000, `took ${elapsed} ms`);
});

test('without CIMD_ALLOW_LOOPBACK (the production branch) a loopback, private or local document address is refused unfetched, each by its own rule', async () => {
  const strict = await startTestStack();
  try {
    const meta = await (await fetch(`${strict.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
    assert.equal(meta.client_id_metadata_document_supported, true);
    const docUrl = `${docs.origin}/clients/sdk.json`;
    const before = docs.hits.get('/clients/sdk.json') ?? 0;
    for (const json of [false, true]) {
      const res = await authorize(strict.mcpOrigin, docUrl, { json });
      assert.equal(res.status, 400);
      assert.equal(res.location, null);
      assert.match(res.body, /CIMD fetch failed/);
      assert.match(res.body, /loopback/);
      assert.match(res.body, /CIMD_ALLOW_LOOPBACK/);
    }
    assert.equal(docs.hits.get('/clients/sdk.json') ?? 0, before, 'never fetched');

    // The production branch's other address rules run too, each refused before any fetch.
    const refusal = async (clientId) => {
      const res = await authorize(strict.mcpOrigin, clientId, { json: true });
      assert.equal(res.status, 400, `${clientId}: ${res.body.slice(0, 300)}`);
      assert.equal(res.location, null);
      return JSON.parse(res.body).error_description;
    };
    assert.match(await refusal('https://10.1.2.3/clients/sdk.json'), /private or special-use address/);
    assert.match(await refusal('https://[fd00::1]/clients/sdk.json'), /private or special-use address/);
    assert.match(await refusal('https://docs.internal/clients/sdk.json'), /local or special-use name/);
    assert.match(await refusal('https://cimd.test/clients/sdk.json'), /local or special-use name/);
    assert.match(await refusal('https://intranet/clients/sdk.json'), /fully qualified public name/);
    assert.match(await refusal('https://sub.localhost/clients/sdk.json'), /loopback/);
    // (A public name would pass these rules and be fetched; no test here reaches a host off this
    // machine, so that step is shown with loopback and CIMD_ALLOW_LOOPBACK above.)
  } finally {
    await strict.stop();
  }
});

test('client assertions were marked used in Durable Objects, none in KV', async () => {
  // Read with the stack stopped (workerd owns the files while it runs).
  await stack.stop();
  const kv = await readLocalKv(stack.stateDir);
  assert.ok(kv.some((r) => r.key.startsWith('grant:')), 'the assertion clients\' grants are in KV');
  assert.deepEqual(kv.filter((r) => r.key.startsWith('client_jti:')), [], 'a KV marker would be eventually consistent only');
  const dir = join(stack.stateDir, 'mcp', 'v3', 'do', 'pingone-mcp-worker-AssertionJti');
  assert.ok(existsSync(dir), `no AssertionJti objects under ${dir}`);
  assert.ok(readdirSync(dir).some((f) => /^[0-9a-f]{64}\.sqlite$/.test(f)), 'one object per used assertion');
});
