// The oauth-provider crate on its own: its minimal example worker
// (crates/oauth-provider/examples/minimal-worker), which links only the crate, runs in workerd
// with the local KV, and the official MCP TypeScript SDK's OAuth client (`auth()`: discovery,
// dynamic registration, PKCE, code exchange, refresh) signs in against it. The example's
// /authorize is an approval form standing in for a real sign-in; the test fills it as a browser.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { ROOT, startTestStack } from './support/stack.mjs';

const REDIRECT = 'http://127.0.0.1:33419/callback';

/** An in-memory OAuthClientProvider whose "browser" approves the example's form as `user`. */
class Approver {
  constructor(user) {
    this.user = user;
    this.saved = {};
    this.forms = 0;
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: 'Crate example client', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(c) { this.saved.client = c; }
  tokens() { return this.saved.tokens; }
  saveTokens(t) { this.saved.tokens = t; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  async redirectToAuthorization(url) {
    const page = await fetch(url);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<form method=post/);
    assert.equal(page.headers.get('content-security-policy'), "frame-ancestors 'none'");
    this.forms += 1;
    const approved = await fetch(url, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ user: this.user }),
    });
    assert.equal(approved.status, 302, await approved.clone().text());
    const back = new URL(approved.headers.get('location'));
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
    this.code = back.searchParams.get('code');
  }
}

describe('the oauth-provider crate, linked by its minimal example worker', () => {
  let stack;
  let origin;
  before(async () => {
    stack = await startTestStack({
      idp: false, todoApi: false, mcp: false,
      extraWorkers: [{
        name: 'oauth-provider-example',
        config: join(ROOT, 'crates', 'oauth-provider', 'examples', 'minimal-worker', 'wrangler.toml'),
      }],
    });
    origin = stack.workerUrls['oauth-provider-example'];
  });
  after(async () => { await stack?.stop(); });

  const whoami = (token) => fetch(`${origin}/mcp`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  test('without a token the resource answers the RFC 9728 challenge', async () => {
    const res = await whoami();
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate');
    assert.match(challenge, /^Bearer /);
    assert.match(challenge, new RegExp(`resource_metadata="${origin}/\\.well-known/oauth-protected-resource/mcp"`));
    const prm = await (await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.equal(prm.resource, `${origin}/mcp`);
    assert.deepEqual(prm.authorization_servers, [origin]);
  });

  test('the SDK signs in, calls the resource as the approved user, refreshes, and revocation ends it', async () => {
    const client = new Approver('carol');
    assert.equal(await auth(client, { serverUrl: `${origin}/mcp` }), 'REDIRECT');
    assert.equal(client.forms, 1);
    assert.ok(client.saved.client?.client_id, 'registered dynamically');
    assert.equal(await auth(client, { serverUrl: `${origin}/mcp`, authorizationCode: client.code }), 'AUTHORIZED');
    const first = client.saved.tokens;
    assert.ok(first.access_token && first.refresh_token);

    let res = await whoami(first.access_token);
    assert.equal(res.status, 200);
    const me = await res.json();
    assert.equal(me.user, 'carol');
    assert.equal(me.client_id, client.saved.client.client_id);
    assert.deepEqual(me.props, { name: 'carol' }, 'props stored at approval come back decrypted');

    // With tokens saved, auth() refreshes them (no second approval).
    assert.equal(await auth(client, { serverUrl: `${origin}/mcp` }), 'AUTHORIZED');
    const second = client.saved.tokens;
    assert.equal(client.forms, 1);
    assert.notEqual(second.access_token, first.access_token);
    assert.equal((await whoami(second.access_token)).status, 200);

    res = await fetch(`${origin}/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: second.refresh_token, client_id: client.saved.client.client_id }),
    });
    assert.equal(res.status, 200);
    // Revoking the refresh token ends the grant: every access token it issued stops working.
    assert.equal((await whoami(second.access_token)).status, 401, 'revocation ends the current access token');
    assert.equal((await whoami(first.access_token)).status, 401, 'and the one before the refresh');
  });

  test('an invalid authorization request is shown, never redirected', async () => {
    const url = new URL(`${origin}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: 'no-such-client', redirect_uri: 'https://evil.example/cb',
      code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's',
    });
    const res = await fetch(url, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
  });
});
