// Connections that last: the stand-in IdP issues PingOne access tokens that live a few seconds,
// so within one test a real client lives through several of them. On each MCP refresh the
// worker refreshes the PingOne token (the IdP rotates refresh tokens, as PingOne does), and
// caps the MCP access token at the PingOne token's remaining life, so the client comes back in
// time. Also: a PingOne refresh token revoked at the IdP ends the grant (`invalid_grant`), and a
// revocation sticks while the client refreshes in a loop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from './support/stack.mjs';
import { eventually, getMcpToken, refresh } from './support/flow.mjs';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';
import { startMcpRemote, signInThroughBrowser } from './support/mcp-remote.mjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PINGONE_TTL = 6; // seconds: the stand-in IdP's access-token lifetime

let stack;
const open = [];
const scratch = mkdtempSync(join(tmpdir(), 'lifecycle-'));

before(async () => {
  stack = await startTestStack({
    idpEnv: {
      IDP_ACCESS_TOKEN_TTL: String(PINGONE_TTL),
      IDP_ADMIN_API: '1',
      IDP_USERS: JSON.stringify({ alice: 'alice-password', bob: 'bob-password', carol: 'carol-password', dave: 'dave-password' }),
    },
  });
});

after(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => {})));
  await stack?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The stand-in IdP's log (one line per request, local/idp/server.mjs). */
const idpLog = () => { try { return readFileSync(join(stack.logsDir, 'idp.log'), 'utf8'); } catch { return ''; } };
const idpTokenCalls = () => (idpLog().match(/ POST \S*\/as\/token \d/g) ?? []).length;
/** Resolves once every request the IdP answered so far is in its log: a marker request sent now shows up. */
async function idpLogCaughtUp() {
  const marker = `/log-marker-${Math.random().toString(36).slice(2)}`;
  await (await fetch(`${stack.idpUrl}${marker}`)).arrayBuffer();
  await eventually(() => idpLog().includes(` GET ${marker} `), 'the IdP\'s log to show the marker request', 5000);
}

const call = (client, name, args = {}) => client.callTool({ name, arguments: args });

function todosOf(result) {
  assert.notEqual(result.isError, true, result.content?.[0]?.text);
  return result.structuredContent.todos;
}

async function mcpPost(accessToken, body) {
  return fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${accessToken}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(body),
  });
}

const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } };

async function revokeAtIdp(user) {
  const res = await fetch(`${stack.idpUrl}/admin/users/${user}/revoke-tokens`, { method: 'POST' });
  assert.equal(res.status, 200);
  return (await res.json()).revoked;
}

test('the MCP access token is capped at the PingOne token\'s remaining life', async () => {
  const t = await getMcpToken(stack, { user: 'bob' });
  assert.ok(t.expires_in <= PINGONE_TTL, `expires_in ${t.expires_in} outlives the PingOne token`);
  assert.ok(t.expires_in >= 1);
  const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.expires_in <= PINGONE_TTL && r.body.expires_in >= PINGONE_TTL - 2, JSON.stringify(r.body));
});

for (const kind of ['http', 'sse']) {
  test(`the TypeScript SDK over ${kind} keeps one session working through four PingOne token lifetimes`, async () => {
    const provider = new TestOAuthProvider({ user: 'alice' });
    const { client, transport } = await connectClient(kind, kind === 'sse' ? stack.sseUrl : stack.mcpUrl, provider);
    open.push(client);
    const sessionId = transport.sessionId;
    const made = todosOf(await call(client, 'create_new_todo', { text: `lasting ${kind}` }));
    const mine = made.find((t) => t.text === `lasting ${kind}`);
    assert.ok(mine);
    const subjectTokens = new Set();
    const started = Date.now();
    while (Date.now() - started < 4 * PINGONE_TTL * 1000 + 1000) {
      const todos = todosOf(await call(client, 'get_my_todo_list'));
      assert.ok(todos.some((t) => t.id === mine.id), 'the todo list works throughout');
      const who = await call(client, 'who_am_I');
      assert.notEqual(who.isError, true);
      const fingerprint = who.content[0].text.match(/sha256:([a-f0-9]{16})/)?.[1];
      if (fingerprint) subjectTokens.add(fingerprint);
      // Time passing is the point: calls spread over four PingOne token lifetimes.
      await sleep(1500);
    }
    const refreshes = provider.tokenRequests.filter((g) => g === 'refresh_token').length;
    assert.ok(refreshes >= 3, `only ${refreshes} refreshes: ${provider.tokenRequests}`);
    assert.equal(provider.authorizations.length, 1, 'never asked to sign in again');
    assert.ok(subjectTokens.size >= 3, `the PingOne token was refreshed (${subjectTokens.size} distinct)`);
    if (kind === 'http') assert.equal(transport.sessionId, sessionId, 'the same MCP session throughout');
  });
}

for (const kind of ['http', 'sse']) {
  test(`mcp-remote over ${kind} keeps one session working through four PingOne token lifetimes`, async () => {
    // What Claude Desktop runs: it must answer the 401s with refreshes on its own, for hours.
    const url = kind === 'sse' ? stack.sseUrl : stack.mcpUrl;
    const remote = await startMcpRemote(url, join(scratch, `mcp-remote-${kind}`), ['--transport', `${kind}-only`]);
    try {
      await signInThroughBrowser(remote, 'alice');
      await remote.waitFor(() => /Proxy established|Local STDIO server running/.test(remote.stderr), 'the proxy');
      const init = await remote.request('initialize', {
        protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'claude-desktop-stand-in', version: '1' },
      });
      assert.equal(init.error, undefined, JSON.stringify(init.error));
      remote.notify('notifications/initialized');
      const label = `lasting mcp-remote ${kind}`;
      const made = await remote.request('tools/call', { name: 'create_new_todo', arguments: { text: label } });
      assert.notEqual(made.result?.isError, true, JSON.stringify(made));
      // mcp-remote refreshes any token within 60 s of expiry before using it, so with tokens of
      // a few seconds it would refresh on every request (and its brake stops it after 20 in
      // 30 s). It is used as Claude Desktop uses it: a burst of calls, idle past the PingOne
      // token's death, and back.
      const subjectTokens = new Set();
      for (let lifetime = 0; lifetime < 4; lifetime++) {
        const listed = await remote.request('tools/call', { name: 'get_my_todo_list', arguments: {} });
        assert.equal(listed.error, undefined, JSON.stringify(listed.error));
        assert.ok(todosOf(listed.result).some((t) => t.text === label), 'the todo list works throughout');
        const who = await remote.request('tools/call', { name: 'who_am_I', arguments: {} });
        assert.notEqual(who.result?.isError, true, JSON.stringify(who));
        const fingerprint = who.result.content[0].text.match(/sha256:([a-f0-9]{16})/)?.[1];
        if (fingerprint) subjectTokens.add(fingerprint);
        // Idle past the PingOne token's death (the thing under test), then back.
        await sleep((PINGONE_TTL + 1) * 1000);
      }
      assert.equal(subjectTokens.size, 4, `a new PingOne token in each lifetime (${subjectTokens.size} distinct)`);
      assert.equal(remote.browserUrls().length, 1, 'never asked to sign in again');
    } finally {
      await remote.close();
    }
  });
}

test('concurrent refreshes with one refresh token all leave their caller with working tokens, PingOne refreshed once', async () => {
  // Every refresh here also refreshes PingOne (its token lives less than an MCP access token),
  // and the stand-in IdP, like PingOne, rotates refresh tokens and ends the whole family when a
  // used one comes back: unserialized, the second upstream refresh would end the grant.
  const t = await getMcpToken(stack, { user: 'bob' });
  const callers = 4;
  await idpLogCaughtUp();
  const tokenCallsBefore = idpTokenCalls();
  const first = await Promise.all(Array.from({ length: callers },
    () => refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token })));
  for (const r of first) assert.equal(r.status, 200, JSON.stringify(r.body));
  // PingOne's token endpoint was called once for the four MCP refreshes (counted in the IdP's
  // log once everything it answered is there).
  await idpLogCaughtUp();
  assert.equal(idpTokenCalls() - tokenCallsBefore, 1, 'PingOne token-endpoint calls for the concurrent refreshes');
  // Each caller goes on with what it got: its access token works, and so does its next refresh.
  for (const r of first) {
    assert.equal((await mcpPost(r.body.access_token, initialize)).status, 200);
    const next = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: r.body.refresh_token });
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal((await mcpPost(next.body.access_token, initialize)).status, 200);
  }
  // Concurrent callers got one answer: one upstream refresh, not four.
  assert.equal(new Set(first.map((r) => r.body.refresh_token)).size, 1);
});

/** Makes the IdP's token endpoint fail (`token-500`, `token-hang`, `token-drop`) or work again (`off`). */
async function idpFault(mode) {
  const res = await fetch(`${stack.idpUrl}/admin/fault`, { method: 'POST', body: JSON.stringify({ mode }) });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

test('PingOne failing during a refresh (500, no answer, connection dropped): 503 temporarily_unavailable, the grant kept, the next refresh works', async () => {
  for (const mode of ['token-500', 'token-drop', 'token-hang']) {
    const t = await getMcpToken(stack, { user: 'dave' }); // not carol: her test counts her PingOne refresh tokens
    await idpFault(mode);
    let failed;
    try {
      failed = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token });
    } finally {
      await idpFault('off');
    }
    assert.equal(failed.status, 503, `${mode}: ${JSON.stringify(failed.body)}`);
    assert.equal(failed.body.error, 'temporarily_unavailable', mode);
    await idpLogCaughtUp();
    assert.ok(idpLog().split('\n').filter((l) => l.includes(`fault ${mode} on POST`)).length >= 1, `${mode}: the IdP's token endpoint was asked`);
    // The grant is kept: the same refresh token works once PingOne does, and so do its tokens.
    const again = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token });
    assert.equal(again.status, 200, `${mode}: ${JSON.stringify(again.body)}`);
    assert.equal((await mcpPost(again.body.access_token, initialize)).status, 200, mode);
  }
});

test('a bearer token whose PingOne token expired is a 401 invalid_token with the challenge, never a tool run', async () => {
  const t = await getMcpToken(stack, { user: 'bob' });
  // Waiting for the token to expire is the thing under test; a whole second past its end.
  await sleep((t.expires_in + 1) * 1000);
  const res = await mcpPost(t.access_token, initialize);
  assert.equal(res.status, 401);
  const www = res.headers.get('www-authenticate');
  assert.match(www, /error="invalid_token"/);
  assert.match(www, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);
  assert.match(www, /scope="todo_api:read todo_api:write"/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
});

test('a PingOne refresh token revoked at the IdP ends the grant: the next MCP refresh is invalid_grant', async () => {
  const t = await getMcpToken(stack, { user: 'bob' });
  assert.ok(await revokeAtIdp('bob') >= 1);
  const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error, 'invalid_grant');
  // The grant is gone: the refresh token stays dead and the access token is refused.
  const again = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token });
  assert.equal(again.body.error, 'invalid_grant');
  assert.equal((await mcpPost(t.access_token, initialize)).status, 401);
});

test('a revocation sticks while the client refreshes in a loop, and ends the grant\'s access tokens before they expire', async () => {
  const t = await getMcpToken(stack, { user: 'alice' });
  let current = { refresh: t.refresh_token, access: t.access_token, at: Date.now(), expiresIn: t.expires_in };
  let revokedAt = 0;
  let refreshes = 0;
  const afterRevoke = [];
  const loop = (async () => {
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      const startedAt = Date.now();
      const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: current.refresh });
      if (revokedAt && startedAt > revokedAt) afterRevoke.push(r);
      if (r.status === 200) {
        current = { refresh: r.body.refresh_token, access: r.body.access_token, at: startedAt, expiresIn: r.body.expires_in };
        refreshes += 1;
      }
    }
  })();
  await eventually(() => refreshes >= 2, 'the loop to refresh twice', 3000);
  // An access token of the grant, working now; the revocation must end it long before it expires.
  const last = current;
  assert.equal((await mcpPost(last.access, initialize)).status, 200, 'the access token works before the revocation');
  const res = await fetch(`${stack.mcpOrigin}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: current.refresh, token_type_hint: 'refresh_token', client_id: t.client.client_id }),
  });
  assert.equal(res.status, 200);
  revokedAt = Date.now();
  assert.equal((await mcpPost(last.access, initialize)).status, 401, 'the access token is refused once its grant is revoked');
  const lifeLeft = last.at + last.expiresIn * 1000 - Date.now();
  assert.ok(lifeLeft >= 2000, `refused ${lifeLeft} ms before its expiry: the revocation, not the expiry, ended it`);
  await loop;
  assert.ok(afterRevoke.length > 0, 'the loop kept refreshing after the revocation');
  for (const r of afterRevoke) assert.equal(r.body.error, 'invalid_grant', JSON.stringify(r.body));
  // Whatever access token the loop got last (a refresh answered after the revocation's start
  // included) is dead too.
  assert.equal((await mcpPost(current.access, initialize)).status, 401);
});

test('a grant revoked at the MCP worker revokes its PingOne refresh token at the IdP', async () => {
  // carol signs in only here, so her one PingOne refresh token is this grant's.
  const t = await getMcpToken(stack, { user: 'carol' });
  const res = await fetch(`${stack.mcpOrigin}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: t.refresh_token, token_type_hint: 'refresh_token', client_id: t.client.client_id }),
  });
  assert.equal(res.status, 200);
  // Nothing left for the IdP's own revocation to end: the worker already revoked it there.
  assert.equal(await revokeAtIdp('carol'), 0);
  // Control: a live grant's PingOne refresh token is there to be found.
  await getMcpToken(stack, { user: 'carol' });
  assert.equal(await revokeAtIdp('carol'), 1);
});
