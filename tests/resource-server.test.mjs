// A protected resource in a worker of its own (tests/resource-worker, JavaScript) validating the
// MCP worker's tokens over a [[services]] binding to its internal validation endpoint: the MCP
// worker registers it (OAUTH_EXTRA_RESOURCES) and shares the validation secret
// (OAUTH_VALIDATION_SECRET). Tokens come from a real sign-in at the stand-in IdP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startTestStack, freePort, ROOT } from './support/stack.mjs';
import { registerClient, authorize, exchangeCode } from './support/flow.mjs';
import { subFor } from '../local/idp/users.mjs';

const SECRET = 'test-validation-secret-0123456789abcdef';
let stack;
let resourceUrl;

before(async () => {
  const port = await freePort();
  resourceUrl = `http://127.0.0.1:${port}/calendar`;
  stack = await startTestStack({
    mcpVars: { OAUTH_EXTRA_RESOURCES: resourceUrl, OAUTH_VALIDATION_SECRET: SECRET },
    extraWorkers: [{
      name: 'resource-server-test',
      config: join(ROOT, 'tests', 'resource-worker', 'wrangler.toml'),
      port,
      vars: (s) => ({ RESOURCE: resourceUrl, AUTH_ISSUER: s.mcpOrigin, REQUIRED_SCOPES: 'todo_api:read', VALIDATION_SECRET: SECRET }),
    }],
  });
});

after(async () => { await stack?.stop(); });

async function tokenFor(resource, user = 'alice') {
  const client = await registerClient(stack.mcpOrigin);
  const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client, user, resource });
  assert.ok(auth.code, `no code: ${auth.redirect}`);
  const tokens = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code: auth.code, verifier: auth.pkce.verifier });
  assert.equal(tokens.resource, resource);
  return { ...tokens, client };
}

const at = (url, token) => fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });

test('the authorization server advertises the other worker\'s resource', async () => {
  const m = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(m.protected_resources, [`${stack.mcpOrigin}/mcp`, resourceUrl]);
  // Its metadata is the resource worker's own, pointing back at the issuer.
  const prm = await (await fetch(new URL('/.well-known/oauth-protected-resource/calendar', resourceUrl))).json();
  assert.equal(prm.resource, resourceUrl);
  assert.deepEqual(prm.authorization_servers, [stack.mcpOrigin]);
  const res = await at(`${resourceUrl}/events`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/calendar", scope="todo_api:read"/);
});

test('a token for the resource is accepted there with its user; a token for /mcp is not, nor the reverse', async () => {
  const mine = await tokenFor(resourceUrl, 'bob');
  const res = await at(`${resourceUrl}/events`, mine.access_token);
  assert.equal(res.status, 200, await res.clone().text());
  const who = await res.json();
  assert.equal(who.user_id, subFor('bob'));
  assert.equal(who.client_id, mine.client.client_id);
  assert.deepEqual(who.aud, [resourceUrl]);
  // The grant's props as the authorization server allows this resource: the user's claims,
  // not the PingOne token (it is for the Todo API).
  assert.equal(who.has_upstream_token, false, 'the PingOne token stays with the authorization server');
  assert.equal(who.username, 'bob');
  assert.deepEqual(who.props_keys, ['claims', 'scopes']);

  const mcp = await tokenFor(`${stack.mcpOrigin}/mcp`);
  const refused = await at(`${resourceUrl}/events`, mcp.access_token);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /error="invalid_token"/);
  // The MCP worker refuses the other resource's token at /mcp.
  const res2 = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${mine.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });
  assert.equal(res2.status, 401);
});

test('a revoked token is refused at once', async () => {
  const mine = await tokenFor(resourceUrl);
  assert.equal((await at(resourceUrl, mine.access_token)).status, 200);
  const rev = await fetch(`${stack.mcpOrigin}/revoke`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: mine.access_token, client_id: mine.client.client_id }),
  });
  assert.equal(rev.status, 200);
  assert.equal((await at(resourceUrl, mine.access_token)).status, 401);
});

test('the validation endpoint cannot be reached from the public side, even with the secret', async () => {
  const mine = await tokenFor(resourceUrl);
  const ask = (headers) => fetch(`${stack.mcpOrigin}/internal/oauth/validate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ resource: resourceUrl, token: mine.access_token }),
  });
  for (const headers of [{ authorization: `Bearer ${SECRET}` }, {}]) {
    const res = await ask(headers);
    assert.equal(res.status, 404);
    const body = await res.text();
    assert.doesNotMatch(body, /active|user_id|props/);
  }
  // Over the binding, the wrong secret gets the same 404.
  const wrong = await (await fetch(`${new URL(resourceUrl).origin}/__wrong-secret?token=${encodeURIComponent(mine.access_token)}`)).json();
  assert.equal(wrong.status, 404);
  // And the token still works through the binding with the right one.
  assert.equal((await at(resourceUrl, mine.access_token)).status, 200);
});
