// Enterprise-Managed Authorization (the MCP extension; ID-JAG over the RFC 7523 jwt-bearer
// grant) end to end in workerd, driven by the TypeScript SDK v2 client's CrossAppAccessProvider:
// an employee signs in at the enterprise IdP (the stand-in for PingOne) in an agent app, the app
// trades the ID token for an ID-JAG at the IdP (RFC 8693 token exchange, local/idp/id-jag.mjs)
// and the ID-JAG for an MCP access token at the worker; then MCP calls. And the refusals: EMA
// not configured, a replayed assertion, another audience, a client not in OAUTH_EMA_CLIENTS,
// a user the allow-list refuses.
//
// The agent's client at the worker is pre-registered (POST /admin/clients), so its id is known
// only once the worker runs: the stack is started, the clients registered, and the stack started
// again on its persisted state with the EMA settings naming them (and the IdP's connections).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client, CrossAppAccessProvider, StreamableHTTPClientTransport,
  discoverAndRequestJwtAuthGrant, exchangeJwtAuthGrant, requestJwtAuthorizationGrant,
} from '@modelcontextprotocol/client';
import { startStack, startTestStack } from './support/stack.mjs';
import { decodeJwt, loginAndGetTokens, discover } from './support/idp.mjs';
import { readLocalKv } from './support/local-kv.mjs';
import { subFor } from '../local/idp/users.mjs';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const ADMIN = 'test-admin-token-0123456789abcdef0123456789';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// The agent app's clients at the IdP (its redirect URI is never fetched: the sign-in helper stops there).
const AGENT = { id: 'agent-app', secret: 'agent-app-secret', redirectUri: 'http://127.0.0.1:1/agent/callback' };
const STRANGER = { id: 'stranger-app', secret: 'stranger-app-secret', redirectUri: 'http://127.0.0.1:1/stranger/callback' };
// Another authorization server the agent is connected to at the IdP.
const OTHER_AS = 'https://other-mcp.example.com';

let stack;
let agent; // the agent's client at the worker (allowed in OAUTH_EMA_CLIENTS)
let stranger; // another confidential client at the worker, not allowed
let bobsToken; // an MCP access token from an ID-JAG, for the proxy-mode test

before(async () => {
  // 1. The worker without EMA settings; the clients pre-registered by the operator.
  stack = await startTestStack({ todoApi: false, mcpVars: { OAUTH_ADMIN_TOKEN: ADMIN } });
  const register = async (name) => {
    const res = await fetch(`${stack.mcpOrigin}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ client_name: name, redirect_uris: ['https://agent.example.com/callback'] }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return res.json();
  };
  agent = await register('Agent app');
  stranger = await register('Stranger app');
});

after(async () => { await stack?.stop(); });

/** The stack started again on its state with `mcpVars` added and the IdP's EMA clients. */
async function restartWithEma(mcpVars) {
  const { keys } = await (await fetch(`${stack.issuer}/jwks`)).json();
  await stack.stop();
  const idpClients = [
    { client_id: AGENT.id, client_secret: AGENT.secret, redirect_uris: [AGENT.redirectUri],
      connections: { [stack.mcpOrigin]: agent.client_id, [OTHER_AS]: agent.client_id } },
    { client_id: STRANGER.id, client_secret: STRANGER.secret, redirect_uris: [STRANGER.redirectUri],
      connections: { [stack.mcpOrigin]: stranger.client_id } },
  ];
  stack = await startStack({
    ports: stack.ports, stateDir: stack.stateDir, dotenv: null, build: false, todoApi: false,
    mcpVars: {
      ...stack.mcpVars,
      OAUTH_EMA_ISSUER: stack.issuer,
      OAUTH_EMA_JWKS: JSON.stringify({ keys }),
      OAUTH_EMA_CLIENTS: agent.client_id,
      ...mcpVars,
    },
    idpEnv: { IDP_EMA_CLIENTS: JSON.stringify(idpClients) },
  });
}

/** The user's ID token for `app` at the IdP (a scripted browser sign-in, code flow). */
async function idTokenOf(user, app = AGENT) {
  const tokens = await loginAndGetTokens({
    issuer: stack.issuer, clientId: app.id, clientSecret: app.secret, redirectUri: app.redirectUri,
    auth: 'post', user, scope: 'openid profile email',
  });
  return tokens.id_token;
}

/** An ID-JAG for `app` from the IdP, through the SDK's token-exchange request. */
async function idJag(idToken, { app = AGENT, audience = stack.mcpOrigin, scope = 'todo_api:read' } = {}) {
  const { token_endpoint: tokenEndpoint } = await discover(stack.issuer);
  const got = await requestJwtAuthorizationGrant({
    tokenEndpoint, audience, resource: stack.mcpUrl, idToken, clientId: app.id, clientSecret: app.secret, scope,
  });
  return got.jwtAuthGrant;
}

/** The jwt-bearer grant at the worker through the SDK; the token response, or the thrown error. */
function redeem(jwtAuthGrant, client = agent) {
  return exchangeJwtAuthGrant({
    tokenEndpoint: `${stack.mcpOrigin}/token`, jwtAuthGrant, clientId: client.client_id, clientSecret: client.client_secret,
  });
}

test('EMA not configured: the jwt-bearer grant is not offered and is refused', async () => {
  const meta = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
  assert.ok(!meta.grant_types_supported.includes(JWT_BEARER), JSON.stringify(meta.grant_types_supported));
  // The IdP has no enterprise clients yet either: any well-formed JWT stands in for an ID-JAG.
  const fake = ['{"alg":"RS256","typ":"oauth-id-jag+jwt"}', '{"iss":"x"}'].map((p) => Buffer.from(p).toString('base64url'));
  await assert.rejects(redeem(`${fake.join('.')}.c2ln`), /JWT grant exchange failed: unsupported_grant_type/);
});

test('with EMA: the SDK client signs in through the IdP\'s ID-JAG, who_am_I works, a Todo tool says to sign in through the browser', async () => {
  await restartWithEma({ ALLOWED_GROUPS: 'todo-users' });
  const meta = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
  assert.ok(meta.grant_types_supported.includes(JWT_BEARER));

  const idToken = await idTokenOf('alice');
  const assertions = [];
  const provider = new CrossAppAccessProvider({
    assertion: async (ctx) => {
      const { jwtAuthGrant } = await discoverAndRequestJwtAuthGrant({
        idpUrl: stack.issuer, audience: ctx.authorizationServerUrl, resource: ctx.resourceUrl, idToken,
        clientId: AGENT.id, clientSecret: AGENT.secret, scope: ctx.scope, fetchFn: ctx.fetchFn,
      });
      assertions.push(jwtAuthGrant);
      return jwtAuthGrant;
    },
    clientId: agent.client_id,
    clientSecret: agent.client_secret,
    expectedIssuer: stack.mcpOrigin,
  });
  const client = new Client({ name: 'ema-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(stack.mcpUrl), { authProvider: provider }));
  try {
    assert.equal(assertions.length, 1, 'one ID-JAG fetched and redeemed');
    // The ID-JAG as the IdP minted it.
    const jag = decodeJwt(assertions[0]);
    assert.equal(jag.header.typ, 'oauth-id-jag+jwt');
    assert.equal(jag.payload.iss, stack.issuer);
    assert.equal(jag.payload.sub, subFor('alice'));
    assert.equal(jag.payload.aud, stack.mcpOrigin);
    assert.equal(jag.payload.client_id, agent.client_id);
    assert.equal(jag.payload.resource, stack.mcpUrl);
    assert.equal(jag.payload.exp - jag.payload.iat, 300);
    assert.ok(jag.payload.jti);
    // The MCP token: this worker's, no refresh token.
    const tokens = provider.tokens();
    assert.equal(tokens.refresh_token, undefined);
    assert.deepEqual(tokens.scope.split(' ').sort(), ['todo_api:read', 'todo_api:write']);

    const who = await client.callTool({ name: 'who_am_I', arguments: {} });
    assert.notEqual(who.isError, true, who.content?.[0]?.text);
    const me = JSON.parse(who.content[0].text);
    assert.equal(me.user.sub, subFor('alice'));
    assert.equal(me.user.preferred_username, 'alice');
    assert.equal(me.user.email, 'alice@example.com');
    assert.equal(me.user.jti, undefined, 'protocol claims are not the user\'s');
    assert.equal(me.pingOneAccessToken, null);
    assert.equal(me.mcpSession.clientId, agent.client_id);

    const todos = await client.callTool({ name: 'get_my_todo_list', arguments: {} });
    assert.equal(todos.isError, true);
    assert.match(todos.content[0].text, /organization's identity provider/);
    assert.match(todos.content[0].text, /browser sign-in/);

    // The same token in the stateless era (SDK v2 pinned to 2026-07-28).
    const modern = new Client({ name: 'ema-agent', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await modern.connect(new StreamableHTTPClientTransport(new URL(stack.mcpUrl), {
      requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
    }));
    const create = await modern.callTool({ name: 'create_new_todo', arguments: { text: 'x' } });
    assert.equal(create.isError, true);
    assert.match(create.content[0].text, /organization's identity provider/);
    await modern.close();

    // Replayed: the ID-JAG was redeemed once.
    await assert.rejects(redeem(assertions[0]), /JWT grant exchange failed: invalid_grant - the assertion was used before/);
  } finally {
    await client.close();
  }
});

test('with EMA: an ID-JAG for another authorization server is refused', async () => {
  const jag = await idJag(await idTokenOf('alice'), { audience: OTHER_AS });
  assert.equal(decodeJwt(jag).payload.aud, OTHER_AS);
  await assert.rejects(redeem(jag), /JWT grant exchange failed: invalid_grant - the assertion's aud must be this authorization server's issuer/);
});

test('with EMA: a client not in OAUTH_EMA_CLIENTS is refused, even with an ID-JAG issued to it', async () => {
  const jag = await idJag(await idTokenOf('alice', STRANGER), { app: STRANGER });
  assert.equal(decodeJwt(jag).payload.client_id, stranger.client_id);
  await assert.rejects(redeem(jag, stranger), /JWT grant exchange failed: unauthorized_client/);
  // Nor can the allowed client redeem it (it was issued to the other one).
  await assert.rejects(redeem(jag, agent), /invalid_grant - the assertion was issued to another client/);
});

test('with EMA: a user the allow-list refuses gets invalid_grant', async () => {
  // mallory is in no group (ALLOWED_GROUPS=todo-users).
  const jag = await idJag(await idTokenOf('mallory'));
  assert.equal(decodeJwt(jag).payload.sub, subFor('mallory'));
  await assert.rejects(redeem(jag), /JWT grant exchange failed: invalid_grant - This account is not allowed to use this server/);
  // bob is in the group: admitted.
  const ok = await redeem(await idJag(await idTokenOf('bob')));
  assert.ok(ok.access_token);
  assert.equal(ok.scope, 'todo_api:read');
  bobsToken = ok.access_token;
});

test('the IdP refuses a token exchange it should not answer', async () => {
  const { token_endpoint: tokenEndpoint } = await discover(stack.issuer);
  const base = { tokenEndpoint, audience: stack.mcpOrigin, resource: stack.mcpUrl, clientId: AGENT.id, clientSecret: AGENT.secret };
  // An ID token of another client is no subject token for this one.
  await assert.rejects(
    requestJwtAuthorizationGrant({ ...base, idToken: await idTokenOf('alice', STRANGER) }),
    /Token exchange failed: invalid_grant/,
  );
  // No connection to that authorization server.
  await assert.rejects(
    requestJwtAuthorizationGrant({ ...base, idToken: await idTokenOf('alice'), audience: 'https://unknown.example.com' }),
    /Token exchange failed: invalid_target/,
  );
});

test('proxy mode: the jwt-bearer grant is refused, and a token issued before is not forwarded', async () => {
  assert.ok(bobsToken, 'the allow-list test issued a token');
  const jag = await idJag(await idTokenOf('alice'));
  // Nothing listens at the downstream: nothing may be forwarded to it.
  await restartWithEma({ DOWNSTREAM_MCP_URL: 'http://127.0.0.1:1/mcp' });
  await assert.rejects(redeem(jag), /JWT grant exchange failed: invalid_grant - This server forwards to an MCP server that needs the user's PingOne token/);
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${bobsToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(res.status, 401, await res.text());
  const challenge = res.headers.get('www-authenticate');
  assert.match(challenge, /error="invalid_token"/);
  assert.match(challenge, /enterprise assertion/);
});

test('the redeemed assertions were marked used in Durable Objects, none in KV', async () => {
  // Read with the stack stopped (workerd owns the files while it runs).
  await stack.stop();
  const kv = await readLocalKv(stack.stateDir);
  assert.ok(kv.some((r) => r.key.startsWith('grant:')), 'the enterprise grants are in KV');
  assert.deepEqual(kv.filter((r) => r.key.startsWith('ema_jti:')), [], 'a KV marker would be eventually consistent only');
  // One object per redeemed jti (the replay above was refused by one of them).
  const dir = join(stack.stateDir, 'mcp', 'v3', 'do', 'pingone-mcp-worker-AssertionJti');
  assert.ok(existsSync(dir), `no AssertionJti objects under ${dir}`);
  const objects = readdirSync(dir).filter((f) => /^[0-9a-f]{64}\.sqlite$/.test(f));
  assert.ok(objects.length >= 2, `${objects.length} AssertionJti objects`);
});
