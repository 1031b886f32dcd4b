// Access control (ALLOWED_USERS, ALLOWED_GROUPS, GROUPS_CLAIM) end to end, against the stand-in
// IdP whose users are in groups: alice (todo-users), bob (todo-users, admins), mallory (none).
// In headless Chromium: a refused person sees why and can return to the client, which learns
// access_denied; an admitted one gets a working code. Over plain HTTP: another claim name, and
// either list admitting.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { closeWithin, launchChromium, startCallbackServer, within } from './support/browser.mjs';
import { startStack, startTestStack, ROOT } from './support/stack.mjs';
import { authorize, CookieJar, exchangeCode, getMcpToken, pkcePair, refresh, registerClient } from './support/flow.mjs';

const OUT = join(ROOT, 'test-output');

describe('ALLOWED_GROUPS=todo-users, in a browser', () => {
  let stack;
  let browser;
  let callback;
  let client;

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    callback = await startCallbackServer();
    stack = await startTestStack({ todoApi: false, mcpVars: { ALLOWED_GROUPS: 'todo-users' } });
    client = await registerClient(stack.mcpOrigin, { client_name: 'Access test client', redirect_uris: [callback.url] });
    browser = await launchChromium();
  });

  after(async () => {
    await closeWithin(browser);
    await stack?.stop();
    await callback?.close();
  });

  /** Consent → Approve → IdP login as `user`; resolves when the flow leaves the IdP. */
  async function signIn(page, user) {
    const pkce = pkcePair();
    const state = randomBytes(9).toString('base64url');
    const callbackStatuses = [];
    page.on('response', (r) => {
      if (r.url().startsWith(`${stack.mcpOrigin}/callback`)) callbackStatuses.push(r.status());
    });
    const q = new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: callback.url, state,
      code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: `${stack.mcpOrigin}/mcp`,
    });
    await page.goto(`${stack.mcpOrigin}/authorize?${q}`, { timeout: 30_000 });
    await page.click('button[value="approve"]', { timeout: 30_000 });
    await page.waitForSelector('#username', { timeout: 30_000 });
    await page.fill('#username', user);
    await page.fill('#password', `${user}-password`);
    await page.click('button[type="submit"]', { timeout: 30_000 });
    return { pkce, state, callbackStatuses };
  }

  test('mallory (in no group) sees the access-denied page; its link tells the client access_denied', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const arrived = callback.next();
      const { state, callbackStatuses } = await signIn(page, 'mallory');
      let reachedClient = false;
      arrived.then(() => { reachedClient = true; });
      await within(page, page.waitForSelector('h1:has-text("Access denied")', { timeout: 30_000 }), 35_000,
        'waiting for the access-denied page');
      assert.deepEqual(callbackStatuses, [403]);
      assert.equal(reachedClient, false, 'no redirect to the client before the person chooses');
      const text = await page.textContent('body');
      assert.match(text, /signed in to PingOne as mallory/);
      assert.match(text, /operator/);
      await page.screenshot({ path: join(OUT, 'access-denied.png'), fullPage: true });

      const link = page.locator('a.button.primary');
      assert.equal(await link.textContent(), 'Return to Access test client');
      await link.click({ timeout: 10_000 });
      const back = await within(page, arrived, 30_000, 'waiting for the return to the client');
      assert.equal(back.searchParams.get('error'), 'access_denied');
      assert.equal(back.searchParams.get('state'), state);
      assert.equal(back.searchParams.get('iss'), stack.mcpOrigin);
      assert.equal(back.searchParams.get('code'), null, 'no code was issued');
    } finally {
      await closeWithin(context);
    }
  });

  test('alice (in todo-users) gets a working code in the same setup', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const arrived = callback.next();
      const { pkce, state, callbackStatuses } = await signIn(page, 'alice');
      const back = await within(page, arrived, 30_000, 'waiting for the redirect to the client');
      assert.deepEqual(callbackStatuses, [302]);
      assert.equal(back.searchParams.get('state'), state);
      const code = back.searchParams.get('code');
      assert.ok(code, `no code in ${back}`);
      const tokens = await exchangeCode({ mcpOrigin: stack.mcpOrigin, client, code, verifier: pkce.verifier, redirectUri: callback.url });
      assert.ok(tokens.access_token);
    } finally {
      await closeWithin(context);
    }
  });
});

describe('ALLOWED_USERS=alice, ALLOWED_GROUPS=admins, GROUPS_CLAIM=memberOfGroupNames', () => {
  let stack;
  let client;

  before(async () => {
    stack = await startTestStack({
      todoApi: false,
      mcpVars: { ALLOWED_USERS: 'alice', ALLOWED_GROUPS: 'admins', GROUPS_CLAIM: 'memberOfGroupNames' },
      idpEnv: { IDP_GROUPS_CLAIM: 'memberOfGroupNames', IDP_ADMIN_API: '1' },
    });
    client = await registerClient(stack.mcpOrigin, { client_name: 'Access test client' });
  });

  after(async () => {
    await stack?.stop();
  });

  const signIn = (user) => authorize({ mcpOrigin: stack.mcpOrigin, client, jar: new CookieJar(), user });

  test('alice is admitted by name and bob by the admins group in the configured claim', async () => {
    for (const user of ['alice', 'bob']) {
      const r = await signIn(user);
      assert.ok(r.code, `${user}: ${r.redirect}`);
      assert.equal(r.returnedState, r.state);
    }
  });

  test('mallory is refused with a 403 page and no code', async () => {
    await assert.rejects(signIn('mallory'), (err) => {
      assert.match(err.message, /\/callback answered 403/);
      assert.match(err.message, /<title>Access denied<\/title>/);
      return true;
    });
  });
  const setGroups = async (user, groups) => {
    const res = await fetch(`${stack.idpUrl}/admin/users/${user}/groups`, { method: 'PUT', body: JSON.stringify(groups) });
    assert.equal(res.status, 200);
  };
  const initialize = (accessToken) => fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
  });

  test('bob, taken out of the admins group at PingOne, loses his grant at the next refresh', async () => {
    const t = await getMcpToken(stack, { user: 'bob' });
    const before = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: t.refresh_token });
    assert.equal(before.status, 200, JSON.stringify(before.body));
    await setGroups('bob', ['todo-users']);
    try {
      const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: before.body.refresh_token });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error, 'invalid_grant');
      assert.match(r.body.error_description, /no longer allowed/);
      // The grant is gone: its access token is refused, its refresh token stays dead.
      assert.equal((await initialize(before.body.access_token)).status, 401);
      const again = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken: before.body.refresh_token });
      assert.equal(again.body.error, 'invalid_grant');
    } finally {
      await setGroups('bob', ['todo-users', 'admins']);
    }
  });

  test('alice, admitted by name, keeps refreshing whatever her groups', async () => {
    const t = await getMcpToken(stack, { user: 'alice' });
    await setGroups('alice', []);
    try {
      let refreshToken = t.refresh_token;
      for (let i = 0; i < 2; i++) {
        const r = await refresh({ mcpOrigin: stack.mcpOrigin, client: t.client, refreshToken });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal((await initialize(r.body.access_token)).status, 200);
        refreshToken = r.body.refresh_token;
      }
    } finally {
      await setGroups('alice', ['todo-users']);
    }
  });
});

// Broken sign-in settings must not turn /token into a way around them: without the settings the
// worker cannot re-check the allow-list, cap the token at the PingOne token's life or refresh
// PingOne. Sign-in itself refuses to run then, so the grant and the unused code come from a start
// with good settings, and the worker is started again on the same state with ALLOWED_USERS=","
// (set, but naming nobody: a parse error, not "everyone").
test('with broken sign-in settings (ALLOWED_USERS=","), /token refuses refresh and code exchange with a 500 naming the setting; the grant stays', async (t) => {
  let stack = await startTestStack({ todoApi: false, mcpVars: { ALLOWED_USERS: 'alice' } });
  t.after(async () => { await stack.stop(); });
  const restart = (mcpVars) => stack.stop().then(() => startStack({
    ports: stack.ports, stateDir: stack.stateDir, dotenv: null, build: false, todoApi: false,
    mcpVars: { ...stack.mcpVars, ...mcpVars },
  }));
  const tokens = await getMcpToken(stack, { user: 'alice' });
  const pending = await authorize({ mcpOrigin: stack.mcpOrigin, client: tokens.client, jar: tokens.jar, user: 'alice' });
  assert.ok(pending.code, pending.redirect);
  const exchange = () => fetch(`${stack.mcpOrigin}/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: pending.code, code_verifier: pending.pkce.verifier,
      client_id: tokens.client.client_id, redirect_uri: tokens.client.redirect_uris[0],
    }),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));

  stack = await restart({ ALLOWED_USERS: ',' });
  const refused = await refresh({ mcpOrigin: stack.mcpOrigin, client: tokens.client, refreshToken: tokens.refresh_token });
  assert.equal(refused.status, 500, JSON.stringify(refused.body));
  assert.equal(refused.body.error, 'server_error');
  assert.match(refused.body.error_description, /ALLOWED_USERS/);
  assert.equal(refused.body.access_token, undefined);
  const code = await exchange();
  assert.equal(code.status, 500, JSON.stringify(code.body));
  assert.equal(code.body.error, 'server_error');
  assert.match(code.body.error_description, /ALLOWED_USERS/);

  // Fixed again: the grant, its refresh token and the unused code were all kept.
  stack = await restart({ ALLOWED_USERS: 'alice' });
  const again = await refresh({ mcpOrigin: stack.mcpOrigin, client: tokens.client, refreshToken: tokens.refresh_token });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  const exchanged = await exchange();
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
});
