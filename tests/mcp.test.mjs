// The MCP server end to end with the official TypeScript SDK client, as users meet it: from a
// cold stack the client gets a 401, discovers the protected resource and the authorization
// server, registers dynamically, sends the user through consent and the stand-in IdP (followed
// over HTTP, see support/sdk-oauth.mjs), exchanges the code and uses the tools, over Streamable
// HTTP and over legacy SSE; then refresh, silent reconnects, per-user isolation, and the
// Streamable HTTP rules that the SDK cannot express, with raw fetch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestStack } from './support/stack.mjs';
import { CookieJar, getMcpToken } from './support/flow.mjs';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';

const TOOL_NAMES = ['who_am_I', 'get_my_todo_list', 'create_new_todo', 'toggle_todo_status', 'deleteTodo'];
const LATEST = '2025-11-25';

let stack;
const open = []; // SDK clients to close at the end
let alice; // { provider, client, transport } over Streamable HTTP

before(async () => {
  stack = await startTestStack();
});

after(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => {})));
  await stack?.stop();
});

async function connect(kind, provider, url = kind === 'sse' ? stack.sseUrl : stack.mcpUrl) {
  const c = await connectClient(kind, url, provider);
  open.push(c.client);
  return c;
}

function text(result) {
  assert.equal(result.content?.[0]?.type, 'text', JSON.stringify(result));
  return result.content[0].text;
}

/** The todo list of a successful todo tool result; text and structuredContent must agree. */
function todosOf(result) {
  assert.notEqual(result.isError, true, text(result));
  assert.deepEqual(JSON.parse(text(result)), result.structuredContent);
  assert.ok(Array.isArray(result.structuredContent.todos));
  return result.structuredContent.todos;
}

const call = (client, name, args = {}) => client.callTool({ name, arguments: args });

// ---- the official SDK client ---------------------------------------------------------------

test('the SDK client signs in from the 401 alone over Streamable HTTP: discovery, registration, consent, IdP login', async () => {
  // What the client starts from: a 401 naming the protected resource metadata.
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
  });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer .*resource_metadata="[^"]+"/);

  const provider = new TestOAuthProvider({ user: 'alice', clientName: 'SDK Streamable HTTP client' });
  const c = await connect('http', provider);
  alice = { provider, ...c };
  assert.equal(c.signedIn, true);
  assert.equal(provider.registrations, 1, 'registered dynamically');
  assert.ok(provider.clientInformation().client_id);
  assert.equal(provider.authorizations.length, 1);
  const trip = provider.authorizations[0];
  assert.equal(trip.consentShown, true, 'first connection shows the consent page');
  assert.equal(trip.idpLogin, true, 'and the IdP login');
  assert.equal(new URL(trip.url).searchParams.get('resource'), stack.mcpUrl, 'resource indicator from the metadata');
  assert.deepEqual(provider.tokenRequests, ['authorization_code']);
  assert.ok(provider.tokens().refresh_token, 'a refresh token came with the access token');

  assert.ok(c.transport.sessionId, 'a session id was issued');
  const server = c.client.getServerVersion();
  assert.ok(server.name && server.version);
  assert.ok(c.client.getServerCapabilities().tools);
  assert.match(c.client.getInstructions() ?? '', /get_my_todo_list/);
  assert.deepEqual(await c.client.ping(), {});
});

test('tools/list is complete, with the original names, descriptions and schemas', async () => {
  const { tools, nextCursor } = await alice.client.listTools();
  assert.equal(nextCursor, undefined);
  assert.deepEqual(tools.map((t) => t.name), TOOL_NAMES);
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.equal(byName.who_am_I.description, 'Get the token for the current session info, helpful for debugging.');
  assert.equal(byName.get_my_todo_list.description, 'Get the Todo list for the current session from the Todo API.');
  assert.equal(byName.create_new_todo.description, 'Adds a new todo to the current sessions Todo list by calling the Todo API.');
  assert.equal(byName.toggle_todo_status.description, 'Marks an existing Todo as either completed or incomplete, using its ID and the target status');
  assert.equal(byName.deleteTodo.description, 'Deletes an existing Todo, using its ID');
  for (const name of ['who_am_I', 'get_my_todo_list']) {
    assert.equal(byName[name].inputSchema.type, 'object');
    assert.deepEqual(byName[name].inputSchema.properties ?? {}, {}, `${name} takes no arguments`);
  }
  assert.deepEqual(byName.create_new_todo.inputSchema.required, ['text']);
  assert.equal(byName.create_new_todo.inputSchema.properties.text.type, 'string');
  assert.deepEqual(byName.toggle_todo_status.inputSchema.required, ['todoId', 'completed']);
  assert.equal(byName.toggle_todo_status.inputSchema.properties.todoId.type, 'string');
  assert.equal(byName.toggle_todo_status.inputSchema.properties.completed.type, 'boolean');
  assert.deepEqual(byName.deleteTodo.inputSchema.required, ['todoId']);
  for (const name of TOOL_NAMES.slice(1)) {
    assert.deepEqual(byName[name].outputSchema.required, ['todos'], `${name} declares its output`);
  }
});

test('who_am_I describes the PingOne token audienced for the Todo API, without handing it out', async () => {
  const result = await call(alice.client, 'who_am_I');
  assert.notEqual(result.isError, true, text(result));
  const who = JSON.parse(text(result));
  assert.equal(who.user.preferred_username, 'alice');
  assert.ok(who.user.sub);
  const token = who.pingOneAccessToken;
  assert.equal(token.issuer, stack.issuer);
  const aud = [token.audience].flat();
  assert.ok(aud.includes(stack.todoApiUrl), `audience ${JSON.stringify(token.audience)} names the Todo API`);
  assert.ok(token.scopes.includes('todo_api:read') && token.scopes.includes('todo_api:write'), JSON.stringify(token.scopes));
  assert.ok(token.expiresInSeconds > 0);
  assert.match(token.tokenFingerprint, /^sha256:[0-9a-f]{16}$/);
  assert.equal(token.accessToken, undefined, 'the raw PingOne token is not shown');
  assert.equal(who.mcpSession.clientId, alice.provider.clientInformation().client_id);
  assert.doesNotMatch(text(result), /eyJ[\w-]+\.eyJ/, 'no JWT anywhere in the answer');
});

let aliceTodo; // { id, text } created over Streamable HTTP

test('todos are added, toggled, listed and deleted through the tools', async () => {
  const c = alice.client;
  const before = todosOf(await call(c, 'get_my_todo_list'));
  const label = `buy milk ${randomBytes(4).toString('hex')}`;
  const created = todosOf(await call(c, 'create_new_todo', { text: label }));
  assert.equal(created.length, before.length + 1);
  const todo = created.find((t) => t.text === label);
  assert.ok(todo, JSON.stringify(created));
  assert.equal(todo.completed, false);

  const done = todosOf(await call(c, 'toggle_todo_status', { todoId: todo.id, completed: true }));
  assert.equal(done.find((t) => t.id === todo.id).completed, true);
  const listed = todosOf(await call(c, 'get_my_todo_list'));
  assert.equal(listed.find((t) => t.id === todo.id).completed, true, 'the change persisted');
  const undone = todosOf(await call(c, 'toggle_todo_status', { todoId: todo.id, completed: false }));
  assert.equal(undone.find((t) => t.id === todo.id).completed, false);

  const other = `walk the dog ${randomBytes(4).toString('hex')}`;
  const two = todosOf(await call(c, 'create_new_todo', { text: other }));
  const otherId = two.find((t) => t.text === other).id;
  const afterDelete = todosOf(await call(c, 'deleteTodo', { todoId: otherId }));
  assert.equal(afterDelete.some((t) => t.id === otherId), false);
  assert.ok(afterDelete.some((t) => t.id === todo.id), 'only that todo was deleted');

  // Failures are results a person can act on, not protocol errors.
  const again = await call(c, 'deleteTodo', { todoId: otherId });
  assert.equal(again.isError, true);
  assert.match(text(again), /no todo/i);
  const invalid = await call(c, 'toggle_todo_status', { todoId: todo.id });
  assert.equal(invalid.isError, true);
  assert.match(text(invalid), /completed/);
  await assert.rejects(call(c, 'no_such_tool'), (e) => e.code === -32602);
  aliceTodo = todo;
});

test('the SDK client over legacy SSE signs in the same way and sees the same user\'s todos', async () => {
  assert.ok(aliceTodo, 'needs the todo created over Streamable HTTP');
  const provider = new TestOAuthProvider({ user: 'alice', clientName: 'SDK SSE client' });
  const c = await connect('sse', provider);
  assert.equal(c.signedIn, true);
  assert.equal(provider.registrations, 1);
  assert.equal(provider.authorizations[0].consentShown, true, 'a new client on a new browser is asked');
  assert.deepEqual((await c.client.listTools()).tools.map((t) => t.name), TOOL_NAMES);
  const who = JSON.parse(text(await call(c.client, 'who_am_I')));
  assert.equal(who.user.preferred_username, 'alice');
  assert.notEqual(who.mcpSession.clientId, alice.provider.clientInformation().client_id, 'another client');
  const listed = todosOf(await call(c.client, 'get_my_todo_list'));
  assert.ok(listed.some((t) => t.id === aliceTodo.id && t.text === aliceTodo.text));

  const label = `over sse ${randomBytes(4).toString('hex')}`;
  const created = todosOf(await call(c.client, 'create_new_todo', { text: label }));
  const id = created.find((t) => t.text === label).id;
  todosOf(await call(c.client, 'toggle_todo_status', { todoId: id, completed: true }));
  const after = todosOf(await call(c.client, 'deleteTodo', { todoId: id }));
  assert.equal(after.some((t) => t.id === id), false);
});

// Expired access tokens are refreshed mid-session, with real expiry (MCP tokens capped at a
// PingOne token of a few seconds), over both transports: tests/lifecycle.test.mjs.

test('reconnecting with the same client and cookies is silent; cleared cookies bring consent back', async () => {
  const clientInformation = alice.provider.clientInformation();

  // Same client registration, same browser cookies, no tokens (e.g. the app restarted).
  const same = new TestOAuthProvider({ user: 'alice', jar: alice.provider.jar, clientInformation });
  const c1 = await connect('http', same);
  assert.equal(c1.signedIn, true);
  assert.equal(same.registrations, 0, 'no second registration');
  assert.equal(same.authorizations.length, 1);
  assert.equal(same.authorizations[0].consentShown, false, 'no consent page');
  assert.equal(same.authorizations[0].authorizeStatus, 302, '/authorize redirected at once');
  assert.ok(todosOf(await call(c1.client, 'get_my_todo_list')).some((t) => t.id === aliceTodo.id));
  // The new grant replaced the earlier one of the same user and client.
  const superseded = await rawPost(alice.provider.tokens().access_token, initializeMessage());
  assert.equal(superseded.status, 401, 'the replaced grant\'s token is revoked');
  await superseded.arrayBuffer();

  // Same client, but the browser's cookies were cleared.
  const cleared = new TestOAuthProvider({ user: 'alice', jar: new CookieJar(), clientInformation });
  const c2 = await connect('http', cleared);
  assert.equal(cleared.registrations, 0);
  assert.equal(cleared.authorizations[0].consentShown, true, 'consent is asked again');
  assert.equal(cleared.authorizations[0].idpLogin, true);
  assert.ok(todosOf(await call(c2.client, 'get_my_todo_list')).some((t) => t.id === aliceTodo.id));
  alice = { provider: cleared, ...c2 };
});

test('another user never sees, changes or deletes alice\'s todos', async () => {
  const provider = new TestOAuthProvider({ user: 'bob', clientName: 'Bob\'s client' });
  const bob = await connect('http', provider);
  const who = JSON.parse(text(await call(bob.client, 'who_am_I')));
  assert.equal(who.user.preferred_username, 'bob');

  const bobsList = todosOf(await call(bob.client, 'get_my_todo_list'));
  assert.equal(bobsList.some((t) => t.id === aliceTodo.id || t.text === aliceTodo.text), false);
  const label = `bob's todo ${randomBytes(4).toString('hex')}`;
  const bobs = todosOf(await call(bob.client, 'create_new_todo', { text: label }));
  const bobsTodo = bobs.find((t) => t.text === label);

  const toggle = await call(bob.client, 'toggle_todo_status', { todoId: aliceTodo.id, completed: true });
  assert.equal(toggle.isError, true, text(toggle));
  const del = await call(bob.client, 'deleteTodo', { todoId: aliceTodo.id });
  assert.equal(del.isError, true, text(del));

  const alices = todosOf(await call(alice.client, 'get_my_todo_list'));
  const mine = alices.find((t) => t.id === aliceTodo.id);
  assert.ok(mine, 'alice still has her todo');
  assert.equal(mine.completed, false, 'bob did not toggle it');
  assert.equal(alices.some((t) => t.text === bobsTodo.text), false, 'alice does not see bob\'s todo');
  const aliceOnBobs = await call(alice.client, 'deleteTodo', { todoId: bobsTodo.id });
  assert.equal(aliceOnBobs.isError, true);
  assert.ok(todosOf(await call(bob.client, 'get_my_todo_list')).some((t) => t.id === bobsTodo.id));

  // The SDK ends its session with DELETE; the id is dead afterwards.
  const sessionId = bob.transport.sessionId;
  await bob.transport.terminateSession();
  assert.equal(bob.transport.sessionId, undefined);
  const gone = await rawPost(provider.tokens().access_token, list(), { session: sessionId });
  assert.equal(gone.status, 404);
  await gone.arrayBuffer();
});

// One user's todos live in one Durable Object of the Todo API, so calls from many sessions at
// once all land (README, security notes: "32 simultaneous create_new_todo calls all land").
test('32 SDK sessions of one user call create_new_todo at once: every todo lands, exactly once', async () => {
  const signIn = new TestOAuthProvider({ user: 'alice', clientName: 'SDK concurrency client' });
  const first = await connect('http', signIn);
  assert.equal(first.signedIn, true);
  const before = todosOf(await call(first.client, 'get_my_todo_list'));
  // 31 more SDK clients of that app and sign-in (its registration and tokens), as parallel
  // agents of one user would be: each opens its own MCP session, none signs in again.
  const others = await Promise.all(Array.from({ length: 31 }, async () => {
    const provider = new TestOAuthProvider({ user: 'alice', clientInformation: signIn.clientInformation() });
    provider.saveTokens(signIn.tokens());
    const c = await connect('http', provider);
    assert.equal(c.signedIn, false, 'the shared token was accepted');
    return c;
  }));
  const sessions = [first, ...others];
  assert.equal(new Set(sessions.map((c) => c.transport.sessionId)).size, 32, '32 distinct MCP sessions');

  const run = randomBytes(4).toString('hex');
  const labels = sessions.map((_, i) => `concurrent ${run} #${String(i).padStart(2, '0')}`);
  const results = await Promise.all(sessions.map((c, i) => call(c.client, 'create_new_todo', { text: labels[i] })));
  const answered = results.map((r, i) => {
    const todos = todosOf(r);
    assert.ok(todos.some((t) => t.text === labels[i]), `session ${i}'s answer lists its own todo`);
    return todos.length;
  });
  assert.equal(Math.max(...answered), before.length + 32, 'the last create to run saw all 32');

  const after = todosOf(await call(first.client, 'get_my_todo_list'));
  for (const label of labels) {
    assert.equal(after.filter((t) => t.text === label).length, 1, `"${label}" is listed exactly once`);
  }
  assert.equal(after.length, before.length + 32, 'no todo lost, none duplicated');
  assert.equal(new Set(after.map((t) => t.id)).size, after.length, 'ids are unique');
  for (const t of before) assert.deepEqual(after.find((a) => a.id === t.id), t, 'earlier todos are untouched');
  await Promise.all(sessions.map((c) => c.transport.terminateSession()));
});

// ---- Streamable HTTP rules, with raw fetch -------------------------------------------------

let tokens; // { alice, bob } bearer tokens from the real flow

function initializeMessage(id = 1) {
  return {
    jsonrpc: '2.0', id, method: 'initialize',
    params: { protocolVersion: LATEST, capabilities: {}, clientInfo: { name: 'raw-fetch', version: '1.0.0' } },
  };
}

function rawPost(token, message, { session, headers = {}, body } = {}) {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (session) h['mcp-session-id'] = session;
  return fetch(stack.mcpUrl, { method: 'POST', headers: h, body: body ?? JSON.stringify(message) });
}

/** The JSON-RPC messages of a response, whether JSON or an SSE stream. */
async function messages(res) {
  const type = res.headers.get('content-type') ?? '';
  const raw = await res.text();
  if (type.startsWith('text/event-stream')) {
    return raw.split('\n\n').flatMap((ev) => {
      const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      return data ? [JSON.parse(data)] : [];
    });
  }
  return raw ? [JSON.parse(raw)] : [];
}

/** initialize + notifications/initialized; returns the session id. */
async function newSession(token) {
  const res = await rawPost(token, initializeMessage());
  assert.equal(res.status, 200, await res.clone().text());
  const session = res.headers.get('mcp-session-id');
  assert.ok(session);
  const [answer] = await messages(res);
  assert.equal(answer.result.protocolVersion, LATEST);
  const note = await rawPost(token, { jsonrpc: '2.0', method: 'notifications/initialized' }, {
    session, headers: { 'mcp-protocol-version': LATEST },
  });
  assert.equal(note.status, 202);
  assert.equal(await note.text(), '');
  return session;
}

const list = (id = 2) => ({ jsonrpc: '2.0', id, method: 'tools/list', params: {} });

test('raw: tokens from the real flow; a session is created by initialize only', async () => {
  tokens = {
    alice: (await getMcpToken(stack, { user: 'alice' })).access_token,
    bob: (await getMcpToken(stack, { user: 'bob' })).access_token,
  };
  const session = await newSession(tokens.alice);
  assert.match(session, /^[\x21-\x7e]{32,}$/);
  const res = await rawPost(tokens.alice, list(), { session, headers: { 'mcp-protocol-version': LATEST } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('mcp-session-id'), session);
  const [answer] = await messages(res);
  assert.deepEqual(answer.result.tools.map((t) => t.name), TOOL_NAMES);
});

test('raw: a request without Mcp-Session-Id is 400; an unknown session is 404', async () => {
  const missing = await rawPost(tokens.alice, list());
  assert.equal(missing.status, 400);
  const [e1] = await messages(missing);
  assert.match(e1.error.message, /Mcp-Session-Id/i);

  const unknown = await rawPost(tokens.alice, list(), { session: randomBytes(32).toString('base64url') });
  assert.equal(unknown.status, 404);
  const [e2] = await messages(unknown);
  assert.equal(e2.jsonrpc, '2.0');
  assert.ok(e2.error);
});

test('raw: DELETE ends the session, which then answers 404', async () => {
  const session = await newSession(tokens.alice);
  const del = await fetch(stack.mcpUrl, {
    method: 'DELETE', headers: { authorization: `Bearer ${tokens.alice}`, 'mcp-session-id': session },
  });
  assert.ok(del.status >= 200 && del.status < 300, `DELETE answered ${del.status}`);
  const after = await rawPost(tokens.alice, list(), { session });
  assert.equal(after.status, 404);
  const again = await fetch(stack.mcpUrl, {
    method: 'DELETE', headers: { authorization: `Bearer ${tokens.alice}`, 'mcp-session-id': session },
  });
  assert.equal(again.status, 404);
  const noId = await fetch(stack.mcpUrl, { method: 'DELETE', headers: { authorization: `Bearer ${tokens.alice}` } });
  assert.equal(noId.status, 405, 'nothing to end without a session (the modern revision\'s answer to DELETE)');
});

test('raw: answers are an SSE stream or JSON as Accept allows; an Accept naming neither is 406', async () => {
  const session = await newSession(tokens.alice);
  const both = await rawPost(tokens.alice, list(), { session });
  assert.match(both.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(both.headers.get('cache-control'), 'no-cache, no-transform');
  assert.deepEqual((await messages(both))[0].result.tools.map((t) => t.name), TOOL_NAMES);
  const json = await rawPost(tokens.alice, list(), { session, headers: { accept: 'application/json' } });
  assert.match(json.headers.get('content-type'), /^application\/json/);
  assert.equal((await json.json()).id, 2);
  // Some proxies send only text/event-stream: accepted.
  const sseOnly = await rawPost(tokens.alice, list(), { session, headers: { accept: 'text/event-stream' } });
  assert.equal(sseOnly.status, 200);
  assert.equal((await messages(sseOnly)).length, 1);
  const html = await rawPost(tokens.alice, list(), { session, headers: { accept: 'text/html' } });
  assert.equal(html.status, 406);
  await html.arrayBuffer();
});

test('raw: GET /mcp is 405 (no server stream), never 404', async () => {
  const session = await newSession(tokens.alice);
  const res = await fetch(stack.mcpUrl, {
    headers: { authorization: `Bearer ${tokens.alice}`, accept: 'text/event-stream', 'mcp-session-id': session },
  });
  assert.equal(res.status, 405);
  assert.match(res.headers.get('allow') ?? '', /POST/);
  await res.arrayBuffer();
});

test('raw: bad JSON is -32700 with 400; a wrong Content-Type is 415; an unsupported protocol version is 400', async () => {
  const session = await newSession(tokens.alice);
  const bad = await rawPost(tokens.alice, null, { session, body: '{"jsonrpc": "2.0", "id": 1, "method": ' });
  assert.equal(bad.status, 400);
  const [e] = await messages(bad);
  assert.equal(e.error.code, -32700);
  assert.equal(e.id, null);

  const plain = await rawPost(tokens.alice, list(), { session, headers: { 'content-type': 'text/plain' } });
  assert.equal(plain.status, 415);
  await plain.arrayBuffer();

  const version = await rawPost(tokens.alice, list(), { session, headers: { 'mcp-protocol-version': '1999-01-01' } });
  assert.equal(version.status, 400);
  await version.arrayBuffer();

  // None of that hurt the session.
  const ok = await rawPost(tokens.alice, list(), { session });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
});

test('raw: a foreign Origin is 403; a loopback Origin (MCP Inspector) gets CORS with the session header exposed', async () => {
  const foreign = await rawPost(tokens.alice, initializeMessage(), { headers: { origin: 'https://evil.example' } });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.headers.get('mcp-session-id'), null, 'no session was created');
  await foreign.arrayBuffer();

  const inspector = await rawPost(tokens.alice, initializeMessage(), { headers: { origin: 'http://localhost:6274' } });
  assert.equal(inspector.status, 200);
  assert.ok(inspector.headers.get('mcp-session-id'));
  assert.ok(inspector.headers.get('access-control-allow-origin'));
  assert.match(inspector.headers.get('access-control-expose-headers') ?? '', /mcp-session-id/i);
  await inspector.arrayBuffer();

  // Preflight before auth, and the 401 itself readable by the browser client.
  const pre = await fetch(stack.mcpUrl, {
    method: 'OPTIONS',
    headers: {
      origin: 'http://localhost:6274', 'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version',
    },
  });
  assert.ok(pre.status === 204 || pre.status === 200, `preflight answered ${pre.status}`);
  assert.match(pre.headers.get('access-control-allow-headers') ?? '', /mcp-protocol-version/i);
  const unauth = await rawPost(null, initializeMessage(), { headers: { origin: 'http://localhost:6274' } });
  assert.equal(unauth.status, 401);
  assert.match(unauth.headers.get('access-control-expose-headers') ?? '', /www-authenticate/i);
  await unauth.arrayBuffer();
});

test('raw: another user\'s token on alice\'s session is 404, and alice\'s session goes on', async () => {
  const session = await newSession(tokens.alice);
  const res = await rawPost(tokens.bob, list(), { session, headers: { 'mcp-protocol-version': LATEST } });
  assert.equal(res.status, 404);
  await res.arrayBuffer();
  const del = await fetch(stack.mcpUrl, {
    method: 'DELETE', headers: { authorization: `Bearer ${tokens.bob}`, 'mcp-session-id': session },
  });
  assert.equal(del.status, 404, 'bob cannot end alice\'s session either');
  const call = {
    jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'who_am_I', arguments: {} },
  };
  const mine = await rawPost(tokens.alice, call, { session, headers: { 'mcp-protocol-version': LATEST } });
  assert.equal(mine.status, 200);
  const [answer] = await messages(mine);
  assert.equal(JSON.parse(answer.result.content[0].text).user.preferred_username, 'alice');
});
