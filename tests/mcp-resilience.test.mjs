// The MCP session when the Todo API fails: answering 500 or not at all. The Todo API here is a
// small fake (tests/support/fake-todo-api.mjs) because the real worker cannot be made to fail on
// demand; everything else is real. (A restart of the whole stack, real Todo API included, is in
// tests/persistence.test.mjs.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from './support/stack.mjs';
import { getMcpToken } from './support/flow.mjs';
import { startFakeTodoApi } from './support/fake-todo-api.mjs';

const api = await startFakeTodoApi();
const stack = await startTestStack({ todoApi: false, mcpVars: { API_URL: api.url } });
after(async () => { await stack.stop(); await api.close(); });

const PROTOCOL = '2025-06-18';
const { access_token: token } = await getMcpToken(stack);

async function rpc(sessionId, body) {
  const headers = {
    authorization: `Bearer ${token}`, 'content-type': 'application/json',
    accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL,
  };
  if (sessionId) headers['mcp-session-id'] = sessionId;
  const res = await fetch(stack.mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  const data = text.startsWith('{') ? text : text.split('\n').find((l) => l.startsWith('data:'))?.slice(5);
  return { status: res.status, sessionId: res.headers.get('mcp-session-id'), json: data ? JSON.parse(data) : null };
}

async function openSession() {
  const init = await rpc(null, {
    jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'resilience', version: '1' } },
  });
  assert.equal(init.status, 200);
  await rpc(init.sessionId, { jsonrpc: '2.0', method: 'notifications/initialized' });
  return init.sessionId;
}

const listTodos = (sid, id = 1) => rpc(sid, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'get_my_todo_list', arguments: {} } });
const text = (r) => r.json.result.content.map((c) => c.text).join('\n');

const sid = await openSession();

test('a Todo API answering 500 is an isError result a person can act on', async () => {
  api.mode = '500';
  const r = await listTodos(sid, 2);
  api.mode = 'ok';
  assert.equal(r.status, 200);
  assert.equal(r.json.result.isError, true);
  assert.match(text(r), /500/);
  // The session is fine afterwards.
  const ok = await listTodos(sid, 3);
  assert.equal(ok.json.result.isError ?? false, false, text(ok));
});

test('a Todo API that never answers is cut off with an isError result, not a hung request', async () => {
  api.mode = 'hang';
  const t0 = Date.now();
  const r = await listTodos(sid, 4);
  api.mode = 'ok';
  assert.equal(r.json.result.isError, true);
  assert.match(text(r), /did not answer|timed out|time/i);
  assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
});
