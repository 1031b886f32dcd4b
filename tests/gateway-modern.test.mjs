// The identity gateway and both MCP protocol eras. Two stacks, each the MCP worker as gateway
// with GATEWAY_TOOL_SCOPES set: one in front of an MCP 2026-07-28 server (the TypeScript SDK v2,
// local/downstream-mcp-modern.mjs, modern only), one in front of the session-era server
// (SDK 1.x, local/downstream-mcp.mjs). Driven by the SDK v2 client pinned to 2026-07-28 and in
// `auto` mode, and by raw requests; both downstreams record what reached them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startTestStack } from './support/stack.mjs';
import { getMcpToken, mcpPost, registerClient, authorize, exchangeCode } from './support/flow.mjs';

const MODERN = '2026-07-28';
// echo writes (as far as this test is concerned); everything else reads.
const TOOL_SCOPES = 'echo=todo_api:write, *=todo_api:read';

let modern; // stack in front of the 2026-07-28 downstream
let legacy; // stack in front of the session-era downstream
const tokens = {}; // per stack: { full, readOnly }
const open = [];

before(async () => {
  const mcpVars = { GATEWAY_TOOL_SCOPES: TOOL_SCOPES };
  [modern, legacy] = await Promise.all([
    startTestStack({ todoApi: false, downstream: { modern: true, testHooks: true }, mcpVars }),
    startTestStack({ todoApi: false, downstream: { testHooks: true }, mcpVars }),
  ]);
  for (const stack of [modern, legacy]) {
    tokens[stack.mcpOrigin] = { full: await getMcpToken(stack, { user: 'alice' }), readOnly: await readOnlyToken(stack) };
  }
});

after(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => {})));
  await Promise.all([modern?.stop(), legacy?.stop()]);
});

async function readOnlyToken(stack) {
  const client = await registerClient(stack.mcpOrigin);
  const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client, user: 'alice', scope: 'todo_api:read' });
  const t = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier });
  assert.equal(t.scope, 'todo_api:read');
  return t;
}

const fingerprint = (t) => `sha256:${createHash('sha256').update(t).digest('hex').slice(0, 16)}`;

/** The SDK v2 client through the gateway of `stack` with `token`, in negotiation `mode`. */
async function v2Client(stack, token, mode) {
  const client = new Client({ name: 'gateway-modern-test', version: '1' }, { versionNegotiation: { mode } });
  const transport = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  open.push(client);
  return client;
}

/** What the downstream of `stack` saw, oldest first (tokens as fingerprints). */
async function downstreamRequests(stack) {
  return (await fetch(`${stack.downstreamUrl}/__requests`)).json();
}

const meta = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
const modernCall = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: meta } });

/** A raw POST /mcp through the gateway of `stack`. */
function post(stack, token, body, headers = {}) {
  return mcpPost(stack.mcpUrl, token, body, headers);
}

/** The modern headers of a tools/call of `name`. */
const callHeaders = (name) => ({ 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': name });

test('a client pinned to 2026-07-28 reaches a 2026-07-28 downstream through the gateway, as the user, without sessions', async () => {
  const { full } = tokens[modern.mcpOrigin];
  const client = await v2Client(modern, full.access_token, { pin: MODERN });
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['echo', 'whoami']);
  const report = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  assert.equal(report.era, 'modern');
  assert.equal(report.bearer.verified, true, `the downstream verified the PingOne token: ${JSON.stringify(report.bearer)}`);
  assert.notEqual(report.bearer.fingerprint, fingerprint(full.access_token), 'never the MCP client\'s own token');
  assert.equal(report.identityHeaders['x-user-username'], 'alice');
  assert.equal(report.identityHeaders['x-user-email'], 'alice@example.com');
  assert.deepEqual(report.mcpHeaders, { 'mcp-method': 'tools/call', 'mcp-name': 'whoami', 'mcp-protocol-version': MODERN });
  // An argument marked x-mcp-header: its Mcp-Param-* header (Base64 sentinel form) passes too.
  const echoed = JSON.parse((await client.callTool({ name: 'echo', arguments: { text: 'hi', region: 'Grüße' } })).content[0].text);
  assert.deepEqual(echoed, { text: 'hi', region: 'Grüße', regionHeader: `=?base64?${Buffer.from('Grüße').toString('base64')}?=` });

  const seen = (await downstreamRequests(modern)).filter((r) => r.path === '/mcp');
  assert.deepEqual([...new Set(seen.map((r) => r.rpcMethod))].sort(), ['server/discover', 'tools/call', 'tools/list']);
  for (const r of seen) {
    assert.equal(r.headers['mcp-method'], r.rpcMethod, 'Mcp-Method arrived');
    assert.equal(r.headers['mcp-protocol-version'], MODERN);
    assert.ok(!('mcp-session-id' in r.headers), 'no session on a modern request');
    assert.notEqual(r.headers.authorization, `Bearer ${fingerprint(full.access_token)}`);
  }
  assert.ok(seen.some((r) => r.headers['mcp-name'] === 'whoami'), 'Mcp-Name arrived');
});

test('a modern request\'s own Mcp-Session-Id is ignored: not judged, forwarded or answered', async () => {
  const { full } = tokens[modern.mcpOrigin];
  const res = await post(modern, full.access_token, modernCall(3, 'whoami'), { ...callHeaders('whoami'), 'mcp-session-id': 'g1.no-session-of-anyone' });
  assert.equal(res.status, 200, 'a session-era request with that id would get 404');
  assert.equal(res.headers.get('mcp-session-id'), null);
  const report = JSON.parse((await res.json()).result.content[0].text);
  assert.ok(!report.headerNames.includes('mcp-session-id'));
});

test('a modern request whose headers disagree with its body is refused by the gateway; the downstream never sees it', async () => {
  const { full } = tokens[modern.mcpOrigin];
  const before = (await downstreamRequests(modern)).length;
  const cases = [
    [callHeaders('echo'), 'Mcp-Name header value \'echo\' does not match body value \'whoami\''],
    [{ 'mcp-protocol-version': MODERN, 'mcp-name': 'whoami' }, 'Mcp-Method header is required'],
    [{ ...callHeaders('whoami'), 'mcp-method': 'tools/list' }, 'Mcp-Method header value \'tools/list\''],
    [{ ...callHeaders('whoami'), 'mcp-protocol-version': '2026-12-01' }, 'MCP-Protocol-Version header value'],
  ];
  for (const [headers, why] of cases) {
    const res = await post(modern, full.access_token, modernCall(9, 'whoami'), headers);
    assert.equal(res.status, 400, why);
    const body = await res.json();
    assert.equal(body.id, 9);
    assert.equal(body.error.code, -32020, why);
    assert.ok(body.error.message.includes(why), `${body.error.message} / ${why}`);
  }
  assert.equal((await downstreamRequests(modern)).length, before, 'nothing was forwarded');
});

test('GATEWAY_TOOL_SCOPES: a read-only token is asked to step up for a write tool in the modern era; a permitted tool runs', async () => {
  const { readOnly } = tokens[modern.mcpOrigin];
  const before = (await downstreamRequests(modern)).length;
  const res = await post(modern, readOnly.access_token, modernCall(4, 'echo', { text: 'x' }), callHeaders('echo'));
  assert.equal(res.status, 403);
  const www = res.headers.get('www-authenticate');
  assert.match(www, /error="insufficient_scope"/);
  assert.match(www, /scope="todo_api:read todo_api:write"/, 'the token\'s scopes and the missing one');
  assert.match(www, /resource_metadata="[^"]*\/\.well-known\/oauth-protected-resource\/mcp"/);
  assert.equal((await res.json()).error, 'insufficient_scope');
  assert.equal((await downstreamRequests(modern)).length, before, 'nothing was forwarded');
  // The pinned client gets the same refusal; whoami (read) runs.
  const client = await v2Client(modern, readOnly.access_token, { pin: MODERN });
  const report = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  assert.equal(report.identityHeaders['x-user-username'], 'alice');
  await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }));
});

test('a dual-era client (SDK v2 auto) in front of a session-era downstream falls back to initialize through the gateway', async () => {
  const { full } = tokens[legacy.mcpOrigin];
  // The downstream's answer to the modern probe reaches the client unchanged: a 400 without a
  // modern error, which tells a dual-era client to fall back.
  const probe = await post(legacy, full.access_token, { jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta } }, { 'mcp-protocol-version': MODERN, 'mcp-method': 'server/discover' });
  assert.equal(probe.status, 400);
  assert.equal(probe.headers.get('mcp-session-id'), null);
  assert.deepEqual(await probe.json(), { jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: Server not initialized' }, id: null });

  const client = await v2Client(legacy, full.access_token, 'auto');
  assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
  const report = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  assert.equal(report.transport, 'streamable-http');
  assert.ok(report.sessionId, 'a session-era session, through the gateway\'s sealed id');
  assert.equal(report.bearer.verified, true);
  assert.equal(report.identityHeaders['x-user-username'], 'alice');
  // A client pinned to 2026-07-28 has no fallback: it fails, loudly.
  await assert.rejects(v2Client(legacy, full.access_token, { pin: MODERN }), /pinned protocol version 2026-07-28/);
});

test('GATEWAY_TOOL_SCOPES: a read-only token is asked to step up for a write tool in the session era too', async () => {
  const { readOnly } = tokens[legacy.mcpOrigin];
  const init = await post(legacy, readOnly.access_token, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'gateway-modern-test', version: '1' } },
  });
  assert.equal(init.status, 200);
  await init.arrayBuffer();
  const session = { 'mcp-session-id': init.headers.get('mcp-session-id'), 'mcp-protocol-version': '2025-11-25' };
  await (await post(legacy, readOnly.access_token, { jsonrpc: '2.0', method: 'notifications/initialized' }, session)).arrayBuffer();
  const call = (id, name, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
  const res = await post(legacy, readOnly.access_token, call(2, 'echo', { text: 'x' }), session);
  assert.equal(res.status, 403);
  assert.match(res.headers.get('www-authenticate'), /error="insufficient_scope"/);
  assert.match(res.headers.get('www-authenticate'), /scope="todo_api:read todo_api:write"/);
  await res.arrayBuffer();
  const ok = await post(legacy, readOnly.access_token, call(3, 'whoami'), session);
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /x-user-username/);
  // The full token may call it.
  const { full } = tokens[legacy.mcpOrigin];
  const client = await v2Client(legacy, full.access_token, 'auto');
  assert.deepEqual((await client.callTool({ name: 'echo', arguments: { text: 'written' } })).content, [{ type: 'text', text: 'written' }]);
});
