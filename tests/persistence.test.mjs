// What the workers keep, checked on the real thing: the whole local stack (stand-in IdP, Todo API
// worker, MCP worker in workerd) restarted on its persisted state with a client connected; the
// daily purge run in workerd through wrangler's scheduled-event trigger; and the local KV
// namespace read key by key after a full sign-in, looking for any secret in clear.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { startTestStack, startStack } from './support/stack.mjs';
import { registerClient, authorize, exchangeCode } from './support/flow.mjs';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';
import { readLocalKv, localKvFiles } from './support/local-kv.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
const call = (client, name, args = {}) => client.callTool({ name, arguments: args });

function todosOf(result) {
  assert.notEqual(result.isError, true, result.content?.[0]?.text);
  return result.structuredContent.todos;
}

/** `user:grant:secret` → its parts (the MCP worker's token format, like workers-oauth-provider's). */
function tokenParts(token) {
  const [userId, grantId, secret] = token.split(':');
  assert.ok(userId && grantId && secret, `not a user:grant:secret token: ${token.slice(0, 12)}…`);
  return { userId, grantId, secret };
}

/** Resolves when nothing answers HTTP at `url` any more (the process behind it is gone). */
async function assertDown(url) {
  await assert.rejects(fetch(url, { signal: AbortSignal.timeout(3000) }), `${url} still answers`);
}

/** A stopped stack started again on the same ports and state directory. */
function restart(stack, opts = {}) {
  return startStack({
    ports: stack.ports, stateDir: stack.stateDir, dotenv: null, build: false,
    mcpVars: stack.mcpVars, todoApiVars: stack.todoApiVars, ...opts,
  });
}

// ---- a restart ------------------------------------------------------------------------------

test('after the whole stack restarts on its persisted state, the same client continues its session, sees the todo it wrote before and refreshes its grant', async (t) => {
  let stack = await startTestStack();
  let client;
  t.after(async () => { await client?.close().catch(() => {}); await stack.stop(); });

  const provider = new TestOAuthProvider({ user: 'alice' });
  const conn = await connectClient('http', stack.mcpUrl, provider);
  client = conn.client;
  const sessionId = conn.transport.sessionId;
  assert.ok(sessionId, 'the server gave the client a session');
  const text = `written before the restart ${randomBytes(4).toString('hex')}`;
  const made = todosOf(await call(client, 'create_new_todo', { text }));
  assert.ok(made.some((x) => x.text === text));
  const tokensBefore = provider.tokens();

  // IdP, Todo API worker and MCP worker all stop; nothing answers any more.
  await stack.stop();
  await Promise.all([assertDown(stack.mcpOrigin), assertDown(stack.todoApiUrl), assertDown(stack.idpUrl)]);
  stack = await restart(stack);

  // The same SDK client, untouched: its session, its access token, and the Todo API's list.
  const after = todosOf(await call(client, 'get_my_todo_list'));
  assert.ok(after.some((x) => x.text === text), `the todo written before the restart is gone: ${JSON.stringify(after)}`);
  assert.equal(conn.transport.sessionId, sessionId, 'the client had to start a new session');
  assert.equal(provider.tokens().access_token, tokensBefore.access_token, 'the access token from before was replaced');
  assert.deepEqual(provider.tokenRequests, ['authorization_code'], 'nothing but the first sign-in reached /token');

  // The grant survived too: the refresh token from before the restart is honoured.
  assert.equal(await auth(provider, { serverUrl: stack.mcpUrl, fetchFn: provider.fetch }), 'AUTHORIZED');
  assert.deepEqual(provider.tokenRequests, ['authorization_code', 'refresh_token']);
  assert.equal(provider.authorizations.length, 1, 'the user had to sign in again');
  assert.notEqual(provider.tokens().access_token, tokensBefore.access_token);
  const second = `written after the restart ${randomBytes(4).toString('hex')}`;
  const both = todosOf(await call(client, 'create_new_todo', { text: second }));
  assert.deepEqual([text, second].filter((s) => both.some((x) => x.text === s)), [text, second]);
  assert.equal(conn.transport.sessionId, sessionId);
});

// ---- the daily purge ------------------------------------------------------------------------

test('the scheduled purge, run in workerd, ends a grant whose lifetime is over (records deleted, PingOne refresh token revoked) and leaves a live one working', async (t) => {
  // OAUTH_ACCESS_TOKEN_TTL=60: a client registered without the refresh_token grant gets a grant
  // that lives exactly as long as its access token, 60 s. Its record stays in KV for two days
  // more, so the daily purge sees it: that is what ends it and tells PingOne.
  // PURGE_GRANTS_PER_RUN=1: each run looks at one grant and leaves a cursor in KV for the next,
  // so bob's grant is reached only by a run that goes on from where the one before stopped.
  const stack = await startTestStack({
    mcpVars: { OAUTH_ACCESS_TOKEN_TTL: '60', PURGE_GRANTS_PER_RUN: '1' },
    idpEnv: { IDP_ADMIN_API: '1' },
  });
  let client;
  t.after(async () => { await client?.close().catch(() => {}); await stack.stop(); });
  const cron = async () => {
    // wrangler dev's scheduled-event trigger; answers once the handler has finished.
    const res = await fetch(`${stack.mcpOrigin}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('17 3 * * *')}`);
    assert.equal(res.status, 200, await res.text());
  };
  const idpRefreshTokensRevoked = async (user) => {
    // Test-only IdP call: ends `user`'s refresh tokens at the IdP and says how many were live.
    const res = await fetch(`${stack.idpUrl}/admin/users/${user}/revoke-tokens`, { method: 'POST' });
    assert.equal(res.status, 200);
    return (await res.json()).revoked;
  };

  // A live grant: alice's SDK client, with refresh tokens (30 days).
  const provider = new TestOAuthProvider({ user: 'alice' });
  ({ client } = await connectClient('http', stack.mcpUrl, provider));
  const todo = `outlives the purge ${randomBytes(4).toString('hex')}`;
  todosOf(await call(client, 'create_new_todo', { text: todo }));
  const live = tokenParts(provider.tokens().access_token);

  // A grant of 60 s: bob's client registered for authorization_code only.
  const shortClient = await registerClient(stack.mcpOrigin, { client_name: 'no refresh', grant_types: ['authorization_code'] });
  const bob = await authorize({ mcpOrigin: stack.mcpOrigin, client: shortClient, user: 'bob' });
  assert.ok(bob.code, bob.redirect);
  const short = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client: shortClient, code: bob.code, verifier: bob.pkce.verifier });
  const t1 = Date.now();
  assert.equal(short.expires_in, 60);
  assert.equal(short.refresh_token, undefined);
  const expiring = tokenParts(short.access_token);

  // Keys are listed in order: alice's grant comes first, so the first run looks at it alone.
  assert.ok(`grant:${live.userId}:` < `grant:${expiring.userId}:`, 'the test expects alice\'s grant key first');
  // A purge now finds nothing due: bob's token still opens a session.
  await cron();
  const init = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${short.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'purge', version: '1' } } }),
  });
  assert.equal(init.status, 200, 'a purge ended a grant that was not due');
  await init.arrayBuffer();

  // After bob's grant ends (expiresAt = exchange second + 60): waiting for the end is the thing
  // under test. A whole second past it, not a few hundred milliseconds: the worker reads its
  // clock in whole seconds, and a purge run too early would find nothing due. (Not a poll of
  // the outcome: each scheduled run moves the purge's cursor, PURGE_GRANTS_PER_RUN=1, and the
  // IdP's count call revokes what it counts.)
  const fireAt = (Math.floor(t1 / 1000) + 61) * 1000;
  await sleep(fireAt - Date.now());
  await cron();

  // Bob's PingOne refresh token was revoked at the IdP by the purge (none is live any more).
  assert.equal(await idpRefreshTokensRevoked('bob'), 0, 'the purge did not revoke the ended grant\'s PingOne refresh token');

  // Alice's grant works on: refresh (no new sign-in) and a tool call with the new token.
  assert.equal(await auth(provider, { serverUrl: stack.mcpUrl, fetchFn: provider.fetch }), 'AUTHORIZED');
  assert.ok(provider.tokenRequests.includes('refresh_token'));
  assert.equal(provider.authorizations.length, 1);
  assert.ok(todosOf(await call(client, 'get_my_todo_list')).some((x) => x.text === todo));
  await client.close();
  client = undefined;

  // At rest: no record of bob's grant is left in KV, not even an expired one; alice's grant is.
  await stack.stop();
  const kv = await readLocalKv(stack.stateDir);
  const ofGrant = (p) => kv.filter((r) => r.key.includes(`:${p.userId}:${p.grantId}`)).map((r) => r.key);
  assert.deepEqual(ofGrant(expiring), [], 'records of the ended grant are still in KV');
  assert.ok(ofGrant(live).includes(`grant:${live.userId}:${live.grantId}`), `the live grant is gone: ${JSON.stringify(kv.map((r) => r.key))}`);
  // The second run finished the sweep, so no cursor is left for the next.
  assert.ok(!kv.some((r) => r.key === 'purge-cursor'), 'a finished sweep left its cursor in KV');

  // Control: alice's PingOne refresh token was never revoked (this also shows the count above
  // counts live tokens). The IdP is started again for the question.
  const idpOnly = await restart(stack, { todoApi: false, mcp: false, idpEnv: { IDP_ADMIN_API: '1' } });
  try {
    const res = await fetch(`${stack.idpUrl}/admin/users/alice/revoke-tokens`, { method: 'POST' });
    assert.ok((await res.json()).revoked >= 1, 'the live grant\'s PingOne refresh token was revoked');
  } finally {
    await idpOnly.stop();
  }
});

// ---- only hashes in storage ----------------------------------------------------------------

/** An SDK client registered as confidential (client_secret_basic), so it has a secret to leak. */
class ConfidentialProvider extends TestOAuthProvider {
  get clientMetadata() {
    return { ...super.clientMetadata, client_name: 'confidential SDK client', token_endpoint_auth_method: 'client_secret_basic' };
  }
}

/** A loopback proxy in front of the Todo API that records the bearer tokens it forwards. */
async function startRecordingProxy() {
  const seen = new Set();
  const proxy = { target: null, seen };
  const server = createServer((req, res) => {
    const bearer = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];
    if (bearer) seen.add(bearer);
    const up = new URL(proxy.target);
    const out = request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, host: up.host } }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    out.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(out);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return proxy;
}

test('after a full sign-in and a refresh, no token, code, client secret, PingOne token or key appears in clear anywhere in the local KV', async (t) => {
  // The Todo API is reached through a recorder, so the test knows the PingOne access tokens the
  // worker holds; the PingOne refresh tokens and codes come from the stand-in IdP's own store.
  const proxy = await startRecordingProxy();
  const stack = await startTestStack({ mcpVars: { API_URL: proxy.url } });
  proxy.target = stack.todoApiUrl;
  let client;
  t.after(async () => { await client?.close().catch(() => {}); await stack.stop(); await proxy.close(); });

  const provider = new ConfidentialProvider({ user: 'alice' });
  ({ client } = await connectClient('http', stack.mcpUrl, provider));
  assert.equal(provider.authorizations.length, 1);
  assert.ok(provider.authorizations[0].consentShown && provider.authorizations[0].idpLogin, 'not a full sign-in');
  const code = new URL(provider.authorizations[0].redirect).searchParams.get('code');
  const clientSecret = provider.clientInformation().client_secret;
  assert.ok(code && clientSecret, 'no code or no client secret');
  const first = provider.tokens();
  todosOf(await call(client, 'create_new_todo', { text: 'a todo' }));
  assert.equal(await auth(provider, { serverUrl: stack.mcpUrl, fetchFn: provider.fetch }), 'AUTHORIZED');
  const second = provider.tokens();
  assert.notEqual(second.refresh_token, first.refresh_token);
  todosOf(await call(client, 'get_my_todo_list'));
  assert.deepEqual(provider.tokenRequests, ['authorization_code', 'refresh_token']);
  assert.ok(proxy.seen.size >= 1, 'the Todo API never saw a PingOne token');
  await client.close();
  client = undefined;
  await stack.stop();

  const idpStore = JSON.parse(readFileSync(join(stack.stateDir, 'idp', 'sessions.json'), 'utf8'));
  const idpIssued = idpStore
    .filter(([key]) => /^(RefreshToken|AuthorizationCode|AccessToken):/.test(key))
    .map(([key]) => ({ kind: key.split(':')[0], value: key.slice(key.indexOf(':') + 1) }));
  assert.ok(idpIssued.some((x) => x.kind === 'RefreshToken'), 'the IdP issued no refresh token to the worker');

  // Every secret, whole and (for structured ones) its secret part alone.
  const secrets = [];
  const add = (name, value, min = 16) => { assert.ok(value && value.length >= min, `${name} too short to search for`); secrets.push({ name, value }); };
  for (const [name, tok] of [['authorization code', code], ['first access token', first.access_token],
    ['first refresh token', first.refresh_token], ['second access token', second.access_token], ['second refresh token', second.refresh_token]]) {
    add(name, tok);
    add(`${name} (secret part)`, tokenParts(tok).secret);
  }
  add('client secret', clientSecret);
  for (const jwt of proxy.seen) {
    add('PingOne access token', jwt);
    add('PingOne access token (signature)', jwt.split('.')[2]);
  }
  for (const x of idpIssued) add(`PingOne ${x.kind}`, x.value);
  add('COOKIE_ENCRYPTION_KEY', stack.mcpVars.COOKIE_ENCRYPTION_KEY);
  add('MCP_SERVER_CLIENT_SECRET', stack.mcpVars.MCP_SERVER_CLIENT_SECRET, 8);

  // Every key and value of the namespace as stored…
  const kv = await readLocalKv(stack.stateDir);
  const keys = kv.map((r) => r.key);
  for (const prefix of ['client:', 'grant:', 'token:']) assert.ok(keys.some((k) => k.startsWith(prefix)), `no ${prefix} record: ${JSON.stringify(keys)}`);
  const leaks = [];
  for (const { key, value } of kv) {
    for (const s of secrets) {
      if (key.includes(s.value)) leaks.push(`${s.name} in key ${key}`);
      if (value.includes(s.value)) leaks.push(`${s.name} in the value of ${key}`);
    }
    if (/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/.test(key + value)) leaks.push(`a JWT (PingOne access or ID token) in ${key}`);
  }
  // …and every byte of its storage files (SQLite pages, WAL, blobs, deleted rows included).
  for (const file of localKvFiles(stack.stateDir)) {
    const bytes = readFileSync(file).toString('latin1');
    for (const s of secrets) if (bytes.includes(s.value)) leaks.push(`${s.name} in the file ${file}`);
  }
  assert.deepEqual(leaks, []);

  // What is there instead: SHA-256 hashes.
  const g = tokenParts(second.access_token);
  assert.ok(keys.includes(`token:${g.userId}:${g.grantId}:${sha256hex(second.access_token)}`), 'the access token is not stored under its SHA-256');
  const grant = JSON.parse(kv.find((r) => r.key === `grant:${g.userId}:${g.grantId}`).value);
  assert.equal(grant.refreshTokenId, sha256hex(second.refresh_token));
  const registered = JSON.parse(kv.find((r) => r.key === `client:${provider.clientInformation().client_id}`).value);
  assert.equal(registered.clientSecret, sha256hex(clientSecret));
});
