// The Todo API worker in workerd (wrangler dev, local Durable Objects) with the stand-in IdP:
// real access tokens from an authorization-code + PKCE sign-in over HTTP, every route, every
// error case, per-user isolation, concurrent writes, the list cap and signing-key rotation.
//
// The IdP runs in this process (so the test can rotate its key and count its JWKS requests);
// the Todo API is started by the same stack code `scripts/dev` uses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startIdp } from '../local/idp/server.mjs';
import { decodeJwt, loginAndGetTokens, signToken } from './support/idp.mjs';
import { freePort, ROOT, startTestStack } from './support/stack.mjs';

const apiPort = await freePort();
const API = `http://127.0.0.1:${apiPort}`;
const REDIRECT = 'http://127.0.0.1:40125/callback';
const CLIENT = { clientId: 'mcp-worker', clientSecret: 'todo-api-test-secret' };
const stateDir = join(ROOT, 'test-output', 'state', `todo-api-${Date.now()}-${apiPort}`);
const idpStateDir = join(stateDir, 'idp');

/** Times at which the Todo API fetched the IdP's JWKS. */
const jwksFetches = [];
const idp = await startIdp({
  port: 0, stateDir: idpStateDir, clientSecret: CLIENT.clientSecret, extraRedirectUris: [REDIRECT], apiIdentifier: API,
  log: (line) => { if (/^GET \/as\/jwks /.test(line)) jwksFetches.push(Date.now()); },
});
let stack;
try {
  stack = await startTestStack({
    idp: false, mcp: false, ports: { todoApi: apiPort }, stateDir,
    todoApiVars: { API_ISSUER: idp.issuer, API_AUDIENCE: API },
  });
} catch (err) {
  await idp.close();
  throw err;
}
after(async () => {
  await stack.stop();
  await idp.close();
});

const now = () => Math.floor(Date.now() / 1000);
const login = (user, scope) => loginAndGetTokens({
  issuer: idp.issuer, ...CLIENT, redirectUri: REDIRECT, user, resource: API,
  ...(scope ? { scope } : {}),
});
/** Claims of a token the IdP could have issued, signed with its key unless told otherwise. */
const claims = (over = {}) => ({
  iss: idp.issuer, aud: API, sub: `user-${randomBytes(6).toString('hex')}`, client_id: CLIENT.clientId,
  scope: 'todo_api:read todo_api:write', iat: now(), exp: now() + 600, jti: randomBytes(8).toString('hex'), ...over,
});
const forge = (c = claims(), opts = {}) => signToken(c, { key: 'idp', stateDir: idpStateDir, ...opts });

/** One request to the Todo API; `body` objects are sent as JSON, strings as they are. */
async function call(method, path, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    h['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${API}${path}`, { method, headers: h, body: payload });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path} → ${res.status} ${text}`);
  assert.notEqual(json, undefined, `${method} ${path} answered non-JSON: ${text}`);
  return { status: res.status, headers: res.headers, json, text };
}

function assertList(r, expectedTexts) {
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['todos']);
  for (const t of r.json.todos) {
    assert.deepEqual(Object.keys(t).sort(), ['completed', 'id', 'text']);
    assert.equal(typeof t.id, 'string');
    assert.equal(typeof t.text, 'string');
    assert.equal(typeof t.completed, 'boolean');
  }
  if (expectedTexts) assert.deepEqual(r.json.todos.map((t) => t.text), expectedTexts);
  return r.json.todos;
}

function assertUnauthorized(r, token, descriptionPattern) {
  assert.equal(r.status, 401, r.text);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="todo-api", error="invalid_token"/);
  assert.equal(r.json.error, 'invalid_token');
  if (descriptionPattern) assert.match(r.json.error_description, descriptionPattern);
  if (token) {
    assert.ok(!r.text.includes(token), 'the token is echoed');
    assert.ok(!(r.headers.get('www-authenticate') ?? '').includes(token), 'the token is echoed');
  }
}

let alice;
let bob;
before(async () => {
  [alice, bob] = await Promise.all([login('alice'), login('bob')]);
});

test('GET /health answers without a token', async () => {
  const r = await call('GET', '/health');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { name: 'todo-api', version: '0.1.0', status: 'ok' });
});

test('real tokens from the IdP are RS256 JWTs for this API', () => {
  const { header, payload } = decodeJwt(alice.access_token);
  assert.equal(header.alg, 'RS256');
  assert.equal(payload.aud, API);
  assert.equal(payload.iss, idp.issuer);
});

describe('every route with a real token', () => {
  let ids;
  test('GET /api/todos starts empty', async () => {
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), []);
  });

  test('POST /api/todos adds and answers the whole list', async () => {
    const first = await call('POST', '/api/todos', { token: alice.access_token, body: { todoText: 'buy milk' } });
    assertList(first, ['buy milk']);
    assert.equal(first.json.todos[0].completed, false);
    const second = await call('POST', '/api/todos', { token: alice.access_token, body: { todoText: '  walk the dog  ' } });
    ids = assertList(second, ['buy milk', 'walk the dog']).map((t) => t.id);
    assert.notEqual(ids[0], ids[1]);
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk', 'walk the dog']);
  });

  test('PATCH /api/todos/:id sets completed; completed todos sort last', async () => {
    const r = await call('PATCH', `/api/todos/${ids[0]}`, { token: alice.access_token, body: { completed: true } });
    const todos = assertList(r, ['walk the dog', 'buy milk']);
    assert.deepEqual(todos.map((t) => t.completed), [false, true]);
    const back = await call('PATCH', `/api/todos/${encodeURIComponent(ids[0])}`, { token: alice.access_token, body: { completed: false } });
    assertList(back, ['buy milk', 'walk the dog']);
  });

  test('DELETE /api/todos/:id removes it', async () => {
    assertList(await call('DELETE', `/api/todos/${ids[1]}`, { token: alice.access_token }), ['buy milk']);
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
  });

  test('an unknown id is a JSON 404 on PATCH and DELETE', async () => {
    for (const [method, body] of [['PATCH', { completed: true }], ['DELETE', undefined]]) {
      for (const id of [ids[1], '1', 'no-such-id', encodeURIComponent('a/../b?c#d')]) {
        const r = await call(method, `/api/todos/${id}`, { token: alice.access_token, body });
        assert.equal(r.status, 404, `${method} ${id}: ${r.text}`);
        assert.equal(r.json.error, 'not_found');
      }
    }
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
  });
});

describe('tokens that are refused (401 invalid_token)', () => {
  const cases = {
    'no Authorization header': () => null,
    'an empty bearer token': () => '',
    'a garbage token': () => 'not-a-jwt',
    'three parts of garbage': () => 'aaa.bbb.ccc',
    'a token for another audience': () => forge(claims({ aud: 'http://127.0.0.1:1/other-api' })),
    'a token whose aud array lacks this API': () => forge(claims({ aud: ['http://127.0.0.1:1/other-api', 'x'] })),
    'an expired token': () => forge(claims({ iat: now() - 7200, exp: now() - 3600 })),
    'a token not valid yet': () => forge(claims({ nbf: now() + 3600 })),
    'a token from another issuer': () => forge(claims({ iss: 'http://127.0.0.1:1/as' })),
    'a token without sub': () => forge(claims({ sub: undefined })),
    'a token signed by an unknown key': () => signToken(claims(), { key: 'foreign' }),
    'an unknown key claiming the IdP\'s kid': () => signToken(claims(), { key: 'foreign', kid: decodeJwt(alice.access_token).header.kid }),
    'an alg none token': () => forge(claims(), { alg: 'none' }),
    'HS256 keyed with the IdP\'s public key': () => forge(claims(), { alg: 'HS256' }),
    'PS256 (not RS256) with the IdP\'s key': () => forge(claims(), { alg: 'PS256' }),
    'a tampered real token': () => {
      const [h, , s] = alice.access_token.split('.');
      const p = Buffer.from(JSON.stringify({ ...decodeJwt(alice.access_token).payload, sub: 'someone-else' })).toString('base64url');
      return `${h}.${p}.${s}`;
    },
  };
  for (const [name, make] of Object.entries(cases)) {
    test(`rejects ${name}`, async () => {
      const token = make();
      const headers = token === null ? {} : { authorization: `Bearer ${token}` };
      for (const [method, path, body] of [['GET', '/api/todos'], ['POST', '/api/todos', { todoText: 'x' }], ['DELETE', '/api/todos/1']]) {
        const r = await call(method, path, { headers, body });
        assertUnauthorized(r, token || null);
      }
    });
  }

  test('the reasons are specific and never contain the token', async () => {
    const expired = forge(claims({ iat: now() - 7200, exp: now() - 3600 }));
    assertUnauthorized(await call('GET', '/api/todos', { token: expired }), expired, /expired/);
    const aud = forge(claims({ aud: 'http://127.0.0.1:1/other-api' }));
    assertUnauthorized(await call('GET', '/api/todos', { token: aud }), aud, /aud/);
    const none = forge(claims(), { alg: 'none' });
    assertUnauthorized(await call('GET', '/api/todos', { token: none }), none, /RS256/);
    assertUnauthorized(await call('GET', '/api/todos', {}), null, /Missing/);
    assertUnauthorized(await call('GET', '/api/todos', { headers: { authorization: 'Basic YWxpY2U6YWxpY2U=' } }), null, /Missing/);
  });

  test('a valid forged token (IdP key, right claims) is accepted: the refusals above are about the claims', async () => {
    assertList(await call('GET', '/api/todos', { token: forge() }), []);
    assertList(await call('GET', '/api/todos', { token: forge(claims({ aud: ['http://127.0.0.1:1/x', API] })) }), []);
    assertList(await call('GET', '/api/todos', { token: forge(claims({ scope: ['todo_api:read'] })) }), []);
  });
});

describe('scopes (403 insufficient_scope)', () => {
  let reader;
  before(async () => {
    reader = await login('alice', 'openid profile todo_api:read');
    assert.equal(decodeJwt(reader.access_token).payload.scope.split(' ').includes('todo_api:write'), false);
  });

  test('a read-only token can read', async () => {
    assertList(await call('GET', '/api/todos', { token: reader.access_token }), ['buy milk']);
  });

  test('a read-only token cannot write', async () => {
    const id = (await call('GET', '/api/todos', { token: reader.access_token })).json.todos[0].id;
    for (const [method, path, body] of [
      ['POST', '/api/todos', { todoText: 'sneaky' }],
      ['PATCH', `/api/todos/${id}`, { completed: true }],
      ['DELETE', `/api/todos/${id}`],
    ]) {
      const r = await call(method, path, { token: reader.access_token, body });
      assert.equal(r.status, 403, `${method}: ${r.text}`);
      const challenge = r.headers.get('www-authenticate');
      assert.match(challenge, /^Bearer realm="todo-api", error="insufficient_scope", scope="todo_api:write"/);
      assert.equal(r.json.error, 'insufficient_scope');
      assert.equal(r.json.scope, 'todo_api:write');
      assert.match(r.json.error_description, /todo_api:write/);
    }
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
  });

  test('a token without the read scope cannot read', async () => {
    const r = await call('GET', '/api/todos', { token: forge(claims({ scope: 'openid profile' })) });
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate'), /scope="todo_api:read"/);
    assert.equal(r.json.scope, 'todo_api:read');
  });
});

describe('bad requests', () => {
  const post = (body, headers) => call('POST', '/api/todos', { token: alice.access_token, body, headers });

  test('malformed JSON and wrong shapes are 400', async () => {
    for (const [body, pattern] of [
      ['{"todoText": ', /not valid JSON/],
      ['todoText=milk', /not valid JSON/],
      ['', /JSON object/],
      ['[]', /JSON object/],
      ['"milk"', /JSON object/],
      [{}, /todoText is required/],
      [{ text: 'milk' }, /todoText is required/],
      [{ todoText: 42 }, /todoText must be a string/],
      [{ todoText: ['milk'] }, /todoText must be a string/],
      [{ todoText: '   ' }, /must not be empty/],
      [{ todoText: 'x'.repeat(501) }, /at most 500 characters/],
    ]) {
      const r = await post(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error, 'invalid_request');
      assert.match(r.json.error_description, pattern);
    }
    // 500 characters (multi-byte ones too) are fine.
    const ok = await post({ todoText: 'é'.repeat(500) });
    assert.equal(ok.status, 200, ok.text);
    const id = ok.json.todos.find((t) => t.text.startsWith('é')).id;
    assertList(await call('DELETE', `/api/todos/${id}`, { token: alice.access_token }), ['buy milk']);
  });

  test('PATCH needs a boolean completed', async () => {
    const id = (await call('GET', '/api/todos', { token: alice.access_token })).json.todos[0].id;
    for (const [body, pattern] of [
      [{}, /completed is required/],
      [{ completed: 'true' }, /true or false/],
      [{ completed: 1 }, /true or false/],
      ['{', /not valid JSON/],
    ]) {
      const r = await call('PATCH', `/api/todos/${id}`, { token: alice.access_token, body });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error_description, pattern);
    }
  });

  test('a body over 16 KiB is 413', async () => {
    const r = await post({ todoText: 'x'.repeat(20_000) });
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.error, 'invalid_request');
    // Streamed without a Content-Length: cut off while reading.
    const chunk = new TextEncoder().encode('x'.repeat(4096));
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent++ < 64) controller.enqueue(chunk); else controller.close();
      },
    });
    const res = await fetch(`${API}/api/todos`, {
      method: 'POST', body, duplex: 'half',
      headers: { authorization: `Bearer ${alice.access_token}`, 'content-type': 'application/json' },
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error, 'invalid_request');
  });

  test('unknown paths are 404 and wrong methods 405 with Allow, all JSON', async () => {
    for (const path of ['/', '/api', '/api/todo', '/api/todos/', '/api/todos/1/2', '/nope']) {
      const r = await call('GET', path, { token: alice.access_token });
      assert.equal(r.status, 404, `${path}: ${r.text}`);
      assert.equal(r.json.error, 'not_found');
    }
    for (const [method, path, allow] of [
      ['PUT', '/api/todos', 'GET, POST'], ['DELETE', '/api/todos', 'GET, POST'],
      ['GET', '/api/todos/1', 'PATCH, DELETE'], ['POST', '/api/todos/1', 'PATCH, DELETE'], ['POST', '/health', 'GET'],
    ]) {
      const r = await call(method, path, { token: alice.access_token });
      assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.get('allow'), allow);
      assert.equal(r.json.error, 'method_not_allowed');
    }
  });

  test('nothing above changed the list', async () => {
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
  });
});

describe('users and concurrency', () => {
  test("another user never sees or changes alice's todos", async () => {
    const aliceTodos = assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
    assertList(await call('GET', '/api/todos', { token: bob.access_token }), []);
    const r = await call('PATCH', `/api/todos/${aliceTodos[0].id}`, { token: bob.access_token, body: { completed: true } });
    assert.equal(r.status, 404);
    assert.equal((await call('DELETE', `/api/todos/${aliceTodos[0].id}`, { token: bob.access_token })).status, 404);
    assertList(await call('POST', '/api/todos', { token: bob.access_token, body: { todoText: "bob's" } }), ["bob's"]);
    const still = assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
    assert.deepEqual(still, aliceTodos);
  });

  test('32 simultaneous creates by one user all land', async () => {
    const token = forge(claims({ sub: `concurrent-${randomBytes(4).toString('hex')}` }));
    const texts = Array.from({ length: 32 }, (_, i) => `todo ${String(i).padStart(2, '0')}`);
    const answers = await Promise.all(texts.map((todoText) => call('POST', '/api/todos', { token, body: { todoText } })));
    for (const r of answers) assert.equal(r.status, 200, r.text);
    const todos = assertList(await call('GET', '/api/todos', { token }));
    assert.equal(todos.length, 32);
    assert.deepEqual(todos.map((t) => t.text).sort(), texts);
    assert.equal(new Set(todos.map((t) => t.id)).size, 32, 'ids are unique');
    // Sorted by id, i.e. by creation.
    const byId = [...todos].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    assert.deepEqual(todos, byId);
    // The last answer to arrive knew about every todo created before it.
    assert.equal(Math.max(...answers.map((r) => r.json.todos.length)), 32);
  });

  test('simultaneous toggles and deletes of one user are all applied', async () => {
    const token = forge(claims({ sub: `mixed-${randomBytes(4).toString('hex')}` }));
    for (let i = 0; i < 16; i++) await call('POST', '/api/todos', { token, body: { todoText: `t${i}` } });
    const todos = (await call('GET', '/api/todos', { token })).json.todos;
    await Promise.all([
      ...todos.slice(0, 8).map((t) => call('PATCH', `/api/todos/${t.id}`, { token, body: { completed: true } })),
      ...todos.slice(8).map((t) => call('DELETE', `/api/todos/${t.id}`, { token })),
      ...Array.from({ length: 8 }, (_, i) => call('POST', '/api/todos', { token, body: { todoText: `n${i}` } })),
    ]);
    const after = assertList(await call('GET', '/api/todos', { token }));
    assert.equal(after.length, 16);
    assert.deepEqual(after.filter((t) => t.completed).map((t) => t.text), todos.slice(0, 8).map((t) => t.text));
    assert.deepEqual(after.filter((t) => !t.completed).map((t) => t.text).sort(), Array.from({ length: 8 }, (_, i) => `n${i}`));
  });

  test('a list holds at most 500 todos', async () => {
    const token = forge(claims({ sub: `full-${randomBytes(4).toString('hex')}` }));
    for (let batch = 0; batch < 10; batch++) {
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => call('POST', '/api/todos', { token, body: { todoText: `${batch}-${i}` } })));
      for (const r of rs) assert.equal(r.status, 200, r.text);
    }
    const r = await call('POST', '/api/todos', { token, body: { todoText: 'one too many' } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error_description, /full/);
    assert.equal((await call('GET', '/api/todos', { token })).json.todos.length, 500);
  });
});

describe('signing keys', () => {
  test('tokens with made-up key ids do not make the API hammer the IdP', async () => {
    const before = jwksFetches.length;
    const started = Date.now();
    for (let i = 0; i < 10; i++) {
      const token = signToken(claims(), { key: 'foreign', kid: `made-up-${i}` });
      assertUnauthorized(await call('GET', '/api/todos', { token }), token);
    }
    // At most one refetch per 5 s cooldown, however long the ten requests took.
    const allowed = 1 + Math.floor((Date.now() - started) / 5_000);
    assert.ok(jwksFetches.length - before <= allowed, `${jwksFetches.length - before} JWKS fetches for 10 unknown kids (at most ${allowed})`);
  });

  test('after a key rotation, tokens of the new key and of the old one are accepted', async () => {
    const oldKid = decodeJwt(alice.access_token).header.kid;
    const newKid = idp.rotateKey();
    assert.notEqual(newKid, oldKid);
    const fresh = await login('alice');
    assert.equal(decodeJwt(fresh.access_token).header.kid, newKid);
    const fetchesBefore = jwksFetches.length;
    // The new kid is unknown to the API: it refetches the keys once its refetch cooldown (5 s
    // after the last fetch, which may be the previous test's) allows, and refuses the token
    // without asking the IdP until then. Ask until it is accepted.
    const deadline = Date.now() + 30_000;
    let r = await call('GET', '/api/todos', { token: fresh.access_token });
    while (r.status !== 200 && Date.now() < deadline) {
      assertUnauthorized(r, fresh.access_token);
      await new Promise((res) => setTimeout(res, 200));
      r = await call('GET', '/api/todos', { token: fresh.access_token });
    }
    assertList(r, ['buy milk']);
    assert.equal(jwksFetches.length, fetchesBefore + 1, 'the unknown kid caused one refetch, however often it was sent');
    assertList(await call('GET', '/api/todos', { token: alice.access_token }), ['buy milk']);
    assertList(await call('POST', '/api/todos', { token: fresh.access_token, body: { todoText: 'after rotation' } }), ['buy milk', 'after rotation']);
    assert.equal(jwksFetches.length, fetchesBefore + 1, 'the new key is cached');
  });
});

describe('settings and the issuer being down', () => {
  let misconfigured;
  let noIdp;
  before(async () => {
    const start = (name, vars) => startTestStack({
      idp: false, mcp: false, stateDir: join(stateDir, name), todoApiVars: vars,
    });
    [misconfigured, noIdp] = await Promise.all([
      start('misconfigured', { API_ISSUER: 'http://issuer.example/as-do-not-echo', API_AUDIENCE: API }),
      start('no-idp', { API_ISSUER: 'http://127.0.0.1:1/as', API_AUDIENCE: API }),
    ]);
  });
  after(async () => {
    await Promise.all([misconfigured?.stop(), noIdp?.stop()]);
  });

  test('a malformed setting is a JSON 500 naming it, not its value', async () => {
    const res = await fetch(`${misconfigured.todoApiUrl}/api/todos`, { headers: { authorization: `Bearer ${alice.access_token}` } });
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.error, 'server_error');
    assert.match(body.error_description, /API_ISSUER/);
    assert.ok(!body.error_description.includes('do-not-echo'));
    assert.equal((await fetch(`${misconfigured.todoApiUrl}/health`)).status, 200);
  });

  test('an unreachable issuer is a JSON 503, not a 500', async () => {
    const res = await fetch(`${noIdp.todoApiUrl}/api/todos`, { headers: { authorization: `Bearer ${alice.access_token}` } });
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error, 'temporarily_unavailable');
    // Bad tokens are still 401 without asking the issuer.
    const none = await fetch(`${noIdp.todoApiUrl}/api/todos`, { headers: { authorization: `Bearer ${forge(claims(), { alg: 'none' })}` } });
    assert.equal(none.status, 401);
  });
});
