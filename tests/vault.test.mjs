// Named downstreams (DOWNSTREAMS) and the token vault, through the built worker in workerd: the
// SDK 1.x client signs in with PingOne (the stand-in IdP) for /mcp/<name> in headless Chromium,
// and for a downstream with its own OAuth (local/oauth-downstream/) the browser is sent to that
// server's own consent page right after sign-in, before the client gets its code. Then the
// downstream's tools work with the downstream's token, which the client never sees; it is
// refreshed once under concurrent calls, and at once when the downstream lost its access tokens;
// a revocation at the downstream makes the client re-authorize through the connect step, users
// never share tokens, two downstreams on one origin each have their own, a public downstream
// needs no connect step, and a `pingone` downstream still gets the PingOne token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { closeWithin, launchChromium, startCallbackServer, within } from './support/browser.mjs';
import { TestOAuthProvider, connectClient, makeTransport } from './support/sdk-oauth.mjs';
import { freePort, startTestStack } from './support/stack.mjs';
import { authorize, eventually, mcpInitialize, pkcePair, registerClient } from './support/flow.mjs';

const ACCESS_TTL = 3; // the downstream's access tokens (seconds)

let stack;
let ds; // stack.oauthDownstream
let browser;
let callback;

before(async () => {
  const dsPort = await freePort();
  const downstreamPort = await freePort();
  const gonePort = await freePort(); // nothing listens there
  const dsOrigin = `http://127.0.0.1:${dsPort}`;
  const DOWNSTREAMS = JSON.stringify([
    { name: 'notes', url: `${dsOrigin}/mcp`, auth: 'oauth' },
    { name: 'v1', url: `${dsOrigin}/v1/mcp`, auth: 'oauth' },
    { name: 'public', url: `${dsOrigin}/public/mcp`, auth: 'oauth' },
    { name: 'todo', url: `http://127.0.0.1:${downstreamPort}/mcp`, auth: 'pingone' },
    { name: 'gone', url: `http://127.0.0.1:${gonePort}/mcp`, auth: 'oauth' },
  ]);
  callback = await startCallbackServer();
  [stack, browser] = await Promise.all([
    startTestStack({
      todoApi: false,
      idpEnv: { IDP_ADMIN_API: '1' },
      downstream: true,
      oauthDownstream: { env: { DS_ACCESS_TTL: String(ACCESS_TTL) } },
      ports: { oauthDownstream: dsPort, downstream: downstreamPort },
      mcpVars: { DOWNSTREAMS },
    }),
    launchChromium(),
  ]);
  ds = stack.oauthDownstream;
});

after(async () => {
  await closeWithin(browser);
  await stack?.stop();
  await callback?.close();
});

/**
 * Follows an authorization URL of the worker in a Chromium context: Approve on the worker's
 * consent page, the IdP's login as `user`, and — when the worker sends the browser there — the
 * downstream's own consent page as `dsUser`. Resolves with the redirect to the client and the
 * origins of the pages that were shown.
 */
async function authorizeInBrowser(context, url, { user, dsUser, dsAction = 'approve' }) {
  const page = await context.newPage();
  const arrived = callback.next();
  let done = false;
  arrived.then(() => { done = true; });
  const shown = [];
  await page.goto(url);
  try {
    let last;
    while (!done) {
      const step = await Promise.race([
        arrived.then(() => 'callback'),
        page.waitForSelector('button[value="approve"], #username', { timeout: 30_000 }).then(() => 'page'),
      ]);
      if (step === 'callback') break;
      const here = page.url();
      if (here === last) {
        // Still the page acted on (its navigation has not committed yet).
        await page.waitForURL((u) => u.href !== here, { timeout: 30_000 });
        continue;
      }
      last = here;
      const origin = new URL(here).origin;
      shown.push(origin);
      const act = origin === stack.mcpOrigin
        ? () => page.click('button[value="approve"]')
        : origin === ds.origin
          ? async () => {
            await page.fill('#username', dsUser);
            await page.fill('#password', `${dsUser}-password`);
            await page.click(`#${dsAction}`);
          }
          : async () => {
            await page.fill('#username', user);
            await page.fill('#password', `${user}-password`);
            await page.click('button[type="submit"]');
          };
      await act();
    }
    return { url: await within(page, arrived, 30_000, 'the redirect to the client'), shown };
  } finally {
    await closeWithin(page);
  }
}

/** The SDK's OAuth client provider whose "browser" is a Chromium context. */
class BrowserProvider extends TestOAuthProvider {
  constructor(context, { user, dsUser }) {
    super({ user, redirectUrl: callback.url, clientName: `vault test (${user})` });
    this.context = context;
    this.dsUser = dsUser;
    this.trips = [];
  }
  async redirectToAuthorization(url) {
    const trip = await authorizeInBrowser(this.context, url.href, { user: this.user, dsUser: this.dsUser });
    this.trips.push(trip);
    assert.equal(trip.url.searchParams.get('state'), this._state);
    const code = trip.url.searchParams.get('code');
    assert.ok(code, `no code in ${trip.url}`);
    this.pendingCode = code;
  }
  /** Whether the last browser trip went through the downstream's consent page. */
  get connectedAtDownstream() { return this.trips.at(-1).shown.includes(ds.origin); }
}

/** Connects the SDK client to `url`, authorizing through `provider` on the worker's 401. */
const connect = async (url, provider) => (await connectClient('http', url, provider, { name: 'vault-test' })).client;

/** Finishes the authorization the provider's last browser trip got a code for, then connects. */
async function resume(url, provider) {
  await makeTransport('http', url, provider).finishAuth(provider.takeCode());
  const client = new Client({ name: 'vault-test', version: '1.0.0' });
  await client.connect(makeTransport('http', url, provider));
  return client;
}

const toolJson = (result) => JSON.parse(result.content[0].text);
const adminLog = async () => (await fetch(`${ds.adminUrl}/log`)).json();
const at = (name) => `${stack.mcpOrigin}/mcp/${name}`;

test('each named downstream is a protected resource of its own, with its metadata and challenge', async () => {
  for (const name of ['notes', 'v1', 'public', 'todo']) {
    const prm = await (await fetch(`${stack.mcpOrigin}/.well-known/oauth-protected-resource/mcp/${name}`)).json();
    assert.equal(prm.resource, at(name));
    assert.deepEqual(prm.authorization_servers, [stack.mcpOrigin]);
    const res = await mcpInitialize(at(name));
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate'), new RegExp(`resource_metadata="${stack.mcpOrigin}/\\.well-known/oauth-protected-resource/mcp/${name}"`));
  }
  // The worker's client metadata document, for authorization servers that take one.
  const doc = await (await fetch(`${stack.mcpOrigin}/downstream-client.json`)).json();
  assert.deepEqual(doc.redirect_uris, [`${stack.mcpOrigin}/connect/callback`]);
  assert.equal(doc.client_id, `${stack.mcpOrigin}/downstream-client.json`);
});

test('/connect/callback refuses what no connect step of this browser started, with a page, never a 500', async () => {
  for (const [query, why] of [['', /no state/], ['?state=forged&code=x', /another browser/]]) {
    const res = await fetch(`${stack.mcpOrigin}/connect/callback${query}`);
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type'), /text\/html/);
    assert.match(await res.text(), why);
  }
  const forged = await fetch(`${stack.mcpOrigin}/connect/callback?state=forged&code=x`, { headers: { cookie: '__Host-connect_state=forged' } });
  assert.equal(forged.status, 400);
  assert.equal((await fetch(`${stack.mcpOrigin}/connect/callback`, { method: 'POST' })).status, 405);
});

let alice; // { context, provider, client }

test('signing in for an oauth downstream runs its consent right after PingOne; its tools then work', async () => {
  const context = await browser.newContext();
  const provider = new BrowserProvider(context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('notes'), provider);
  alice = { context, provider, client };
  assert.ok(provider.connectedAtDownstream, `pages shown: ${provider.trips[0].shown}`);
  const me = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
  assert.deepEqual({ user: me.user, resource: me.resource }, { user: 'dana', resource: ds.mcpUrl });
  await client.callTool({ name: 'notes_add', arguments: { text: 'via the gateway' } });
  const { notes } = toolJson(await client.callTool({ name: 'notes_list', arguments: {} }));
  assert.deepEqual(notes.map((n) => n.text), ['via the gateway']);
  // The client holds this worker's token only: the downstream refuses it.
  const ours = provider.tokens().access_token;
  assert.equal(ours.split(':').length, 3, 'a token of this worker');
  assert.equal((await mcpInitialize(ds.mcpUrl, ours)).status, 401);
  // A token for /mcp/notes is good there only.
  assert.equal((await mcpInitialize(at('v1'), ours)).status, 401);
  assert.equal((await mcpInitialize(stack.mcpUrl, ours)).status, 401);
});

test('the downstream token is refreshed once under concurrent calls after its lifetime', async () => {
  await alice.client.callTool({ name: 'notes_list', arguments: {} });
  // Whatever token the vault holds now was issued by now: it is due once its lifetime has passed.
  const due = Date.now() + ACCESS_TTL * 1000 + 1000;
  await fetch(`${ds.adminUrl}/log`, { method: 'DELETE' });
  // The token's lifetime passing is the point here: nothing to observe before.
  await eventually(() => Date.now() > due, 'the downstream token to run out', (ACCESS_TTL + 5) * 1000);
  const calls = await Promise.all(Array.from({ length: 6 }, () => alice.client.callTool({ name: 'whoami', arguments: {} })));
  for (const c of calls) assert.equal(toolJson(c).user, 'dana');
  const log = await adminLog();
  assert.equal(log.refreshes.dana, 1, JSON.stringify(log));
  assert.deepEqual(log.refresh_reuse ?? {}, {}, 'never a rotated-out refresh token presented again');
});

test('another MCP client of the same user uses the connected downstream without a detour', async () => {
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('notes'), provider);
  assert.equal(provider.trips.length, 1);
  assert.ok(!provider.connectedAtDownstream, `pages shown: ${provider.trips[0].shown}`);
  const { notes } = toolJson(await client.callTool({ name: 'notes_list', arguments: {} }));
  assert.deepEqual(notes.map((n) => n.text), ['via the gateway']);
  await client.close();
});

test("a second user's downstream token is never used for the first", async () => {
  const context = await browser.newContext();
  try {
    const provider = new BrowserProvider(context, { user: 'bob', dsUser: 'erin' });
    const client = await connect(at('notes'), provider);
    assert.ok(provider.connectedAtDownstream);
    assert.equal(toolJson(await client.callTool({ name: 'whoami', arguments: {} })).user, 'erin');
    assert.deepEqual(toolJson(await client.callTool({ name: 'notes_list', arguments: {} })).notes, []);
    assert.equal(toolJson(await alice.client.callTool({ name: 'whoami', arguments: {} })).user, 'dana');
    await client.close();
  } finally {
    await closeWithin(context);
  }
});

test('two downstreams on one origin at once, each with its own token', async () => {
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const v1 = await connect(at('v1'), provider);
  assert.ok(provider.connectedAtDownstream, '/v1/mcp is a resource of its own: connected on its own');
  const echo = toolJson(await v1.callTool({ name: 'v1_echo', arguments: { text: 'hi' } }));
  assert.deepEqual(echo, { user: 'dana', resource: ds.v1McpUrl, echo: 'hi', server: 'downstream-v1' });
  const [a, b] = await Promise.all([
    alice.client.callTool({ name: 'whoami', arguments: {} }),
    v1.callTool({ name: 'v1_echo', arguments: { text: 'again' } }),
  ]);
  assert.equal(toolJson(a).resource, ds.mcpUrl);
  assert.deepEqual(toolJson(b), { user: 'dana', resource: ds.v1McpUrl, echo: 'again', server: 'downstream-v1' });
  await v1.close();
});

test('a downstream that needs no authorization is used without a connect step', async () => {
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('public'), provider);
  assert.ok(!provider.connectedAtDownstream);
  const { now } = toolJson(await client.callTool({ name: 'public_time', arguments: {} }));
  assert.ok(Math.abs(Date.parse(now) - Date.now()) < 60_000);
  await client.close();
});

test('a pingone downstream still gets the PingOne token and identity headers', async () => {
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('todo'), provider);
  assert.ok(!provider.connectedAtDownstream);
  const report = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
  assert.equal(report.bearer.verified, true, JSON.stringify(report.bearer));
  assert.equal(report.identityHeaders['x-user-username'], 'alice');
  await client.close();
});

const gatewayClients = async () => (await (await fetch(`${ds.adminUrl}/clients`)).json()).filter((c) => c.client_name?.includes('(gateway)'));

test('the downstream lost its access tokens: the call is refreshed and made again, the client notices nothing', async () => {
  // Right after the vault's own refresh, so the token has most of its 3 s ahead: the refresh
  // counted below is the one the downstream's 401 caused, not one that was due anyway.
  await fetch(`${ds.adminUrl}/log`, { method: 'DELETE' });
  await eventually(async () => {
    await alice.client.callTool({ name: 'whoami', arguments: {} });
    return (await adminLog()).refreshes.dana === 1;
  }, 'the vault to refresh the downstream token', (ACCESS_TTL + 5) * 1000);
  await fetch(`${ds.adminUrl}/log`, { method: 'DELETE' });
  const lost = await fetch(`${ds.adminUrl}/revoke?user=dana&only=access`, { method: 'POST' });
  assert.ok((await lost.json()).revoked > 0, 'dana had an access token at the downstream');
  const trips = alice.provider.trips.length;
  const me = toolJson(await alice.client.callTool({ name: 'whoami', arguments: {} }));
  assert.equal(me.user, 'dana');
  assert.equal(alice.provider.trips.length, trips, 'the client went back to the browser');
  assert.equal((await adminLog()).refreshes.dana, 1, 'one refresh made the new token');
  assert.equal((await alice.client.callTool({ name: 'notes_list', arguments: {} })).isError, undefined);
});

test('revoked at the downstream: the client gets 401, re-authorizes, and the connect step runs again', async () => {
  const clientsBefore = (await gatewayClients()).map((c) => c.client_id).sort();
  const revoked = await fetch(`${ds.adminUrl}/revoke?user=dana`, { method: 'POST' });
  assert.equal(revoked.status, 200);
  await assert.rejects(alice.client.callTool({ name: 'whoami', arguments: {} }), (err) => err instanceof UnauthorizedError || /Unauthorized/i.test(String(err)));
  assert.equal(alice.provider.trips.length, 2, 'the client went back to the browser');
  assert.ok(alice.provider.connectedAtDownstream, `pages shown: ${alice.provider.trips[1].shown}`);
  const client = await resume(at('notes'), alice.provider);
  const me = toolJson(await client.callTool({ name: 'whoami', arguments: {} }));
  assert.equal(me.user, 'dana');
  // A revoked grant is not a forgotten client: the gateway's registration there is kept.
  assert.deepEqual((await gatewayClients()).map((c) => c.client_id).sort(), clientsBefore);
  await client.close();
  await alice.client.close().catch(() => {});
});

/** alice's connections page in a new page of her browser (signing in to it if needed). */
async function connectionsPage() {
  const page = await alice.context.newPage();
  await page.goto(`${stack.mcpOrigin}/connections`);
  const first = await Promise.race([
    page.waitForSelector('h1:has-text("Your connections")', { timeout: 30_000 }).then(() => 'page'),
    page.waitForSelector('#username', { timeout: 30_000 }).then(() => 'login'),
  ]);
  if (first === 'login') {
    await page.fill('#username', 'alice');
    await page.fill('#password', 'alice-password');
    await page.click('button[type="submit"]');
    await page.waitForSelector('h1:has-text("Your connections")', { timeout: 30_000 });
  }
  return page;
}

/** The downstreams listed as connected on `page`. */
const connectedOn = (page) => page.locator('li:has(button[value="disconnect-downstream"])').allTextContents();

test('the connections page lists the connected downstreams; Disconnect drops one, and the next sign-in connects it again', async () => {
  const page = await connectionsPage();
  try {
    const connected = page.locator('li:has(button[value="disconnect-downstream"])');
    const texts = await connected.allTextContents();
    assert.ok(texts.some((t) => t.startsWith('notes') && t.includes(ds.mcpUrl)), JSON.stringify(texts));
    assert.ok(texts.some((t) => t.startsWith('v1') && t.includes(ds.v1McpUrl)), JSON.stringify(texts));
    await connected.filter({ hasText: /^notes/ }).locator('button').click();
    await page.waitForLoadState('load');
    const after = await connectedOn(page);
    assert.ok(!after.some((t) => t.startsWith('notes')), JSON.stringify(after));
    assert.ok(after.some((t) => t.startsWith('v1')), 'the other downstream stays connected');
  } finally {
    await closeWithin(page);
  }
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('notes'), provider);
  assert.ok(provider.connectedAtDownstream, 'disconnected: the next authorization connects it again');
  assert.equal(toolJson(await client.callTool({ name: 'whoami', arguments: {} })).user, 'dana');
  await client.close();
});

test('a Disconnect while the downstream token is being refreshed stays a Disconnect', async () => {
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('notes'), provider);
  assert.ok(!provider.connectedAtDownstream, 'connected before');
  await client.close();
  const token = provider.tokens().access_token;
  assert.equal((await mcpInitialize(at('notes'), token)).status, 200);
  // The downstream token runs out; the downstream refreshes at once but answers late, and a
  // revocation there ends the revoked token alone (so the refresh's new tokens stay good).
  const due = Date.now() + ACCESS_TTL * 1000 + 1000;
  await eventually(() => Date.now() > due, 'the downstream token to run out', (ACCESS_TTL + 5) * 1000);
  const refreshes = async () => (await adminLog()).token_requests.refresh_token ?? 0;
  const before = await refreshes();
  await fetch(`${ds.adminUrl}/slow?ms=1500`, { method: 'POST' }); // less than ACCESS_TTL: its tokens arrive fresh
  await fetch(`${ds.adminUrl}/revocation?grant=0`, { method: 'POST' });
  let racing;
  const page = await connectionsPage();
  try {
    racing = mcpInitialize(at('notes'), token);
    await eventually(async () => (await refreshes()) > before, 'the refresh to reach the downstream');
    await page.locator('li:has(button[value="disconnect-downstream"])').filter({ hasText: /^notes/ }).locator('button').click();
    await page.waitForLoadState('load');
    assert.ok(!(await connectedOn(page)).some((t) => t.startsWith('notes')));
    // The refresh is answered after the Disconnect: its tokens are nobody's, the call must connect again.
    assert.equal((await racing).status, 401);
    await page.reload();
    assert.ok(!(await connectedOn(page)).some((t) => t.startsWith('notes')), 'the refresh brought the entry back');
  } finally {
    await fetch(`${ds.adminUrl}/slow?ms=0`, { method: 'POST' });
    await fetch(`${ds.adminUrl}/revocation?grant=1`, { method: 'POST' });
    await racing?.catch(() => {});
    await closeWithin(page);
  }
  const again = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const reconnected = await connect(at('notes'), again);
  assert.ok(again.connectedAtDownstream, 'disconnected: the next authorization connects it again');
  await reconnected.close();
});

test("the downstream forgets the gateway's client: the user is sent to connect again and the gateway registers anew", async () => {
  const provider = new BrowserProvider(alice.context, { user: 'alice', dsUser: 'dana' });
  const client = await connect(at('notes'), provider);
  assert.ok(!provider.connectedAtDownstream, 'connected before');
  await client.close(); // no standalone stream racing the raw request below into a second sign-in
  // The downstream forgets every client of the gateway (two sign-ins registering at once may
  // have left a spare one, see the README).
  const before = await gatewayClients();
  assert.ok(before.length > 0, 'the gateway registered at the downstream');
  for (const c of before) {
    assert.equal((await fetch(`${ds.adminUrl}/clients/${encodeURIComponent(c.client_id)}`, { method: 'DELETE' })).status, 200);
  }
  const refused = await mcpInitialize(at('notes'), provider.tokens().access_token);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /error="invalid_token"/);
  const again = await connect(at('notes'), provider);
  assert.ok(provider.connectedAtDownstream, `pages shown: ${provider.trips.at(-1).shown}`);
  assert.equal(toolJson(await again.callTool({ name: 'whoami', arguments: {} })).user, 'dana');
  const after = await gatewayClients();
  assert.equal(after.length, 1, 'registered once more');
  assert.ok(!before.some((c) => c.client_id === after[0].client_id), 'registered anew');
  await again.close();
});

test('a downstream that cannot be reached at sign-in: the client gets temporarily_unavailable, no grant, and the PingOne refresh token is revoked', async () => {
  const client = await registerClient(stack.mcpOrigin);
  const auth = await authorize({ mcpOrigin: stack.mcpOrigin, client, user: 'mallory', resource: at('gone') });
  assert.equal(auth.code, null, auth.redirect);
  assert.equal(auth.error, 'temporarily_unavailable', auth.redirect);
  const res = await fetch(`${stack.idpUrl}/admin/users/mallory/revoke-tokens`, { method: 'POST' });
  assert.equal((await res.json()).revoked, 0);
});

test("denied at the downstream's consent: the client gets access_denied, no grant, and the sign-in's PingOne refresh token is revoked", async () => {
  const context = await browser.newContext();
  try {
    const client = await registerClient(stack.mcpOrigin, { redirect_uris: [callback.url], client_name: 'vault deny test' });
    const pkce = pkcePair();
    const url = new URL(`${stack.mcpOrigin}/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code', client_id: client.client_id, redirect_uri: callback.url, state: 'deny-state',
      code_challenge: pkce.challenge, code_challenge_method: 'S256', resource: at('notes'),
    })) url.searchParams.set(k, v);
    const trip = await authorizeInBrowser(context, url.href, { user: 'mallory', dsUser: 'dana', dsAction: 'deny' });
    assert.ok(trip.shown.includes(ds.origin));
    assert.equal(trip.url.searchParams.get('error'), 'access_denied');
    assert.equal(trip.url.searchParams.get('state'), 'deny-state');
    assert.equal(trip.url.searchParams.get('code'), null);
    // mallory holds no PingOne refresh token any more: the abandoned sign-in's was revoked.
    const res = await fetch(`${stack.idpUrl}/admin/users/mallory/revoke-tokens`, { method: 'POST' });
    assert.equal((await res.json()).revoked, 0);
  } finally {
    await closeWithin(context);
  }
});
