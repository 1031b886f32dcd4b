// The connections page (/connections), as people use it in headless Chromium: alice and bob each
// connect MCP clients (the TypeScript SDK's own OAuth sign-in), then sign in to the page through
// the stand-in IdP. Each sees only their own clients; alice revokes one, whose access token and
// refresh token stop working at once (and whose PingOne refresh token is revoked at the IdP)
// while her other client goes on. Forged revocations are refused: no CSRF token, a token of
// another session, a form on another origin (same site, so the Lax cookie rides along), and
// bob's grant id posted by alice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { closeWithin, launchChromium, within } from './support/browser.mjs';
import { freePort, startTestStack } from './support/stack.mjs';
import { mcpInitialize, refresh } from './support/flow.mjs';
import { TestOAuthProvider, connectClient } from './support/sdk-oauth.mjs';

// A client name written to be rendered as markup, were it not escaped.
const EVIL_NAME = 'Desk <img src=x id=injected> "tool"';

let stack;
let browser;
let evil; // { origin, set(html), close() }: a page on another origin of the same site
const clients = {};
const open = [];

before(async () => {
  stack = await startTestStack({ todoApi: false, idpEnv: { IDP_ADMIN_API: '1' } });
  browser = await launchChromium();
  evil = await startPageServer();
  // alice: two clients; bob: one. Each a real SDK sign-in with a registration of its own.
  clients.a1 = await connect('alice', EVIL_NAME, 33501);
  clients.a2 = await connect('alice', 'Alice laptop', 33502);
  clients.b1 = await connect('bob', 'Bob phone', 33503);
});

after(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => {})));
  await closeWithin(browser);
  await evil?.close();
  await stack?.stop();
});

async function connect(user, clientName, port) {
  const provider = new TestOAuthProvider({ user, clientName, redirectUrl: `http://127.0.0.1:${port}/callback` });
  const { client } = await connectClient('http', stack.mcpUrl, provider, { name: clientName });
  open.push(client);
  const grantId = provider.tokens().access_token.split(':')[1];
  return { provider, client, grantId, name: clientName };
}

/** A loopback server on its own port, serving whatever page `set` gave it. */
async function startPageServer() {
  const port = await freePort();
  let html = '';
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(html);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${port}`,
    set(page) { html = page; },
    async close() { server.closeAllConnections?.(); await new Promise((r) => server.close(r)); },
  };
}

/** Signs `user` in to /connections in a fresh browser context; returns { context, page, response }. */
async function signInToPage(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.mcpOrigin}/connections`);
  await page.waitForSelector('#username', { timeout: 30_000 });
  assert.match(await page.textContent('body'), /not PingOne/i, 'at the stand-in IdP');
  await page.fill('#username', user);
  await page.fill('#password', `${user}-password`);
  const back = page.waitForResponse((r) => r.url() === `${stack.mcpOrigin}/connections` && r.request().method() === 'GET', { timeout: 30_000 });
  await page.click('button[type="submit"]');
  const response = await within(page, back, 30_000, 'waiting for the connections page');
  await page.waitForSelector('h1');
  return { context, page, response };
}

const listed = (page) => page.$$eval('li.connection h2', (els) => els.map((e) => e.textContent.trim()));
const grantIds = (page) => page.$$eval('li.connection input[name="grant"]', (els) => els.map((e) => e.value));
const csrfOf = (page) => page.$eval('input[name="csrf_token"]', (e) => e.value);

/** A POST to /connections with the page's session cookie, from outside the browser. */
async function postAs(context, fields, headers = {}) {
  const cookies = await context.cookies(stack.mcpOrigin);
  const res = await fetch(`${stack.mcpOrigin}/connections`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: cookies.map((c) => `${c.name}=${c.value}`).join('; '),
      ...headers,
    },
    body: new URLSearchParams(fields),
  });
  return { status: res.status, text: await res.text() };
}

const worksFor = async (c) => (await c.client.listTools()).tools.length > 0;

test('each user sees only their own MCP clients, escaped, behind a __Host- session cookie', async () => {
  const a = await signInToPage('alice');
  const b = await signInToPage('bob');
  try {
    assert.equal(a.response.status(), 200);
    const csp = a.response.headers()['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);

    const aNames = await listed(a.page);
    assert.deepEqual(aNames.toSorted(), ['Alice laptop', EVIL_NAME].toSorted());
    assert.deepEqual((await grantIds(a.page)).toSorted(), [clients.a1.grantId, clients.a2.grantId].toSorted());
    // The client's name is text, never markup.
    assert.equal(await a.page.$('#injected'), null);
    const aText = await a.page.textContent('body');
    assert.match(aText, /Signed in as alice/);
    assert.match(aText, /Signs in through 127\.0\.0\.1:33501/);
    assert.match(aText, /Scopes: todo_api:read todo_api:write/);
    assert.match(aText, /Last used: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    assert.match(aText, /Last used” is when the application last signed in or renewed its access/);
    for (const other of ['bob', 'Bob phone', clients.b1.grantId]) assert.ok(!aText.includes(other), `alice's page shows ${other}`);
    assert.ok(!(await a.page.content()).includes(clients.b1.grantId));

    assert.deepEqual(await listed(b.page), ['Bob phone']);
    const bText = await b.page.textContent('body');
    for (const other of ['alice', 'Alice laptop', 'Desk', clients.a1.grantId]) assert.ok(!bText.includes(other), `bob's page shows ${other}`);

    const session = (await a.context.cookies(stack.mcpOrigin)).find((c) => c.name === '__Host-CONNECTIONS_SESSION');
    assert.ok(session, 'the session cookie is kept on http://127.0.0.1');
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    assert.equal(session.path, '/');
  } finally {
    await closeWithin(a.context);
    await closeWithin(b.context);
  }
});

test('forged revocations are refused and leave the grant alone', async () => {
  const a = await signInToPage('alice');
  const b = await signInToPage('bob');
  try {
    const own = stack.mcpOrigin;
    const csrf = await csrfOf(a.page);
    const target = clients.a2.grantId;
    const refusals = [
      ['no CSRF token', { action: 'revoke', grant: target }, { origin: own }, 403],
      ['a CSRF token of another session', { action: 'revoke', grant: target, csrf_token: await csrfOf(b.page) }, { origin: own }, 403],
      ['another Origin', { action: 'revoke', grant: target, csrf_token: csrf }, { origin: 'https://evil.example' }, 403],
      ['no Origin at all', { action: 'revoke', grant: target, csrf_token: csrf }, {}, 403],
      ["bob's grant id", { action: 'revoke', grant: clients.b1.grantId, csrf_token: csrf }, { origin: own }, 404],
      ['a made-up grant id', { action: 'revoke', grant: `${target}x`, csrf_token: csrf }, { origin: own }, 404],
    ];
    for (const [what, fields, headers, status] of refusals) {
      const res = await postAs(a.context, fields, headers);
      assert.equal(res.status, status, `${what}: ${res.text.slice(0, 300)}`);
    }
    // Without the session cookie, even a valid token gets nowhere.
    const anonymous = await fetch(`${own}/connections`, {
      method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: own },
      body: new URLSearchParams({ action: 'revoke', grant: target, csrf_token: csrf }),
    });
    assert.equal(anonymous.status, 401);

    // A page on another origin of the same site: the browser sends the Lax session cookie with
    // its form, and even holding the right CSRF token it is refused by its Origin.
    evil.set(`<!doctype html><form method="post" action="${own}/connections">
      <input type="hidden" name="csrf_token" value="${csrf}"><input type="hidden" name="action" value="revoke">
      <input type="hidden" name="grant" value="${target}"><button id="go">Win a prize</button></form>`);
    const lure = await a.context.newPage();
    await lure.goto(evil.origin);
    const answer = lure.waitForResponse((r) => r.url() === `${own}/connections` && r.request().method() === 'POST');
    await lure.click('#go');
    const forged = await within(lure, answer, 30_000, 'waiting for the forged POST');
    assert.equal(forged.status(), 403);
    assert.match(await lure.textContent('body'), /sent from another site/);
    await closeWithin(lure);

    // Everything is still there and working: alice's client and bob's.
    await a.page.reload();
    assert.deepEqual((await grantIds(a.page)).toSorted(), [clients.a1.grantId, clients.a2.grantId].toSorted());
    assert.ok(await worksFor(clients.a2));
    assert.ok(await worksFor(clients.b1));
    const bTokens = clients.b1.provider.tokens();
    const renewed = await refresh({ mcpOrigin: own, client: clients.b1.provider.clientInformation(), refreshToken: bTokens.refresh_token });
    assert.equal(renewed.status, 200, `bob's refresh: ${JSON.stringify(renewed.body)}`);
    clients.b1.provider.saveTokens(renewed.body);
    assert.ok(await worksFor(clients.b1));
    await b.page.reload();
    assert.deepEqual(await grantIds(b.page), [clients.b1.grantId]);
  } finally {
    await closeWithin(a.context);
    await closeWithin(b.context);
  }
});

test('revoking a client ends its tokens at once; the other client goes on', async () => {
  const a = await signInToPage('alice');
  try {
    const victim = clients.a1;
    const { access_token: access, refresh_token: refreshToken } = victim.provider.tokens();
    assert.equal((await mcpInitialize(stack.mcpUrl, access)).status, 200, 'the token works before');

    const item = a.page.locator('li.connection', { has: a.page.locator(`input[name="grant"][value="${victim.grantId}"]`) });
    const done = a.page.waitForURL(/\/connections\?ended=/, { timeout: 30_000 });
    await item.locator('button[value="revoke"]').click();
    await done;
    assert.match(await a.page.textContent('body'), /The connection was ended/);
    assert.deepEqual(await grantIds(a.page), [clients.a2.grantId]);

    const after = await mcpInitialize(stack.mcpUrl, access);
    assert.equal(after.status, 401);
    assert.match(after.headers.get('www-authenticate') ?? '', /invalid_token/);
    const refreshed = await refresh({ mcpOrigin: stack.mcpOrigin, client: victim.provider.clientInformation(), refreshToken });
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.body.error, 'invalid_grant');

    // alice's other client goes on.
    assert.ok(await worksFor(clients.a2));

    // At the IdP alice holds one PingOne refresh token: the other client's. The revoked grant's was
    // revoked there, and the page's own sign-ins (three by now) kept none. (This ends the other
    // client's too, so it comes last.)
    const res = await fetch(`${stack.idpUrl}/admin/users/alice/revoke-tokens`, { method: 'POST' });
    assert.equal((await res.json()).revoked, 1);
  } finally {
    await closeWithin(a.context);
  }
});

test('signing out ends the session in this browser', async () => {
  const a = await signInToPage('bob');
  try {
    await a.page.click('button[value="signout"]');
    await a.page.waitForSelector('text=You signed out');
    assert.equal((await a.context.cookies(stack.mcpOrigin)).find((c) => c.name === '__Host-CONNECTIONS_SESSION'), undefined);
    // The page now sends the browser to the IdP again (whose own session signs it in silently).
    const idp = new URL(stack.idpUrl).origin;
    const toIdp = [];
    a.page.on('request', (r) => { if (new URL(r.url()).origin === idp) toIdp.push(r.url()); });
    await a.page.goto(`${stack.mcpOrigin}/connections`);
    await a.page.waitForSelector('li.connection');
    assert.ok(toIdp.length > 0, 'no sign-in at the IdP after signing out');
  } finally {
    await closeWithin(a.context);
  }
});
