// The identity gateway (proxy mode): the MCP worker in front of a real downstream MCP server
// (local/downstream-mcp.mjs, the official TypeScript SDK's McpServer on Streamable HTTP and
// legacy SSE, verifying the PingOne token it gets against the stand-in IdP's keys). Real clients
// sign in and go through the gateway: the SDK client on both transports, mcp-remote and the
// MCP Inspector CLI. The downstream echoes the identity it receives and can be told to misbehave.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startTestStack, ROOT } from './support/stack.mjs';
import { DEFAULT_USERS } from '../local/idp/users.mjs';
import { eventually, getMcpToken, mcpPost, refresh, revokeRefreshToken } from './support/flow.mjs';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';
import { startMcpRemote, signInThroughBrowser } from './support/mcp-remote.mjs';

const TIMEOUT_SECS = 3;
const KEEPALIVE_SECS = 2;
const GRANT_CHECK_SECS = 1;
const TOOLS = ['countdown', 'echo', 'notify_later', 'whoami'];
const INSPECTOR_DIR = join(ROOT, 'node_modules', '@modelcontextprotocol', 'inspector-cli', 'build');
const scratch = mkdtempSync(join(tmpdir(), 'gateway-'));

let stack;
let alice; // tokens from the real sign-in flow
let bob;

before(async () => {
  stack = await startTestStack({
    todoApi: false,
    downstream: { testHooks: true },
    idpEnv: {
      IDP_ADMIN_API: '1', // group changes at the IdP
      // The usual users and eve, whose address PingOne says is unverified.
      IDP_USERS: JSON.stringify([...DEFAULT_USERS,
        { username: 'eve', password: 'eve-password', name: 'Eve Example', email: 'eve@example.com', email_verified: false }]),
    },
    mcpVars: {
      DOWNSTREAM_TIMEOUT_SECS: String(TIMEOUT_SECS), DOWNSTREAM_KEEPALIVE_SECS: String(KEEPALIVE_SECS),
      SSE_GRANT_CHECK_SECS: String(GRANT_CHECK_SECS),
      // Longer than the IdP's access tokens: every MCP refresh refreshes the PingOne token too
      // (the MCP token is still capped at the PingOne token's life).
      OAUTH_ACCESS_TOKEN_TTL: '7200',
    },
  });
  alice = await getMcpToken(stack, { user: 'alice' });
  bob = await getMcpToken(stack, { user: 'bob' });
});

after(async () => {
  await stack?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const fingerprint = (t) => `sha256:${createHash('sha256').update(t).digest('hex').slice(0, 16)}`;

async function fault(mode) {
  const res = await fetch(`${stack.downstreamUrl}/__fault`, { method: 'POST', body: JSON.stringify({ mode }) });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

/** What the downstream saw, oldest first (tokens as fingerprints). */
async function downstreamRequests() {
  return (await fetch(`${stack.downstreamUrl}/__requests`)).json();
}

const INIT = {
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'gateway-test', version: '1' } },
};

/** A raw POST /mcp through the gateway with `token` (a bounded wait). */
function post(token, body, headers = {}) {
  return mcpPost(stack.mcpUrl, token, body, headers);
}

/** The JSON-RPC messages of an SSE or JSON body. */
async function messages(res) {
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('event-stream')) return [JSON.parse(text)];
  return text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
}

/** A raw session of `tokens`' user: initialize + initialized; returns the sealed session id. */
async function rawSession(tokens) {
  const res = await post(tokens.access_token, INIT);
  assert.equal(res.status, 200);
  const sid = res.headers.get('mcp-session-id');
  assert.ok(sid, 'the gateway names the session');
  await messages(res);
  const ack = await post(tokens.access_token, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(ack.status, 202);
  await ack.arrayBuffer();
  return sid;
}

/** Reads `reader` until the text read so far matches `pattern` (bounded by `ms`). */
async function readUntil(reader, pattern, ms = 10_000) {
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + ms;
  while (!pattern.test(text)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no ${pattern} within ${ms} ms; got ${JSON.stringify(text)}`);
    let timer;
    const { value, done } = await Promise.race([
      reader.read(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${pattern} within ${ms} ms; got ${JSON.stringify(text)}`)), left); }),
    ]).finally(() => clearTimeout(timer));
    if (done) throw new Error(`stream ended before ${pattern}; got ${JSON.stringify(text)}`);
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

function whoami(result) {
  return JSON.parse(result.content[0].text);
}

/** The identity the downstream must see for the stand-in IdP's `alice`. */
function assertAliceArrived(report, mcpAccessToken) {
  assert.equal(report.bearer.verified, true, `the downstream verified the PingOne token: ${JSON.stringify(report.bearer)}`);
  assert.equal(report.bearer.claims.aud, stack.downstreamUrl, 'the token is for the downstream');
  assert.notEqual(report.bearer.fingerprint, fingerprint(mcpAccessToken), 'never the MCP client\'s own token');
  assert.equal(report.identityHeaders['x-user-sub'], report.bearer.claims.sub);
  assert.equal(report.identityHeaders['x-user-username'], 'alice');
  assert.equal(report.identityHeaders['x-user-email'], 'alice@example.com');
  assert.equal(report.identityHeaders['x-user-name'], 'Alice Example');
  for (const gone of ['cookie', 'x-forwarded-for', 'cf-connecting-ip', 'origin']) {
    assert.ok(!report.headerNames.includes(gone), `${gone} reached the downstream`);
  }
}

test('the SDK client over Streamable HTTP signs in at the gateway and reaches the downstream tools as the user', async () => {
  const provider = new TestOAuthProvider({ user: 'alice' });
  const { client, transport, signedIn } = await connectClient('http', stack.mcpUrl, provider);
  try {
    assert.equal(signedIn, true);
    assert.equal(client.getServerVersion().name, 'downstream-test-mcp', 'the downstream answered initialize');
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), TOOLS);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'through the gateway' } });
    assert.equal(echoed.content[0].text, 'through the gateway');
    const report = whoami(await client.callTool({ name: 'whoami', arguments: {} }));
    assertAliceArrived(report, provider.tokens().access_token);
    assert.equal(report.transport, 'streamable-http');
    // The client holds a sealed id, not the downstream's.
    assert.match(transport.sessionId, /^g1\./);
    assert.ok(!transport.sessionId.includes(report.sessionId));
  } finally {
    await client.close();
  }
});

test('SSE answers stream through: each notification arrives when the downstream sends it, before the result', async () => {
  const provider = new TestOAuthProvider({ user: 'alice' });
  const { client } = await connectClient('http', stack.mcpUrl, provider);
  try {
    const arrived = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => arrived.push({ at: Date.now(), step: n.params.data.step }));
    const intervalMs = 400;
    const result = await client.callTool({ name: 'countdown', arguments: { steps: 3, intervalMs } });
    const answeredAt = Date.now();
    assert.deepEqual(arrived.map((a) => a.step), [3, 2, 1]);
    // Buffered, all three would arrive together with the result.
    assert.ok(answeredAt - arrived[0].at >= 2.5 * intervalMs, `first notification ${answeredAt - arrived[0].at} ms before the result`);
    assert.ok(arrived[2].at - arrived[0].at >= 1.5 * intervalMs, 'notifications spread out as sent');
    assert.equal(JSON.parse(result.content[0].text).done, true);
  } finally {
    await client.close();
  }
});

test('the SDK client over legacy SSE: endpoint rewritten to the gateway, identity and streaming end to end', async () => {
  const provider = new TestOAuthProvider({ user: 'alice' });
  const { client, transport } = await connectClient('sse', stack.sseUrl, provider);
  try {
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), TOOLS);
    const report = whoami(await client.callTool({ name: 'whoami', arguments: {} }));
    assertAliceArrived(report, provider.tokens().access_token);
    assert.equal(report.transport, 'sse');
    const endpoint = transport._endpoint;
    assert.equal(endpoint.origin, stack.mcpOrigin, 'messages go to the gateway');
    assert.equal(endpoint.pathname, '/sse/message');
    assert.ok(!endpoint.search.includes(report.sessionId), 'the downstream session id stays hidden');
    const arrived = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, () => arrived.push(Date.now()));
    await client.callTool({ name: 'countdown', arguments: { steps: 2, intervalMs: 400 } });
    assert.equal(arrived.length, 2);
    assert.ok(Date.now() - arrived[0] >= 600, 'the first notification came well before the result');
  } finally {
    await client.close();
  }
});

test('the standalone GET /mcp stream carries server-initiated notifications through the gateway', async () => {
  const provider = new TestOAuthProvider({ user: 'alice' });
  const before = (await downstreamRequests()).length;
  const { client } = await connectClient('http', stack.mcpUrl, provider);
  try {
    const arrived = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => arrived.push({ at: Date.now(), data: n.params.data }));
    // The SDK client opens its GET stream right after `initialized`; wait until the downstream has it.
    await eventually(async () => (await downstreamRequests()).slice(before).some((r) => r.method === 'GET' && r.path === '/mcp' && r.ended === null),
      'the client\'s GET /mcp stream to be open at the downstream');
    const result = await client.callTool({ name: 'notify_later', arguments: { delayMs: 500, text: 'unprompted' } });
    const answeredAt = Date.now();
    assert.deepEqual(JSON.parse(result.content[0].text), { scheduled: true });
    assert.equal(arrived.length, 0, 'nothing before the downstream sends it');
    await eventually(() => arrived.length > 0, 'the server-initiated notification');
    assert.equal(arrived[0].data.text, 'unprompted');
    // Sent after the POST's answer was complete: it can only have come on the GET stream.
    assert.ok(arrived[0].at - answeredAt >= 300, `arrived ${arrived[0].at - answeredAt} ms after the result`);
  } finally {
    await client.close();
  }
});

test('a client going away mid-stream cancels the downstream request (Streamable HTTP and legacy SSE)', async () => {
  const sid = await rawSession(alice);
  const before = (await downstreamRequests()).length;
  const steps = 10;
  const intervalMs = 400;
  const abort = new AbortController();
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${alice.access_token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'countdown', arguments: { steps, intervalMs } } }),
    signal: abort.signal,
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const reader = res.body.getReader();
  await readUntil(reader, /notifications\/message/);
  const startedAt = Date.now();
  abort.abort();
  await reader.cancel().catch(() => {});
  const call = await eventually(async () => {
    const r = (await downstreamRequests()).slice(before).find((x) => x.method === 'POST' && x.path === '/mcp');
    return r?.ended ? r : undefined;
  }, 'the downstream request to end', 8_000);
  assert.equal(call.ended, 'aborted', 'the downstream saw its connection closed, not its answer finished');
  // Left running, the countdown would have taken (steps + 1) * intervalMs.
  assert.ok(call.endedAt - startedAt < (steps - 2) * intervalMs, `ended ${call.endedAt - startedAt} ms after the client left`);

  // A legacy event stream: closed by the client, gone at the downstream too.
  const beforeSse = (await downstreamRequests()).length;
  const sseAbort = new AbortController();
  const sse = await fetch(stack.sseUrl, {
    headers: { authorization: `Bearer ${alice.access_token}`, accept: 'text/event-stream' }, signal: sseAbort.signal,
  });
  assert.equal(sse.status, 200);
  const sseReader = sse.body.getReader();
  await readUntil(sseReader, /event: endpoint\ndata: \/sse\/message\?sessionId=g1\.[^\n]+\n\n/);
  const open = (await downstreamRequests()).slice(beforeSse).find((x) => x.method === 'GET' && x.path === '/sse');
  assert.equal(open?.ended, null, 'the downstream stream is open while the client reads');
  const leftAt = Date.now();
  sseAbort.abort();
  await sseReader.cancel().catch(() => {});
  const closed = await eventually(async () => {
    const r = (await downstreamRequests()).slice(beforeSse).find((x) => x.method === 'GET' && x.path === '/sse');
    return r?.ended ? r : undefined;
  }, 'the downstream SSE stream to close', KEEPALIVE_SECS * 1000 * 4);
  assert.equal(closed.ended, 'aborted');
  // The downstream sends nothing more on its own: workerd notices the client is gone when the
  // relayed stream next yields, so the gateway's keep-alives bound how long it lingers (about two).
  assert.ok(closed.endedAt - leftAt < KEEPALIVE_SECS * 1000 * 2 + 1500, `closed ${closed.endedAt - leftAt} ms after the client left`);
});

test('idle event streams get keep-alive comments from the gateway, never inside an event', async () => {
  const auth = { authorization: `Bearer ${alice.access_token}`, accept: 'text/event-stream' };
  // The legacy stream: the downstream sends its endpoint event, then nothing.
  const sseAbort = new AbortController();
  const sse = await fetch(stack.sseUrl, { headers: auth, signal: sseAbort.signal });
  assert.equal(sse.status, 200);
  const reader = sse.body.getReader();
  try {
    const started = Date.now();
    const text = await readUntil(reader, /(: keep-alive\n[^]*){2}/, KEEPALIVE_SECS * 1000 * 4);
    const took = Date.now() - started;
    assert.match(text, /^event: endpoint\ndata: \/sse\/message\?sessionId=g1\.[^\n]+\n\n: keep-alive\n: keep-alive\n/);
    assert.ok(took >= KEEPALIVE_SECS * 1000 * 1.5, `two keep-alives after ${took} ms, not before ${KEEPALIVE_SECS} s of silence each`);
  } finally {
    sseAbort.abort();
    await reader.cancel().catch(() => {});
  }

  // The standalone GET /mcp stream of a Streamable HTTP session.
  const sid = await rawSession(alice);
  const getAbort = new AbortController();
  const get = await fetch(stack.mcpUrl, {
    headers: { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, signal: getAbort.signal,
  });
  assert.equal(get.status, 200);
  const getReader = get.body.getReader();
  try {
    assert.match(await readUntil(getReader, /: keep-alive\n/, KEEPALIVE_SECS * 1000 * 3), /^: keep-alive\n$/);
  } finally {
    getAbort.abort();
    await getReader.cancel().catch(() => {});
  }

  // A tool call whose answer streams slower than the keep-alive interval: comments between the
  // events, every event intact.
  const res = await post(alice.access_token,
    { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'countdown', arguments: { steps: 2, intervalMs: KEEPALIVE_SECS * 1000 + 700 } } },
    { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.ok((text.match(/^: keep-alive$/gm) ?? []).length >= 2, text);
  const events = text.split(/\n\n/).filter((e) => e.split('\n').some((l) => l.startsWith('data:')));
  const msgs = events.map((e) => JSON.parse(e.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n')));
  assert.deepEqual(msgs.map((m) => m.method ?? 'result'), ['notifications/message', 'notifications/message', 'result']);
  assert.equal(JSON.parse(msgs[2].result.content[0].text).done, true);
});

test('event streams end once their grant is revoked: the SDK client\'s GET /mcp stream and a legacy /sse stream, downstream requests cancelled', async () => {
  const provider = new TestOAuthProvider({ user: 'alice' });
  const before = (await downstreamRequests()).length;
  const { client } = await connectClient('http', stack.mcpUrl, provider);
  const sseAbort = new AbortController();
  try {
    const openGet = await eventually(async () => (await downstreamRequests()).slice(before)
      .find((r) => r.method === 'GET' && r.path === '/mcp' && r.ended === null), 'the client\'s GET /mcp stream to be open downstream');
    // A legacy stream under the same grant.
    const sse = await fetch(stack.sseUrl, {
      headers: { authorization: `Bearer ${provider.tokens().access_token}`, accept: 'text/event-stream' }, signal: sseAbort.signal,
    });
    assert.equal(sse.status, 200);
    const reader = sse.body.getReader();
    await readUntil(reader, /event: endpoint\n/);
    // Both outlive several grant checks while the grant is there. A fixed wait on purpose: the
    // claim is that time passing (two and a half check periods) does not end them.
    await new Promise((r) => setTimeout(r, GRANT_CHECK_SECS * 2500));
    const open = (await downstreamRequests()).slice(before).filter((r) => r.method === 'GET' && r.ended === null);
    assert.deepEqual(open.map((r) => r.path).sort(), ['/mcp', '/sse'], 'both streams open while the grant lasts');

    assert.equal(await revokeRefreshToken(stack.mcpOrigin, provider.clientInformation().client_id, provider.tokens().refresh_token), 200);
    const revokedAt = Date.now();
    const bound = GRANT_CHECK_SECS * 1000 + 2500;
    // The client's legacy stream ends (keep-alives would otherwise come every KEEPALIVE_SECS forever).
    for (;;) {
      let timer;
      const { done } = await Promise.race([
        reader.read(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`/sse still open ${Date.now() - revokedAt} ms after the revocation`)), bound); }),
      ]).finally(() => clearTimeout(timer));
      if (done) break;
    }
    assert.ok(Date.now() - revokedAt < bound, `the /sse stream ended ${Date.now() - revokedAt} ms after the revocation`);
    // At the downstream, both streams' requests were cancelled, not finished.
    const ended = await eventually(async () => {
      const seen = (await downstreamRequests()).slice(before);
      const get = seen.find((r) => r.at === openGet.at && r.method === 'GET' && r.path === '/mcp');
      const legacy = seen.find((r) => r.method === 'GET' && r.path === '/sse');
      return get?.ended && legacy?.ended ? { get, legacy } : undefined;
    }, 'both downstream streams to end', bound);
    assert.equal(ended.get.ended, 'aborted');
    assert.equal(ended.legacy.ended, 'aborted');
    for (const r of [ended.get, ended.legacy]) {
      assert.ok(r.endedAt - revokedAt < bound, `${r.path} ended ${r.endedAt - revokedAt} ms after the revocation`);
    }
  } finally {
    sseAbort.abort();
    await client.close().catch(() => {});
  }
});

test('spoofed identity headers, cookies and the MCP token never reach the downstream', async () => {
  const before = (await downstreamRequests()).length;
  const res = await post(bob.access_token, INIT, {
    'x-user-email': 'mallory@example.com', 'x-user-sub': 'admin', 'x-user-groups': 'admins,root',
    cookie: '__Host-CONSENTED_STATE=stolen', 'x-forwarded-for': '10.0.0.1', origin: stack.mcpOrigin,
  });
  assert.equal(res.status, 200);
  await messages(res);
  const seen = (await downstreamRequests()).slice(before);
  assert.equal(seen.length, 1);
  const h = seen[0].headers;
  assert.equal(h['x-user-email'], 'bob@example.com');
  assert.equal(h['x-user-username'], 'bob');
  assert.notEqual(h['x-user-sub'], 'admin');
  assert.equal(h['x-user-groups'], 'todo-users,admins', 'bob\'s groups from PingOne, not the client\'s');
  assert.equal(h.cookie, undefined);
  assert.equal(h['x-forwarded-for'], undefined);
  assert.equal(h.origin, undefined);
  assert.match(h.authorization, /^Bearer sha256:/);
  assert.notEqual(h.authorization, `Bearer ${fingerprint(bob.access_token)}`);
});

test('spoofed identity headers never fill a gap: no groups, an unverified email, an invented X-User-*', async () => {
  const spoofed = {
    'x-user-email': 'boss@example.com', 'x-user-groups': 'admins,root', 'x-user-anything': 'yes',
    'X-User-Role': 'admin',
  };
  // mallory is in no group and eve's address is unverified: the gateway sends no X-User-Groups
  // (mallory), no X-User-Email (eve); the client's values must not take their place.
  for (const [user, absent] of [['mallory', ['x-user-groups']], ['eve', ['x-user-groups', 'x-user-email']]]) {
    const tokens = await getMcpToken(stack, { user });
    const before = (await downstreamRequests()).length;
    const res = await post(tokens.access_token, INIT, spoofed);
    assert.equal(res.status, 200);
    await messages(res);
    const seen = (await downstreamRequests()).slice(before);
    assert.equal(seen.length, 1);
    const h = seen[0].headers;
    assert.equal(h['x-user-username'], user, 'the request is the one signed in as this user');
    for (const name of absent) assert.equal(h[name], undefined, `${user}: ${name} ${h[name]}`);
    if (user === 'mallory') assert.equal(h['x-user-email'], 'mallory@example.com');
    assert.equal(h['x-user-anything'], undefined);
    assert.equal(h['x-user-role'], undefined);
    assert.deepEqual(Object.keys(h).filter((n) => n.startsWith('x-user-')).sort(),
      ['x-user-name', 'x-user-sub', 'x-user-username', ...(user === 'mallory' ? ['x-user-email'] : [])].sort());
  }
});

/** The X-User-* headers the downstream's whoami saw for a call with `token` (a new raw session). */
async function identityAtDownstream(token) {
  const sid = await rawSession({ access_token: token });
  const call = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
  const res = await post(token, call, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(res.status, 200);
  return JSON.parse((await messages(res))[0].result.content[0].text).identityHeaders;
}

test('identity headers follow PingOne: a group change reaches the downstream at the next refresh', async () => {
  const setGroups = async (groups) => {
    const res = await fetch(`${stack.idpUrl}/admin/users/mallory/groups`, { method: 'PUT', body: JSON.stringify(groups) });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  };
  const mallory = await getMcpToken(stack, { user: 'mallory' });
  try {
    assert.equal((await identityAtDownstream(mallory.access_token))['x-user-groups'], undefined, 'in no group at sign-in');
    await setGroups(['auditors', 'admins']);
    const one = await refresh({ mcpOrigin: stack.mcpOrigin, client: mallory.client, refreshToken: mallory.refresh_token });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal((await identityAtDownstream(one.body.access_token))['x-user-groups'], 'auditors,admins');
    // Taken out of admins at PingOne: the next refresh stops sending it.
    await setGroups(['auditors']);
    const two = await refresh({ mcpOrigin: stack.mcpOrigin, client: mallory.client, refreshToken: one.body.refresh_token });
    assert.equal(two.status, 200, JSON.stringify(two.body));
    const h = await identityAtDownstream(two.body.access_token);
    assert.equal(h['x-user-groups'], 'auditors');
    assert.equal(h['x-user-username'], 'mallory');
  } finally {
    await setGroups([]);
  }
});

test('a session stays with its user: another user\'s token, a forged id or the downstream\'s raw id get 404', async () => {
  const sid = await rawSession(alice);
  const list = { jsonrpc: '2.0', id: 2, method: 'tools/list' };
  const own = await post(alice.access_token, list, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(own.status, 200);
  assert.equal(own.headers.get('mcp-session-id'), sid, 'the same id comes back');
  const [reply] = await messages(own);
  assert.deepEqual(reply.result.tools.map((t) => t.name).sort(), TOOLS);

  const before = (await downstreamRequests()).length;
  const stolen = await post(bob.access_token, list, { 'mcp-session-id': sid });
  assert.equal(stolen.status, 404);
  assert.equal((await stolen.json()).error.code, -32001);
  const call = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
  const who = await post(alice.access_token, call, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  const downstreamSid = JSON.parse((await messages(who))[0].result.content[0].text).sessionId;
  const afterWho = (await downstreamRequests()).length;
  assert.equal(afterWho, before + 1, 'bob\'s attempt never reached the downstream');
  for (const forged of [downstreamSid, `${sid.slice(0, -2)}AA`, 'g1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']) {
    const res = await post(alice.access_token, list, { 'mcp-session-id': forged });
    assert.equal(res.status, 404, forged);
    await res.arrayBuffer();
  }
  assert.equal((await downstreamRequests()).length, afterWho, 'nor did the forged ids');

  // DELETE goes to the downstream, which ends the session; the id is then unknown there.
  const del = await fetch(stack.mcpUrl, {
    method: 'DELETE', headers: { authorization: `Bearer ${alice.access_token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
  });
  assert.equal(del.status, 200);
  await del.arrayBuffer();
  const gone = await post(alice.access_token, list, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  assert.equal(gone.status, 404, 'the downstream\'s 404 passes through');
  await gone.arrayBuffer();
});

test('downstream failures become errors a client can act on, within the timeout', async () => {
  try {
    await fault('garbage');
    let res = await post(alice.access_token, INIT);
    assert.equal(res.status, 502);
    assert.match((await res.json()).error.message, /not MCP/);
    const sse = await fetch(stack.sseUrl, { headers: { authorization: `Bearer ${alice.access_token}`, accept: 'text/event-stream' }, signal: AbortSignal.timeout(20_000) });
    assert.equal(sse.status, 502);
    await sse.arrayBuffer();

    await fault('reset');
    res = await post(alice.access_token, INIT);
    assert.equal(res.status, 502);
    assert.match((await res.json()).error.message, /could not be reached/);

    await fault('hang');
    const started = Date.now();
    res = await post(alice.access_token, INIT);
    const took = Date.now() - started;
    assert.equal(res.status, 504);
    assert.match((await res.json()).error.message, new RegExp(`within ${TIMEOUT_SECS} s`));
    assert.ok(took >= TIMEOUT_SECS * 1000 - 200 && took < TIMEOUT_SECS * 1000 + 5000, `answered after ${took} ms`);

    // The downstream refusing the token: status, body and challenge passed on, the challenge
    // pointing at the gateway's metadata (the only place the client can get tokens).
    await fault('unauthorized');
    res = await post(alice.access_token, INIT);
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get('www-authenticate'),
      `Bearer resource_metadata="${stack.mcpOrigin}/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="the downstream refused the token"`,
    );
    assert.equal((await res.json()).error_description, 'the downstream refused the token');
  } finally {
    await fault('none');
  }
  const res = await post(alice.access_token, INIT);
  assert.equal(res.status, 200, 'working again once the downstream is');
  await res.arrayBuffer();
});

test('mcp-remote (what Claude Desktop runs) through the gateway', async () => {
  const remote = await startMcpRemote(stack.mcpUrl, join(scratch, 'mcp-remote'), ['--transport', 'http-only']);
  try {
    await signInThroughBrowser(remote, 'alice');
    await remote.waitFor(() => /Proxy established|Local STDIO server running/.test(remote.stderr), 'the proxy');
    const init = await remote.request('initialize', {
      protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'claude-desktop-stand-in', version: '1' },
    });
    assert.equal(init.error, undefined, JSON.stringify(init.error));
    assert.equal(init.result.serverInfo.name, 'downstream-test-mcp');
    remote.notify('notifications/initialized');
    const who = await remote.request('tools/call', { name: 'whoami', arguments: {} });
    const report = JSON.parse(who.result.content[0].text);
    assert.equal(report.bearer.verified, true);
    assert.equal(report.identityHeaders['x-user-username'], 'alice');
  } finally {
    await remote.close();
  }
});

test('mcp-remote over legacy SSE (--transport sse-only) through the gateway', async () => {
  const before = (await downstreamRequests()).length;
  const remote = await startMcpRemote(stack.sseUrl, join(scratch, 'mcp-remote-sse'), ['--transport', 'sse-only']);
  try {
    await signInThroughBrowser(remote, 'alice');
    await remote.waitFor(() => /Proxy established|Local STDIO server running/.test(remote.stderr), 'the proxy');
    const init = await remote.request('initialize', {
      protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'claude-desktop-stand-in', version: '1' },
    });
    assert.equal(init.error, undefined, JSON.stringify(init.error));
    assert.equal(init.result.serverInfo.name, 'downstream-test-mcp');
    remote.notify('notifications/initialized');
    const listed = await remote.request('tools/list');
    assert.deepEqual(listed.result.tools.map((t) => t.name).sort(), TOOLS);
    const who = await remote.request('tools/call', { name: 'whoami', arguments: {} });
    const report = JSON.parse(who.result.content[0].text);
    assert.equal(report.transport, 'sse', 'the downstream\'s legacy transport served it');
    assert.equal(report.bearer.verified, true);
    assert.equal(report.identityHeaders['x-user-username'], 'alice');
    const seen = (await downstreamRequests()).slice(before);
    assert.ok(seen.some((r) => r.method === 'GET' && r.path === '/sse'), 'an event stream was opened downstream');
    assert.ok(!seen.some((r) => r.path === '/mcp'), 'mcp-remote never fell back to Streamable HTTP');
  } finally {
    await remote.close();
  }
});

test('MCP Inspector CLI through the gateway on both transports', async () => {
  const run = (url, transport, args) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(INSPECTOR_DIR, 'cli.js'), '--cli', url, '--transport', transport,
      '--header', `Authorization: Bearer ${alice.access_token}`, ...args], { cwd: INSPECTOR_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
  for (const [url, transport] of [[stack.mcpUrl, 'http'], [stack.sseUrl, 'sse']]) {
    const listed = await run(url, transport, ['--method', 'tools/list']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).tools.map((t) => t.name).sort(), TOOLS);
    const who = await run(url, transport, ['--method', 'tools/call', '--tool-name', 'whoami']);
    assert.equal(who.code, 0, who.stderr);
    const report = JSON.parse(JSON.parse(who.stdout).content[0].text);
    assert.equal(report.bearer.verified, true);
    assert.equal(report.identityHeaders['x-user-email'], 'alice@example.com');
  }
});
