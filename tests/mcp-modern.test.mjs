// Both protocol eras on one /mcp, in workerd, with the TypeScript SDK v2 client
// (@modelcontextprotocol/client, built on MCP 2026-07-28) and tokens from the real flow:
//   - pinned to 2026-07-28: served statelessly (no session id), every tool works;
//   - `auto` (probes with server/discover): lands in the modern era;
//   - `legacy` (the plain initialize handshake): today's session era, unchanged;
//   - the step-up challenge, header checks and the preflight of a browser client, raw.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startTestStack } from './support/stack.mjs';
import { getMcpToken, refresh } from './support/flow.mjs';

const TOOL_NAMES = ['who_am_I', 'get_my_todo_list', 'create_new_todo', 'toggle_todo_status', 'deleteTodo'];
const MODERN = '2026-07-28';

let stack;
let alice;

before(async () => {
  stack = await startTestStack();
  alice = await getMcpToken(stack, { user: 'alice' });
});

after(async () => {
  await stack?.stop();
});

/** An SDK v2 client connected with `token` in version-negotiation `mode`. */
async function connect(token, mode) {
  const client = new Client({ name: 'sdk-v2-test', version: '1.0.0' }, { versionNegotiation: { mode } });
  const transport = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  return { client, transport };
}

function todosOf(result) {
  assert.notEqual(result.isError, true, result.content?.[0]?.text);
  return result.structuredContent.todos;
}

/** tools/list and a round of the todo tools; returns the created todo's text. */
async function useTools(client, label) {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), TOOL_NAMES);
  const text = `${label} ${Date.now()}`;
  const created = todosOf(await client.callTool({ name: 'create_new_todo', arguments: { text } }));
  const mine = created.find((t) => t.text === text);
  assert.ok(mine, `created: ${JSON.stringify(created)}`);
  const toggled = todosOf(await client.callTool({ name: 'toggle_todo_status', arguments: { todoId: mine.id, completed: true } }));
  assert.equal(toggled.find((t) => t.id === mine.id).completed, true);
  const who = await client.callTool({ name: 'who_am_I', arguments: {} });
  assert.match(who.content[0].text, /alice/);
  const unknown = await client.callTool({ name: 'no_such_tool', arguments: {} }).then(
    (r) => r,
    (e) => e,
  );
  assert.ok(unknown instanceof Error || unknown.isError, 'an unknown tool is an error');
  return text;
}

test('SDK v2 pinned to 2026-07-28: stateless, no session, every tool works', async () => {
  const { client, transport } = await connect(alice.access_token, { pin: MODERN });
  try {
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(transport.sessionId, undefined, 'no Mcp-Session-Id was minted');
    await useTools(client, 'pinned');
  } finally {
    await client.close();
  }
});

test('SDK v2 in auto mode probes with server/discover and stays modern', async () => {
  const { client, transport } = await connect(alice.access_token, 'auto');
  try {
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(transport.sessionId, undefined);
    const text = await useTools(client, 'auto');
    // The same user's todos, whichever era wrote them.
    const legacy = await connect(alice.access_token, 'legacy');
    try {
      const all = todosOf(await legacy.client.callTool({ name: 'get_my_todo_list', arguments: {} }));
      assert.ok(all.some((t) => t.text === text));
    } finally {
      await legacy.client.close();
    }
  } finally {
    await client.close();
  }
});

test('SDK v2 in legacy mode gets the session era as before', async () => {
  const { client, transport } = await connect(alice.access_token, 'legacy');
  try {
    assert.equal(client.getProtocolEra(), 'legacy');
    assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
    assert.ok(transport.sessionId, 'initialize opened a session');
    await useTools(client, 'legacy');
  } finally {
    await client.close();
  }
});

/** A raw modern POST. */
function post(token, method, params, headers = {}) {
  return fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MODERN, 'mcp-method': method, ...headers,
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} } },
    }),
  });
}

test('raw: a modern tool call beyond the token\'s scopes gets the step-up challenge; lying headers are refused', async () => {
  const narrowed = await refresh({ mcpOrigin: stack.mcpOrigin, client: alice.client, refreshToken: alice.refresh_token, scope: 'todo_api:read' });
  assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
  alice.refresh_token = narrowed.body.refresh_token;
  const reader = narrowed.body.access_token;
  const denied = await post(reader, 'tools/call', { name: 'create_new_todo', arguments: { text: 'x' } }, { 'mcp-name': 'create_new_todo' });
  assert.equal(denied.status, 403);
  const challenge = denied.headers.get('www-authenticate');
  assert.match(challenge, /error="insufficient_scope"/);
  assert.match(challenge, /scope="[^"]*todo_api:read[^"]*todo_api:write|scope="[^"]*todo_api:write[^"]*todo_api:read/);
  await denied.arrayBuffer();
  const allowed = await post(reader, 'tools/call', { name: 'get_my_todo_list', arguments: {} }, { 'mcp-name': 'get_my_todo_list' });
  assert.equal(allowed.status, 200);
  const answer = await allowed.json();
  assert.equal(answer.result.resultType, 'complete');
  assert.equal(allowed.headers.get('mcp-session-id'), null);

  const lying = await post(reader, 'tools/call', { name: 'get_my_todo_list', arguments: {} }, { 'mcp-name': 'deleteTodo' });
  assert.equal(lying.status, 400);
  assert.equal((await lying.json()).error.code, -32020);
  const future = await post(reader, 'tools/list', {}, { 'mcp-protocol-version': '2099-01-01' });
  assert.equal(future.status, 400);
  assert.equal((await future.json()).error.code, -32020, 'the header disagrees with _meta');
});

test('raw: a browser client may send the modern headers (preflight)', async () => {
  const res = await fetch(stack.mcpUrl, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://localhost:6274', 'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type,mcp-protocol-version,mcp-method,mcp-name,mcp-param-region',
    },
  });
  assert.equal(res.status, 204);
  const allowed = res.headers.get('access-control-allow-headers').toLowerCase().split(/,\s*/);
  for (const h of ['authorization', 'mcp-method', 'mcp-name', 'mcp-param-region', 'mcp-protocol-version']) {
    assert.ok(allowed.includes(h), `${h} allowed: ${allowed}`);
  }
});
