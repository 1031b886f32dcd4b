// Least privilege end to end: a grant's scopes decide which tools run. A read-only grant reads
// but every write is refused before it runs with the MCP 2025-11-25 step-up challenge (403
// insufficient_scope naming the scopes to ask for); the PingOne token behind a read-only grant
// carries no write scope either; and the official TypeScript SDK client steps up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from './support/stack.mjs';
import { getMcpToken, registerClient, authorize, exchangeCode, CookieJar } from './support/flow.mjs';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';

let stack;
const open = [];

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => {})));
  await stack?.stop();
});

const call = (client, name, args = {}) => client.callTool({ name, arguments: args });
const BOTH = 'todo_api:read todo_api:write';

async function readOnlyToken(user = 'bob', jar = new CookieJar()) {
  const client = await registerClient(stack.mcpOrigin);
  const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client, user, jar, scope: 'todo_api:read' });
  const tokens = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier });
  assert.equal(tokens.scope, 'todo_api:read');
  return { ...tokens, client, jar, user };
}

/** The same client authorized again for read and write (a step-up): its new tokens. */
async function steppedUp(t) {
  const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client: t.client, user: t.user, jar: t.jar, scope: BOTH });
  const tokens = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client: t.client, code: auth.code, verifier: auth.pkce.verifier });
  assert.equal(tokens.scope, BOTH);
  return tokens;
}

async function rpc(url, token, body, extra = {}) {
  return fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', ...extra,
    },
    body: JSON.stringify(body),
  });
}

async function openSession(token) {
  const res = await rpc(stack.mcpUrl, token, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'scopes-test', version: '1' } },
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const sid = res.headers.get('mcp-session-id');
  const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await (await rpc(stack.mcpUrl, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).arrayBuffer();
  return headers;
}

const toolCall = (name, args = {}) => ({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } });

test('a read-only grant reads, and every write is a 403 step-up challenge before anything runs', async () => {
  const t = await readOnlyToken();
  const headers = await openSession(t.access_token);
  const list = await rpc(stack.mcpUrl, t.access_token, toolCall('get_my_todo_list'), headers);
  assert.equal(list.status, 200);
  assert.match(await list.text(), /"todos"/);
  for (const [name, args] of [['create_new_todo', { text: 'sneaky' }], ['toggle_todo_status', { todoId: 'x', completed: true }], ['deleteTodo', { todoId: 'x' }]]) {
    const res = await rpc(stack.mcpUrl, t.access_token, toolCall(name, args), { ...headers, origin: 'http://localhost:6274' });
    assert.equal(res.status, 403, name);
    const www = res.headers.get('www-authenticate');
    assert.match(www, /^Bearer /);
    assert.match(www, /error="insufficient_scope"/);
    assert.match(www, new RegExp(`scope="${BOTH}"`), 'the scopes it has plus the one it lacks');
    assert.match(www, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    // A browser client (MCP Inspector) can read the challenge.
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:6274');
    assert.match(res.headers.get('access-control-expose-headers'), /WWW-Authenticate/i);
    assert.equal((await res.json()).error, 'insufficient_scope');
  }
  // who_am_I needs no scope, and shows the PingOne token behind the grant holds no write scope.
  const who = await rpc(stack.mcpUrl, t.access_token, toolCall('who_am_I'), headers);
  const whoText = await who.text();
  assert.match(whoText, /todo_api:read/);
  assert.doesNotMatch(whoText, /todo_api:write/, 'PingOne was asked only for what the client was granted');
  // Nothing was written: the list is still empty.
  const after = await rpc(stack.mcpUrl, t.access_token, toolCall('get_my_todo_list'), headers);
  assert.doesNotMatch(await after.text(), /sneaky/);
});

test('over legacy SSE a write with a read-only grant is refused the same way', async () => {
  const t = await readOnlyToken();
  const ctl = new AbortController();
  const stream = await fetch(stack.sseUrl, { headers: { authorization: `Bearer ${t.access_token}`, accept: 'text/event-stream' }, signal: ctl.signal });
  assert.equal(stream.status, 200);
  const reader = stream.body.getReader();
  let buf = '';
  while (!/event: endpoint\ndata: ([^\n]+)\n/.test(buf)) buf += new TextDecoder().decode((await reader.read()).value);
  const endpoint = new URL(buf.match(/event: endpoint\ndata: ([^\n]+)\n/)[1], stack.mcpOrigin).toString();
  try {
    const res = await rpc(endpoint, t.access_token, toolCall('create_new_todo', { text: 'sneaky' }));
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate'), /error="insufficient_scope".*scope="todo_api:read todo_api:write"|scope="todo_api:read todo_api:write".*error="insufficient_scope"/);
    assert.match(res.headers.get('www-authenticate'), /oauth-protected-resource\/sse"/);
    // The step-up: the same client re-authorized for both scopes keeps its session and stream.
    const wider = await steppedUp(t);
    const made = await rpc(endpoint, wider.access_token, toolCall('create_new_todo', { text: 'after sse step-up' }));
    assert.equal(made.status, 202, await made.text());
    while (!/after sse step-up/.test(buf)) {
      const { value, done } = await reader.read();
      assert.ok(!done, `the stream ended before the answer: ${buf.slice(-300)}`);
      buf += new TextDecoder().decode(value);
    }
  } finally {
    ctl.abort();
  }
});

test('a full grant still writes; the token endpoint narrows a refresh to read-only and writes are then refused', async () => {
  const t = await getMcpToken(stack, { user: 'bob' });
  assert.equal(t.scope, BOTH);
  const headers = await openSession(t.access_token);
  const made = await rpc(stack.mcpUrl, t.access_token, toolCall('create_new_todo', { text: 'allowed' }), headers);
  assert.equal(made.status, 200);
  assert.match(await made.text(), /allowed/);
  const res = await fetch(`${stack.mcpOrigin}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: t.client.client_id, scope: 'todo_api:read' }),
  });
  const narrowed = await res.json();
  assert.equal(res.status, 200, JSON.stringify(narrowed));
  assert.equal(narrowed.scope, 'todo_api:read');
  const refused = await rpc(stack.mcpUrl, narrowed.access_token, toolCall('deleteTodo', { todoId: 'x' }), headers);
  assert.equal(refused.status, 403);
});

/**
 * The SDK client, but its first sign-in asks only for read access (a user who connected it
 * read-only); later trips ask for what the SDK asks. `dropRefreshToken` models a client that keeps
 * no refresh token.
 */
class ReadOnlyFirstProvider extends TestOAuthProvider {
  constructor(opts) {
    super(opts);
    this.dropRefreshToken = opts.dropRefreshToken ?? false;
    this.requestedScopes = [];
  }
  saveTokens(tokens) {
    super.saveTokens(this.dropRefreshToken ? { ...tokens, refresh_token: undefined } : tokens);
  }
  async redirectToAuthorization(url) {
    const u = new URL(url);
    this.requestedScopes.push(u.searchParams.get('scope'));
    if (this.authorizations.length === 0) u.searchParams.set('scope', 'todo_api:read');
    return super.redirectToAuthorization(u);
  }
}

test('the TypeScript SDK steps up on the 403: it asks for read and write, the consent page comes back, the write succeeds', async () => {
  const jar = new CookieJar();
  const provider = new ReadOnlyFirstProvider({ user: 'alice', jar, dropRefreshToken: true });
  const { client, transport } = await connectClient('http', stack.mcpUrl, provider);
  open.push(client);
  const session = transport.sessionId;
  assert.ok(session);
  assert.equal(provider.authorizations.length, 1);
  assert.ok(provider.authorizations[0].consentShown);
  const listed = await call(client, 'get_my_todo_list');
  assert.notEqual(listed.isError, true);
  // The write: 403 → the SDK re-authorizes with the challenge's scopes → it needs the user.
  const stepUp = await call(client, 'create_new_todo', { text: 'after step-up' }).then(
    () => assert.fail('the first write must need the user'),
    (e) => e,
  );
  assert.ok(stepUp instanceof UnauthorizedError, String(stepUp));
  assert.equal(provider.authorizations.length, 2);
  assert.equal(provider.requestedScopes[1], BOTH, 'the SDK asked for what the challenge named');
  assert.ok(provider.authorizations[1].consentShown, 'wider scopes than approved bring the consent page back');
  await transport.finishAuth(provider.takeCode());
  const made = await call(client, 'create_new_todo', { text: 'after step-up' });
  assert.notEqual(made.isError, true, made.content?.[0]?.text);
  assert.ok(made.structuredContent.todos.some((t) => t.text === 'after step-up'));
  assert.equal(transport.sessionId, session, 'the step-up kept the MCP session (README: a re-authorization of that client keeps its session)');
});

test('the TypeScript SDK 1.x with a stored refresh token refreshes instead of stepping up, and gives up; nothing is written', async () => {
  // typescript-sdk #2255: on a 403 the 1.x client's auth() refreshes the (read-only) token
  // first, so the retry is refused again and it throws. The server's part is the refusal.
  const provider = new ReadOnlyFirstProvider({ user: 'bob' });
  const { client } = await connectClient('http', stack.mcpUrl, provider);
  open.push(client);
  const err = await call(client, 'create_new_todo', { text: 'never written' }).then(() => null, (e) => e);
  assert.ok(err, 'the write did not go through');
  assert.match(String(err), /403/);
  const listed = await call(client, 'get_my_todo_list');
  assert.ok(!listed.structuredContent.todos.some((t) => t.text === 'never written'));
});
