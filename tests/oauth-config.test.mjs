// Registration policy in workerd: a stack with dynamic client registration off
// (OAUTH_DYNAMIC_REGISTRATION=false) and the admin endpoint on (OAUTH_ADMIN_TOKEN).
// The metadata has no registration_endpoint, /register is refused, a real MCP SDK client
// that must register itself fails with a clear error, and a client created through
// POST /admin/clients signs in end to end with the same SDK client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestStack } from './support/stack.mjs';
import { connectClient, TestOAuthProvider } from './support/sdk-oauth.mjs';

const ADMIN = 'test-admin-token-0123456789abcdef0123456789';

describe('OAUTH_DYNAMIC_REGISTRATION=false with OAUTH_ADMIN_TOKEN', () => {
  let stack;
  before(async () => {
    stack = await startTestStack({
      mcpVars: { OAUTH_DYNAMIC_REGISTRATION: 'false', OAUTH_ADMIN_TOKEN: ADMIN },
    });
  });
  after(async () => { await stack?.stop(); });

  const admin = (body, token) => fetch(`${stack.mcpOrigin}/admin/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

  test('metadata omits registration_endpoint and /register is refused', async () => {
    const m = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-authorization-server`)).json();
    assert.equal(m.registration_endpoint, undefined);
    assert.equal(m.token_endpoint, `${stack.mcpOrigin}/token`);
    const res = await fetch(`${stack.mcpOrigin}/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:33419/callback'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.error, 'access_denied');
    assert.match(body.error_description, /registration is disabled/);
  });

  test('an MCP SDK client that must register cannot connect, with a clear error', async () => {
    const provider = new TestOAuthProvider();
    await assert.rejects(connectClient('http', stack.mcpUrl, provider), /dynamic client registration/i);
    assert.equal(provider.registrations, 0);
    assert.equal(provider.authorizations.length, 0, 'never sent to authorize');
  });

  test('the admin endpoint refuses a missing or wrong token', async () => {
    for (const token of [null, 'wrong', `${ADMIN}x`]) {
      const res = await admin({ redirect_uris: ['https://app.example.com/cb'] }, token);
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error, 'invalid_token');
    }
  });

  test('a client created by the admin endpoint signs in end to end with the SDK', async () => {
    const redirectUrl = 'http://127.0.0.1:33419/callback';
    const res = await admin({ client_name: 'Pre-registered SDK client', redirect_uris: [redirectUrl] }, ADMIN);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const info = await res.json();
    assert.equal(info.token_endpoint_auth_method, 'client_secret_basic');
    assert.ok(info.client_secret?.length >= 32);
    assert.equal(info.client_secret_expires_at, 0);

    const provider = new TestOAuthProvider({ redirectUrl, clientInformation: info });
    const { client, signedIn } = await connectClient('http', stack.mcpUrl, provider);
    try {
      assert.equal(signedIn, true);
      // The SDK re-saves the given client stamped with the issuer; it registers nothing new.
      assert.equal(provider.clientInformation().client_id, info.client_id);
      const { tools } = await client.listTools();
      assert.ok(tools.length > 0);
      assert.deepEqual(provider.tokenRequests, ['authorization_code']);
    } finally {
      await client.close();
    }
  });
});
